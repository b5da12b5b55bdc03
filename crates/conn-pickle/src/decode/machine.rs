//! The opcode interpreter: a stack machine that builds arena nodes.

use std::collections::HashMap;
use std::sync::Arc;

use super::py2::{latin1, raw_unicode_escape, unquote_py2};
use super::{Node, ObjNode, Slot, Src, TimeParts, copy_allowance, node_of, py2_name};
use crate::error::{Error, Limit};
use crate::int::BigInt;
use crate::limits::Limits;
use crate::opcodes::args;
use crate::opcodes::*;
use crate::value::{Complex, Date, Global, ObjectKind, Time, TimeDelta, TimeZone};

pub(super) struct Machine<'a, 'l> {
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

impl<'a, 'l> Machine<'a, 'l> {
    /// A machine over `input`, with room for `reserve` nodes and memo entries.
    pub(super) fn new(input: &'a [u8], limits: &'l Limits, reserve: usize) -> Self {
        Self {
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
        }
    }

    /// Text the machine made (not borrowed from the input), in bytes.
    pub(super) fn owned_text(&self) -> u64 {
        self.owned_text
    }

    /// The nodes built.
    pub(super) fn into_nodes(self) -> Vec<Node> {
        self.nodes
    }
}

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
        args::take(self.input, &mut self.pos, n).ok_or_else(|| self.truncated())?;
        Ok((start, self.pos))
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], Error> {
        args::take(self.input, &mut self.pos, n).ok_or_else(|| self.truncated())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        args::array(self.input, &mut self.pos).ok_or_else(|| self.truncated())
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// The length argument of text and bytes opcode `op` (see [`args::length`]).
    fn length(&mut self, op: u8) -> Result<u64, Error> {
        args::length(self.input, &mut self.pos, op).ok_or_else(|| self.truncated())
    }

    /// The index argument of binary memo opcode `op` (see [`args::memo_index`]).
    fn memo_index(&mut self, op: u8) -> Result<u64, Error> {
        args::memo_index(self.input, &mut self.pos, op).ok_or_else(|| self.truncated())
    }

    /// A text argument up to (not including) the next newline.
    fn line(&mut self) -> Result<&'a [u8], Error> {
        args::line(self.input, &mut self.pos).ok_or_else(|| self.truncated())
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

    pub(super) fn run(&mut self) -> Result<Slot, Error> {
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
                SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 => {
                    let n = self.length(op)?;
                    self.push_text(n)?;
                }
                SHORT_BINBYTES | BINBYTES | BINBYTES8 => {
                    let n = self.length(op)?;
                    self.push_binary(n)?;
                }
                BYTEARRAY8 => {
                    let n = self.length(op)?;
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
                BINPUT | LONG_BINPUT => {
                    let i = self.memo_index(op)?;
                    self.memo_put(i)?;
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
                BINGET | LONG_BINGET => {
                    let i = self.memo_index(op)?;
                    self.memo_get(i)?;
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
            // The first batch becomes the list: no second copy of its items.
            Some(Node::List(list)) if list.is_empty() => *list = items,
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
            Some(Node::Dict(d) | Node::OrderedDict(d)) if d.is_empty() => *d = items,
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
