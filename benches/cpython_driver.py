# The CPython side of conn's benchmarks: the same workloads as conn-bench, with CPython's own
# multiprocessing.connection on both sides (two processes), printing the same JSON line.
#
#   python cpython_driver.py measure WORKLOAD TRANSPORT SIZE COUNT
#   python cpython_driver.py peer    WORKLOAD TRANSPORT SIZE COUNT [ADDRESS]
#   python cpython_driver.py dump    CORPUS      (hex of pickle.dumps(corpus, 4), for conn-bench)
#
# WORKLOAD: pingpong, stream, objects, handshake, accept, wait, rss, codec; TRANSPORT: pipe, duplex
# (Pipe(duplex=True)'s socketpair even for one-way workloads), unix, tcp
# (codec: decode or encode, in one process; SIZE names the corpus, see CORPORA).
import json
import os
import socket
import subprocess
import sys
import time
from multiprocessing import connection

WARMUP = 200
KEY = b'secret password'


def sample():
    return {'floats': [i * 0.5 for i in range(1000)], 'name': 'benchmark sample',
            'tags': [1, 2, 3, 4, 5]}


CORPORA = ['sample', '10^5 ints', '10^4 str dict', '10^3 datetimes', '10^4 records',
           '10^4 tuples', '10^3 4KiB bytes', '16MiB str', '10^4 int set', '10^3 tz datetimes',
           '10^4 big ints']


def corpus(n):
    """The codec corpora, by number (names in CORPORA; conn-bench decodes the pickle of each,
    typed and as a PyValue, and encodes what it decoded)."""
    import datetime
    if n == 0:
        return sample()
    if n == 1:
        return list(range(100000))
    if n == 2:
        return dict(('k%d' % i, 'v%d' % i) for i in range(10000))
    if n == 3:
        start = datetime.datetime(2024, 1, 1)
        return [start + datetime.timedelta(seconds=i) for i in range(1000)]
    if n == 4:
        # JSON-like records: str, int, float, None, bool and a nested list.
        return [{'id': i, 'name': 'user%d' % i, 'score': i * 0.5, 'active': i % 2 == 0,
                 'manager': None, 'tags': ['a', 'b', 'c']} for i in range(10000)]
    if n == 5:
        return [(i, 'item%d' % i, i * 1.5) for i in range(10000)]
    if n == 6:
        return [bytes([i % 256]) * 4096 for i in range(1000)]
    if n == 7:
        text = 'The quick brown fox jumps over the lazy dog; \u03a9\u03bc\u03ad\u03b3\u03b1. '
        return (text * ((16 << 20) // len(text) + 1))[:16 << 20]
    if n == 8:
        return set(range(10000))
    if n == 9:
        start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
        return [start + datetime.timedelta(seconds=i) for i in range(1000)]
    return [2 ** 100 + i for i in range(10000)]


def measure_codec(direction, n, count):
    import pickle
    obj = corpus(n)
    data = pickle.dumps(obj, 4)
    if direction.startswith('decode'):
        op = lambda: pickle.loads(data)  # noqa: E731
    else:
        op = lambda: pickle.dumps(obj, 4)  # noqa: E731
    for _ in range(min(WARMUP, count)):
        op()
    t = time.perf_counter()
    for _ in range(count):
        op()
    s = time.perf_counter() - t
    report('codec', direction, n, count, s, s * 1e6 / count, 'us/op')


def report(workload, transport, size, count, seconds, value, unit):
    print(json.dumps({'impl': 'cpython-%d.%d.%d' % sys.version_info[:3], 'workload': workload,
                      'transport': transport, 'size': size, 'count': count,
                      'seconds': round(seconds, 6), 'value': round(value, 4), 'unit': unit}))


def spawn_peer(argv, stdin=None, stdout=None, address=None):
    args = [sys.executable, os.path.abspath(__file__), 'peer'] + argv
    if address is not None:
        args.append(address)
    return subprocess.Popen(args, stdin=stdin, stdout=stdout, close_fds=True)


def addr_text(address):
    return '%s:%d' % address if isinstance(address, tuple) else address


def parse_addr(text):
    if text.startswith('/'):
        return text
    host, port = text.rsplit(':', 1)
    return (host, int(port))


def link(workload, transport, argv):
    """Our Connection and the peer process."""
    one_way = workload in ('stream', 'rss')
    if transport == 'pipe' and one_way:
        r, w = os.pipe()
        child = spawn_peer(argv, stdout=w)
        os.close(w)
        return connection.Connection(r, writable=False), child
    if transport in ('pipe', 'duplex'):
        a, b = socket.socketpair()
        child = spawn_peer(argv, stdin=b.fileno())
        b.close()
        return connection.Connection(a.detach()), child
    family = 'AF_UNIX' if transport == 'unix' else 'AF_INET'
    address = None if family == 'AF_UNIX' else ('127.0.0.1', 0)
    listener = connection.Listener(address, family=family, backlog=128)
    child = spawn_peer(argv, address=addr_text(listener.address))
    conn = listener.accept()
    listener.close()
    return conn, child


def peer_link(workload, transport, address):
    if transport == 'pipe' and workload in ('stream', 'rss'):
        return connection.Connection(os.dup(1), readable=False)
    if transport in ('pipe', 'duplex'):
        return connection.Connection(os.dup(0))
    return connection.Client(parse_addr(address))


def measure(workload, transport, size, count, argv):
    if workload == 'codec':
        return measure_codec(transport, size, count)
    if workload == 'wait':
        return measure_wait(transport, size, count)
    if workload == 'handshake':
        return measure_handshake(transport, size, count, argv)
    if workload == 'accept':
        return measure_accept(transport, size, count)
    conn, child = link(workload, transport, argv)
    if workload == 'pingpong':
        payload = b'\x5a' * size
        buf = bytearray(size)
        for _ in range(WARMUP):
            conn.send_bytes(payload)
            conn.recv_bytes_into(buf)
        t = time.perf_counter()
        for _ in range(count):
            conn.send_bytes(payload)
            conn.recv_bytes_into(buf)
        s = time.perf_counter() - t
        report(workload, transport, size, count, s, s * 1e6 / count, 'us/rt')
    elif workload == 'objects':
        obj = sample()
        for _ in range(min(WARMUP, count)):
            conn.send(obj)
            conn.recv()
        t = time.perf_counter()
        for _ in range(count):
            conn.send(obj)
            conn.recv()
        s = time.perf_counter() - t
        report(workload, transport, size, count, s, s * 1e6 / count, 'us/rt')
    elif workload == 'stream':
        buf = bytearray(size)
        conn.recv_bytes_into(buf)
        t = time.perf_counter()
        for _ in range(count - 1):
            conn.recv_bytes_into(buf)
        s = time.perf_counter() - t
        report(workload, transport, size, count, s, size * (count - 1) / 2.0 ** 20 / s, 'MiB/s')
    elif workload == 'rss':
        t = time.perf_counter()
        m = conn.recv_bytes()
        assert len(m) == size
        s = time.perf_counter() - t
        report(workload, transport, size, count, s, peak_rss_mib(), 'MiB')
    conn.close()
    assert child.wait() == 0


def measure_handshake(transport, size, count, argv):
    family = 'AF_UNIX' if transport == 'unix' else 'AF_INET'
    address = None if family == 'AF_UNIX' else ('127.0.0.1', 0)
    listener = connection.Listener(address, family=family, backlog=128, authkey=KEY)
    child = spawn_peer(argv, address=addr_text(listener.address))
    listener.accept().close()
    t = time.perf_counter()
    for _ in range(count - 1):
        listener.accept().close()
    s = time.perf_counter() - t
    report('handshake', transport, size, count, s, s * 1e6 / (count - 1), 'us/handshake')
    listener.close()
    assert child.wait() == 0


def measure_accept(transport, size, count):
    """`size` clients at once (conn-bench's load generator, the same as for conn's listener)
    connect, authenticate and hang up; accepted connections per second."""
    here = os.path.dirname(os.path.abspath(__file__))
    bench = os.environ.get('CONN_BENCH') or os.path.join(here, '..', 'target', 'release',
                                                         'conn-bench')
    listener = connection.Listener(('127.0.0.1', 0), backlog=size, authkey=KEY)
    load = subprocess.Popen([bench, 'clients', addr_text(listener.address), str(size)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True)
    for _ in range(min(size, 100)):
        listener.accept().close()
    t = time.perf_counter()
    for _ in range(count):
        listener.accept().close()
    s = time.perf_counter() - t
    report('accept', transport, size, count, s, count / s, 'conn/s')
    listener.close()
    load.kill()
    load.wait()


def measure_wait(transport, size, count):
    pipes = [connection.Pipe() for _ in range(size)]
    readers = [a for a, _ in pipes]
    pipes[-1][1].send_bytes(b'x')
    t = time.perf_counter()
    for _ in range(count):
        assert len(connection.wait(readers, 0)) == 1
    s = time.perf_counter() - t
    report('wait', transport, size, count, s, s * 1e6 / count, 'us/call')


def peak_rss_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def peer(workload, transport, size, count, address):
    if workload == 'handshake':
        for _ in range(count):
            connection.Client(parse_addr(address), authkey=KEY).close()
        return
    conn = peer_link(workload, transport, address)
    if workload == 'pingpong':
        buf = bytearray(size)
        try:
            while True:
                n = conn.recv_bytes_into(buf)
                conn.send_bytes(buf, 0, n)
        except EOFError:
            pass
    elif workload == 'objects':
        try:
            while True:
                conn.send(conn.recv())
        except EOFError:
            pass
    else:
        payload = b'\x5a' * size
        for _ in range(count):
            conn.send_bytes(payload)
    conn.close()


def main():
    if sys.argv[1] == 'dump':
        import binascii
        import pickle
        print(binascii.hexlify(pickle.dumps(corpus(int(sys.argv[2])), 4)).decode('ascii'))
        return
    role, workload, transport = sys.argv[1], sys.argv[2], sys.argv[3]
    size, count = int(sys.argv[4]), int(sys.argv[5])
    if role == 'measure':
        measure(workload, transport, size, count, sys.argv[2:6])
    else:
        peer(workload, transport, size, count, sys.argv[6] if len(sys.argv) > 6 else None)


main()
