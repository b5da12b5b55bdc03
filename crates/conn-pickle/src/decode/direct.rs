//! The direct path to a [`Value`]: a stack machine over the opcodes CPython's pickler writes
//! for plain data (scalars, text, bytes, lists, dicts, sets, tuples, datetimes, memo entries
//! of immutable values), building the value in place with no arena, no analysis pass and no
//! second copy.
//!
//! Like the typed stream, it is an accelerator, not a second unpickler: whatever it does not
//! take on (a `GET` of a mutable container, which would share it while it may still grow; an
//! object, a call it does not know, protocol 0 text opcodes, a sparse memo) and every error
//! makes it stop with `None`, and [`value_from_slice_with`](crate::value_from_slice_with)
//! decodes the message again with the arena machine, the implementation of record. Where it
//! answers, it answers what the machine would: the same value, with the same parts shared (a
//! `GET` clones the memo's `Arc`, as the machine's nodes are shared), and it refuses (by
//! stopping) wherever a limit would: depth counted as the machine counts it, values, memo
//! entries, copies and binary int sizes. Its memory is the value it builds, its stack and its
//! memo: at most 32 bytes per pushed value (each at least one byte of input), less than the
//! machine's nodes and slots together.

use std::cell::Cell;

use super::{copy_allowance, py2_name};
use crate::int::BigInt;
use crate::limits::Limits;
use crate::opcodes::args;
use crate::opcodes::*;
use crate::scratch;
use crate::value::{Date, DateTime, Global, Shared, Time, TimeDelta, TimeZone, Value};

/// Gave up: the machine decides.
type R<T> = Option<T>;

/// A value with its depth as the machine counts it (a value the machine keeps as a node is
/// one deeper than the deepest node it holds; scalars and text not yet memoized are 0).
struct Item {
    value: Value,
    depth: u32,
}

/// A memo entry: a value a `GET` may clone (immutable once made), or one it may not (a list,
/// dict or set that may still grow, or a part of a datetime the fast path never made).
enum Memo {
    Held(Value, u32),
    Opaque,
}

struct Direct<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    limits: &'l Limits,
    stack: Vec<Value>,
    /// The depth of each stack value deeper than 0, as (stack index, depth), by index: most
    /// values are scalars, so a batch moves into its container with one copy and no pass.
    deep: Vec<(usize, u32)>,
    marks: Vec<usize>,
    /// Where each mark's opcode is in the input.
    mark_at: Vec<usize>,
    /// Room containers may still reserve ahead of their items (see [`Direct::reserve_ahead`]).
    ahead_budget: usize,
    /// Dense: an index past its end is the machine's, so its length is its entry count.
    memo: Vec<Memo>,
    proto: u8,
    values: u64,
    copy_budget: u64,
}

thread_local! {
    /// The working vectors between decodes (see [`scratch`]).
    static STACK: Cell<Vec<Value>> = const { Cell::new(Vec::new()) };
    static DEEP: Cell<Vec<(usize, u32)>> = const { Cell::new(Vec::new()) };
    static MARKS: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
    static MARK_AT: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
    static MEMO: Cell<Vec<Memo>> = const { Cell::new(Vec::new()) };
}

impl Drop for Direct<'_, '_> {
    fn drop(&mut self) {
        scratch::give(&STACK, std::mem::take(&mut self.stack));
        scratch::give(&DEEP, std::mem::take(&mut self.deep));
        scratch::give(&MARKS, std::mem::take(&mut self.marks));
        scratch::give(&MARK_AT, std::mem::take(&mut self.mark_at));
        scratch::give(&MEMO, std::mem::take(&mut self.memo));
    }
}

/// Decodes `input` into a [`Value`], or gives up (`None`) for the machine to decide.
pub(crate) fn decode(input: &[u8], limits: &Limits) -> Option<Value> {
    let mut stack = scratch::take(&STACK);
    // Room up front for a value per 16 input bytes (at most 2^20): besides sparing regrowth,
    // a message too large for the vector kept between decodes gets a stack from `mmap` (its
    // untouched pages cost nothing), and glibc, seeing a block that size freed, raises its
    // trim threshold to twice it, instead of handing the value's heap back to the kernel
    // after every message and faulting it in again for the next (10× the time of decoding a
    // list of 1000 4 KiB bytes objects, measured). Two bytes of stack per input byte at most.
    stack.reserve((input.len() / 16).min(1 << 20));
    let mut d = Direct {
        input,
        pos: 0,
        limits,
        stack,
        deep: scratch::take(&DEEP),
        marks: scratch::take(&MARKS),
        mark_at: scratch::take(&MARK_AT),
        ahead_budget: input.len() / 4,
        memo: scratch::take(&MEMO),
        proto: 0,
        values: 0,
        copy_budget: copy_allowance(input.len()),
    };
    d.run()
}

impl Direct<'_, '_> {
    #[inline(always)]
    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        args::array(self.input, &mut self.pos)
    }

    #[inline(always)]
    fn push(&mut self, value: Value, depth: u32) -> R<()> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return None;
        }
        if depth > 0 {
            self.deep.push((self.stack.len(), depth));
        }
        self.stack.push(value);
        Some(())
    }

    /// The depth of the top value.
    #[inline(always)]
    fn top_depth(&self) -> u32 {
        match self.deep.last() {
            Some(&(i, d)) if i + 1 == self.stack.len() => d,
            _ => 0,
        }
    }

    /// Raises the depth of the top value to at least `depth`.
    #[inline(always)]
    fn deepen_top(&mut self, depth: u32) {
        let top = self.stack.len().wrapping_sub(1);
        match self.deep.last_mut() {
            Some((i, d)) if *i == top => *d = (*d).max(depth),
            _ if depth > 0 => self.deep.push((top, depth)),
            _ => {}
        }
    }

    /// The deepest value from `start` up, whose depth entries are dropped (they are leaving
    /// the stack).
    #[inline(always)]
    fn depth_from(&mut self, start: usize) -> u32 {
        let mut depth = 0;
        while let Some(&(i, d)) = self.deep.last() {
            if i < start {
                break;
            }
            depth = depth.max(d);
            self.deep.pop();
        }
        depth
    }

    /// Pops the topmost mark: where its values start.
    #[inline(always)]
    fn pop_mark(&mut self) -> R<usize> {
        Some(self.pop_mark_at()?.0)
    }

    /// Pops the topmost mark: where its values start, and where its opcode is.
    #[inline(always)]
    fn pop_mark_at(&mut self) -> R<(usize, usize)> {
        Some((self.marks.pop()?, self.mark_at.pop()?))
    }

    /// After a batch of `items` read since input position `from`, how many more a container
    /// should make room for: when the batch was a full one of CPython's and another follows,
    /// as many as the rest of the input holds at the batch's bytes per item (a dict of 10^4
    /// entries then grows once, not by doubling ten times, each time copying it whole).
    /// Guesses past the end of the container are paid from a budget of one item per four
    /// input bytes for the whole message, so memory stays a small multiple of its size.
    fn reserve_ahead(&mut self, items: usize, from: usize) -> usize {
        if items != BATCH || self.input.get(self.pos) != Some(&MARK) {
            return 0;
        }
        let per_item = ((self.pos - from) / items).max(1);
        let guess = ((self.input.len() - self.pos) / per_item).min(self.ahead_budget);
        self.ahead_budget -= guess;
        guess
    }

    /// Where the values above the topmost mark start.
    #[inline(always)]
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    #[inline(always)]
    fn pop(&mut self) -> R<Item> {
        if self.stack.len() <= self.floor() {
            return None;
        }
        let depth = self.top_depth();
        if depth > 0 {
            self.deep.pop();
        }
        let value = self.stack.pop()?;
        Some(Item { value, depth })
    }

    /// The value below the items of the topmost mark, which is popped: the target of
    /// `APPENDS`, `SETITEMS` and `ADDITEMS`, and where its items start.
    #[inline(always)]
    fn mark_target(&mut self) -> R<(usize, usize)> {
        let (mark, at) = self.pop_mark_at()?;
        (mark > self.floor()).then_some((mark, at))
    }

    fn run(&mut self) -> R<Value> {
        loop {
            let op = *self.input.get(self.pos)?;
            self.pos += 1;
            match op {
                STOP => {
                    if !self.marks.is_empty()
                        || self.stack.len() != 1
                        || self.pos != self.input.len()
                    {
                        return None;
                    }
                    let root = self.pop()?;
                    return (root.depth <= self.limits.max_depth).then_some(root.value);
                }
                PROTO => {
                    let [v] = self.array()?;
                    if v > 5 {
                        return None;
                    }
                    self.proto = v;
                }
                FRAME => {
                    let n = u64::from_le_bytes(self.array()?);
                    if n > (self.input.len() - self.pos) as u64 {
                        return None;
                    }
                }
                MARK => {
                    self.marks.push(self.stack.len());
                    self.mark_at.push(self.pos - 1);
                    self.scalar_batch()?;
                }
                NONE | NEWTRUE | NEWFALSE | BININT | BININT1 | BININT2 | BINFLOAT => {
                    let v = plain_scalar(self.input, op, &mut self.pos)?;
                    self.push(v, 0)?;
                }
                LONG1 => {
                    let [n] = self.array()?;
                    self.binary_int(n.into())?;
                }
                LONG4 => {
                    let n = u64::try_from(i32::from_le_bytes(self.array()?)).ok()?;
                    self.binary_int(n)?;
                }
                SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 => {
                    let n = args::length(self.input, &mut self.pos, op)?;
                    let bytes = args::take(self.input, &mut self.pos, n)?;
                    let text = std::str::from_utf8(bytes).ok()?;
                    self.push(Value::Str(text.into()), 0)?;
                }
                SHORT_BINBYTES | BINBYTES | BINBYTES8 => {
                    let n = args::length(self.input, &mut self.pos, op)?;
                    let bytes = args::take(self.input, &mut self.pos, n)?;
                    if !self.datetime_call(bytes)? {
                        self.push(Value::Bytes(bytes.into()), 0)?;
                    }
                }
                EMPTY_TUPLE => self.push(Value::Tuple(Shared::new(Vec::new())), 1)?,
                EMPTY_LIST => self.push(Value::List(Shared::new(Vec::new())), 1)?,
                EMPTY_DICT => self.push(Value::Dict(Shared::new(Vec::new())), 1)?,
                EMPTY_SET => self.push(Value::Set(Shared::new(Vec::new())), 1)?,
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = usize::from(op - TUPLE1 + 1);
                    let start = self.stack.len().checked_sub(n)?;
                    if start < self.floor() {
                        return None;
                    }
                    let (items, depth) = self.take_items(start);
                    self.push(Value::Tuple(Shared::new(items)), depth)?;
                }
                TUPLE | LIST | FROZENSET => {
                    let start = self.pop_mark()?;
                    let (items, depth) = self.take_items(start);
                    let value = match op {
                        TUPLE => Value::Tuple(Shared::new(items)),
                        LIST => Value::List(Shared::new(items)),
                        _ => Value::FrozenSet(Shared::new(items)),
                    };
                    self.push(value, depth)?;
                }
                DICT => {
                    let start = self.pop_mark()?;
                    let (pairs, depth) = self.take_pairs(start)?;
                    self.push(Value::Dict(Shared::new(pairs)), depth)?;
                }
                APPEND => {
                    let start = self.stack.len().checked_sub(1)?;
                    if start <= self.floor() {
                        return None;
                    }
                    self.append(start, None)?;
                }
                APPENDS => {
                    let (start, at) = self.mark_target()?;
                    self.append(start, Some(at))?;
                }
                ADDITEMS => {
                    let (start, _) = self.mark_target()?;
                    let (items, depth) = self.take_items(start);
                    let Some(Value::Set(set)) = self.stack.last_mut() else {
                        return None;
                    };
                    set.get_mut()?.extend(items);
                    self.deepen_top(depth);
                }
                SETITEM => {
                    let start = self.stack.len().checked_sub(2)?;
                    if start <= self.floor() {
                        return None;
                    }
                    self.set_items(start, None)?;
                }
                SETITEMS => {
                    let (start, at) = self.mark_target()?;
                    self.set_items(start, Some(at))?;
                }
                STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (&module.value, &name.value)
                    else {
                        return None;
                    };
                    // Each global copies its (possibly memoized) names: paid for, as the
                    // machine pays.
                    let units = (module.len() + name.len()) as u64;
                    self.copy_budget = self.copy_budget.checked_sub(units)?;
                    let global = self.global(module, name);
                    self.push(global, 1)?;
                }
                GLOBAL => {
                    let module = args::line(self.input, &mut self.pos)?;
                    let name = args::line(self.input, &mut self.pos)?;
                    let module = std::str::from_utf8(module).ok()?;
                    let name = std::str::from_utf8(name).ok()?;
                    let global = self.global(module, name);
                    self.push(global, 1)?;
                }
                REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Value::Tuple(args) = &args.value else {
                        return None;
                    };
                    let made = known_call(&callable.value, args, &mut self.copy_budget)?;
                    self.push(made.value, made.depth)?;
                }
                MEMOIZE => {
                    let index = self.memo.len() as u64;
                    self.memoize_top(index)?;
                }
                BINPUT | LONG_BINPUT => {
                    let index = args::memo_index(self.input, &mut self.pos, op)?;
                    self.memoize_top(index)?;
                }
                BINGET | LONG_BINGET => {
                    let index = args::memo_index(self.input, &mut self.pos, op)?;
                    let Memo::Held(value, depth) = self.memo.get(usize::try_from(index).ok()?)?
                    else {
                        return None;
                    };
                    let (value, depth) = (value.clone(), *depth);
                    self.push(value, depth)?;
                }
                _ => return None,
            }
        }
    }

    fn binary_int(&mut self, n: u64) -> R<()> {
        if n > self.limits.max_int_bytes {
            return None;
        }
        let bytes = args::take(self.input, &mut self.pos, n)?;
        let big = BigInt::from_signed_le_bytes(bytes);
        match big.to_i64() {
            Some(v) => self.push(Value::Int(v), 0),
            None => self.push(Value::BigInt(big), 1),
        }
    }

    fn global(&self, module: &str, name: &str) -> Value {
        let (module, name) = if self.proto < 3 {
            py2_name(module, name)
        } else {
            (module, name)
        };
        Value::Global(Shared::new(Global::new(module, name)))
    }

    /// The items from `start` up, taken off the stack, and the depth of a container of them.
    fn take_items(&mut self, start: usize) -> (Vec<Value>, u32) {
        let depth = self.depth_from(start);
        (self.stack.split_off(start), depth.saturating_add(1))
    }

    /// The items from `start` up as key-value pairs (`None` for an odd count), taken off the
    /// stack, and the depth of a container of them.
    fn take_pairs(&mut self, start: usize) -> R<(Vec<(Value, Value)>, u32)> {
        if !(self.stack.len() - start).is_multiple_of(2) {
            return None;
        }
        let depth = self.depth_from(start);
        let mut pairs = Vec::with_capacity((self.stack.len() - start) / 2);
        let mut items = self.stack.drain(start..);
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            pairs.push((k, v));
        }
        Some((pairs, depth.saturating_add(1)))
    }

    /// Right after a `MARK` above a list or set: a batch of plain scalars (ints, floats,
    /// `None`, bools) closed by its `APPENDS` / `ADDITEMS` is read straight into the container,
    /// with no stack. Anything else in the batch, and nothing is read: the opcodes are
    /// interpreted one by one as usual.
    fn scalar_batch(&mut self) -> R<()> {
        let close = match self.stack.last() {
            Some(Value::List(_)) => APPENDS,
            Some(Value::Set(_)) => ADDITEMS,
            _ => return Some(()),
        };
        let mut items = Vec::new();
        let mut at = self.pos;
        loop {
            let Some(&op) = self.input.get(at) else {
                return Some(());
            };
            let mut next = at + 1;
            let value = match op {
                NONE | NEWTRUE | NEWFALSE | BININT | BININT1 | BININT2 | BINFLOAT => {
                    plain_scalar(self.input, op, &mut next)?
                }
                _ if op == close && !items.is_empty() => break,
                _ => return Some(()),
            };
            if items.is_empty() {
                // Room for a batch, or for what the rest of the input could hold.
                items.reserve_exact(BATCH.min(self.input.len() - at));
            }
            items.push(value);
            at = next;
        }
        // The container must be above the mark below this one, as `mark_target` requires.
        let (_, batch_at) = self.mark_target()?;
        self.values += items.len() as u64;
        if self.values > self.limits.max_values {
            return None;
        }
        self.pos = at + 1;
        let ahead = self.reserve_ahead(items.len(), batch_at);
        match self.stack.last_mut() {
            Some(Value::List(list)) => fill(list.get_mut()?, items, ahead),
            Some(Value::Set(set)) => set.get_mut()?.extend(items),
            _ => return None,
        }
        Some(())
    }

    /// `APPEND` / `APPENDS`: the items from `start` up go into the list below them.
    fn append(&mut self, start: usize, batch_from: Option<usize>) -> R<()> {
        let (items, depth) = self.take_items(start);
        let ahead = batch_from.map_or(0, |at| self.reserve_ahead(items.len(), at));
        let Some(Value::List(list)) = self.stack.last_mut() else {
            return None;
        };
        fill(list.get_mut()?, items, ahead);
        self.deepen_top(depth);
        Some(())
    }

    /// `SETITEM` / `SETITEMS`: the pairs from `start` up go into the dict below them.
    fn set_items(&mut self, start: usize, batch_from: Option<usize>) -> R<()> {
        let (pairs, depth) = self.take_pairs(start)?;
        let ahead = batch_from.map_or(0, |at| self.reserve_ahead(pairs.len(), at));
        let Some(Value::Dict(dict)) = self.stack.last_mut() else {
            return None;
        };
        fill(dict.get_mut()?, pairs, ahead);
        self.deepen_top(depth);
        Some(())
    }

    /// `PUT`, `BINPUT`, `MEMOIZE` of the top value at `index`.
    fn memoize_top(&mut self, index: u64) -> R<()> {
        if self.stack.len() <= self.floor() {
            return None;
        }
        let entry = match self.stack.last()? {
            // May still grow: a `GET` of it is the machine's.
            Value::List(_) | Value::Dict(_) | Value::Set(_) => Memo::Opaque,
            value => {
                let value = value.clone();
                // The machine keeps memoized text and bytes as nodes (one deeper).
                if matches!(value, Value::Str(_) | Value::Bytes(_)) {
                    self.deepen_top(1);
                }
                Memo::Held(value, self.top_depth())
            }
        };
        self.memo_set(index, entry)
    }

    /// Stores `entry` at `index` of the dense memo (an index past its end is the machine's).
    fn memo_set(&mut self, index: u64, entry: Memo) -> R<()> {
        let i = usize::try_from(index).ok()?;
        if i == self.memo.len() {
            self.memo.push(entry);
        } else {
            *self.memo.get_mut(i)? = entry;
        }
        (self.memo.len() as u64 <= self.limits.max_memo).then_some(())
    }

    /// A datetime state (`bytes`, just read) in CPython's call to `datetime.datetime`,
    /// `datetime.date` or `datetime.time`, taken in one step: the callable below it, then the
    /// state's memo entry, its tuple (with a `tzinfo` fetched from the memo, or none) and the
    /// tuple's memo entry, then `REDUCE`. Whether it was (and the value is pushed); otherwise
    /// nothing is read or changed and the bytes are an ordinary value.
    fn datetime_call(&mut self, bytes: &[u8]) -> R<bool> {
        let Some(Value::Global(g)) = self.stack.last() else {
            return Some(false);
        };
        if g.module() != "datetime" || self.stack.len() <= self.floor() {
            return Some(false);
        }
        let mut at = self.pos;
        let state_memo = self.memo_op(&mut at);
        // Where the state itself goes in the memo, which a `GET` right after it would fetch.
        let state_index = state_memo.map(|i| i.unwrap_or(self.memo.len() as u64));
        let tz = match self.input.get(at) {
            Some(&TUPLE1) => {
                at += 1;
                None
            }
            Some(&(op @ BINGET | op @ LONG_BINGET)) => {
                at += 1;
                let index = args::memo_index(self.input, &mut at, op)?;
                if state_index == Some(index) {
                    return Some(false);
                }
                let Some(Memo::Held(tz, depth)) =
                    usize::try_from(index).ok().and_then(|i| self.memo.get(i))
                else {
                    return Some(false);
                };
                if self.input.get(at) != Some(&TUPLE2) {
                    return Some(false);
                }
                at += 1;
                Some(Item {
                    value: tz.clone(),
                    depth: *depth,
                })
            }
            _ => return Some(false),
        };
        let tuple_memo = self.memo_op(&mut at);
        if self.input.get(at) != Some(&REDUCE) {
            return Some(false);
        }
        let Some(made) = datetime_value(g.name(), bytes, tz) else {
            return Some(false);
        };
        // Committed: the pattern matched and the value is made. Each intermediate is counted
        // as the machine pushes it (state, tzinfo, tuple), and memoized as opaque.
        self.values += 3;
        for index in [state_memo, tuple_memo].into_iter().flatten() {
            let index = index.unwrap_or(self.memo.len() as u64);
            self.memo_set(index, Memo::Opaque)?;
        }
        self.pos = at + 1;
        self.pop()?;
        self.push(made.value, made.depth)?;
        Some(true)
    }

    /// A memo opcode at `at`, skipped: `Some(None)` for `MEMOIZE`, `Some(Some(i))` for a
    /// `BINPUT` / `LONG_BINPUT` to `i`, `None` if there is none.
    fn memo_op(&self, at: &mut usize) -> Option<Option<u64>> {
        match self.input.get(*at) {
            Some(&MEMOIZE) => {
                *at += 1;
                Some(None)
            }
            Some(&(op @ BINPUT | op @ LONG_BINPUT)) => {
                let mut next = *at + 1;
                let index = args::memo_index(self.input, &mut next, op)?;
                *at = next;
                Some(Some(index))
            }
            _ => None,
        }
    }
}

/// Puts a batch into a container's vector, with room for `ahead` more: the first batch
/// becomes the vector (no second copy of its items), later ones are appended.
fn fill<T>(into: &mut Vec<T>, mut items: Vec<T>, ahead: usize) {
    if into.is_empty() {
        items.reserve_exact(ahead);
        *into = items;
    } else {
        into.reserve_exact(ahead);
        into.extend(items);
    }
}

/// The value of a plain scalar opcode (`None`, a bool, `BININT*`, `BINFLOAT`), its argument
/// read from `pos` on; `None` for another opcode or a truncated argument.
#[inline(always)]
fn plain_scalar(input: &[u8], op: u8, pos: &mut usize) -> R<Value> {
    Some(match op {
        NONE => Value::None,
        NEWTRUE => Value::Bool(true),
        NEWFALSE => Value::Bool(false),
        BININT1 => Value::Int(args::array::<1>(input, pos)?[0].into()),
        BININT2 => Value::Int(u16::from_le_bytes(args::array(input, pos)?).into()),
        BININT => Value::Int(i32::from_le_bytes(args::array(input, pos)?).into()),
        BINFLOAT => Value::Float(f64::from_be_bytes(args::array(input, pos)?)),
        _ => return None,
    })
}

/// `callable(*args)` for the callables whose result a value holds natively (the datetime
/// types); `None` for any other call.
fn known_call(callable: &Value, args: &[Value], copy_budget: &mut u64) -> R<Item> {
    let Value::Global(g) = callable else {
        return None;
    };
    if g.module() != "datetime" {
        return None;
    }
    match (g.name(), args) {
        ("datetime" | "date" | "time", [Value::Bytes(state), rest @ ..]) if rest.len() <= 1 => {
            let tz = match rest.first() {
                Some(tz) => Some(Item {
                    value: tz.clone(),
                    depth: value_depth(tz)?,
                }),
                None => None,
            };
            datetime_value(g.name(), state, tz)
        }
        ("timedelta", [Value::Int(d), Value::Int(s), Value::Int(us)]) => Some(Item {
            value: Value::TimeDelta(TimeDelta::new(*d, *s, *us)?),
            depth: 1,
        }),
        ("timezone", [Value::TimeDelta(offset), rest @ ..]) if rest.len() <= 1 => {
            let name = match rest.first() {
                None => None,
                Some(Value::Str(name)) => Some(name),
                Some(_) => return None,
            };
            let units = name.map_or(0, |n| n.len()) as u64;
            *copy_budget = copy_budget.checked_sub(units)?;
            let tz = TimeZone::new(*offset, name.map(|n| &**n))?;
            Some(Item {
                value: Value::TimeZone(Shared::new(tz)),
                depth: 1,
            })
        }
        _ => None,
    }
}

/// The depth the machine gives an argument already built (only a `tzinfo` reaches here), or
/// `None` where the tuple holding it no longer says (text may or may not have been memoized):
/// the machine decides those.
fn value_depth(v: &Value) -> Option<u32> {
    match v {
        Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_) => Some(0),
        Value::TimeZone(_) | Value::TimeDelta(_) | Value::Date(_) | Value::Global(_) => Some(1),
        _ => None,
    }
}

/// A `datetime.datetime`, `date` or `time` from its pickled state and `tzinfo`, as the machine
/// makes it (`None` for a state the machine refuses, so that it reports it).
fn datetime_value(kind: &str, state: &[u8], tz: Option<Item>) -> R<Item> {
    // `date` takes its state alone; with a second argument it is an object the machine makes.
    if kind == "date" && tz.is_some() {
        return None;
    }
    let tz = tz.filter(|t| !matches!(t.value, Value::None));
    let depth = tz.as_ref().map_or(0, |t| t.depth).checked_add(1)?;
    let time = |b: &[u8], tz: Option<Item>| -> R<Time> {
        let [h, mi, s, u1, u2, u3] = *b else {
            return None;
        };
        let us = u32::from(u1) << 16 | u32::from(u2) << 8 | u32::from(u3);
        let t = Time::new(h & 0x7f, mi, s, us)?;
        Some(t.with_fold(h & 0x80 != 0).with_tzinfo(tz.map(|t| t.value)))
    };
    let date = |b: &[u8]| -> R<Date> {
        let [yhi, ylo, m, d] = *b else {
            return None;
        };
        Date::new(u16::from(yhi) * 256 + u16::from(ylo), m, d)
    };
    let value = match kind {
        "datetime" if state.len() == 10 => {
            let mut d = [0u8; 4];
            d.copy_from_slice(&state[..4]);
            let fold = d[2] & 0x80 != 0;
            d[2] &= 0x7f;
            let t = time(&state[4..], tz)?;
            Value::DateTime(Shared::new(DateTime::new(date(&d)?, t.with_fold(fold))))
        }
        "date" => {
            return Some(Item {
                value: Value::Date(date(state)?),
                depth: 1,
            });
        }
        "time" => Value::Time(Shared::new(time(state, tz)?)),
        _ => return None,
    };
    Some(Item { value, depth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::direct_agrees_with_machine;

    use crate::stream::test_common as common;

    fn tight() -> Limits {
        Limits::default()
            .max_depth(6)
            .max_memo(8)
            .max_values(48)
            .max_int_bytes(9)
    }

    /// Wherever the direct path answers, on CPython's pickles (2.7, 3.11, 3.13), our own
    /// output of them in each protocol, and every input the fuzzer kept, the machine answers
    /// the same, under the default limits and tight ones; and it answers for most of CPython's.
    #[test]
    fn direct_agrees_with_the_machine() {
        let mut inputs = Vec::new();
        let mut cpython = 0;
        for kat in [
            include_str!("../../tests/data/kat-3.11.txt"),
            include_str!("../../tests/data/kat-3.13.txt"),
            include_str!("../../tests/data/kat-2.7.txt"),
        ] {
            for case in common::cases(kat) {
                if let Ok(v) = crate::value_from_slice(&case.pickle) {
                    for p in [
                        crate::Protocol::V2,
                        crate::Protocol::V3,
                        crate::Protocol::V4,
                        crate::Protocol::V5,
                    ] {
                        inputs.push(crate::value_to_vec(&v, p).unwrap());
                    }
                }
                inputs.insert(0, case.pickle);
                cpython += 1;
            }
        }
        let (mut answered, mut cpython_answered) = (0, 0);
        for (i, input) in inputs.iter().enumerate() {
            if direct_agrees_with_machine(input, &Limits::default()) {
                answered += 1;
                cpython_answered += usize::from(i < cpython);
            }
            direct_agrees_with_machine(input, &tight());
        }
        assert!(
            answered * 2 > inputs.len(),
            "{answered} of {}",
            inputs.len()
        );
        assert!(cpython_answered > 0);
        let fuzz = common::fuzz_inputs();
        for data in &fuzz {
            direct_agrees_with_machine(data, &Limits::default());
            direct_agrees_with_machine(data, &tight());
        }
        assert!(fuzz.len() > 500, "{} inputs", fuzz.len());
    }

    fn pickle(body: &[u8]) -> Vec<u8> {
        let mut p = vec![PROTO, 4];
        p.extend_from_slice(body);
        p.push(STOP);
        p
    }

    /// A list fetched from the memo would be shared while it may still grow: the direct path
    /// leaves it to the machine, which keeps the sharing (`[l, l]`, and `l` appended to after
    /// it was fetched).
    #[test]
    fn a_memoized_list_fetched_again_is_the_machines() {
        let shared = pickle(&[
            EMPTY_LIST, MEMOIZE, MARK, EMPTY_LIST, MEMOIZE, BINGET, 1, APPENDS,
        ]);
        assert!(decode(&shared, &Limits::default()).is_none());
        let v = crate::value_from_slice(&shared).unwrap();
        let Value::List(outer) = &v else {
            panic!("{v:?}")
        };
        let (Value::List(a), Value::List(b)) = (&outer[0], &outer[1]) else {
            panic!("{v:?}")
        };
        assert!(Shared::ptr_eq(a, b));
        let grown = pickle(&[
            EMPTY_LIST, MEMOIZE, EMPTY_LIST, MEMOIZE, BINGET, 1, APPEND, NONE, APPEND,
        ]);
        assert!(decode(&grown, &Limits::default()).is_none());
        // Immutable values fetched again are answered here, and shared as the machine shares.
        let tuples = pickle(&[
            EMPTY_LIST, MEMOIZE, MARK, NONE, TUPLE1, MEMOIZE, BINGET, 1, APPENDS,
        ]);
        let v = decode(&tuples, &Limits::default()).unwrap();
        let Value::List(items) = &v else {
            panic!("{v:?}")
        };
        let (Value::Tuple(a), Value::Tuple(b)) = (&items[0], &items[1]) else {
            panic!("{v:?}")
        };
        assert!(Shared::ptr_eq(a, b));
        assert!(direct_agrees_with_machine(&tuples, &Limits::default()));
    }

    /// A batch of plain scalars goes straight into its list or set; a batch with anything
    /// else in it, one closed by the wrong opcode, or one over the values limit, is read
    /// opcode by opcode (or left to the machine) with the same result.
    #[test]
    fn scalar_batches() {
        let batch = [
            BININT1, 1, BININT2, 2, 1, BININT, 3, 0, 0, 0, NONE, NEWTRUE, NEWFALSE,
        ];
        let mut float = vec![BINFLOAT];
        float.extend(2.5f64.to_be_bytes());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                [&[EMPTY_LIST, MARK][..], &batch, &float, &[APPENDS]].concat(),
                "[1, 258, 3, None, True, False, 2.5]",
            ),
            (
                [&[EMPTY_SET, MARK][..], &batch, &[ADDITEMS]].concat(),
                "{1, 258, 3, None, True, False}",
            ),
            (
                [&[EMPTY_LIST, MARK][..], &batch, &[EMPTY_LIST, APPENDS]].concat(),
                "[1, 258, 3, None, True, False, []]",
            ),
            (
                [
                    &[EMPTY_LIST, MARK, NONE, APPENDS, MARK][..],
                    &batch,
                    &[APPENDS],
                ]
                .concat(),
                "[None, 1, 258, 3, None, True, False]",
            ),
            (
                [&[EMPTY_LIST, MARK, MARK][..], &batch, &[TUPLE, APPENDS]].concat(),
                "[(1, 258, 3, None, True, False)]",
            ),
        ];
        for (body, repr) in cases {
            let p = pickle(&body);
            let v = decode(&p, &Limits::default()).unwrap();
            assert_eq!(v.to_string(), repr);
            assert!(direct_agrees_with_machine(&p, &Limits::default()));
            // Under every values limit around what the message pushes, both answer alike.
            let n = crate::decode::decode(&p, &Limits::default())
                .map(|_| ())
                .ok();
            assert!(n.is_some());
            for max in 1..20 {
                let limits = Limits::default().max_values(max);
                assert_eq!(
                    decode(&p, &limits).is_some(),
                    crate::decode::decode(&p, &limits).is_ok(),
                    "{repr} {max}"
                );
            }
        }
        // Closed by the wrong opcode: the machine's error.
        let p = pickle(&[&[EMPTY_LIST, MARK][..], &batch, &[ADDITEMS]].concat());
        assert!(decode(&p, &Limits::default()).is_none());
        assert!(crate::value_from_slice(&p).is_err());
    }

    /// Depth is counted as the machine counts it, memoized text included: at the limit both
    /// answer, one past it both refuse.
    #[test]
    fn depth_at_the_limit() {
        for memo_text in [false, true] {
            for levels in 1..8u32 {
                let mut body = vec![SHORT_BINUNICODE, 1, b'x'];
                if memo_text {
                    body.push(MEMOIZE);
                }
                body.extend(std::iter::repeat_n(TUPLE1, levels as usize));
                let p = pickle(&body);
                let limits = Limits::default().max_depth(4);
                let machine = crate::decode::decode(&p, &limits);
                let direct = decode(&p, &limits);
                assert_eq!(machine.is_ok(), direct.is_some(), "{levels} {memo_text}");
                assert_eq!(
                    direct.is_some(),
                    levels + u32::from(memo_text) <= 4,
                    "{levels} {memo_text}"
                );
            }
        }
    }

    /// CPython's datetimes, with and without a `tzinfo` from the memo, are taken in one step
    /// and come out as the machine makes them; a `GET` of the state or the tuple the step
    /// skipped is the machine's.
    #[test]
    fn datetimes_in_one_step() {
        let state = [0x07, 0xe8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00, 0x06];
        let mut naive = vec![EMPTY_LIST, MEMOIZE, MARK];
        naive.extend([SHORT_BINUNICODE, 8]);
        naive.extend(b"datetime");
        naive.extend([MEMOIZE, SHORT_BINUNICODE, 8]);
        naive.extend(b"datetime");
        naive.extend([MEMOIZE, STACK_GLOBAL, MEMOIZE, SHORT_BINBYTES, 10]);
        naive.extend(state);
        naive.extend([MEMOIZE, TUPLE1, MEMOIZE, REDUCE, MEMOIZE]);
        let mut p = naive.clone();
        p.push(APPENDS);
        let p = pickle(&p);
        let v = decode(&p, &Limits::default()).unwrap();
        assert_eq!(v.to_string(), "[datetime.datetime(2024, 1, 2, 3, 4, 5, 6)]");
        assert!(direct_agrees_with_machine(&p, &Limits::default()));
        // A second one with a "tzinfo" fetched from the memo (the first datetime, entry 6: any
        // value is a tzinfo to the pickle), its state put with `BINPUT`.
        let mut with_tz = naive.clone();
        with_tz.extend([BINGET, 3, SHORT_BINBYTES, 10]);
        with_tz.extend(state);
        with_tz.extend([BINPUT, 7, BINGET, 6, TUPLE2, BINPUT, 8, REDUCE, APPENDS]);
        let p = pickle(&with_tz);
        assert!(direct_agrees_with_machine(&p, &Limits::default()));
        // Fetching the skipped state, or the skipped tuple, gives up.
        for index in [4, 5] {
            let mut get = naive.clone();
            get.extend([BINGET, index, APPENDS]);
            let p = pickle(&get);
            assert!(decode(&p, &Limits::default()).is_none(), "{index}");
            assert!(crate::value_from_slice(&p).is_ok());
        }
        // A bad state is the machine's to report.
        let mut bad = naive.clone();
        let at = bad.iter().position(|&b| b == SHORT_BINBYTES).unwrap();
        bad[at + 2 + 2] = 13; // month 13
        bad.push(APPENDS);
        let p = pickle(&bad);
        assert!(decode(&p, &Limits::default()).is_none());
        assert!(crate::value_from_slice(&p).is_err());
    }
}
