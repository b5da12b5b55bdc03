//! `Value`: every Python value a pickle can carry, inert. Builtins and the common stdlib types
//! are native variants; anything else is a [`Global`] reference or an [`Object`] built from one,
//! kept with all its data so it can be sent back unchanged. Containers are shared ([`Shared`]):
//! a value referenced twice in a pickle is one allocation here, and is written once again.
//!
//! Dropping, comparing and printing never recurse on nesting.

use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::int::BigInt;

/// A shared, immutable-unless-unique container: an `Arc` whose drop takes nested values apart
/// with an explicit stack, so a value nested 100 000 deep drops without deep recursion.
pub struct Shared<T: Nested>(Arc<T>);

/// Types holding values, so [`Shared`] can take them apart on drop. Implemented by the
/// container payloads of [`Value`]; not meant for other types.
pub trait Nested {
    /// Takes apart what it holds: each directly held value that may hold others moves into
    /// `out`, and the rest may be dropped in place.
    fn take_children(&mut self, out: &mut Vec<Value>);

    /// Whether it holds no value that holds others, so dropping it in place cannot recurse
    /// (an emptied container, a time without `tzinfo`): its [`Shared`] then drops with no
    /// stack and no uniqueness check. `false` (the default) is always safe.
    fn holds_no_nesting(&self) -> bool {
        false
    }
}

impl<T: Nested> Shared<T> {
    /// Wraps a payload.
    pub fn new(inner: T) -> Self {
        Self(Arc::new(inner))
    }

    /// A mutable reference, cloning the payload first if it is shared (`Arc::make_mut`).
    pub fn make_mut(&mut self) -> &mut T
    where
        T: Clone,
    {
        Arc::make_mut(&mut self.0)
    }

    /// The payload, if this is its only handle.
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        Arc::get_mut(&mut self.0)
    }

    /// Whether two handles share one payload (Python's `is`).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0) as *const u8 as usize
    }

    /// Whether another handle holds the same payload.
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

impl<T: Nested> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: Nested> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Nested> From<T> for Shared<T> {
    fn from(inner: T) -> Self {
        Self::new(inner)
    }
}

impl<T: Nested> Drop for Shared<T> {
    fn drop(&mut self) {
        // Containers taken apart by the loop below come back here emptied: nothing to do, and
        // no atomic uniqueness check for it.
        if self.0.holds_no_nesting() {
            return;
        }
        let Some(inner) = Arc::get_mut(&mut self.0) else {
            return;
        };
        let mut stack = Vec::new();
        inner.take_children(&mut stack);
        while let Some(mut v) = stack.pop() {
            v.take_children(&mut stack);
            // `v` now holds no nested values: dropping it does not recurse.
        }
    }
}

impl Nested for Vec<Value> {
    fn take_children(&mut self, out: &mut Vec<Value>) {
        // One pass: the containers among the items move to the explicit stack, the rest drop
        // here without recursing, and the vector is left empty.
        for item in std::mem::take(self) {
            item.keep_nested(out);
        }
    }

    fn holds_no_nesting(&self) -> bool {
        self.is_empty()
    }
}

impl Nested for Vec<(Value, Value)> {
    fn take_children(&mut self, out: &mut Vec<Value>) {
        for (k, v) in std::mem::take(self) {
            k.keep_nested(out);
            v.keep_nested(out);
        }
    }

    fn holds_no_nesting(&self) -> bool {
        self.is_empty()
    }
}

impl Value {
    /// Moves it to `out` if it holds values; drops it here otherwise (which cannot recurse).
    #[inline(always)]
    fn keep_nested(self, out: &mut Vec<Self>) {
        match self {
            _ if self.holds_values() => out.push(self),
            // Nothing to free: skipping the call to the drop glue halves the cost of dropping
            // a list of numbers.
            Self::None | Self::Bool(_) | Self::Int(_) | Self::Float(_) | Self::Complex(_) => {
                std::mem::forget(self);
            }
            _ => {}
        }
    }

    /// Whether dropping it may drop other values (a container, a time with its tzinfo, an
    /// object): what [`Shared`]'s drop must take apart with its stack rather than in place.
    fn holds_values(&self) -> bool {
        matches!(
            self,
            Self::List(_)
                | Self::Tuple(_)
                | Self::Set(_)
                | Self::FrozenSet(_)
                | Self::Dict(_)
                | Self::OrderedDict(_)
                | Self::Time(_)
                | Self::DateTime(_)
                | Self::Object(_)
        )
    }
}

/// A Python value, as a pickle describes it. Nothing in it ever runs.
///
/// `Display` prints Python's `repr()` of the value; `Debug` prints the same. Equality is
/// structural (`NaN` equals `NaN`; shared containers compare by identity first).
#[non_exhaustive]
#[derive(Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` within `i64`.
    Int(i64),
    /// `int` beyond `i64`.
    BigInt(BigInt),
    /// `float`.
    Float(f64),
    /// `complex`.
    Complex(Complex),
    /// `str`.
    Str(Arc<str>),
    /// `bytes`.
    Bytes(Arc<[u8]>),
    /// `bytearray`.
    ByteArray(Arc<[u8]>),
    /// A Python 2 `str` (8-bit; protocols 0–2 `STRING` opcodes), kept as its bytes and written
    /// back as one.
    LegacyStr(Arc<[u8]>),
    /// `list`.
    List(Shared<Vec<Self>>),
    /// `tuple`.
    Tuple(Shared<Vec<Self>>),
    /// `dict`: entries in insertion order, keys of any type.
    Dict(Shared<Vec<(Self, Self)>>),
    /// `set`, in wire order.
    Set(Shared<Vec<Self>>),
    /// `frozenset`, in wire order.
    FrozenSet(Shared<Vec<Self>>),
    /// `collections.OrderedDict`.
    OrderedDict(Shared<Vec<(Self, Self)>>),
    /// `datetime.date`.
    Date(Date),
    /// `datetime.time`.
    Time(Shared<Time>),
    /// `datetime.datetime`.
    DateTime(Shared<DateTime>),
    /// `datetime.timedelta`.
    TimeDelta(TimeDelta),
    /// `datetime.timezone`.
    TimeZone(Shared<TimeZone>),
    /// `decimal.Decimal`, as its text (`'1.10'`, `'-Infinity'`, `'NaN'`).
    Decimal(Arc<str>),
    /// `uuid.UUID`, big-endian bytes.
    Uuid([u8; 16]),
    /// A reference to a module attribute: a class, function or other global
    /// (`pickle.dumps(float)`), never looked up.
    Global(Shared<Global>),
    /// Any other object: what its class said to call to rebuild it, with which arguments, and
    /// the state and items applied afterwards. Enum members, exceptions, dataclasses…
    Object(Shared<Object>),
}

impl Nested for Value {
    fn take_children(&mut self, out: &mut Vec<Value>) {
        match self {
            // Taking the items apart empties the container, so its own drop finds nothing to
            // scan again.
            Self::List(s) | Self::Tuple(s) | Self::Set(s) | Self::FrozenSet(s) => {
                if let Some(inner) = Arc::get_mut(&mut s.0) {
                    inner.take_children(out);
                }
            }
            Self::Dict(s) | Self::OrderedDict(s) => {
                if let Some(inner) = Arc::get_mut(&mut s.0) {
                    inner.take_children(out);
                }
            }
            Self::Time(s) => {
                if let Some(inner) = Arc::get_mut(&mut s.0) {
                    inner.take_children(out);
                }
            }
            Self::DateTime(s) => {
                if let Some(inner) = Arc::get_mut(&mut s.0) {
                    inner.time.take_children(out);
                }
            }
            Self::TimeZone(_) | Self::Global(_) => {}
            Self::Object(s) => {
                if let Some(inner) = Arc::get_mut(&mut s.0) {
                    inner.take_children(out);
                }
            }
            _ => {}
        }
    }
}

/// A `complex` number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Complex {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

/// A `datetime.date`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// A date, or `None` outside Python's range (years 1–9999, real days).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        ((1..=9999).contains(&year) && day >= 1 && day <= days_in_month(year, month))
            .then_some(Self { year, month, day })
    }
    /// Year (1–9999).
    pub fn year(&self) -> u16 {
        self.year
    }
    /// Month (1–12).
    pub fn month(&self) -> u8 {
        self.month
    }
    /// Day of the month.
    pub fn day(&self) -> u8 {
        self.day
    }
}

/// A `datetime.time`, with its `tzinfo` (any value: usually a [`Value::TimeZone`], or an
/// inert object such as a `zoneinfo.ZoneInfo`) and `fold`.
#[derive(Clone, Debug, PartialEq)]
pub struct Time {
    hour: u8,
    minute: u8,
    second: u8,
    microsecond: u32,
    fold: bool,
    tzinfo: Option<Value>,
}

impl Nested for Time {
    fn take_children(&mut self, out: &mut Vec<Value>) {
        out.extend(self.tzinfo.take());
    }

    fn holds_no_nesting(&self) -> bool {
        self.tzinfo.is_none()
    }
}

impl Time {
    /// A naive time, or `None` if a field is out of range.
    pub fn new(hour: u8, minute: u8, second: u8, microsecond: u32) -> Option<Self> {
        (hour < 24 && minute < 60 && second < 60 && microsecond < 1_000_000)
            .then(|| Self::from_checked(hour, minute, second, microsecond))
    }
    /// Fields already checked by the decoder.
    pub(crate) fn from_checked(hour: u8, minute: u8, second: u8, microsecond: u32) -> Self {
        Self {
            hour,
            minute,
            second,
            microsecond,
            fold: false,
            tzinfo: None,
        }
    }
    /// With a `tzinfo`.
    pub fn with_tzinfo(mut self, tzinfo: Option<Value>) -> Self {
        self.tzinfo = tzinfo;
        self
    }
    /// With `fold` (written only by protocol 4 and above, as CPython does).
    pub fn with_fold(mut self, fold: bool) -> Self {
        self.fold = fold;
        self
    }
    /// Hour.
    pub fn hour(&self) -> u8 {
        self.hour
    }
    /// Minute.
    pub fn minute(&self) -> u8 {
        self.minute
    }
    /// Second.
    pub fn second(&self) -> u8 {
        self.second
    }
    /// Microsecond.
    pub fn microsecond(&self) -> u32 {
        self.microsecond
    }
    /// `fold`.
    pub fn fold(&self) -> bool {
        self.fold
    }
    /// `tzinfo`, `None` when naive.
    pub fn tzinfo(&self) -> Option<&Value> {
        self.tzinfo.as_ref()
    }
}

/// A `datetime.datetime`: a date and a time (with the time's `tzinfo` and `fold`).
#[derive(Clone, Debug, PartialEq)]
pub struct DateTime {
    date: Date,
    time: Time,
}

impl Nested for DateTime {
    fn take_children(&mut self, out: &mut Vec<Value>) {
        self.time.take_children(out);
    }

    fn holds_no_nesting(&self) -> bool {
        self.time.holds_no_nesting()
    }
}

impl DateTime {
    /// A datetime from its date and time parts.
    pub fn new(date: Date, time: Time) -> Self {
        Self { date, time }
    }
    /// The date part.
    pub fn date(&self) -> Date {
        self.date
    }
    /// The time part, `tzinfo` and `fold` included.
    pub fn time(&self) -> &Time {
        &self.time
    }
}

/// A `datetime.timedelta`, normalized as Python normalizes it: `0 <= seconds < 86400`,
/// `0 <= microseconds < 10**6`, `|days| <= 999999999`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TimeDelta {
    days: i32,
    seconds: i32,
    microseconds: i32,
}

impl TimeDelta {
    /// Normalizes as `datetime.timedelta(days, seconds, microseconds)` does; `None` outside
    /// Python's range.
    pub fn new(days: i64, seconds: i64, microseconds: i64) -> Option<Self> {
        let total = i128::from(days) * 86_400_000_000
            + i128::from(seconds) * 1_000_000
            + i128::from(microseconds);
        let day = 86_400_000_000i128;
        let d = total.div_euclid(day);
        let rest = total.rem_euclid(day);
        if d.abs() > 999_999_999 {
            return None;
        }
        Some(Self {
            days: d as i32,
            seconds: (rest / 1_000_000) as i32,
            microseconds: (rest % 1_000_000) as i32,
        })
    }
    /// Days.
    pub fn days(&self) -> i32 {
        self.days
    }
    /// Seconds (0–86399).
    pub fn seconds(&self) -> i32 {
        self.seconds
    }
    /// Microseconds (0–999999).
    pub fn microseconds(&self) -> i32 {
        self.microseconds
    }
    /// The whole span in microseconds (up to about 8.6e19: beyond `i64`).
    pub fn total_microseconds(&self) -> i128 {
        (i128::from(self.days) * 86_400 + i128::from(self.seconds)) * 1_000_000
            + i128::from(self.microseconds)
    }
}

/// A `datetime.timezone`: a fixed offset and an optional name.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeZone {
    offset: TimeDelta,
    name: Option<Arc<str>>,
}

impl Nested for TimeZone {
    fn take_children(&mut self, _: &mut Vec<Value>) {}

    fn holds_no_nesting(&self) -> bool {
        true
    }
}

impl TimeZone {
    /// A timezone; `None` unless `-24h < offset < 24h`, as Python requires.
    pub fn new(offset: TimeDelta, name: Option<&str>) -> Option<Self> {
        (offset.total_microseconds().abs() < 86_400_000_000).then(|| Self {
            offset,
            name: name.map(Into::into),
        })
    }
    /// `datetime.timezone.utc`.
    pub fn utc() -> Self {
        Self {
            offset: TimeDelta::default(),
            name: None,
        }
    }
    /// The offset from UTC.
    pub fn offset(&self) -> TimeDelta {
        self.offset
    }
    /// The name given at construction, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// A global: `module.name`, as `GLOBAL` / `STACK_GLOBAL` name it. Python 2 module names
/// (`__builtin__`, `exceptions`, `copy_reg`) are read as their Python 3 names, as CPython does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Global {
    module: Arc<str>,
    name: Arc<str>,
}

impl Nested for Global {
    fn take_children(&mut self, _: &mut Vec<Value>) {}

    fn holds_no_nesting(&self) -> bool {
        true
    }
}

impl Global {
    /// `module.name`.
    pub fn new(module: &str, name: &str) -> Self {
        Self {
            module: module.into(),
            name: name.into(),
        }
    }
    /// The module (`"builtins"`, `"collections"`…).
    pub fn module(&self) -> &str {
        &self.module
    }
    /// The qualified name within the module (`"float"`, `"Outer.Inner"`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How an [`Object`] is rebuilt.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `callable(*args)` (`REDUCE`; also `INST` / `OBJ` and `copyreg._reconstructor`).
    Reduce,
    /// `cls.__new__(cls, *args)` (`NEWOBJ`), or with keyword arguments (`NEWOBJ_EX`) when
    /// [`Object::kwargs`] is set.
    New,
}

/// An object Python would rebuild by a call, kept inert: the callable (usually a
/// [`Value::Global`]), its arguments, and what was applied after: `BUILD`'s state, `APPENDS`'
/// items, `SETITEMS`' entries, in that order when written back.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    kind: ObjectKind,
    callable: Value,
    args: Value,
    kwargs: Option<Value>,
    state: Option<Value>,
    list_items: Vec<Value>,
    dict_items: Vec<(Value, Value)>,
}

impl Nested for Object {
    fn take_children(&mut self, out: &mut Vec<Value>) {
        out.push(std::mem::replace(&mut self.callable, Value::None));
        out.push(std::mem::replace(&mut self.args, Value::None));
        out.extend(self.kwargs.take());
        out.extend(self.state.take());
        out.append(&mut self.list_items);
        self.dict_items.take_children(out);
    }
}

impl Object {
    /// `callable(*args)`; `args` should be a tuple.
    pub fn reduce(callable: Value, args: Value) -> Self {
        Self::with_kind(ObjectKind::Reduce, callable, args)
    }

    /// `cls.__new__(cls, *args)`; `args` should be a tuple.
    pub fn new_obj(class: Value, args: Value) -> Self {
        Self::with_kind(ObjectKind::New, class, args)
    }

    fn with_kind(kind: ObjectKind, callable: Value, args: Value) -> Self {
        Self {
            kind,
            callable,
            args,
            kwargs: None,
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        }
    }

    /// With keyword arguments for `__new__` (a dict; makes it `NEWOBJ_EX`, protocol 4+).
    pub fn with_kwargs(mut self, kwargs: Option<Value>) -> Self {
        self.kwargs = kwargs;
        self
    }
    /// With the state `BUILD` applies (`__setstate__` or `__dict__` update).
    pub fn with_state(mut self, state: Option<Value>) -> Self {
        self.state = state;
        self
    }
    /// With items appended after construction.
    pub fn with_list_items(mut self, items: Vec<Value>) -> Self {
        self.list_items = items;
        self
    }
    /// With entries set after construction.
    pub fn with_dict_items(mut self, items: Vec<(Value, Value)>) -> Self {
        self.dict_items = items;
        self
    }

    /// How it is rebuilt.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }
    /// What is called (or whose `__new__` is).
    pub fn callable(&self) -> &Value {
        &self.callable
    }
    /// The positional arguments.
    pub fn args(&self) -> &Value {
        &self.args
    }
    /// Keyword arguments of `NEWOBJ_EX`.
    pub fn kwargs(&self) -> Option<&Value> {
        self.kwargs.as_ref()
    }
    /// The state set by `BUILD`.
    pub fn state(&self) -> Option<&Value> {
        self.state.as_ref()
    }
    /// Items appended after construction.
    pub fn list_items(&self) -> &[Value] {
        &self.list_items
    }
    /// Entries set after construction.
    pub fn dict_items(&self) -> &[(Value, Value)] {
        &self.dict_items
    }
    /// The callable's global name, when it is one (the class of most objects).
    pub fn class(&self) -> Option<&Global> {
        match &self.callable {
            Value::Global(g) => Some(g),
            _ => None,
        }
    }
    /// `args` as a slice, when it is a tuple (an exception's `args`, an enum's value…).
    pub fn args_slice(&self) -> &[Value] {
        match &self.args {
            Value::Tuple(t) => t,
            _ => &[],
        }
    }
}

impl Value {
    /// A `list`.
    pub fn list(items: Vec<Self>) -> Self {
        Self::List(Shared::new(items))
    }
    /// A `tuple`.
    pub fn tuple(items: Vec<Self>) -> Self {
        Self::Tuple(Shared::new(items))
    }
    /// A `dict`.
    pub fn dict(entries: Vec<(Self, Self)>) -> Self {
        Self::Dict(Shared::new(entries))
    }
    /// A `set`.
    pub fn set(items: Vec<Self>) -> Self {
        Self::Set(Shared::new(items))
    }
    /// A `str`.
    pub fn str(s: &str) -> Self {
        Self::Str(s.into())
    }
    /// A `bytes`.
    pub fn bytes(b: &[u8]) -> Self {
        Self::Bytes(b.into())
    }
    /// A global `module.name`.
    pub fn global(module: &str, name: &str) -> Self {
        Self::Global(Shared::new(Global::new(module, name)))
    }
    /// An inert object.
    pub fn object(object: Object) -> Self {
        Self::Object(Shared::new(object))
    }

    /// Whether it is `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
    /// The `bool`, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The `int` as `i64`, if it is one that fits (`bool` is not taken as an int).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::BigInt(b) => b.to_i64(),
            _ => None,
        }
    }
    /// The `float`, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }
    /// The `str`, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The bytes of a `bytes`, `bytearray` or Python 2 `str`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) | Self::ByteArray(b) | Self::LegacyStr(b) => Some(b),
            _ => None,
        }
    }
    /// The items of a `list`, `tuple`, `set` or `frozenset`.
    pub fn as_items(&self) -> Option<&[Self]> {
        match self {
            Self::List(s) | Self::Tuple(s) | Self::Set(s) | Self::FrozenSet(s) => Some(s),
            _ => None,
        }
    }
    /// The entries of a `dict` or `OrderedDict`.
    pub fn as_entries(&self) -> Option<&[(Self, Self)]> {
        match self {
            Self::Dict(s) | Self::OrderedDict(s) => Some(s),
            _ => None,
        }
    }
    /// The object, if it is one.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Self::Object(o) => Some(o),
            _ => None,
        }
    }
    /// The value of the last entry whose key is the `str` `key`, in a dict.
    pub fn get(&self, key: &str) -> Option<&Self> {
        self.as_entries()?
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The Python type's name: `"int"`, `"datetime.datetime"`, an object's class as
    /// `module.name`…
    pub fn type_name(&self) -> String {
        let fixed = match self {
            Self::None => "NoneType",
            Self::Bool(_) => "bool",
            Self::Int(_) | Self::BigInt(_) => "int",
            Self::Float(_) => "float",
            Self::Complex(_) => "complex",
            Self::Str(_) => "str",
            Self::Bytes(_) => "bytes",
            Self::ByteArray(_) => "bytearray",
            Self::LegacyStr(_) => "str (Python 2)",
            Self::List(_) => "list",
            Self::Tuple(_) => "tuple",
            Self::Dict(_) => "dict",
            Self::Set(_) => "set",
            Self::FrozenSet(_) => "frozenset",
            Self::OrderedDict(_) => "collections.OrderedDict",
            Self::Date(_) => "datetime.date",
            Self::Time(_) => "datetime.time",
            Self::DateTime(_) => "datetime.datetime",
            Self::TimeDelta(_) => "datetime.timedelta",
            Self::TimeZone(_) => "datetime.timezone",
            Self::Decimal(_) => "decimal.Decimal",
            Self::Uuid(_) => "uuid.UUID",
            Self::Global(_) => "global",
            Self::Object(o) => {
                return match o.class() {
                    Some(g) => format!("{}.{}", g.module(), g.name()),
                    None => "object".into(),
                };
            }
        };
        fixed.into()
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        let mut stack: Vec<(&Self, &Self)> = vec![(self, other)];
        let mut pairs: Vec<(&Self, &Self)> = Vec::new();
        // Pairs of shared containers already being compared: any difference anywhere makes the
        // whole answer false, so each pair needs comparing once (a DAG costs its size, not the
        // size of its expansion).
        let mut seen: HashSet<(usize, usize)> = HashSet::new();
        while let Some((a, b)) = stack.pop() {
            pairs.clear();
            if let Some(pair) = shared_pair(a, b) {
                if !seen.insert(pair) {
                    continue;
                }
            }
            if !shallow_eq(a, b, &mut pairs) {
                return false;
            }
            stack.append(&mut pairs);
        }
        true
    }
}

/// The addresses of two containers of the same kind when either is shared.
fn shared_pair(a: &Value, b: &Value) -> Option<(usize, usize)> {
    fn pair<T: Nested>(x: &Shared<T>, y: &Shared<T>) -> Option<(usize, usize)> {
        (Arc::strong_count(&x.0) > 1 || Arc::strong_count(&y.0) > 1).then(|| (x.addr(), y.addr()))
    }
    match (a, b) {
        (Value::List(x), Value::List(y))
        | (Value::Tuple(x), Value::Tuple(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::FrozenSet(x), Value::FrozenSet(y)) => pair(x, y),
        (Value::Dict(x), Value::Dict(y)) | (Value::OrderedDict(x), Value::OrderedDict(y)) => {
            pair(x, y)
        }
        (Value::Object(x), Value::Object(y)) => pair(x, y),
        _ => None,
    }
}

/// Compares one level; pushes the pairs of nested values still to compare.
fn shallow_eq<'a>(a: &'a Value, b: &'a Value, out: &mut Vec<(&'a Value, &'a Value)>) -> bool {
    use Value as V;
    fn seq<'a>(x: &'a [Value], y: &'a [Value], out: &mut Vec<(&'a Value, &'a Value)>) -> bool {
        x.len() == y.len() && {
            out.extend(x.iter().zip(y));
            true
        }
    }
    fn map<'a>(
        x: &'a [(Value, Value)],
        y: &'a [(Value, Value)],
        out: &mut Vec<(&'a Value, &'a Value)>,
    ) -> bool {
        x.len() == y.len() && {
            for ((k1, v1), (k2, v2)) in x.iter().zip(y) {
                out.push((k1, k2));
                out.push((v1, v2));
            }
            true
        }
    }
    fn opt<'a>(
        x: &'a Option<Value>,
        y: &'a Option<Value>,
        out: &mut Vec<(&'a Value, &'a Value)>,
    ) -> bool {
        match (x, y) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                out.push((x, y));
                true
            }
            _ => false,
        }
    }
    fn time<'a>(x: &'a Time, y: &'a Time, out: &mut Vec<(&'a Value, &'a Value)>) -> bool {
        (x.hour, x.minute, x.second, x.microsecond, x.fold)
            == (y.hour, y.minute, y.second, y.microsecond, y.fold)
            && opt(&x.tzinfo, &y.tzinfo, out)
    }
    match (a, b) {
        (V::None, V::None) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Int(x), V::Int(y)) => x == y,
        (V::BigInt(x), V::BigInt(y)) => x == y,
        (V::Float(x), V::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (V::Complex(x), V::Complex(y)) => {
            (x.re == y.re || (x.re.is_nan() && y.re.is_nan()))
                && (x.im == y.im || (x.im.is_nan() && y.im.is_nan()))
        }
        (V::Str(x), V::Str(y)) | (V::Decimal(x), V::Decimal(y)) => x == y,
        (V::Bytes(x), V::Bytes(y))
        | (V::ByteArray(x), V::ByteArray(y))
        | (V::LegacyStr(x), V::LegacyStr(y)) => x == y,
        (V::List(x), V::List(y))
        | (V::Tuple(x), V::Tuple(y))
        | (V::Set(x), V::Set(y))
        | (V::FrozenSet(x), V::FrozenSet(y)) => Shared::ptr_eq(x, y) || seq(x, y, out),
        (V::Dict(x), V::Dict(y)) | (V::OrderedDict(x), V::OrderedDict(y)) => {
            Shared::ptr_eq(x, y) || map(x, y, out)
        }
        (V::Date(x), V::Date(y)) => x == y,
        (V::Time(x), V::Time(y)) => Shared::ptr_eq(x, y) || time(x, y, out),
        (V::DateTime(x), V::DateTime(y)) => {
            Shared::ptr_eq(x, y) || (x.date == y.date && time(&x.time, &y.time, out))
        }
        (V::TimeDelta(x), V::TimeDelta(y)) => x == y,
        (V::TimeZone(x), V::TimeZone(y)) => **x == **y,
        (V::Uuid(x), V::Uuid(y)) => x == y,
        (V::Global(x), V::Global(y)) => **x == **y,
        (V::Object(x), V::Object(y)) => {
            Shared::ptr_eq(x, y)
                || (x.kind == y.kind
                    && opt(&x.kwargs, &y.kwargs, out)
                    && opt(&x.state, &y.state, out)
                    && seq(&x.list_items, &y.list_items, out)
                    && map(&x.dict_items, &y.dict_items, out)
                    && {
                        out.push((&x.callable, &y.callable));
                        out.push((&x.args, &y.args));
                        true
                    })
        }
        _ => false,
    }
}

impl<T: Nested + PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Self::ptr_eq(self, other) || *self.0 == *other.0
    }
}

impl<T: Nested + fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Debug for Value {
    /// The same as `Display`: Python's `repr()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Self::Int(v.into())
    }
}
impl From<i128> for Value {
    fn from(v: i128) -> Self {
        match i64::try_from(v) {
            Ok(v) => Self::Int(v),
            Err(_) => Self::BigInt(BigInt::from_i128(v)),
        }
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Str(v.into())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Str(v.into())
    }
}
impl From<Vec<Self>> for Value {
    /// A `list`.
    fn from(v: Vec<Self>) -> Self {
        Self::list(v)
    }
}
impl<T: Into<Self>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::None, Into::into)
    }
}
