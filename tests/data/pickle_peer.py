# (appended to crates/conn-pickle/tests/data/corpus.py by the test, so its names are in scope)
# The Python half of the pickle differential test.
#   roundtrip SEED COUNT: prints "CASE name protocol hex" for every corpus value and COUNT random
#     ones in every protocol this Python has, then "END"; reads "BACK name protocol hex" lines
#     (or "ERR name protocol message") until EOF, loads each and compares it with what was sent,
#     types and sharing included; prints "FAIL ..." per mismatch and "DONE ok fail".
#   check: reads "name hex" lines until EOF and prints "name type repr" for each pickle.
import binascii as _binascii


def _main():
    mode = sys.argv[1]
    if mode == 'check':
        for line in sys.stdin:
            name, hexdata = line.split()
            obj = pickle.loads(_binascii.unhexlify(hexdata))
            t = type(obj)
            print('%s %s.%s %s' % (name, t.__module__, t.__name__, repr(obj)))
            sys.stdout.flush()
        return
    seed, count = int(sys.argv[2]), int(sys.argv[3])
    sent = {}
    cases = fixed_cases() + random_cases(seed, count)
    for name, value, _ in cases:
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(value, proto)
            # What Python itself reads from this pickle (protocols below 4 drop `fold`).
            sent[(name, proto)] = pickle.loads(data)
            print('CASE %s %d %s' % (name, proto, _binascii.hexlify(data).decode('ascii')))
    print('END')
    sys.stdout.flush()
    ok = fail = 0
    for line in sys.stdin:
        parts = line.split(None, 3)
        kind, name, proto = parts[0], parts[1], int(parts[2])
        value = sent.pop((name, proto))
        if kind == 'ERR':
            fail += 1
            print('FAIL %s %d conn could not decode: %s' % (name, proto, parts[3].strip()))
            continue
        try:
            data = _binascii.unhexlify(parts[3].strip())
            back = pickle.loads(data)
            # conn answered in protocol `out`: compare with what Python keeps at that protocol.
            out = bytearray(data)[1]
            value = pickle.loads(pickle.dumps(value, out))
        except Exception as e:
            fail += 1
            print('FAIL %s %d python could not load conn\'s pickle: %r' % (name, proto, e))
            continue
        if not same(value, back):
            fail += 1
            print('FAIL %s %d sent %r got %r' % (name, proto, value, back))
        elif not sharing_ok(name, back):
            fail += 1
            print('FAIL %s %d sharing lost' % (name, proto))
        else:
            ok += 1
    for (name, proto) in sent:
        fail += 1
        print('FAIL %s %d never came back' % (name, proto))
    print('DONE %d %d' % (ok, fail))
    sys.stdout.flush()


_main()
