# Three clients at once against a server example: each sends a string, then all read the
# replies, then each says goodbye and hangs up.
import sys
from multiprocessing.connection import Client

host, port = sys.argv[1], int(sys.argv[2])
clients = [Client((host, port), authkey=b'secret password') for _ in range(3)]
for i, c in enumerate(clients):
    c.send('hello %d' % i)
for c in clients:
    print(c.recv())
for c in clients:
    c.send('bye')
    print(c.recv())
    c.close()
