//! The unpickling machine: opcodes in, an arena of nodes out. No recursion, no code run, no
//! allocation sized by a claimed length. Known callables (`datetime`, `set`, `_codecs.encode`…)
//! are recognized where Python would call them and become native nodes; any other call becomes
//! an inert object node. Both [`Value`] conversion and the serde deserializer read the arena.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Limit};
use crate::int::BigInt;
use crate::limits::Limits;
use crate::opcodes::*;
use crate::value::{
    Complex, Date, DateTime, Global, Object, ObjectKind, Shared, Time, TimeDelta, TimeZone, Value,
};

/// One stack entry: a scalar inline, text borrowed from the input, or a node.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Valid UTF-8 at `input[start..start + len]`.
    Str(u32, u32),
    /// `bytes` at `input[start..start + len]`.
    Bytes(u32, u32),
    Node(u32),
}

/// Bytes of a node: borrowed from the input or owned.
#[derive(Debug)]
pub(crate) enum Src {
    Input(usize, usize),
    Owned(Vec<u8>),
}

impl Src {
    pub(crate) fn get<'a>(&'a self, input: &'a [u8]) -> &'a [u8] {
        match self {
            Self::Input(start, end) => &input[*start..*end],
            Self::Owned(v) => v,
        }
    }
    fn len(&self) -> usize {
        match self {
            Self::Input(start, end) => end - start,
            Self::Owned(v) => v.len(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct TimeParts {
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
    pub(crate) microsecond: u32,
    pub(crate) fold: bool,
    pub(crate) tz: Option<Slot>,
}

#[derive(Debug)]
pub(crate) struct ObjNode {
    pub(crate) kind: ObjectKind,
    pub(crate) callable: Slot,
    pub(crate) args: Slot,
    pub(crate) kwargs: Option<Slot>,
    pub(crate) state: Option<Slot>,
    pub(crate) list_items: Vec<Slot>,
    pub(crate) dict_items: Vec<(Slot, Slot)>,
}

#[derive(Debug)]
pub(crate) enum Node {
    /// UTF-8 text.
    Str(Src),
    Bytes(Src),
    ByteArray(Vec<u8>),
    LegacyStr(Src),
    BigInt(BigInt),
    List(Vec<Slot>),
    Tuple(Vec<Slot>),
    Dict(Vec<(Slot, Slot)>),
    OrderedDict(Vec<(Slot, Slot)>),
    Set(Vec<Slot>),
    FrozenSet(Vec<Slot>),
    Complex(Complex),
    Date(Date),
    Time(TimeParts),
    DateTime(Date, TimeParts),
    TimeDelta(TimeDelta),
    TimeZone(Arc<TimeZone>),
    Decimal(Arc<str>),
    Uuid([u8; 16]),
    Global(Arc<Global>),
    Object(Box<ObjNode>),
}

impl Node {
    /// The `i`-th nested slot, in a fixed order.
    pub(crate) fn child(&self, i: usize) -> Option<Slot> {
        match self {
            Self::List(v) | Self::Tuple(v) | Self::Set(v) | Self::FrozenSet(v) => v.get(i).copied(),
            Self::Dict(v) | Self::OrderedDict(v) => v
                .get(i / 2)
                .map(|(k, x)| if i.is_multiple_of(2) { *k } else { *x }),
            Self::Time(t) | Self::DateTime(_, t) => (i == 0).then_some(t.tz).flatten(),
            Self::Object(o) => {
                let fixed = [Some(o.callable), Some(o.args), o.kwargs, o.state];
                let present = fixed.iter().flatten().count();
                if i < present {
                    return fixed.iter().flatten().nth(i).copied();
                }
                let j = i - present;
                if j < o.list_items.len() {
                    return Some(o.list_items[j]);
                }
                let j = j - o.list_items.len();
                o.dict_items
                    .get(j / 2)
                    .map(|(k, x)| if j.is_multiple_of(2) { *k } else { *x })
            }
            _ => None,
        }
    }

    /// Payload bytes, for the expansion estimate.
    fn payload(&self) -> usize {
        match self {
            Self::Str(s) | Self::Bytes(s) | Self::LegacyStr(s) => s.len(),
            Self::ByteArray(v) => v.len(),
            Self::BigInt(b) => b.to_signed_le_bytes().len(),
            _ => 0,
        }
    }
}

/// A decoded pickle: its nodes, its root, and the input the nodes borrow from.
pub(crate) struct Arena<'a> {
    pub(crate) input: &'a [u8],
    pub(crate) nodes: Vec<Node>,
    pub(crate) root: Slot,
    /// Reachable nodes, children before parents (filled by `analyze`).
    pub(crate) order: Vec<u32>,
    /// Expanded size of the root (filled by `analyze`).
    pub(crate) expanded: u64,
}

impl<'a> Arena<'a> {
    pub(crate) fn str_of(&self, start: u32, len: u32) -> &'a str {
        let bytes = &self.input[start as usize..start as usize + len as usize];
        // Validated when the slot was made.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    pub(crate) fn bytes_of(&self, start: u32, len: u32) -> &'a [u8] {
        &self.input[start as usize..start as usize + len as usize]
    }

    pub(crate) fn node(&self, slot: Slot) -> Option<&Node> {
        node_of(&self.nodes, slot)
    }

    pub(crate) fn node_str<'s>(&'s self, src: &'s Src) -> &'s str {
        std::str::from_utf8(src.get(self.input)).unwrap_or_default()
    }
}

/// The node a slot names, if it names one.
pub(crate) fn node_of(nodes: &[Node], slot: Slot) -> Option<&Node> {
    match slot {
        Slot::Node(i) => nodes.get(i as usize),
        _ => None,
    }
}

/// Decodes `input` (one whole pickle) into an arena and checks it against `limits`.
pub(crate) fn decode<'a>(input: &'a [u8], limits: &Limits) -> Result<Arena<'a>, Error> {
    // A node or memo entry per 16 input bytes up front (CPython's output of records and
    // datetimes needs about that), capped so a large bytes payload reserves nothing much:
    // growth then copies less, and memory stays a small multiple of the message.
    let reserve = (input.len() / 16).min(1 << 16);
    let mut m = Machine {
        input,
        pos: 0,
        op_start: 0,
        limits,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::with_capacity(reserve),
        sparse_memo: HashMap::new(),
        memo_count: 0,
        nodes: Vec::with_capacity(reserve),
        proto: 0,
        values: 0,
        copy_budget: copy_allowance(input.len()),
        owned_text: 0,
    };
    let root = m.run()?;
    let text_allowance = 2u64
        .saturating_mul(input.len() as u64)
        .saturating_add(m.owned_text)
        .saturating_add(COPY_FLOOR);
    let mut arena = Arena {
        input,
        nodes: m.nodes,
        root,
        order: Vec::new(),
        expanded: 0,
    };
    analyze(&mut arena, limits, text_allowance)?;
    Ok(arena)
}

/// Copy work a message may cause beyond its own bytes, whatever its opcodes (see
/// [`copy_allowance`]).
pub(crate) const COPY_FLOOR: u64 = 1 << 16;

/// How much copying one message of `len` bytes may make the machine do: a slot or a byte copied
/// out of a value the message already built (`set(l)`, `bytearray(b)`, a memoized name given to
/// `STACK_GLOBAL`) costs one unit. Each copy a real pickler causes has its source written once
/// in the message, so its copies total at most its length; a pickle that references one large
/// value many times to have it copied runs out and is refused
/// ([`Limit::Copies`](crate::Limit::Copies)) instead of costing memory quadratic in its size.
pub(crate) fn copy_allowance(len: usize) -> u64 {
    (len as u64).saturating_add(COPY_FLOOR)
}

struct Machine<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    op_start: usize,
    limits: &'l Limits,
    stack: Vec<Slot>,
    marks: Vec<usize>,
    memo: Vec<Option<Slot>>,
    sparse_memo: HashMap<u64, Slot>,
    memo_count: u64,
    nodes: Vec<Node>,
    proto: u8,
    values: u64,
    /// Copy units left (see [`copy_allowance`]).
    copy_budget: u64,
    /// Bytes of text made by the machine rather than borrowed from the input (escapes decoded,
    /// copies paid for): with the input's length, what the reachable text may add up to.
    owned_text: u64,
}

/// How far past the dense memo a `PUT` index may land before it goes to the sparse map
/// (a lying index must not size an allocation); the dense memo also never holds more than
/// twice its entries plus this.
const MEMO_GAP: u64 = 4096;

impl<'a> Machine<'a, '_> {
    fn truncated(&self) -> Error {
        Error::Truncated {
            offset: self.op_start,
        }
    }

    fn malformed(&self, opcode: &'static str, reason: &'static str) -> Error {
        Error::Malformed {
            opcode,
            offset: self.op_start,
            reason,
        }
    }

    fn take(&mut self, n: u64) -> Result<(usize, usize), Error> {
        let start = self.pos;
        let remaining = (self.input.len() - start) as u64;
        if n > remaining {
            return Err(self.truncated());
        }
        self.pos = start + n as usize;
        Ok((start, self.pos))
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], Error> {
        let (s, e) = self.take(n)?;
        Ok(&self.input[s..e])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let b = self.bytes(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A text argument up to (not including) the next newline.
    fn line(&mut self) -> Result<&'a [u8], Error> {
        let rest = &self.input[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.truncated());
        };
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn line_str(&mut self, opcode: &'static str) -> Result<&'a str, Error> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| self.malformed(opcode, "argument is not UTF-8"))
    }

    fn push(&mut self, slot: Slot) -> Result<(), Error> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(Error::LimitExceeded {
                limit: Limit::Values,
                max: self.limits.max_values,
            });
        }
        self.stack.push(slot);
        Ok(())
    }

    fn node(&mut self, node: Node) -> Result<Slot, Error> {
        let id = u32::try_from(self.nodes.len()).map_err(|_| Error::LimitExceeded {
            limit: Limit::Values,
            max: u64::from(u32::MAX),
        })?;
        self.nodes.push(node);
        Ok(Slot::Node(id))
    }

    fn push_node(&mut self, node: Node) -> Result<(), Error> {
        let slot = self.node(node)?;
        self.push(slot)
    }

    /// Where the values above the topmost mark start: opcodes other than the mark-taking ones
    /// see only those (CPython: stack underflow otherwise).
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn underflow(&self) -> Error {
        Error::StackUnderflow {
            offset: self.op_start,
        }
    }

    fn pop(&mut self) -> Result<Slot, Error> {
        if self.stack.len() <= self.floor() {
            return Err(self.underflow());
        }
        self.stack.pop().ok_or_else(|| self.underflow())
    }

    fn top(&self) -> Result<Slot, Error> {
        if self.stack.len() <= self.floor() {
            return Err(self.underflow());
        }
        self.stack.last().copied().ok_or_else(|| self.underflow())
    }

    fn pop_mark(&mut self) -> Result<Vec<Slot>, Error> {
        let mark = self.marks.pop().ok_or(Error::MarkNotFound {
            offset: self.op_start,
        })?;
        Ok(self.stack.split_off(mark))
    }

    /// The slot below the items of the topmost mark (the target of `APPENDS`, `SETITEMS`…).
    fn mark_target(&mut self) -> Result<(Slot, Vec<Slot>), Error> {
        let items = self.pop_mark()?;
        let target = self.top()?;
        Ok((target, items))
    }

    /// Pushes the `n`-byte UTF-8 text that follows.
    fn push_text(&mut self, n: u64) -> Result<(), Error> {
        let (s, e) = self.take(n)?;
        let slot = self.str_slot(s, e)?;
        self.push(slot)
    }

    /// Pushes the `n` bytes that follow.
    fn push_binary(&mut self, n: u64) -> Result<(), Error> {
        let (s, e) = self.take(n)?;
        let slot = self.bytes_slot(s, e)?;
        self.push(slot)
    }

    fn str_slot(&mut self, start: usize, end: usize) -> Result<Slot, Error> {
        if std::str::from_utf8(&self.input[start..end]).is_err() {
            return Err(Error::InvalidUtf8 {
                offset: self.op_start,
            });
        }
        match (u32::try_from(start), u32::try_from(end - start)) {
            (Ok(s), Ok(l)) if end <= u32::MAX as usize => Ok(Slot::Str(s, l)),
            _ => self.node(Node::Str(Src::Input(start, end))),
        }
    }

    fn bytes_slot(&mut self, start: usize, end: usize) -> Result<Slot, Error> {
        match (u32::try_from(start), u32::try_from(end - start)) {
            (Ok(s), Ok(l)) if end <= u32::MAX as usize => Ok(Slot::Bytes(s, l)),
            _ => self.node(Node::Bytes(Src::Input(start, end))),
        }
    }

    /// The top of the stack, with text in it made a node first (replacing the inline slot), so
    /// every reference to it shares one copy.
    fn share_top(&mut self) -> Result<Slot, Error> {
        let slot = self.top()?;
        let shared = match slot {
            Slot::Str(s, l) => {
                let (s, l) = (s as usize, l as usize);
                self.node(Node::Str(Src::Input(s, s + l)))?
            }
            Slot::Bytes(s, l) => {
                let (s, l) = (s as usize, l as usize);
                self.node(Node::Bytes(Src::Input(s, s + l)))?
            }
            other => return Ok(other),
        };
        if let Some(top) = self.stack.last_mut() {
            *top = shared;
        }
        Ok(shared)
    }

    /// Pays `units` of copy work (see [`copy_allowance`]).
    fn charge(&mut self, units: usize) -> Result<(), Error> {
        let units = units as u64;
        if units > self.copy_budget {
            return Err(Error::LimitExceeded {
                limit: Limit::Copies,
                max: copy_allowance(self.input.len()),
            });
        }
        self.copy_budget -= units;
        Ok(())
    }

    /// `copy` (bytes copied out of a value already built), paid for.
    fn paid(&mut self, copy: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, Error> {
        if let Some(b) = &copy {
            self.charge_text(b.len())?;
        }
        Ok(copy)
    }

    /// Pays for `bytes` of text copied into a node the machine owns.
    fn charge_text(&mut self, bytes: usize) -> Result<(), Error> {
        self.charge(bytes)?;
        self.owned_text = self.owned_text.saturating_add(bytes as u64);
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Result<(), Error> {
        // Shared text becomes a node so every reference shares one copy.
        let slot = self.share_top()?;
        let dense = self.memo.len() as u64;
        if index < dense {
            if self.memo[index as usize].replace(slot).is_none() {
                self.memo_count += 1;
            }
        } else if index < dense + MEMO_GAP && index < 2 * self.memo_count + MEMO_GAP {
            // The dense table grows past its end only while it stays at most twice the
            // entries it holds (plus one gap): indexes stepping by a gap at a time go to the
            // sparse map instead of costing a gap of empty entries per `PUT`.
            self.memo.resize(index as usize + 1, None);
            self.memo[index as usize] = Some(slot);
            self.memo_count += 1;
        } else if self.sparse_memo.insert(index, slot).is_none() {
            self.memo_count += 1;
        }
        if self.memo_count > self.limits.max_memo {
            return Err(Error::LimitExceeded {
                limit: Limit::Memo,
                max: self.limits.max_memo,
            });
        }
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<(), Error> {
        let found = usize::try_from(index)
            .ok()
            .and_then(|i| self.memo.get(i).copied().flatten())
            .or_else(|| self.sparse_memo.get(&index).copied());
        let slot = found.ok_or(Error::MemoNotFound {
            index,
            offset: self.op_start,
        })?;
        self.push(slot)
    }

    fn text_int(&mut self, text: &str, opcode: &'static str) -> Result<Slot, Error> {
        let digits = text.trim_start_matches(['-', '+']).len();
        if digits > self.limits.max_int_digits as usize {
            return Err(Error::LimitExceeded {
                limit: Limit::IntDigits,
                max: u64::from(self.limits.max_int_digits),
            });
        }
        if let Ok(v) = text.parse::<i64>() {
            return Ok(Slot::Int(v));
        }
        let big = BigInt::parse_decimal(text).ok_or(self.malformed(opcode, "not an integer"))?;
        match big.to_i64() {
            Some(v) => Ok(Slot::Int(v)),
            None => self.node(Node::BigInt(big)),
        }
    }

    fn binary_int(&mut self, n: u64) -> Result<(), Error> {
        if n > self.limits.max_int_bytes {
            return Err(Error::LimitExceeded {
                limit: Limit::IntBytes,
                max: self.limits.max_int_bytes,
            });
        }
        let bytes = self.bytes(n)?;
        let big = BigInt::from_signed_le_bytes(bytes);
        let slot = match big.to_i64() {
            Some(v) => Slot::Int(v),
            None => self.node(Node::BigInt(big))?,
        };
        self.push(slot)
    }

    fn global(&mut self, module: &str, name: &str) -> Result<Slot, Error> {
        let (module, name) = if self.proto < 3 {
            py2_name(module, name)
        } else {
            (module, name)
        };
        self.node(Node::Global(Arc::new(Global::new(module, name))))
    }

    fn run(&mut self) -> Result<Slot, Error> {
        loop {
            self.op_start = self.pos;
            let Some(&op) = self.input.get(self.pos) else {
                return Err(self.truncated());
            };
            self.pos += 1;
            match op {
                STOP => {
                    if !self.marks.is_empty() || self.stack.len() != 1 {
                        return Err(if self.stack.is_empty() {
                            Error::StackUnderflow {
                                offset: self.op_start,
                            }
                        } else {
                            Error::TrailingData {
                                offset: self.op_start,
                            }
                        });
                    }
                    if self.pos != self.input.len() {
                        return Err(Error::TrailingData { offset: self.pos });
                    }
                    return self.pop();
                }
                PROTO => {
                    let v = self.u8()?;
                    if v > 5 {
                        return Err(Error::UnsupportedProtocol(v));
                    }
                    self.proto = v;
                }
                FRAME => {
                    let n = self.u64()?;
                    if n > (self.input.len() - self.pos) as u64 {
                        return Err(self.truncated());
                    }
                }
                MARK => self.marks.push(self.stack.len()),
                POP => {
                    if self.stack.len() > self.floor() {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                POP_MARK => {
                    self.pop_mark()?;
                }
                DUP => {
                    // Both copies are one object (as in Python): text becomes a shared node
                    // rather than two copies of itself.
                    let top = self.share_top()?;
                    self.push(top)?;
                }
                NONE => self.push(Slot::None)?,
                NEWTRUE => self.push(Slot::Bool(true))?,
                NEWFALSE => self.push(Slot::Bool(false))?,
                INT => {
                    let text = self.line_str("INT")?;
                    let slot = match text {
                        "00" => Slot::Bool(false),
                        "01" => Slot::Bool(true),
                        _ => self.text_int(text, "INT")?,
                    };
                    self.push(slot)?;
                }
                LONG => {
                    let text = self.line_str("LONG")?;
                    let text = text.strip_suffix('L').unwrap_or(text);
                    let slot = self.text_int(text, "LONG")?;
                    self.push(slot)?;
                }
                BININT => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Slot::Int(v.into()))?;
                }
                BININT1 => {
                    let v = self.u8()?;
                    self.push(Slot::Int(v.into()))?;
                }
                BININT2 => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Slot::Int(v.into()))?;
                }
                LONG1 => {
                    let n = self.u8()?;
                    self.binary_int(n.into())?;
                }
                LONG4 => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = u64::try_from(n)
                        .map_err(|_| self.malformed("LONG4", "negative byte count"))?;
                    self.binary_int(n)?;
                }
                FLOAT => {
                    let text = self.line_str("FLOAT")?;
                    let v: f64 = text
                        .trim()
                        .parse()
                        .map_err(|_| self.malformed("FLOAT", "not a float"))?;
                    self.push(Slot::Float(v))?;
                }
                BINFLOAT => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Slot::Float(v))?;
                }
                STRING => {
                    let line = self.line()?;
                    let bytes = unquote_py2(line).ok_or(
                        self.malformed("STRING", "the STRING opcode argument must be quoted"),
                    )?;
                    self.owned_text = self.owned_text.saturating_add(bytes.len() as u64);
                    self.push_node(Node::LegacyStr(Src::Owned(bytes)))?;
                }
                BINSTRING => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = u64::try_from(n)
                        .map_err(|_| self.malformed("BINSTRING", "negative byte count"))?;
                    let (s, e) = self.take(n)?;
                    self.push_node(Node::LegacyStr(Src::Input(s, e)))?;
                }
                SHORT_BINSTRING => {
                    let n = self.u8()?;
                    let (s, e) = self.take(n.into())?;
                    self.push_node(Node::LegacyStr(Src::Input(s, e)))?;
                }
                UNICODE => {
                    let line = self.line()?;
                    let text = raw_unicode_escape(line).ok_or(Error::InvalidUtf8 {
                        offset: self.op_start,
                    })?;
                    self.owned_text = self.owned_text.saturating_add(text.len() as u64);
                    self.push_node(Node::Str(Src::Owned(text.into_bytes())))?;
                }
                BINUNICODE => {
                    let n = self.u32()?;
                    self.push_text(n.into())?;
                }
                SHORT_BINUNICODE => {
                    let n = self.u8()?;
                    self.push_text(n.into())?;
                }
                BINUNICODE8 => {
                    let n = self.u64()?;
                    self.push_text(n)?;
                }
                BINBYTES => {
                    let n = self.u32()?;
                    self.push_binary(n.into())?;
                }
                SHORT_BINBYTES => {
                    let n = self.u8()?;
                    self.push_binary(n.into())?;
                }
                BINBYTES8 => {
                    let n = self.u64()?;
                    self.push_binary(n)?;
                }
                BYTEARRAY8 => {
                    let n = self.u64()?;
                    let b = self.bytes(n)?;
                    self.push_node(Node::ByteArray(b.to_vec()))?;
                }
                NEXT_BUFFER => {
                    return Err(Error::Unsupported {
                        what: "out-of-band buffer (NEXT_BUFFER)",
                        offset: self.op_start,
                    });
                }
                READONLY_BUFFER => {
                    self.top()?;
                }
                EMPTY_TUPLE => self.push_node(Node::Tuple(Vec::new()))?,
                EMPTY_LIST => self.push_node(Node::List(Vec::new()))?,
                EMPTY_DICT => self.push_node(Node::Dict(Vec::new()))?,
                EMPTY_SET => self.push_node(Node::Set(Vec::new()))?,
                TUPLE => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::Tuple(items))?;
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = usize::from(op - TUPLE1 + 1);
                    if self.stack.len() < self.floor() + n {
                        return Err(self.underflow());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_node(Node::Tuple(items))?;
                }
                LIST => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::List(items))?;
                }
                DICT => {
                    let items = self.pop_mark()?;
                    let pairs =
                        pairs(items).ok_or(self.malformed("DICT", "odd number of items"))?;
                    self.push_node(Node::Dict(pairs))?;
                }
                FROZENSET => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::FrozenSet(items))?;
                }
                APPEND => {
                    let v = self.pop()?;
                    let target = self.top()?;
                    self.append(target, vec![v], "APPEND")?;
                }
                APPENDS => {
                    let (target, items) = self.mark_target()?;
                    self.append(target, items, "APPENDS")?;
                }
                SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let target = self.top()?;
                    self.set_items(target, vec![(k, v)], "SETITEM")?;
                }
                SETITEMS => {
                    let (target, items) = self.mark_target()?;
                    let pairs =
                        pairs(items).ok_or(self.malformed("SETITEMS", "odd number of items"))?;
                    self.set_items(target, pairs, "SETITEMS")?;
                }
                ADDITEMS => {
                    let (target, items) = self.mark_target()?;
                    match self.node_mut(target) {
                        Some(Node::Set(set)) => set.extend(items),
                        _ => return Err(self.malformed("ADDITEMS", "target is not a set")),
                    }
                }
                GLOBAL => {
                    let module = self.line_str("GLOBAL")?;
                    let name = self.line_str("GLOBAL")?;
                    let slot = self.global(module, name)?;
                    self.push(slot)?;
                }
                STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.text(module), self.text(name)) else {
                        return Err(self.malformed("STACK_GLOBAL", "module or name is not a str"));
                    };
                    let (module, name) = (module.to_owned(), name.to_owned());
                    // A memoized name can be named again and again: each global copies it.
                    self.charge_text(module.len() + name.len())?;
                    let slot = self.global(&module, &name)?;
                    self.push(slot)?;
                }
                INST => {
                    let module = self.line_str("INST")?;
                    let name = self.line_str("INST")?;
                    let class = self.global(module, name)?;
                    let args = self.pop_mark()?;
                    let args = self.node(Node::Tuple(args))?;
                    let slot = self.reduce(class, args)?;
                    self.push(slot)?;
                }
                OBJ => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(Error::StackUnderflow {
                            offset: self.op_start,
                        });
                    }
                    let class = items.remove(0);
                    let args = self.node(Node::Tuple(items))?;
                    let slot = self.reduce(class, args)?;
                    self.push(slot)?;
                }
                REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let slot = self.reduce(callable, args)?;
                    self.push(slot)?;
                }
                NEWOBJ => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let slot = self.new_obj(class, args, None)?;
                    self.push(slot)?;
                }
                NEWOBJ_EX => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let slot = self.new_obj(class, args, Some(kwargs))?;
                    self.push(slot)?;
                }
                BUILD => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    self.build(target, state)?;
                }
                PUT => {
                    let text = self.line_str("PUT")?;
                    let index = text
                        .parse::<u64>()
                        .map_err(|_| self.malformed("PUT", "index is not a number"))?;
                    self.memo_put(index)?;
                }
                BINPUT => {
                    let i = self.u8()?;
                    self.memo_put(i.into())?;
                }
                LONG_BINPUT => {
                    let i = self.u32()?;
                    self.memo_put(i.into())?;
                }
                // MEMOIZE stores at len(memo): the number of entries so far.
                MEMOIZE => self.memo_put(self.memo_count)?,
                GET => {
                    let text = self.line_str("GET")?;
                    let index = text
                        .parse::<u64>()
                        .map_err(|_| self.malformed("GET", "index is not a number"))?;
                    self.memo_get(index)?;
                }
                BINGET => {
                    let i = self.u8()?;
                    self.memo_get(i.into())?;
                }
                LONG_BINGET => {
                    let i = self.u32()?;
                    self.memo_get(i.into())?;
                }
                PERSID | BINPERSID => {
                    return Err(Error::Unsupported {
                        what: "persistent id (PERSID)",
                        offset: self.op_start,
                    });
                }
                EXT1 | EXT2 | EXT4 => {
                    return Err(Error::Unsupported {
                        what: "extension registry code (EXT)",
                        offset: self.op_start,
                    });
                }
                other => {
                    return Err(Error::UnknownOpcode {
                        opcode: other,
                        offset: self.op_start,
                    });
                }
            }
        }
    }

    fn node_mut(&mut self, slot: Slot) -> Option<&mut Node> {
        match slot {
            Slot::Node(i) => self.nodes.get_mut(i as usize),
            _ => None,
        }
    }

    fn node_ref(&self, slot: Slot) -> Option<&Node> {
        node_of(&self.nodes, slot)
    }

    /// The text of a `str` slot.
    fn text(&self, slot: Slot) -> Option<&str> {
        match slot {
            Slot::Str(s, l) => {
                std::str::from_utf8(&self.input[s as usize..s as usize + l as usize]).ok()
            }
            Slot::Node(_) => match self.node_ref(slot)? {
                Node::Str(src) => std::str::from_utf8(src.get(self.input)).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// The bytes of a `bytes` or Python 2 `str` slot.
    fn byte_data(&self, slot: Slot) -> Option<&[u8]> {
        match slot {
            Slot::Bytes(s, l) => Some(&self.input[s as usize..s as usize + l as usize]),
            Slot::Node(_) => match self.node_ref(slot)? {
                Node::Bytes(src) | Node::LegacyStr(src) => Some(src.get(self.input)),
                _ => None,
            },
            _ => None,
        }
    }

    fn tuple_items(&self, slot: Slot) -> Option<&[Slot]> {
        match self.node_ref(slot)? {
            Node::Tuple(items) => Some(items),
            _ => None,
        }
    }

    fn global_of(&self, slot: Slot) -> Option<(&str, &str)> {
        match self.node_ref(slot)? {
            Node::Global(g) => Some((g.module(), g.name())),
            _ => None,
        }
    }

    fn append(&mut self, target: Slot, items: Vec<Slot>, op: &'static str) -> Result<(), Error> {
        match self.node_mut(target) {
            Some(Node::List(list)) => list.extend(items),
            Some(Node::Object(o)) => o.list_items.extend(items),
            _ => return Err(self.malformed(op, "target is not a list or object")),
        }
        Ok(())
    }

    fn set_items(
        &mut self,
        target: Slot,
        items: Vec<(Slot, Slot)>,
        op: &'static str,
    ) -> Result<(), Error> {
        match self.node_mut(target) {
            Some(Node::Dict(d) | Node::OrderedDict(d)) => d.extend(items),
            Some(Node::Object(o)) => o.dict_items.extend(items),
            _ => return Err(self.malformed(op, "target is not a dict or object")),
        }
        Ok(())
    }

    fn build(&mut self, target: Slot, state: Slot) -> Result<(), Error> {
        if let Some(uuid) = self.uuid_state(target, state) {
            if let Some(node) = self.node_mut(target) {
                *node = Node::Uuid(uuid);
            }
            return Ok(());
        }
        match self.node_mut(target) {
            Some(Node::Object(o)) if o.state.is_none() => {
                o.state = Some(state);
                Ok(())
            }
            Some(Node::Object(_)) => Err(self.malformed("BUILD", "state set twice")),
            _ => Err(self.malformed("BUILD", "target is not an object")),
        }
    }

    /// `uuid.UUID` built by `NEWOBJ` + `BUILD {'int': n}`.
    fn uuid_state(&self, target: Slot, state: Slot) -> Option<[u8; 16]> {
        let Node::Object(o) = self.node_ref(target)? else {
            return None;
        };
        if o.kind != ObjectKind::New
            || o.state.is_some()
            || o.kwargs.is_some()
            || !o.list_items.is_empty()
            || !o.dict_items.is_empty()
            || self.global_of(o.callable)? != ("uuid", "UUID")
            || !self.tuple_items(o.args)?.is_empty()
        {
            return None;
        }
        let Node::Dict(entries) = self.node_ref(state)? else {
            return None;
        };
        let [(key, value)] = entries.as_slice() else {
            return None;
        };
        if self.text(*key)? != "int" {
            return None;
        }
        let n: u128 = match *value {
            Slot::Int(v) => u128::try_from(v).ok()?,
            Slot::Node(_) => match self.node_ref(*value)? {
                Node::BigInt(b) => b.to_u128()?,
                _ => return None,
            },
            _ => return None,
        };
        Some(n.to_be_bytes())
    }

    fn new_obj(&mut self, class: Slot, args: Slot, kwargs: Option<Slot>) -> Result<Slot, Error> {
        self.node(Node::Object(Box::new(ObjNode {
            kind: ObjectKind::New,
            callable: class,
            args,
            kwargs,
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        })))
    }

    /// `callable(*args)`: a native node for the callables whose result we know, otherwise an
    /// inert object.
    fn reduce(&mut self, callable: Slot, args: Slot) -> Result<Slot, Error> {
        if let Some(node) = self.known_call(callable, args)? {
            return self.node(node);
        }
        self.node(Node::Object(Box::new(ObjNode {
            kind: ObjectKind::Reduce,
            callable,
            args,
            kwargs: None,
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        })))
    }

    fn known_call(&mut self, callable: Slot, args: Slot) -> Result<Option<Node>, Error> {
        let Some((module, name)) = self.global_of(callable) else {
            return Ok(None);
        };
        // No call we know takes more than three arguments; copied out (no allocation) because
        // the arms below borrow `self` again.
        let mut held = [Slot::None; 3];
        let n = match self.tuple_items(args) {
            Some(items) if items.len() <= held.len() => {
                held[..items.len()].copy_from_slice(items);
                items.len()
            }
            _ => return Ok(None),
        };
        let node = match ((module, name), &held[..n]) {
            // The builtin containers CPython's picklers write as calls: `set` / `frozenset`
            // (protocols 0-3), `list` (a manager's dict views, `copyreg` reducers), `tuple`,
            // `dict`. Each call makes a new container: its items are copied, and paid for.
            (("builtins", "set"), []) => Some(Node::Set(Vec::new())),
            (("builtins", "frozenset"), []) => Some(Node::FrozenSet(Vec::new())),
            (("builtins", "list"), []) => Some(Node::List(Vec::new())),
            (("builtins", "tuple"), []) => Some(Node::Tuple(Vec::new())),
            (("builtins", "dict"), []) => Some(Node::Dict(Vec::new())),
            (("builtins", "set" | "frozenset" | "list" | "tuple"), [src]) => {
                let make: fn(Vec<Slot>) -> Node = match name {
                    "set" => Node::Set,
                    "frozenset" => Node::FrozenSet,
                    "list" => Node::List,
                    _ => Node::Tuple,
                };
                match self.sequence(*src).map(<[Slot]>::to_vec) {
                    Some(items) => {
                        self.pay_for_slots(items.iter().copied())?;
                        Some(make(items))
                    }
                    None => None,
                }
            }
            (("builtins", "dict"), [src]) => match self.dict_pairs(*src) {
                Some(pairs) => {
                    self.pay_for_slots(pairs.iter().flat_map(|(k, v)| [*k, *v]))?;
                    Some(Node::Dict(pairs))
                }
                None => None,
            },
            (("builtins", "bytes"), []) => Some(Node::Bytes(Src::Owned(Vec::new()))),
            (("builtins", "bytearray"), []) => Some(Node::ByteArray(Vec::new())),
            (("builtins", "bytearray"), [data]) => {
                let copy = self.byte_data(*data).map(<[u8]>::to_vec);
                self.paid(copy)?.map(Node::ByteArray)
            }
            (("builtins", "bytearray"), [text, enc]) if self.is_latin1(*enc) => {
                let copy = self.text(*text).and_then(latin1);
                self.paid(copy)?.map(Node::ByteArray)
            }
            (("_codecs", "encode"), [text, enc]) if self.is_latin1(*enc) => {
                let copy = self.text(*text).and_then(latin1);
                self.paid(copy)?.map(|b| Node::Bytes(Src::Owned(b)))
            }
            (("builtins", "complex"), [Slot::Float(re), Slot::Float(im)]) => {
                Some(Node::Complex(Complex { re: *re, im: *im }))
            }
            (("datetime", "date"), [state]) => match self.byte_data(*state) {
                Some(b) => Some(Node::Date(self.date_state(b)?)),
                None => None,
            },
            (("datetime", "time"), [state, rest @ ..]) if rest.len() <= 1 => {
                match self.byte_data(*state) {
                    Some(b) => Some(Node::Time(self.time_state(b, rest.first().copied())?)),
                    None => None,
                }
            }
            (("datetime", "datetime"), [state, rest @ ..]) if rest.len() <= 1 => {
                match self.byte_data(*state) {
                    Some(b) if b.len() == 10 => {
                        let mut date = [0u8; 4];
                        date.copy_from_slice(&b[..4]);
                        let fold = date[2] & 0x80 != 0;
                        date[2] &= 0x7f;
                        let d = self.date_state(&date)?;
                        let mut t = self.time_state(&b[4..], rest.first().copied())?;
                        t.fold = fold;
                        Some(Node::DateTime(d, t))
                    }
                    Some(_) => {
                        return Err(self.malformed("REDUCE", "bad datetime.datetime state"));
                    }
                    None => None,
                }
            }
            (("datetime", "timedelta"), [Slot::Int(d), Slot::Int(s), Slot::Int(us)]) => {
                let td = TimeDelta::new(*d, *s, *us)
                    .ok_or(self.malformed("REDUCE", "timedelta out of range"))?;
                Some(Node::TimeDelta(td))
            }
            (("datetime", "timezone"), [offset, rest @ ..]) if rest.len() <= 1 => {
                let offset = match self.node_ref(*offset) {
                    Some(Node::TimeDelta(td)) => Some(*td),
                    _ => None,
                };
                let name = match rest.first() {
                    None => Some(None),
                    Some(n) => self.text(*n).map(|t| Some(t.to_owned())),
                };
                if let Some(Some(name)) = &name {
                    self.charge_text(name.len())?;
                }
                match (offset, name) {
                    (Some(offset), Some(name)) => {
                        let tz = TimeZone::new(offset, name.as_deref())
                            .ok_or(self.malformed("REDUCE", "timezone offset out of range"))?;
                        Some(Node::TimeZone(Arc::new(tz)))
                    }
                    _ => None,
                }
            }
            (("decimal", "Decimal"), [text]) => match self.text(*text).map(Arc::<str>::from) {
                Some(t) => {
                    self.charge_text(t.len())?;
                    Some(Node::Decimal(t))
                }
                None => None,
            },
            (("collections", "OrderedDict"), []) => Some(Node::OrderedDict(Vec::new())),
            (("copyreg", "_reconstructor"), [class, base, Slot::None])
                if self.global_of(*base) == Some(("builtins", "object")) =>
            {
                let class = *class;
                let args = self.node(Node::Tuple(Vec::new()))?;
                Some(Node::Object(Box::new(ObjNode {
                    kind: ObjectKind::New,
                    callable: class,
                    args,
                    kwargs: None,
                    state: None,
                    list_items: Vec::new(),
                    dict_items: Vec::new(),
                })))
            }
            _ => None,
        };
        Ok(node)
    }

    /// The items of a list, tuple, set or frozenset.
    fn sequence(&self, slot: Slot) -> Option<&[Slot]> {
        match self.node_ref(slot)? {
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => Some(v),
            _ => None,
        }
    }

    /// What `dict(x)` makes of `x`: a dict's entries, or a sequence of key-value pairs (each a
    /// 2-tuple or 2-list).
    fn dict_pairs(&self, slot: Slot) -> Option<Vec<(Slot, Slot)>> {
        match self.node_ref(slot)? {
            Node::Dict(d) | Node::OrderedDict(d) => Some(d.clone()),
            Node::List(v) | Node::Tuple(v) => v
                .iter()
                .map(|pair| match self.sequence(*pair)? {
                    [k, x] => Some((*k, *x)),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// Pays for `items` copied into a new container (one unit a slot, and one a byte of inline text, which the copy duplicates).
    fn pay_for_slots(&mut self, items: impl Iterator<Item = Slot>) -> Result<(), Error> {
        let (mut slots, mut text) = (0usize, 0usize);
        for item in items {
            slots += 1;
            if let Slot::Str(_, l) | Slot::Bytes(_, l) = item {
                text += l as usize;
            }
        }
        self.charge(slots)?;
        self.charge_text(text)
    }

    fn is_latin1(&self, enc: Slot) -> bool {
        // A Python 2 peer names the encoding with a (byte) str.
        let name = self
            .text(enc)
            .map(str::as_bytes)
            .or_else(|| self.byte_data(enc));
        matches!(name, Some(b"latin1" | b"latin-1"))
    }

    fn date_state(&self, b: &[u8]) -> Result<Date, Error> {
        let bad = || self.malformed("REDUCE", "bad datetime.date state");
        let [yhi, ylo, m, d] = b else {
            return Err(bad());
        };
        Date::new(u16::from(*yhi) * 256 + u16::from(*ylo), *m, *d).ok_or_else(bad)
    }

    fn time_state(&self, b: &[u8], tz: Option<Slot>) -> Result<TimeParts, Error> {
        let bad = || self.malformed("REDUCE", "bad datetime.time state");
        let [h, mi, s, u1, u2, u3] = b else {
            return Err(bad());
        };
        let fold = h & 0x80 != 0;
        let us = u32::from(*u1) << 16 | u32::from(*u2) << 8 | u32::from(*u3);
        let t = Time::new(h & 0x7f, *mi, *s, us).ok_or_else(bad)?;
        Ok(TimeParts {
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            microsecond: t.microsecond(),
            fold,
            tz: tz.filter(|t| !matches!(t, Slot::None)),
        })
    }
}

fn pairs(items: Vec<Slot>) -> Option<Vec<(Slot, Slot)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

fn latin1(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

/// Python 2 names as CPython's `fix_imports` maps them for protocols 0–2.
pub(crate) fn py2_name<'s>(module: &'s str, name: &'s str) -> (&'s str, &'s str) {
    let module = match module {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        other => other,
    };
    let name = match (module, name) {
        ("builtins", "unicode" | "basestring") => "str",
        ("builtins", "long") => "int",
        ("builtins", "xrange") => "range",
        (_, n) => n,
    };
    (module, name)
}

/// A protocol 0 `STRING` argument: a quoted Python 2 literal, escapes decoded to bytes.
fn unquote_py2(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (&q, rest) = line.split_first()?;
    if q != b'\'' && q != b'"' {
        return None;
    }
    let body = rest.strip_suffix(&[q])?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let &e = body.get(i)?;
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hex = body.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Python's `raw-unicode-escape` decoding: `\uXXXX` and `\UXXXXXXXX` escapes, every other byte
/// a Latin-1 character. `None` for a surrogate or a bad escape.
fn raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c == b'\\' && matches!(line.get(i + 1), Some(b'u' | b'U')) {
            // An odd run of backslashes escapes; CPython counts them the same way.
            let run = line[..i].iter().rev().take_while(|&&b| b == b'\\').count();
            if run % 2 == 0 {
                let n = if line[i + 1] == b'u' { 4 } else { 8 };
                let hex = line.get(i + 2..i + 2 + n)?;
                let v = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(char::from_u32(v)?);
                i += 2 + n;
                continue;
            }
        }
        out.push(char::from(c));
        i += 1;
    }
    Some(out)
}

/// Walks the nodes reachable from the root without recursion: refuses cycles and nesting over
/// the limit, records a children-first order and the expanded size.
fn analyze(arena: &mut Arena<'_>, limits: &Limits, text_allowance: u64) -> Result<(), Error> {
    const UNSEEN: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let Slot::Node(root) = arena.root else {
        arena.expanded = 1;
        return Ok(());
    };
    // The text the value will hold, each node once: what the input holds, what the machine
    // decoded or paid to copy, and nothing more. Inline text duplicated by any other path (a
    // slot copied without being paid for) shows up here, before a byte of the value is built.
    let mut text = 0u64;
    let n = arena.nodes.len();
    let mut state = vec![UNSEEN; n];
    let mut depth = vec![0u32; n];
    let mut size = vec![0u64; n];
    // (node, next child index)
    let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
    state[root as usize] = OPEN;
    while let Some(&mut (id, ref mut cursor)) = stack.last_mut() {
        let node = &arena.nodes[id as usize];
        match node.child(*cursor) {
            Some(Slot::Node(c)) => {
                *cursor += 1;
                match state[c as usize] {
                    UNSEEN => {
                        if stack.len() >= limits.max_depth as usize {
                            return Err(Error::LimitExceeded {
                                limit: Limit::Depth,
                                max: limits.max_depth.into(),
                            });
                        }
                        state[c as usize] = OPEN;
                        stack.push((c, 0));
                    }
                    OPEN => return Err(Error::Recursive),
                    _ => {}
                }
            }
            Some(_) => *cursor += 1,
            None => {
                // All children done: fold them in.
                let mut d = 0u32;
                let mut s = 1u64 + (node.payload() as u64 >> 4);
                text = text.saturating_add(node.payload() as u64);
                let mut i = 0;
                while let Some(child) = node.child(i) {
                    i += 1;
                    match child {
                        Slot::Node(c) => {
                            d = d.max(depth[c as usize]);
                            s = s.saturating_add(size[c as usize]);
                        }
                        Slot::Str(_, l) | Slot::Bytes(_, l) => {
                            s = s.saturating_add(1 + (u64::from(l) >> 4));
                            text = text.saturating_add(u64::from(l));
                        }
                        _ => s = s.saturating_add(1),
                    }
                }
                if text > text_allowance {
                    return Err(Error::LimitExceeded {
                        limit: Limit::Copies,
                        max: text_allowance,
                    });
                }
                depth[id as usize] = d + 1;
                size[id as usize] = s;
                state[id as usize] = DONE;
                arena.order.push(id);
                stack.pop();
            }
        }
    }
    arena.expanded = size[root as usize];
    if depth[root as usize] > limits.max_depth {
        return Err(Error::LimitExceeded {
            limit: Limit::Depth,
            max: limits.max_depth.into(),
        });
    }
    Ok(())
}

/// Builds the [`Value`] of the root: each node once, shared where the pickle shared it.
pub(crate) fn to_value(arena: &Arena<'_>) -> Value {
    let built = all_values(arena);
    slot_value(arena, arena.root, &built)
}

/// The value of every node reachable from the root, by node id.
pub(crate) fn all_values(arena: &Arena<'_>) -> Vec<Option<Value>> {
    let mut built: Vec<Option<Value>> = Vec::new();
    built.resize_with(arena.nodes.len(), || None);
    for &id in &arena.order {
        let v = node_value(arena, &arena.nodes[id as usize], &built);
        built[id as usize] = Some(v);
    }
    built
}

pub(crate) fn slot_value(arena: &Arena<'_>, slot: Slot, built: &[Option<Value>]) -> Value {
    match slot {
        Slot::None => Value::None,
        Slot::Bool(b) => Value::Bool(b),
        Slot::Int(i) => Value::Int(i),
        Slot::Float(f) => Value::Float(f),
        Slot::Str(s, l) => Value::Str(arena.str_of(s, l).into()),
        Slot::Bytes(s, l) => Value::Bytes(arena.bytes_of(s, l).into()),
        Slot::Node(i) => built[i as usize].clone().unwrap_or(Value::None),
    }
}

fn node_value(arena: &Arena<'_>, node: &Node, built: &[Option<Value>]) -> Value {
    let v = |s: Slot| slot_value(arena, s, built);
    let seq = |items: &[Slot]| Shared::new(items.iter().map(|s| v(*s)).collect::<Vec<_>>());
    let map = |items: &[(Slot, Slot)]| {
        Shared::new(
            items
                .iter()
                .map(|(k, x)| (v(*k), v(*x)))
                .collect::<Vec<_>>(),
        )
    };
    let time = |t: &TimeParts| {
        Time::from_checked(t.hour, t.minute, t.second, t.microsecond)
            .with_fold(t.fold)
            .with_tzinfo(t.tz.map(v))
    };
    match node {
        Node::Str(src) => Value::Str(arena.node_str(src).into()),
        Node::Bytes(src) => Value::Bytes(src.get(arena.input).into()),
        Node::ByteArray(b) => Value::ByteArray(b.as_slice().into()),
        Node::LegacyStr(src) => Value::LegacyStr(src.get(arena.input).into()),
        Node::BigInt(b) => Value::BigInt(b.clone()),
        Node::List(items) => Value::List(seq(items)),
        Node::Tuple(items) => Value::Tuple(seq(items)),
        Node::Set(items) => Value::Set(seq(items)),
        Node::FrozenSet(items) => Value::FrozenSet(seq(items)),
        Node::Dict(items) => Value::Dict(map(items)),
        Node::OrderedDict(items) => Value::OrderedDict(map(items)),
        Node::Complex(c) => Value::Complex(*c),
        Node::Date(d) => Value::Date(*d),
        Node::Time(t) => Value::Time(Shared::new(time(t))),
        Node::DateTime(d, t) => Value::DateTime(Shared::new(DateTime::new(*d, time(t)))),
        Node::TimeDelta(td) => Value::TimeDelta(*td),
        Node::TimeZone(tz) => Value::TimeZone(Shared::new((**tz).clone())),
        Node::Decimal(d) => Value::Decimal(d.clone()),
        Node::Uuid(u) => Value::Uuid(*u),
        Node::Global(g) => Value::Global(Shared::new((**g).clone())),
        Node::Object(o) => {
            let mut obj = match o.kind {
                ObjectKind::New => Object::new_obj(v(o.callable), v(o.args)),
                _ => Object::reduce(v(o.callable), v(o.args)),
            };
            obj = obj
                .with_kwargs(o.kwargs.map(v))
                .with_state(o.state.map(v))
                .with_list_items(o.list_items.iter().map(|s| v(*s)).collect())
                .with_dict_items(o.dict_items.iter().map(|(k, x)| (v(*k), v(*x))).collect());
            Value::Object(Shared::new(obj))
        }
    }
}
