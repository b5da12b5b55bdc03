# The Python half of conn's child-process tests (CPython 3.x).
#
#   parent CHILD_EXE   a Python parent: Pipe(), the Rust example CHILD_EXE started as its child
#                      with one end inherited (pass_fds), ten numbers squared, waited on with
#                      multiprocessing.connection.wait together with another pipe; prints OK
#   child FD           a Python child: Connection(FD) inherited from a Rust parent; squares
#                      numbers until EOF
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


if sys.argv[1] == 'parent':
    parent(sys.argv[2])
else:
    child(int(sys.argv[2]))
