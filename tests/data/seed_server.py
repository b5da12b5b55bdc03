# The seed's listener, for conn's tests: python seed_server.py HOST PORT
# Accepts one client with authkey b'secret password' and sends it an object, b'hello', and the
# i32s 42 and 1729 as bytes. Runs on CPython 2.7 and 3.x; exits by itself after 60 seconds.
import signal
import sys
from array import array

from multiprocessing.connection import Listener

signal.alarm(60)
listener = Listener((sys.argv[1], int(sys.argv[2])), authkey=b'secret password')
print('listening')
sys.stdout.flush()
conn = listener.accept()
print('connection accepted from %r' % (listener.last_accepted,))
conn.send([2.25, None, 'junk', float])
conn.send_bytes(b'hello')
conn.send_bytes(array('i', [42, 1729]))
conn.poll(30)  # until the client hangs up
conn.close()
listener.close()
