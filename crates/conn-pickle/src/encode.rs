//! Writing pickles: the opcode writer shared by the [`Value`] encoder and the serde
//! serializer, and the [`Value`] encoder itself (iterative; shared values written once and
//! fetched from the memo afterwards, so sharing survives a round trip).

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::Error;
use crate::int::BigInt;
use crate::opcodes::*;
use crate::scratch;
use crate::value::{Date, Object, ObjectKind, Shared, Time, Value};

/// The pickle protocol written. Reading accepts 0–5 whatever this is.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Protocol 2: readable by Python 2.7 and every Python 3. `bytes` travel as
    /// `_codecs.encode(text, 'latin1')` calls, as CPython writes them.
    V2,
    /// Protocol 3: every Python 3.
    V3,
    /// Protocol 4 (default): CPython 3.8–3.13's own default, readable by Python 3.4 and later.
    #[default]
    V4,
    /// Protocol 5: Python 3.8 and later (`bytearray` as one opcode).
    V5,
}

impl Protocol {
    /// The protocol's number.
    pub fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
            Self::V4 => 4,
            Self::V5 => 5,
        }
    }
}

/// Appends opcodes for one protocol to a buffer.
pub(crate) struct Out<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
    pub(crate) proto: u8,
    memo_len: u32,
    /// Memoize as CPython's pickler does (every str, bytes, non-empty container, global and
    /// object), not only what is shared.
    memoize_all: bool,
    /// Struct field names written so far (their address and length, and their memo entry),
    /// so a name written again is a 2-byte `BINGET`, as CPython fetches a dict's repeated keys.
    names: [FieldName; FIELD_NAMES],
    names_len: usize,
    /// Where the next name is looked for first: after the last one found, since a struct's
    /// fields come in the same order every time.
    names_next: usize,
}

/// A memoized struct field name: where its text is, and its memo entry.
#[derive(Clone, Copy)]
struct FieldName {
    addr: usize,
    len: usize,
    index: u32,
}

/// How many distinct field names one message memoizes (a struct rarely has more; names past
/// these are written out each time).
const FIELD_NAMES: usize = 16;

impl<'a> Out<'a> {
    pub(crate) fn new(buf: &'a mut Vec<u8>, proto: Protocol) -> Self {
        let proto = proto.number();
        buf.extend_from_slice(&[PROTO, proto]);
        Self {
            buf,
            proto,
            memo_len: 0,
            memoize_all: false,
            names: [FieldName {
                addr: 0,
                len: 0,
                index: 0,
            }; FIELD_NAMES],
            names_len: 0,
            names_next: 0,
        }
    }

    /// A struct field name (a `&'static str`: the same address and length is the same text):
    /// the first time written and memoized, later fetched from the memo. The name expected
    /// next (the one after the last found, wrapping to the first) is tried before any search.
    #[inline(always)]
    pub(crate) fn field_name(&mut self, name: &'static str) -> Result<(), Error> {
        let next = self.names_next;
        if let Some(known) = self.names.get(next) {
            // An unused entry's address is 0, which no `&str` has.
            if known.addr == name.as_ptr() as usize && known.len == name.len() {
                self.name_found(next, known.index);
                return Ok(());
            }
        }
        self.field_name_searched(name)
    }

    /// A known name, the `at`th memoized with memo entry `index`: fetched, and the one after
    /// it (or the first, after the last) expected next.
    #[inline(always)]
    fn name_found(&mut self, at: usize, index: u32) {
        self.names_next = if at + 1 == self.names_len { 0 } else { at + 1 };
        self.get(index);
    }

    /// [`field_name`](Self::field_name) when the name is not the one expected next.
    #[inline(never)]
    fn field_name_searched(&mut self, name: &'static str) -> Result<(), Error> {
        let (addr, len) = (name.as_ptr() as usize, name.len());
        let known = &self.names[..self.names_len];
        if let Some(at) = known.iter().position(|n| n.addr == addr && n.len == len) {
            self.name_found(at, known[at].index);
            return Ok(());
        }
        self.str(name)?;
        if self.names_len < FIELD_NAMES {
            let index = self.memoize();
            self.names[self.names_len] = FieldName { addr, len, index };
            self.names_len += 1;
            self.names_next = self.names_len;
        }
        Ok(())
    }

    pub(crate) fn finish(self) {
        self.buf.push(STOP);
    }

    pub(crate) fn op(&mut self, op: u8) {
        self.buf.push(op);
    }

    pub(crate) fn none(&mut self) {
        self.buf.push(NONE);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.buf.push(if v { NEWTRUE } else { NEWFALSE });
    }

    #[inline(always)]
    pub(crate) fn int(&mut self, v: i64) {
        let Ok(v32) = i32::try_from(v) else {
            return self.long(BigInt::from_i128(v.into()).to_signed_le_bytes());
        };
        // The shortest of BININT1 / BININT2 / BININT, each written in one go.
        let [a, b, c, d] = v32.to_le_bytes();
        match v32 {
            0..=0xff => self.buf.extend_from_slice(&[BININT1, a]),
            0x100..=0xffff => self.buf.extend_from_slice(&[BININT2, a, b]),
            _ => self.buf.extend_from_slice(&[BININT, a, b, c, d]),
        }
    }

    pub(crate) fn long(&mut self, le: &[u8]) {
        if let Ok(n) = u8::try_from(le.len()) {
            self.buf.extend_from_slice(&[LONG1, n]);
        } else {
            self.buf.push(LONG4);
            self.buf
                .extend_from_slice(&(le.len() as u32 as i32).to_le_bytes());
        }
        self.buf.extend_from_slice(le);
    }

    #[inline(always)]
    pub(crate) fn float(&mut self, v: f64) {
        let b = v.to_be_bytes();
        self.buf
            .extend_from_slice(&[BINFLOAT, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }

    /// The opcode and length of a length-prefixed payload: `short` (1-byte length) when given
    /// and `n` fits, else `long` (4 bytes), else `huge` (8 bytes, protocol 4+), else `too_big`.
    fn sized(
        &mut self,
        n: usize,
        short: Option<u8>,
        long: u8,
        huge: u8,
        too_big: &str,
    ) -> Result<(), Error> {
        match (short, u8::try_from(n), u32::try_from(n)) {
            (Some(op), Ok(n), _) => self.buf.extend_from_slice(&[op, n]),
            (_, _, Ok(n)) => {
                self.buf.push(long);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            _ if self.proto >= 4 => {
                self.buf.push(huge);
                self.buf.extend_from_slice(&(n as u64).to_le_bytes());
            }
            _ => return Err(Error::Unpicklable(too_big.into())),
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn str(&mut self, s: &str) -> Result<(), Error> {
        let b = s.as_bytes();
        if let (true, Ok(n)) = (self.proto >= 4, u8::try_from(b.len())) {
            // The common short str: one reservation, the opcode, its length and the text.
            self.buf.reserve(2 + b.len());
            self.buf.extend_from_slice(&[SHORT_BINUNICODE, n]);
            self.buf.extend_from_slice(b);
            return Ok(());
        }
        let short = (self.proto >= 4).then_some(SHORT_BINUNICODE);
        self.sized(
            s.len(),
            short,
            BINUNICODE,
            BINUNICODE8,
            "a str over 4 GiB needs protocol 4",
        )?;
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), Error> {
        if self.proto < 3 {
            // What CPython writes for bytes under protocol 2.
            if b.is_empty() {
                self.global("builtins", "bytes")?;
                self.buf.extend_from_slice(&[EMPTY_TUPLE, REDUCE]);
            } else {
                self.global("_codecs", "encode")?;
                let text: String = b.iter().map(|&c| char::from(c)).collect();
                self.str(&text)?;
                self.str("latin1")?;
                self.buf.extend_from_slice(&[TUPLE2, REDUCE]);
            }
            return Ok(());
        }
        self.sized(
            b.len(),
            Some(SHORT_BINBYTES),
            BINBYTES,
            BINBYTES8,
            "bytes over 4 GiB need protocol 4",
        )?;
        self.buf.extend_from_slice(b);
        Ok(())
    }

    fn bytearray(&mut self, b: &[u8]) -> Result<(), Error> {
        if self.proto >= 5 {
            self.buf.push(BYTEARRAY8);
            self.buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
            self.buf.extend_from_slice(b);
            return Ok(());
        }
        self.global("builtins", "bytearray")?;
        if self.proto < 3 {
            let text: String = b.iter().map(|&c| char::from(c)).collect();
            self.str(&text)?;
            self.str("latin-1")?;
            self.buf.extend_from_slice(&[TUPLE2, REDUCE]);
        } else {
            self.bytes(b)?;
            self.buf.extend_from_slice(&[TUPLE1, REDUCE]);
        }
        Ok(())
    }

    fn legacy_str(&mut self, b: &[u8]) -> Result<(), Error> {
        if let Ok(n) = u8::try_from(b.len()) {
            self.buf.extend_from_slice(&[SHORT_BINSTRING, n]);
        } else if let Ok(n) = i32::try_from(b.len()) {
            self.buf.push(BINSTRING);
            self.buf.extend_from_slice(&n.to_le_bytes());
        } else {
            return Err(Error::Unpicklable(
                "a Python 2 str over 2 GiB cannot be pickled".into(),
            ));
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }

    pub(crate) fn global(&mut self, module: &str, name: &str) -> Result<(), Error> {
        let (module, name) = if self.proto < 3 {
            let written = py2_name(module, name);
            // A reader of protocols 0–2 maps Python 2 names to Python 3 ones (CPython's
            // `fix_imports`, and our decoder): a name it would map elsewhere (`__builtin__.x`,
            // `exceptions.x`, `builtins.unicode`) cannot be written faithfully.
            if crate::decode::py2_name(written.0, written.1) != (module, name) {
                return Err(Error::Unpicklable(format!(
                    "the global {module}.{name} reads back as another name under protocol {}; use protocol 3 or later",
                    self.proto
                )));
            }
            written
        } else {
            (module, name)
        };
        if self.proto >= 4 {
            self.str(module)?;
            self.memoize_if_all();
            self.str(name)?;
            self.memoize_if_all();
            self.buf.push(STACK_GLOBAL);
        } else {
            if module.contains('\n') || name.contains('\n') {
                return Err(Error::Unpicklable(
                    "a global name with a newline needs protocol 4".into(),
                ));
            }
            self.buf.push(GLOBAL);
            self.buf.extend_from_slice(module.as_bytes());
            self.buf.push(b'\n');
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.push(b'\n');
        }
        self.memoize_if_all();
        Ok(())
    }

    fn memoize_if_all(&mut self) {
        if self.memoize_all {
            self.memoize();
        }
    }

    /// Stores the top of the stack in the next memo slot; returns its index.
    fn memoize(&mut self) -> u32 {
        let index = self.memo_len;
        self.memo_len += 1;
        if self.proto >= 4 {
            self.buf.push(MEMOIZE);
        } else if let Ok(i) = u8::try_from(index) {
            self.buf.extend_from_slice(&[BINPUT, i]);
        } else {
            self.buf.push(LONG_BINPUT);
            self.buf.extend_from_slice(&index.to_le_bytes());
        }
        index
    }

    #[inline(always)]
    fn get(&mut self, index: u32) {
        if let Ok(i) = u8::try_from(index) {
            self.buf.extend_from_slice(&[BINGET, i]);
        } else {
            self.buf.push(LONG_BINGET);
            self.buf.extend_from_slice(&index.to_le_bytes());
        }
    }
}

/// Python 3 names as CPython writes them for protocols below 3, so Python 2 finds them.
fn py2_name<'s>(module: &'s str, name: &'s str) -> (&'s str, &'s str) {
    match (module, name) {
        ("builtins", "str") => ("__builtin__", "unicode"),
        ("builtins", "range") => ("__builtin__", "xrange"),
        ("builtins", n) => ("__builtin__", n),
        ("copyreg", n) => ("copy_reg", n),
        (m, n) => (m, n),
    }
}

enum Task<'v> {
    Value(&'v Value),
    Op(u8),
    /// Memoize the top of the stack as the value at this address.
    Memo(usize),
    Build,
}

/// Appends the pickle of `value` (protocol header to `STOP`) to `out`.
pub(crate) fn encode_value(value: &Value, proto: Protocol, out: &mut Vec<u8>) -> Result<(), Error> {
    encode_laid_out(value, proto, out, false)
}

/// Appends the pickle of `value` laid out as CPython's pickler lays it out: a memo entry for
/// every str, bytes, non-empty container, global (and its two names) and object, and, from
/// protocol 4, the opcodes after `PROTO` in one `FRAME`. For values whose parts appear once
/// each, below CPython's 64 KiB frame size, the bytes are CPython's own.
pub(crate) fn encode_value_like_cpython(
    value: &Value,
    proto: Protocol,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    encode_laid_out(value, proto, buf, true)
}

/// [`encode_value`], or with `like_cpython` [`encode_value_like_cpython`]; on error `buf` is
/// left as it was.
fn encode_laid_out(
    value: &Value,
    proto: Protocol,
    buf: &mut Vec<u8>,
    like_cpython: bool,
) -> Result<(), Error> {
    let start = buf.len();
    let mut out = Out::new(buf, proto);
    out.memoize_all = like_cpython;
    match write_value(&mut out, value) {
        Ok(()) => out.finish(),
        Err(e) => {
            buf.truncate(start);
            return Err(e);
        }
    }
    let body = buf.len() - start - 2;
    if like_cpython && proto >= Protocol::V4 && body >= 4 {
        let mut header = [FRAME; 9];
        header[1..].copy_from_slice(&(body as u64).to_le_bytes());
        buf.splice(start + 2..start + 2, header);
    }
    Ok(())
}

/// Memo indices of the values written so far, by [`shared_addr`].
type MemoMap = HashMap<usize, u32, BuildHasherDefault<AddrHasher>>;

/// Memoizes the value just written at its address, if it has one worth keeping
/// ([`shared_addr`]).
#[inline(always)]
fn remember(out: &mut Out<'_>, memo: &mut MemoMap, addr: Option<usize>) {
    if let Some(addr) = addr {
        let i = out.memoize();
        memo.insert(addr, i);
    }
}

thread_local! {
    /// The task stack between messages (see [`scratch`]): a small message then makes no
    /// allocation for it, a large one does not grow it again from nothing.
    static TASKS: Cell<Vec<Task<'static>>> = const { Cell::new(Vec::new()) };
}

/// Writes the opcodes that push `value` (no header, no `STOP`).
pub(crate) fn write_value(out: &mut Out<'_>, value: &Value) -> Result<(), Error> {
    let mut stack = scratch::take(&TASKS);
    stack.push(Task::Value(value));
    let written = run_tasks(out, &mut stack);
    scratch::give(&TASKS, stack);
    written
}

/// Runs the tasks on `stack` until none is left.
fn run_tasks<'v>(out: &mut Out<'_>, stack: &mut Vec<Task<'v>>) -> Result<(), Error> {
    let mut memo = MemoMap::default();
    while let Some(task) = stack.pop() {
        match task {
            Task::Op(op) => out.op(op),
            Task::Memo(addr) => remember(out, &mut memo, Some(addr)),
            Task::Build => out.op(BUILD),
            Task::Value(v) => {
                if is_leaf(v) {
                    write_leaf(out, &mut memo, v)?;
                    continue;
                }
                // A value met before is fetched from the memo.
                let addr = shared_addr(v, out.memoize_all);
                if let Some(addr) = addr {
                    if let Some(&i) = memo.get(&addr) {
                        out.get(i);
                        continue;
                    }
                }
                // A list (or, from protocol 4, a set) of plain scalars, the common list or set
                // of numbers, is written here in one go, without a task per item.
                let plain = match v {
                    Value::List(items) => Some((items, EMPTY_LIST, Some(APPEND), APPENDS)),
                    Value::Set(items) if out.proto >= 4 => Some((items, EMPTY_SET, None, ADDITEMS)),
                    _ => None,
                };
                if let Some((items, empty, single, batch)) = plain {
                    if items.iter().all(is_plain_scalar) {
                        out.op(empty);
                        remember(out, &mut memo, addr);
                        for chunk in items.chunks(BATCH) {
                            match (chunk, single) {
                                ([one], Some(op)) => {
                                    plain_scalar(out, one);
                                    out.op(op);
                                }
                                _ => {
                                    out.op(MARK);
                                    chunk.iter().for_each(|item| plain_scalar(out, item));
                                    out.op(batch);
                                }
                            }
                        }
                        continue;
                    }
                }
                value_tasks(v, addr, out, &mut memo, stack)?;
            }
        }
    }
    Ok(())
}

/// A value written whole in one step, with no task for anything inside it: a plain scalar,
/// text, bytes or a big int.
fn is_leaf(v: &Value) -> bool {
    matches!(
        v,
        Value::None
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::BigInt(_)
            | Value::Str(_)
            | Value::Bytes(_)
    )
}

/// Writes a value [`is_leaf`] accepts, as its `Task::Value` would: fetched from the memo if
/// met before, memoized after it if it is worth it.
#[inline(always)]
fn write_leaf(out: &mut Out<'_>, memo: &mut MemoMap, v: &Value) -> Result<(), Error> {
    let addr = match v {
        Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            plain_scalar(out, v);
            return Ok(());
        }
        Value::Str(s) => arc_addr(s, out.memoize_all),
        Value::Bytes(b) => arc_addr(b, out.memoize_all),
        _ => None,
    };
    if let Some(addr) = addr {
        if let Some(&i) = memo.get(&addr) {
            out.get(i);
            return Ok(());
        }
    }
    match v {
        Value::Str(s) => out.str(s)?,
        Value::Bytes(b) => out.bytes(b)?,
        Value::BigInt(b) => out.long(b.to_signed_le_bytes()),
        _ => {}
    }
    remember(out, memo, addr);
    Ok(())
}

/// An item of a list (`APPEND` / `APPENDS`) or an entry of a dict (`SETITEM` / `SETITEMS`),
/// as [`eager_batches`] writes them.
trait Entry {
    /// The opcodes closing a batch of one and a batch of more.
    const CLOSE: (u8, u8);
    fn is_leaf(&self) -> bool;
    fn write(&self, out: &mut Out<'_>, memo: &mut MemoMap) -> Result<(), Error>;
    fn push<'v>(&'v self, stack: &mut Vec<Task<'v>>);
}

impl Entry for Value {
    const CLOSE: (u8, u8) = (APPEND, APPENDS);
    fn is_leaf(&self) -> bool {
        is_leaf(self)
    }
    #[inline(always)]
    fn write(&self, out: &mut Out<'_>, memo: &mut MemoMap) -> Result<(), Error> {
        write_leaf(out, memo, self)
    }
    fn push<'v>(&'v self, stack: &mut Vec<Task<'v>>) {
        push_value(self, stack);
    }
}

impl Entry for (Value, Value) {
    const CLOSE: (u8, u8) = (SETITEM, SETITEMS);
    fn is_leaf(&self) -> bool {
        is_leaf(&self.0) && is_leaf(&self.1)
    }
    #[inline(always)]
    fn write(&self, out: &mut Out<'_>, memo: &mut MemoMap) -> Result<(), Error> {
        write_leaf(out, memo, &self.0)?;
        write_leaf(out, memo, &self.1)
    }
    fn push<'v>(&'v self, stack: &mut Vec<Task<'v>>) {
        push_pair(self, stack);
    }
}

/// The items of a list or the entries of a dict, in batches (`MARK items op`, or `item
/// single` for a batch of one), written here as long as they are leaves ([`is_leaf`]; a
/// dict's record of text and numbers is written in one go, with no task per key and value).
/// From the first item that is not, the rest is left to tasks on the stack.
fn eager_batches<'v, T: Entry>(
    out: &mut Out<'_>,
    memo: &mut MemoMap,
    stack: &mut Vec<Task<'v>>,
    items: &'v [T],
) -> Result<(), Error> {
    let (single, many) = T::CLOSE;
    for start in (0..items.len()).step_by(BATCH) {
        let end = items.len().min(start + BATCH);
        let chunk = &items[start..end];
        let close = if chunk.len() > 1 { many } else { single };
        let left = chunk.iter().position(|item| !item.is_leaf());
        let done = left.unwrap_or(chunk.len());
        if chunk.len() > 1 {
            out.op(MARK);
        }
        for item in &chunk[..done] {
            item.write(out, memo)?;
        }
        let Some(left) = left else {
            out.op(close);
            continue;
        };
        // The rest as tasks, run first to last: this batch's items from the first that is not
        // a leaf, its closing opcode, then the later batches.
        batched(stack, &items[end..], single, many, T::push);
        stack.push(Task::Op(close));
        for item in chunk[left..].iter().rev() {
            item.push(stack);
        }
        return Ok(());
    }
    Ok(())
}

/// `None`, a bool, an int that fits `i64` or a float: written in place, never memoized.
fn is_plain_scalar(v: &Value) -> bool {
    matches!(
        v,
        Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_)
    )
}

/// Writes a value [`is_plain_scalar`] accepts.
#[inline(always)]
fn plain_scalar(out: &mut Out<'_>, v: &Value) {
    match v {
        Value::None => out.none(),
        Value::Bool(b) => out.bool(*b),
        Value::Int(i) => out.int(*i),
        Value::Float(f) => out.float(*f),
        _ => {}
    }
}

/// The identity of a value worth memoizing: a container or text some other handle also holds
/// (or, with `all`, any one but the empty tuple, as CPython).
#[inline]
fn shared_addr(v: &Value, all: bool) -> Option<usize> {
    // A container no other handle holds cannot be met again: no memo entry (and no lookup).
    fn s<T: crate::value::Nested>(x: &Shared<T>, all: bool) -> Option<usize> {
        (all || x.is_shared()).then(|| x.addr())
    }
    match v {
        // CPython never memoizes `()`.
        Value::Tuple(x) if x.is_empty() => None,
        Value::List(x) | Value::Tuple(x) | Value::Set(x) | Value::FrozenSet(x) => s(x, all),
        Value::Dict(x) | Value::OrderedDict(x) => s(x, all),
        Value::Object(x) => s(x, all),
        Value::DateTime(x) => s(x, all),
        Value::Time(x) => s(x, all),
        Value::Str(x) => arc_addr(x, all),
        Value::Bytes(x) => arc_addr(x, all),
        _ => None,
    }
}

/// The identity of text or bytes worth memoizing: another handle holds it too (or `all`).
#[inline(always)]
fn arc_addr<T: ?Sized>(x: &std::sync::Arc<T>, all: bool) -> Option<usize> {
    (all || std::sync::Arc::strong_count(x) > 1)
        .then(|| std::sync::Arc::as_ptr(x).cast::<u8>() as usize)
}

/// Hashes the memo's keys, addresses of this process's own allocations (no peer chooses them,
/// so no flooding to fear): one multiplication instead of SipHash's rounds.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn finish(&self) -> u64 {
        // The high bits are the mixed ones; hashbrown takes its control bits from the top.
        self.0.rotate_left(26)
    }
}

/// Pushes tasks writing `items` in batches: `MARK items op`, or `item single` for one.
fn batched<'v, T>(
    stack: &mut Vec<Task<'v>>,
    items: &'v [T],
    single: u8,
    many: u8,
    each: impl Fn(&'v T, &mut Vec<Task<'v>>),
) {
    // The batches from the last: the stack runs them first to last.
    for start in (0..items.len()).step_by(BATCH).rev() {
        let chunk = &items[start..items.len().min(start + BATCH)];
        if chunk.len() == 1 {
            stack.push(Task::Op(single));
            each(&chunk[0], stack);
        } else {
            stack.push(Task::Op(many));
            for item in chunk.iter().rev() {
                each(item, stack);
            }
            stack.push(Task::Op(MARK));
        }
    }
}

fn push_value<'v>(v: &'v Value, stack: &mut Vec<Task<'v>>) {
    stack.push(Task::Value(v));
}

fn push_pair<'v>((k, v): &'v (Value, Value), stack: &mut Vec<Task<'v>>) {
    stack.push(Task::Value(v));
    stack.push(Task::Value(k));
}

/// Writes `v`, or pushes the tasks that will; `addr` is its [`shared_addr`].
#[inline(always)]
fn value_tasks<'v>(
    v: &'v Value,
    addr: Option<usize>,
    out: &mut Out<'_>,
    memo: &mut MemoMap,
    stack: &mut Vec<Task<'v>>,
) -> Result<(), Error> {
    match v {
        Value::None => out.none(),
        Value::Bool(b) => out.bool(*b),
        Value::Int(i) => out.int(*i),
        Value::BigInt(b) => out.long(b.to_signed_le_bytes()),
        Value::Float(f) => out.float(*f),
        Value::Complex(c) => {
            out.global("builtins", "complex")?;
            out.float(c.re);
            out.float(c.im);
            out.buf.extend_from_slice(&[TUPLE2, REDUCE]);
        }
        Value::Str(s) => {
            out.str(s)?;
            if let Some(addr) = addr {
                stack.push(Task::Memo(addr));
            }
        }
        Value::Bytes(b) => {
            out.bytes(b)?;
            if let Some(addr) = addr {
                stack.push(Task::Memo(addr));
            }
        }
        Value::ByteArray(b) => out.bytearray(b)?,
        Value::LegacyStr(b) => out.legacy_str(b)?,
        Value::List(items) => {
            out.op(EMPTY_LIST);
            remember(out, memo, addr);
            eager_batches(out, memo, stack, items)?;
        }
        Value::Tuple(items) if (1..=3).contains(&items.len()) && items.iter().all(is_leaf) => {
            // A short tuple of leaves, in one go: its items, its opcode, its memo entry.
            for item in items.iter() {
                write_leaf(out, memo, item)?;
            }
            out.op(TUPLE1 + items.len() as u8 - 1);
            remember(out, memo, addr);
        }
        Value::Tuple(items) => {
            stack.extend(addr.map(Task::Memo));
            match items.len() {
                0 => stack.push(Task::Op(EMPTY_TUPLE)),
                n @ 1..=3 => {
                    stack.push(Task::Op(TUPLE1 + n as u8 - 1));
                    for item in items.iter().rev() {
                        stack.push(Task::Value(item));
                    }
                }
                _ => {
                    stack.push(Task::Op(TUPLE));
                    for item in items.iter().rev() {
                        stack.push(Task::Value(item));
                    }
                    stack.push(Task::Op(MARK));
                }
            }
        }
        Value::Dict(items) => {
            out.op(EMPTY_DICT);
            remember(out, memo, addr);
            eager_batches(out, memo, stack, items)?;
        }
        Value::OrderedDict(items) => {
            out.global("collections", "OrderedDict")?;
            out.buf.extend_from_slice(&[EMPTY_TUPLE, REDUCE]);
            batched(stack, items, SETITEM, SETITEMS, push_pair);
            stack.extend(addr.map(Task::Memo));
        }
        Value::Set(items) | Value::FrozenSet(items) if out.proto >= 4 => {
            if matches!(v, Value::Set(_)) {
                out.op(EMPTY_SET);
                for start in (0..items.len()).step_by(BATCH).rev() {
                    let chunk = &items[start..items.len().min(start + BATCH)];
                    stack.push(Task::Op(ADDITEMS));
                    for item in chunk.iter().rev() {
                        stack.push(Task::Value(item));
                    }
                    stack.push(Task::Op(MARK));
                }
                stack.extend(addr.map(Task::Memo));
            } else {
                stack.extend(addr.map(Task::Memo));
                stack.push(Task::Op(FROZENSET));
                for item in items.iter().rev() {
                    stack.push(Task::Value(item));
                }
                stack.push(Task::Op(MARK));
            }
        }
        Value::Set(items) | Value::FrozenSet(items) => {
            let name = if matches!(v, Value::Set(_)) {
                "set"
            } else {
                "frozenset"
            };
            out.global("builtins", name)?;
            stack.extend(addr.map(Task::Memo));
            stack.push(Task::Op(REDUCE));
            stack.push(Task::Op(TUPLE1));
            batched(stack, items, APPEND, APPENDS, push_value);
            stack.push(Task::Op(EMPTY_LIST));
        }
        Value::Date(d) => {
            out.global("datetime", "date")?;
            out.bytes(&date_state(d))?;
            out.buf.extend_from_slice(&[TUPLE1, REDUCE]);
        }
        Value::Time(t) => {
            out.global("datetime", "time")?;
            let mut state = time_state(t);
            // `fold` rides on the hour's high bit, from protocol 4 on (as CPython writes it).
            state[0] |= fold_bit(t, out.proto);
            out.bytes(&state)?;
            stack.extend(addr.map(Task::Memo));
            tz_tail(t.tzinfo(), stack);
        }
        Value::DateTime(dt) => {
            out.global("datetime", "datetime")?;
            let (d, t) = (dt.date(), dt.time());
            let mut state = [0u8; 10];
            state[..4].copy_from_slice(&date_state(&d));
            state[4..].copy_from_slice(&time_state(t));
            // For a datetime, `fold` rides on the month's high bit.
            state[2] |= fold_bit(t, out.proto);
            out.bytes(&state)?;
            stack.extend(addr.map(Task::Memo));
            tz_tail(t.tzinfo(), stack);
        }
        Value::TimeDelta(td) => {
            out.global("datetime", "timedelta")?;
            out.int(td.days().into());
            out.int(td.seconds().into());
            out.int(td.microseconds().into());
            out.buf.extend_from_slice(&[TUPLE3, REDUCE]);
        }
        Value::TimeZone(tz) => {
            out.global("datetime", "timezone")?;
            out.global("datetime", "timedelta")?;
            let o = tz.offset();
            out.int(o.days().into());
            out.int(o.seconds().into());
            out.int(o.microseconds().into());
            out.buf.extend_from_slice(&[TUPLE3, REDUCE]);
            match tz.name() {
                Some(name) => {
                    out.str(name)?;
                    out.buf.extend_from_slice(&[TUPLE2, REDUCE]);
                }
                None => out.buf.extend_from_slice(&[TUPLE1, REDUCE]),
            }
        }
        Value::Decimal(d) => {
            out.global("decimal", "Decimal")?;
            out.str(d)?;
            out.buf.extend_from_slice(&[TUPLE1, REDUCE]);
        }
        Value::Uuid(u) => {
            out.global("uuid", "UUID")?;
            out.buf
                .extend_from_slice(&[EMPTY_TUPLE, NEWOBJ, EMPTY_DICT]);
            out.str("int")?;
            let n = BigInt::from_u128(u128::from_be_bytes(*u));
            out.long(n.to_signed_le_bytes());
            out.buf.extend_from_slice(&[SETITEM, BUILD]);
        }
        Value::Global(g) => out.global(g.module(), g.name())?,
        Value::Object(o) => object_tasks(o, addr, out, stack)?,
    }
    Ok(())
}

/// `datetime.date`'s pickled state: year (big-endian), month, day.
fn date_state(d: &Date) -> [u8; 4] {
    let [yhi, ylo] = d.year().to_be_bytes();
    [yhi, ylo, d.month(), d.day()]
}

/// `datetime.time`'s pickled state without `fold`: hour, minute, second, microsecond
/// (3 bytes, big-endian).
fn time_state(t: &Time) -> [u8; 6] {
    let [_, u1, u2, u3] = t.microsecond().to_be_bytes();
    [t.hour(), t.minute(), t.second(), u1, u2, u3]
}

/// The high bit carrying `fold`, which only protocols 4 and above write.
fn fold_bit(t: &Time, proto: u8) -> u8 {
    if t.fold() && proto >= 4 { 0x80 } else { 0 }
}

fn tz_tail<'v>(tz: Option<&'v Value>, stack: &mut Vec<Task<'v>>) {
    // Tasks run in reverse push order: [tz] TUPLEn REDUCE.
    stack.push(Task::Op(REDUCE));
    match tz {
        Some(tz) => {
            stack.push(Task::Op(TUPLE2));
            stack.push(Task::Value(tz));
        }
        None => stack.push(Task::Op(TUPLE1)),
    }
}

fn object_tasks<'v>(
    o: &'v Object,
    addr: Option<usize>,
    out: &mut Out<'_>,
    stack: &mut Vec<Task<'v>>,
) -> Result<(), Error> {
    if o.kwargs().is_some() && out.proto < 4 {
        return Err(Error::Unpicklable(
            "an object built with keyword arguments (NEWOBJ_EX) needs protocol 4".into(),
        ));
    }
    // Reverse order of: callable args [kwargs] REDUCE|NEWOBJ|NEWOBJ_EX memo items entries
    // [state BUILD].
    if let Some(state) = o.state() {
        stack.push(Task::Build);
        stack.push(Task::Value(state));
    }
    batched(stack, o.dict_items(), SETITEM, SETITEMS, push_pair);
    batched(stack, o.list_items(), APPEND, APPENDS, push_value);
    stack.extend(addr.map(Task::Memo));
    match (o.kind(), o.kwargs()) {
        (ObjectKind::New, Some(kwargs)) => {
            stack.push(Task::Op(NEWOBJ_EX));
            stack.push(Task::Value(kwargs));
        }
        (ObjectKind::New, None) => stack.push(Task::Op(NEWOBJ)),
        _ => stack.push(Task::Op(REDUCE)),
    }
    stack.push(Task::Value(o.args()));
    stack.push(Task::Value(o.callable()));
    Ok(())
}
