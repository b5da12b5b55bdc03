# The Python half of conn's connection interop tests. Runs on CPython 2.7 and 3.6+.
#
#   listen FAMILY KEYHEX          Listener on FAMILY (inet | unix | abstract); prints
#                                 "ADDR inet PORT", "ADDR unix PATH" or "ADDR abstract NAMEHEX";
#                                 accepts one connection
#   connect FAMILY ADDR KEYHEX    Client to ADDR (a port, a path, or an abstract name in hex)
#
# KEYHEX '-' means no authkey. Then it serves commands that the Rust side sends with send():
# tuples whose first item names the operation (see serve()). It prints "ERR <type>: <message>"
# for an exception, "EOF" when the peer closes, "DONE" after 'bye', and exits by itself after
# 120 seconds.
import binascii
import signal
import sys
import time
from array import array

from multiprocessing import connection

signal.alarm(120)
PY3 = sys.version_info[0] >= 3


def unhex(text):
    return binascii.unhexlify(text.encode('ascii'))


def samples():
    s = {
        'none': None,
        'true': True,
        'false': False,
        'zero': 0,
        'minus_one': -1,
        'i64_max': 2 ** 63 - 1,
        'i64_min': -2 ** 63,
        'big': 2 ** 70,
        'float': 1.5,
        'neg_float': -0.25,
        'str': u'h\xe9llo \u4e16\u754c',
        'empty_str': u'',
        'list': [1, u'a', None],
        'tuple': (1, 2.5, u'x'),
        'dict': {u'a': 1, u'b': [2.5, 3.5]},
        'nested': {u'k': [(1, {u'z': [None, True]}), []]},
        'seed': [2.25, None, u'junk', float],
    }
    if PY3:
        s['bytes'] = b'\x00\xffbytes'
        s['empty_bytes'] = b''
    return s


def serve(conn):
    while True:
        try:
            cmd = conn.recv()
        except EOFError:
            print('EOF')
            return
        op = cmd[0]
        if op == 'echo_bytes':
            conn.send_bytes(conn.recv_bytes())
        elif op == 'echo_obj':
            conn.send(conn.recv())
        elif op == 'make_bytes':
            conn.send_bytes(b'\x5a' * cmd[1])
        elif op == 'check_bytes':
            data = conn.recv_bytes()
            conn.send((len(data), data == b'\x5a' * len(data)))
        elif op == 'sample':
            conn.send(samples()[cmd[1]])
        elif op == 'expect':
            got = conn.recv()
            want = samples()[cmd[1]]
            same_type = type(got) == type(want) or (
                not PY3 and isinstance(want, (int, long)) and isinstance(got, (int, long)))
            conn.send((got == want and same_type, repr(got)))
        elif op == 'recv_into':
            arr = array('i', [0, 0, 0, 0, 0])
            try:
                n = conn.recv_bytes_into(arr)
                conn.send((n, list(arr)))
            except Exception as e:
                conn.send((type(e).__name__, len(e.args[0])))
        elif op == 'maxlength':
            try:
                conn.recv_bytes(cmd[1])
                conn.send('accepted')
            except (IOError, OSError) as e:
                print('ERR %s: %s' % (type(e).__name__, e))
                sys.stdout.flush()
                return
        elif op == 'poll':
            before = conn.poll()
            conn.send(before)
            after = conn.poll(10)
            conn.send((after, conn.recv_bytes()))
        elif op == 'send_later':
            time.sleep(cmd[1])
            conn.send_bytes(b'late')
        elif op == 'empties':
            for m in (b'', b'a', b''):
                conn.send_bytes(m)
        elif op == 'send_handle':
            # A message, a handle (a pipe's read end, its number above 256, as CPython's
            # test_large_fd_transfer), a message: the handle crosses with bytes around it.
            import fcntl
            import os
            from multiprocessing import reduction
            r, w = os.pipe()
            os.write(w, b'from python')
            os.close(w)
            high = fcntl.fcntl(r, fcntl.F_DUPFD, 300)
            os.close(r)
            conn.send_bytes(b'before')
            reduction.send_handle(conn, high, os.getpid())
            os.close(high)
            conn.send_bytes(b'after')
        elif op == 'recv_handles':
            import os
            import socket
            from multiprocessing import reduction
            s = socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                fds = reduction.recvfds(s, cmd[1])
            finally:
                s.close()
            got = [os.read(fd, 100) for fd in fds]
            for fd in fds:
                os.close(fd)
            conn.send(got)
        elif op == 'raw_byte':
            import os
            os.write(conn.fileno(), b'\x01')
        elif op == 'close':
            conn.close()
            print('CLOSED')
            return
        elif op == 'bye':
            print('DONE')
            return
        else:
            print('ERR unknown op %r' % (op,))
            return
        sys.stdout.flush()


def main():
    role, family = sys.argv[1], sys.argv[2]
    key_hex = sys.argv[-1]
    key = None if key_hex == '-' else unhex(key_hex)
    try:
        if role == 'listen':
            if family == 'inet':
                listener = connection.Listener(('127.0.0.1', 0), authkey=key)
                print('ADDR inet %d' % listener.address[1])
            elif family == 'unix':
                listener = connection.Listener(family='AF_UNIX', authkey=key)
                print('ADDR unix %s' % listener.address)
            else:
                name = '\0conn-py-%d' % time.time_ns() if PY3 else None
                listener = connection.Listener(name, authkey=key)
                print('ADDR abstract %s' % binascii.hexlify(listener.address[1:]).decode())
            sys.stdout.flush()
            conn = listener.accept()
        else:
            where = sys.argv[3]
            if family == 'inet':
                address = ('127.0.0.1', int(where))
            elif family == 'unix':
                address = where
            else:
                address = '\0' + unhex(where).decode('ascii')
            conn = connection.Client(address, authkey=key)
        serve(conn)
    except Exception as e:
        print('ERR %s: %s' % (type(e).__name__, e))
    sys.stdout.flush()


main()
