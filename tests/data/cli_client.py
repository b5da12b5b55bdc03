# A CPython client for conn's command-line tests: python cli_client.py PORT
# Connects to 127.0.0.1:PORT with authkey b'the key', sends an object with an escape
# sequence in it and a bytes message, and prints what comes back for each.
# Exits by itself after 60 seconds.
import signal, sys
from multiprocessing.connection import Client
signal.alarm(60)
c = Client(('127.0.0.1', int(sys.argv[1])), authkey=b'the key')
c.send({'n': 1, 'esc': u'\x1b[31mred'})
print(repr(c.recv()))
c.send_bytes(b'plain bytes')
print(repr(c.recv_bytes()))
c.close()
