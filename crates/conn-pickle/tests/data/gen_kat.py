# Writes the known-answer file for the running CPython: every corpus value in every protocol it
# has, plus hand-made pickles for the opcodes CPython writes only in special cases.
#   python gen_kat.py > kat-X.Y.txt      (see regen.sh)
# Line format, tab-separated: name, protocol, pickle hex, expected: 'repr:' + hex of the UTF-8
# repr when conn's Display must print exactly that, 'ok' when decoding must succeed,
# 'error:Kind' when it must fail with that error.
from __future__ import print_function
import binascii, io, os, pickle, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
try:
    import copyreg
except ImportError:
    import copy_reg as copyreg


def hexs(b):
    return binascii.hexlify(b).decode('ascii')


def emit(name, proto, data, expected):
    print('%s\t%d\t%s\t%s' % (name, proto, hexs(data), expected))


for name, value, repr_ok in corpus.fixed_cases():
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(value, proto)
        expected = 'ok'
        # The repr of what Python itself reads back (protocols below 4 drop `fold`, as Python
        # does); Python 2's longs print with an 'L' suffix that conn does not copy.
        loaded = pickle.loads(data)
        text = repr(loaded)
        # Python 2's reprs differ from Python 3's (which conn prints) beyond plain data.
        py2_only = sys.version_info[0] == 2 and (
            type(loaded) not in (type(None), bool, int, float, str, list, tuple)
            or any(m in text for m in ("u'", 'u"', '([', 'L,', 'L)', 'L]')))
        if repr_ok and type(loaded).__name__ != 'long' and not py2_only:
            expected = 'repr:' + hexs(text.encode('utf-8'))
        emit(name, proto, data, expected)

# Opcodes CPython writes only for special objects.
# DUP/POP/POP_MARK: a recursive tuple (refused: self-referencing).
t = ([],)
t[0].append(t)
for proto in range(pickle.HIGHEST_PROTOCOL + 1):
    emit('recursive_tuple', proto, pickle.dumps(t, proto), 'error:Recursive')
lst = []
lst.append(lst)
emit('recursive_list', 2, pickle.dumps(lst, 2), 'error:Recursive')

# EXT1/EXT2/EXT4: the extension registry.
for code in (0x42, 0x1234, 0x123456):
    copyreg.add_extension('collections', 'OrderedDict', code)
    emit('ext_%x' % code, 2, pickle.dumps(corpus.collections.OrderedDict, 2), 'error:Unsupported')
    copyreg.remove_extension('collections', 'OrderedDict', code)


# PERSID / BINPERSID.
class P(pickle.Pickler):
    def persistent_id(self, obj):
        return 'pid' if obj == 'persist-me' else None


for proto in (0, 2):
    buf = io.BytesIO()
    P(buf, proto).dump(['persist-me'])
    emit('persid', proto, buf.getvalue(), 'error:Unsupported')

# Python 2 old-style instances: INST (protocol 0) and OBJ (protocol 1).
if sys.version_info[0] == 2:
    exec('class Old:\n    def __init__(self):\n        self.v = 1\n')
    for proto in (0, 1):
        emit('oldstyle_instance', proto, pickle.dumps(Old(), proto), 'ok')  # noqa: F821

# NEXT_BUFFER / READONLY_BUFFER: out-of-band buffers (refused), and in-band PickleBuffers.
if sys.version_info >= (3, 8):
    pb = pickle.PickleBuffer(b'abc')
    emit('out_of_band', 5, pickle.dumps(pb, 5, buffer_callback=lambda b: False), 'error:Unsupported')
    emit('in_band_readonly', 5, pickle.dumps(pb, 5), 'repr:' + hexs(b"b'abc'"))
    emit('in_band_bytearray', 5, pickle.dumps(pickle.PickleBuffer(bytearray(b'xy')), 5),
         'repr:' + hexs(b"bytearray(b'xy')"))
