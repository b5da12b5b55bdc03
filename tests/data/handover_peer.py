# The Python half of conn's tests of connections handed between processes (CPython 3.4+).
#
#   serve KEYHEX PATH       Client(PATH, authkey=KEYHEX) to the Rust test, which is also this
#                           process's authkey. Serves the commands the test sends (tuples; see
#                           serve()); prints "DONE" after 'bye'.
#   parent KEYHEX CHILD     Hands a connection to the Rust program CHILD (given its end of a
#                           Pipe, fd number in argv, the key in CONN_TEST_KEY), which uses it and hands it
#                           back; prints "OK" when both sides have talked over it.
#   stand_ins               Prints, one per line, "NAME HEX" for the pickles CPython writes for
#                           Windows' DupHandle / DupSocket wrappers (stand-in classes with the
#                           same module, name and attributes) and for a DupFd and a claim.
#
# Exits by itself after 120 seconds.
import binascii
import multiprocessing
import os
import signal
import subprocess
import sys
from multiprocessing import connection, reduction, resource_sharer

signal.alarm(120)


def unhex(text):
    return binascii.unhexlify(text.encode('ascii'))


def talk_over(c):
    """Uses a received connection as its directions allow; returns what it read."""
    got = None
    if c.writable:
        c.send('hello from python')
    if c.readable:
        got = c.recv()
    return got


def serve(conn):
    while True:
        try:
            cmd = conn.recv()
        except EOFError:
            print('EOF')
            return
        op = cmd[0]
        if op == 'send_end':
            # ('send_end', duplex, which, talk): hand over one end of a new Pipe, keep the
            # other, and if talk, use it.
            a, b = multiprocessing.Pipe(cmd[1])
            sent, kept = (a, b) if cmd[2] == 0 else (b, a)
            conn.send(sent)
            sent.close()
            if not cmd[3]:
                continue
            if kept.writable:
                kept.send('to the end you got')
            if kept.readable:
                conn.send(('python got', kept.recv()))
            kept.close()
        elif op == 'recv_conn':
            c = conn.recv()
            conn.send(('received', c.readable, c.writable))
            conn.send(('python got', talk_over(c)))
            c.close()
        elif op == 'recv_conn_fails':
            try:
                conn.recv()
                conn.send(('no error',))
            except Exception as e:
                conn.send(('error', type(e).__name__))
        elif op == 'claim_twice':
            raw = conn.recv_bytes()
            first = reduction.ForkingPickler.loads(raw)
            try:
                reduction.ForkingPickler.loads(raw)
                second = 'no error'
            except Exception as e:
                second = type(e).__name__
            conn.send(('claimed', first.readable, first.writable, second))
            first.send('first claim works')
            first.close()
        elif op == 'send_twice':
            a, b = multiprocessing.Pipe()
            raw = reduction.ForkingPickler.dumps(a)
            conn.send_bytes(raw)
            conn.send_bytes(raw)
            b.send('to the end you got')
            conn.recv()  # wait until the test is done with both claims
        elif op == 'send_then_stop':
            a, b = multiprocessing.Pipe()
            raw = reduction.ForkingPickler.dumps(a)
            resource_sharer.stop()
            conn.send_bytes(raw)
        elif op == 'set_key':
            multiprocessing.current_process().authkey = unhex(cmd[1])
            conn.send('ok')
        elif op == 'bye':
            print('DONE')
            return
        else:
            print('ERR unknown op %r' % (op,))
            return
        sys.stdout.flush()


def parent(child_exe):
    ours, theirs = multiprocessing.Pipe()
    env = dict(os.environ)
    env['CONN_TEST_KEY'] = binascii.hexlify(bytes(multiprocessing.current_process().authkey)).decode()
    fd = theirs.fileno()
    child = subprocess.Popen([child_exe, 'round-trip', str(fd)], pass_fds=[fd], env=env)
    theirs.close()
    a, b = multiprocessing.Pipe()
    ours.send(a)            # Python -> Rust: the child claims it from our sharer
    a.close()
    assert b.recv() == 'hello from the rust child', 'child did not talk'
    back = ours.recv()      # Rust -> Python: we claim it from the child's sharer
    ours.send('claimed')    # the child may exit now
    back.send('round trip')
    assert b.recv() == 'round trip', 'not the same connection'
    assert (back.readable, back.writable) == (True, True)
    assert child.wait(60) == 0, 'child failed'
    print('OK')


def stand_in(module, name, attrs):
    """An instance of a class named module.name, reachable there (as the pickler checks),
    with attrs set in order, as the real class's __init__ sets them on Windows."""
    mod = sys.modules[module]
    cls = getattr(mod, name, None)
    if cls is None:
        cls = type(name, (object,), {'__module__': module})
        setattr(mod, name, cls)
    obj = cls.__new__(cls)
    for k, v in attrs:
        setattr(obj, k, v)
    return obj


class PipeConnectionStandIn(object):
    def __init__(self, wrapped, readable, writable):
        self.args = (wrapped, readable, writable)


class ConnectionStandIn(PipeConnectionStandIn):
    pass


def rebuild_pipe_connection(dh, readable, writable):
    raise AssertionError('never called')


def stand_ins():
    rebuild_pipe_connection.__module__ = 'multiprocessing.connection'
    connection.rebuild_pipe_connection = rebuild_pipe_connection
    reduction.register(PipeConnectionStandIn, lambda c: (rebuild_pipe_connection, c.args))
    reduction.register(ConnectionStandIn, lambda c: (connection.rebuild_connection, c.args))

    def dumps(obj):
        return binascii.hexlify(bytes(reduction.ForkingPickler.dumps(obj))).decode()

    handle = stand_in('multiprocessing.reduction', 'DupHandle',
                      [('_handle', 1234), ('_access', 2), ('_pid', 4321)])
    print('dup_handle ' + dumps(handle))
    pipe_handle = stand_in('multiprocessing.reduction', 'DupHandle',
                           [('_handle', 0x1f4), ('_access', 0x120089), ('_pid', 77)])
    print('pipe_connection ' + dumps(PipeConnectionStandIn(pipe_handle, True, False)))
    sock = stand_in('multiprocessing.resource_sharer', 'DupSocket',
                    [('_id', (r'\\.\pipe\pyc-12-0-abcdefgh', 3))])
    print('socket_connection ' + dumps(ConnectionStandIn(sock, False, True)))
    fd = stand_in('multiprocessing.resource_sharer', 'DupFd',
                  [('_id', ('/tmp/pymp-x/listener-y', 2 ** 40))])
    print('fd_connection ' + dumps(ConnectionStandIn(fd, True, True)))
    print('claim ' + dumps((5, 4321)))


def main():
    mode = sys.argv[1]
    if mode == 'serve':
        multiprocessing.current_process().authkey = unhex(sys.argv[2])
        key = multiprocessing.current_process().authkey
        serve(connection.Client(sys.argv[3], authkey=key))
    elif mode == 'parent':
        multiprocessing.current_process().authkey = unhex(sys.argv[2])
        parent(sys.argv[3])
    elif mode == 'stand_ins':
        stand_ins()
    sys.stdout.flush()


main()
