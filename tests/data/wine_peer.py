# The CPython side of tests/tests/wine.rs: python wine_peer.py serve|connect HOST PORT KEY
# Mirrors tests/src/bin/conn-peer.rs (the Windows build of conn, under Wine): receives an
# object, a zero-length message and 3 MiB, sends back the object with the size, a zero-length
# message and 5 MiB, then waits for b'done'. Exits by itself after 120 seconds.
import signal
import sys

from multiprocessing.connection import Client, Listener

signal.alarm(120)
role, host, port, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
if role == 'serve':
    listener = Listener((host, port), authkey=key)
    print('listening')
    sys.stdout.flush()
    conn = listener.accept()
else:
    conn = Client((host, port), authkey=key)
obj = conn.recv()
assert obj == ('hello', 1729, 2.5, [1, 2, 3], None, True), obj
empty = conn.recv_bytes()
assert empty == b'', empty
big = conn.recv_bytes()
assert len(big) == 3 << 20, len(big)
assert big == bytes(bytearray(i % 251 for i in range(3 << 20)))
conn.send(('echo', obj, len(big)))
conn.send_bytes(b'')
conn.send_bytes(bytes(bytearray(range(256))) * ((5 << 20) // 256))
assert conn.recv_bytes() == b'done'
conn.close()
print('python ok')
