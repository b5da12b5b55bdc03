# The Python half of conn's CPython handshake tests. Runs on CPython 2.7 and 3.6+.
#
#   listen KEYHEX              Listener(authkey=key) on 127.0.0.1, prints its port, accepts once
#   connect PORT KEYHEX        Client(('127.0.0.1', PORT), authkey=key)
#   deliver PORT KEYHEX DIGEST (3.12+) a plain socket, then deliver_challenge(c, key, DIGEST)
#                              and answer_challenge(c, key): the server's order, run by a client
#
# After authenticating it sends b'from-python', receives one message and prints "OK <message>".
# An exception prints "ERR <type>: <message>". It exits by itself after 30 seconds.
import binascii
import signal
import socket
import sys

from multiprocessing import connection

signal.alarm(30)


def report_exchange(conn):
    conn.send_bytes(b'from-python')
    got = conn.recv_bytes()
    print('OK ' + got.decode('ascii'))


def main():
    role = sys.argv[1]
    try:
        if role == 'listen':
            key = binascii.unhexlify(sys.argv[2].encode('ascii'))
            listener = connection.Listener(('127.0.0.1', 0), authkey=key)
            print(listener.address[1])
            sys.stdout.flush()
            conn = listener.accept()
        elif role == 'connect':
            key = binascii.unhexlify(sys.argv[3].encode('ascii'))
            conn = connection.Client(('127.0.0.1', int(sys.argv[2])), authkey=key)
        elif role == 'deliver':
            key = binascii.unhexlify(sys.argv[3].encode('ascii'))
            sock = socket.create_connection(('127.0.0.1', int(sys.argv[2])))
            conn = connection.Connection(sock.detach())
            connection.deliver_challenge(conn, key, sys.argv[4])
            connection.answer_challenge(conn, key)
        else:
            raise SystemExit('unknown role ' + role)
        report_exchange(conn)
    except Exception as e:
        print('ERR %s: %s' % (type(e).__name__, e))
    sys.stdout.flush()


main()
