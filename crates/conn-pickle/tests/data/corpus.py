# -*- coding: utf-8 -*-
# The values conn-pickle is checked against: every builtin, the stdlib types people send, inert
# objects, shared structures, and random nested values. Runs on CPython 2.7 and 3.6+.
# Used by gen_kat.py (known-answer files) and by the differential round-trip test.
from __future__ import print_function
import collections, datetime, decimal, pickle, random, sys, uuid

PY3 = sys.version_info[0] >= 3
if PY3:
    text_type = str
    unichr_ = chr
else:
    text_type = unicode  # noqa: F821
    unichr_ = unichr  # noqa: F821

try:
    import enum
    class Color(enum.Enum):
        RED = 1
        GREEN = 'g'
except ImportError:
    Color = None

try:
    import dataclasses
    # Annotations are a syntax error on Python 2: compiled only where they exist.
    exec("@dataclasses.dataclass\nclass Point:\n    x: int\n    y: object = None\n")
except ImportError:
    Point = None

Pair = collections.namedtuple('Pair', 'a b')


class Plain(object):
    """A class instance pickled from its __dict__."""
    def __init__(self, **kw):
        self.__dict__.update(kw)
    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__
    def __ne__(self, other):
        return not self == other


def tz(hours, minutes=0, name=None):
    if not PY3:
        return None
    off = datetime.timedelta(hours=hours, minutes=minutes)
    return datetime.timezone(off, name) if name else datetime.timezone(off)


def fixed_cases():
    """(name, value, repr_matches): repr_matches: conn's Display must equal Python's repr."""
    shared_tuple = (1, u'x')
    shared_dict = {u'k': 1}
    record = [u'rec', 2.5]
    cases = [
        ('none', None, True), ('true', True, True), ('false', False, True),
        ('int0', 0, True), ('int255', 255, True), ('int256', 256, True), ('int65536', 65536, True),
        ('int_neg', -1, True), ('int_i32max', 2**31 - 1, True), ('int_i32min', -2**31, True),
        ('int_i64max', 2**63 - 1, True), ('int_i64min', -2**63, True), ('int_2_64', 2**64, True),
        ('int_big', 2**200 + 12345, True), ('int_bigneg', -(3**150), True),
        ('float', 2.25, True), ('float_neg0', -0.0, True), ('float_big', 1e300, True),
        ('float_small', 1.5e-7, True), ('float_inf', float('inf'), True),
        ('float_ninf', float('-inf'), True), ('float_int', 1e16, True), ('float_third', 1.0 / 3, True),
        ('str_empty', u'', True), ('str_ascii', u'junk', True),
        ('str_quote', u"it's", True), ('str_unicode', u'caf\xe9 \u263a ' + unichr_(0x1F600) if PY3 else u'caf\xe9 \u263a', True),
        ('str_ctrl', u'a\nb\tc\x00\x7f\\', True), ('str_long', u'x' * 300, True),
        ('bytes_empty', b'', PY3), ('bytes', b'\x00\x01abc\xff\'"', PY3), ('bytes_long', b'y' * 300, PY3),
        ('bytearray_empty', bytearray(), True), ('bytearray', bytearray(b'\x00ab\xff'), True),
        ('list_empty', [], True), ('list', [1, u'a', None, 2.5], True),
        ('list_1001', list(range(1001)), True),
        ('tuple_empty', (), True), ('tuple1', (1,), True), ('tuple2', (1, 2), True),
        ('tuple3', (1, 2, 3), True), ('tuple5', (1, 2, 3, 4, 5), True),
        ('dict_empty', {}, True), ('dict', {u'a': 1, 2: u'b', (1, 2): None}, PY3),
        ('dict_1001', dict((i, i) for i in range(1001)), PY3),
        ('set_empty', set(), True), ('set', set([1]), True),
        ('frozenset_empty', frozenset(), True), ('frozenset', frozenset([u'z']), True),
        ('nested', [(1, {u'k': [None, True]}), [[], {}]], True),
        ('shared_tuple', [shared_tuple, shared_tuple], True),
        ('shared_dict', [shared_dict, shared_dict], True),
        ('shared_record', {u'a': record, u'b': [record, record]}, True),
        ('complex', complex(1.5, -2), True), ('complex_imag', 2j, True),
        ('date', datetime.date(2024, 2, 29), True), ('date_min', datetime.date(1, 1, 1), True),
        ('time', datetime.time(3, 4, 5, 6), True), ('time_hm', datetime.time(23, 59), True),
        ('datetime', datetime.datetime(2024, 1, 2, 3, 4, 5, 678901), True),
        ('datetime_hm', datetime.datetime(9999, 12, 31, 0, 0), True),
        ('timedelta', datetime.timedelta(days=-1, seconds=5, microseconds=7), True),
        ('timedelta_zero', datetime.timedelta(0), True),
        ('decimal', decimal.Decimal('1.10'), True), ('decimal_inf', decimal.Decimal('-Infinity'), True),
        ('decimal_nan', decimal.Decimal('NaN'), True),
        ('ordereddict', collections.OrderedDict([(u'b', 1), (u'a', [2])]), sys.version_info >= (3, 12)),
        ('ordereddict_empty', collections.OrderedDict(), True),
        ('uuid', uuid.UUID('12345678-1234-5678-1234-567812345678'), False),
        ('defaultdict', collections.defaultdict(list, {u'k': [1]}), False),
        ('namedtuple', Pair(1, u'two'), False),
        ('exception', KeyError(u'missing'), PY3),
        ('exception2', ValueError(u'bad', 3), PY3),
        ('plain_object', Plain(a=1, b=[u'x']), False),
        ('global_class', float, True), ('global_func', len, False),
        ('range', range(1, 10, 2) if PY3 else None, False),
    ]
    if PY3:
        cases += [
            ('datetime_utc', datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.timezone.utc), True),
            ('datetime_tz', datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz(5, 30, 'IST')), True),
            ('datetime_fold', datetime.datetime(2024, 11, 3, 1, 30, fold=1), True),
            ('time_tz', datetime.time(12, 0, tzinfo=tz(-3)), True),
            ('timezone', tz(1), True),
        ]
    else:
        cases += [
            ('py2_str', 'plain', True), ('py2_str_bin', '\xff\x00', True),
            ('py2_long', long(5), False),  # noqa: F821
            ('py2_unicode', u'\u20ac', True),
        ]
    if Color is not None:
        cases.append(('enum', Color.RED, False))
        cases.append(('enum_str', Color.GREEN, False))
    if Point is not None:
        cases.append(('dataclass', Point(1, [u'p']), True))
    big = [record] * 5
    cases.append(('shared_five', big, True))
    return cases


def random_value(rng, depth, pool):
    r = rng.random()
    if depth <= 0 or r < 0.45:
        kind = rng.randrange(14)
        if kind == 0:
            v = None
        elif kind == 1:
            v = rng.random() < 0.5
        elif kind == 2:
            v = rng.randint(-300, 70000)
        elif kind == 3:
            v = rng.randint(-2**70, 2**70)
        elif kind == 4:
            v = rng.choice([0.5, -1e-9, 1e22, float('inf'), 3.141592653589793])
        elif kind == 5:
            v = u''.join(unichr_(rng.choice([97, 233, 0x263a, 10, 39])) for _ in range(rng.randrange(6)))
        elif kind == 6:
            v = bytes(bytearray(rng.randrange(256) for _ in range(rng.randrange(6))))
        elif kind == 7:
            v = bytearray(rng.randrange(256) for _ in range(rng.randrange(4)))
        elif kind == 8:
            v = datetime.date(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28))
        elif kind == 9:
            v = datetime.datetime(rng.randint(1, 9999), 1, 1, rng.randint(0, 23), 5, 6, rng.randint(0, 999999))
        elif kind == 10:
            v = datetime.timedelta(rng.randint(-999, 999), rng.randint(0, 86399))
        elif kind == 11:
            v = decimal.Decimal(rng.choice(['0', '-1.50', '1E+5', '3.14159']))
        elif kind == 12:
            v = complex(rng.random(), -rng.random())
        else:
            v = uuid.UUID(int=rng.getrandbits(128))
        if not PY3 and kind == 6:
            v = bytearray(v)
        return v
    if pool and rng.random() < 0.15:
        return rng.choice(pool)
    kind = rng.randrange(6)
    n = rng.randrange(5)
    if kind == 0:
        v = [random_value(rng, depth - 1, pool) for _ in range(n)]
    elif kind == 1:
        v = tuple(random_value(rng, depth - 1, pool) for _ in range(n))
    elif kind == 2:
        v = dict((rng.choice([rng.randint(0, 99), text_type('k%d' % rng.randrange(50))]), random_value(rng, depth - 1, pool)) for _ in range(n))
    elif kind == 3:
        v = set(rng.randint(0, 99) for _ in range(n))
    elif kind == 4:
        v = frozenset(text_type('s%d' % rng.randrange(9)) for _ in range(n))
    else:
        v = collections.OrderedDict((text_type('o%d' % i), random_value(rng, depth - 1, pool)) for i in range(n))
    pool.append(v)
    return v


def random_cases(seed, count):
    rng = random.Random(seed)
    pool = []
    return [('random%d' % i, random_value(rng, 4, pool), False) for i in range(count)]


def same(a, b):
    """Equal and of the same types all the way down (Python's == ignores int/float, tuple/list
    kinds inside containers; this does not)."""
    if not PY3 and isinstance(a, (int, long)) and isinstance(b, (int, long)):  # noqa: F821
        # Python 2's int and long are one number type; conn keeps the number, not the split.
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if list(a.keys()) != list(b.keys()) and type(a) is collections.OrderedDict:
            return False
        return len(a) == len(b) and all(k in b and same(a[k], b[k]) for k in a) and \
            getattr(a, 'default_factory', None) == getattr(b, 'default_factory', None)
    if isinstance(a, BaseException):
        return same(a.args, b.args) and same(a.__dict__, b.__dict__)
    if isinstance(a, datetime.datetime) or isinstance(a, datetime.time):
        return a == b and same(a.tzinfo, b.tzinfo) and getattr(a, 'fold', 0) == getattr(b, 'fold', 0)
    return a == b


def sharing_ok(name, v):
    """For the shared cases: the shared parts are still one object."""
    if name in ('shared_tuple', 'shared_dict'):
        return v[0] is v[1]
    if name == 'shared_record':
        return v['a'] is v['b'][0] is v['b'][1]
    if name == 'shared_five':
        return all(x is v[0] for x in v)
    return True
