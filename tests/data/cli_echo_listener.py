# A CPython listener for conn's command-line tests: python cli_echo_listener.py
# Listens on 127.0.0.1 with authkey b'the key', prints its port, and answers each object
# with ('got', obj) until the client closes. Exits by itself after 60 seconds.
import signal, sys
from multiprocessing.connection import Listener
signal.alarm(60)
l = Listener(('127.0.0.1', 0), authkey=b'the key')
sys.stdout.write('%d\n' % l.address[1])
sys.stdout.flush()
c = l.accept()
while True:
    try:
        o = c.recv()
    except EOFError:
        break
    c.send(('got', o))
