# The Python half of conn's child-process tests (CPython 3.x).
#
#   parent CHILD_EXE   a Python parent: Pipe(), the Rust example CHILD_EXE started as its child
#                      with one end inherited (pass_fds), ten numbers squared, waited on with
#                      multiprocessing.connection.wait together with another pipe; prints OK
#   child FD           a Python child: Connection(FD) inherited from a Rust parent; squares
#                      numbers until EOF
#   worker NAME FD     a seed_wait worker: ten (i, NAME) on Connection(FD, readable=False)
#   seed_parent EXE    the seed's wait program with four Rust workers (`EXE worker NAME FD`)
#                      started by subprocess with pass_fds; prints the messages, then OK
import signal
import subprocess
import sys

from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait

signal.alarm(60)


def parent(exe):
    ours, theirs = Pipe()
    idle, _keep = Pipe()
    child = subprocess.Popen([exe, 'child', str(theirs.fileno())], pass_fds=[theirs.fileno()])
    theirs.close()
    for n in range(10):
        ours.send(n)
        ready = wait([idle, ours], 10)
        assert ready == [ours], ready
        assert ours.recv() == n * n
    ours.close()
    assert child.wait(10) == 0
    print('OK')


def child(fd):
    conn = Connection(fd)
    while True:
        try:
            n = conn.recv()
        except EOFError:
            break
        conn.send(n * n)


def worker(name, fd):
    w = Connection(fd, readable=False)
    for i in range(10):
        w.send((i, name))
    w.close()


def seed_parent(exe):
    readers, children = [], []
    for i in range(4):
        r, w = Pipe(duplex=False)
        readers.append(r)
        name = 'Process-%d' % (i + 1)
        children.append(subprocess.Popen([exe, 'worker', name, str(w.fileno())],
                                         pass_fds=[w.fileno()]))
        w.close()
    while readers:
        for r in wait(readers, 30):
            try:
                msg = r.recv()
            except EOFError:
                readers.remove(r)
            else:
                print(msg)
    for c in children:
        assert c.wait(30) == 0
    print('OK')


mode = sys.argv[1]
if mode == 'parent':
    parent(sys.argv[2])
elif mode == 'child':
    child(int(sys.argv[2]))
elif mode == 'worker':
    worker(sys.argv[2], int(sys.argv[3]))
else:
    seed_parent(sys.argv[2])
