//! The streaming deserializer: reads opcodes straight into the Rust type asked for, with no
//! stack of values and no tree, for the pickles typed `recv` meets most (CPython's output for
//! dicts, lists, sets, strings, bytes, ints and floats; `PUT`/`GET` of scalars and text).
//!
//! It is an accelerator, not a second unpickler: whenever the input needs the full machine (a
//! tuple whose items precede its opcode, a `GET` of a container, a global, a call, protocol 0
//! text opcodes…) it stops with [`Bail`], and [`from_slice_with`](crate::from_slice_with)
//! decodes the message again with the arena machine, which is the implementation of record.
//! Limits hold here too: nesting is counted, every claimed length is checked against the bytes
//! present, and text fetched from the memo counts against the expansion limit.

use std::cell::Cell;

use serde::de::{self, DeserializeSeed, Visitor};

use crate::limits::Limits;
use crate::opcodes::args;
use crate::opcodes::*;
use crate::scratch;

/// Why the streaming path gave up: the machine must decide (or report the error).
#[derive(Debug)]
pub(crate) struct Bail;

/// The streaming deserializer's only error: give up. Zero-sized, so results stay in registers;
/// errors of the Rust type's own `Deserialize` bail too, and the machine reports them.
#[derive(Debug)]
pub(crate) struct StreamError;

#[expect(
    non_upper_case_globals,
    reason = "a unit value named like the `?` it stands for"
)]
impl StreamError {
    const Bail: Self = Self;
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("needs the full unpickler")
    }
}

impl std::error::Error for StreamError {}

impl de::Error for StreamError {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Self
    }
}

type R<T> = Result<T, StreamError>;

/// `Stream::last` when the last value cannot be replayed from the memo.
const NOTHING: usize = usize::MAX;

/// `Stream::last` when no value is above the topmost `MARK` (or none at all yet): a `PUT`
/// there is CPython's stack underflow, which the machine reports.
const FENCE: usize = usize::MAX - 1;

/// A memo entry: text as read (checked once, when first read), or where any other value's
/// opcode starts.
#[derive(Clone, Copy)]
enum Memo<'de> {
    Str(&'de str),
    At(usize),
}

pub(crate) struct Stream<'de> {
    input: &'de [u8],
    pos: usize,
    /// Where the opcode of each memoized value starts ([`NOTHING`] for one the stream cannot
    /// replay: a container, or anything but a scalar, text or bytes). A `GET` reads the value
    /// there again; a `MEMOIZE` costs one push.
    memo: Vec<Memo<'de>>,
    /// Where the opcode of the last value read starts ([`NOTHING`] after a container), for
    /// `PUT` / `MEMOIZE` right after it: a position, one store per value, decoded again only
    /// when memoized.
    last: usize,
    depth: u32,
    max_depth: u32,
    /// The last text read and where its opcode starts, for a `MEMOIZE` right after it.
    last_text: (usize, &'de str),
    /// Budget for text replayed from the memo (bytes), from the expansion allowed.
    replay_budget: u64,
    /// Whether the last list or set read stopped between batches (set when its `Items` is
    /// dropped).
    items_between: bool,
    /// Input bytes that size hints may still claim (see [`Items::size_hint`]): all the hints
    /// of one message together never ask for more items than its bytes could hold.
    hint_budget: Cell<usize>,
    /// Input bytes that counting a batch for a size hint may still read (see
    /// [`Items::size_hint`]).
    scan_budget: Cell<usize>,
}

thread_local! {
    /// The memo's vector between decodes (see [`scratch`]).
    static MEMO: Cell<Vec<Memo<'static>>> = const { Cell::new(Vec::new()) };
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        scratch::give(&MEMO, std::mem::take(&mut self.memo));
    }
}

/// Decodes `input` into `T` by streaming, or bails.
pub(crate) fn from_slice<'de, T: de::Deserialize<'de>>(
    input: &'de [u8],
    limits: &Limits,
) -> Result<T, Bail> {
    let mut s = Stream {
        input,
        pos: 0,
        memo: scratch::take(&MEMO),
        last: FENCE,
        last_text: (NOTHING, ""),
        depth: 0,
        max_depth: limits.max_depth,
        replay_budget: limits.expanded_for(input.len()).saturating_mul(16),
        items_between: true,
        hint_budget: Cell::new(input.len()),
        scan_budget: Cell::new(input.len().saturating_mul(2)),
    };
    s.skip_header().map_err(|_| Bail)?;
    let value = T::deserialize(&mut s).map_err(|_| Bail)?;
    s.skip_memo_ops().map_err(|_| Bail)?;
    if s.input.get(s.pos) == Some(&STOP) && s.pos + 1 == s.input.len() {
        Ok(value)
    } else {
        Err(Bail)
    }
}

/// Where a value starts: the opcodes the stream understands at a value position.
enum Head<'de> {
    None,
    Bool(bool),
    Int(i64),
    /// A `LONG1` of 9 to 16 bytes.
    Int128(i128),
    Float(f64),
    Str(&'de str),
    Bytes(&'de [u8]),
    List,
    Dict,
    Set,
    /// `MARK`: a tuple, list, dict or frozenset closed by its opcode after the items.
    Mark,
    EmptyTuple,
}

impl<'de> Stream<'de> {
    #[inline(always)]
    fn peek(&self) -> R<u8> {
        self.input.get(self.pos).copied().ok_or(StreamError::Bail)
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> R<&'de [u8]> {
        args::take(self.input, &mut self.pos, n as u64).ok_or(StreamError::Bail)
    }

    #[inline(always)]
    fn arr<const N: usize>(&mut self) -> R<[u8; N]> {
        args::array(self.input, &mut self.pos).ok_or(StreamError::Bail)
    }

    fn skip_header(&mut self) -> R<()> {
        if self.peek()? == PROTO {
            let v = self.arr::<2>()?[1];
            if v > 5 {
                return Err(StreamError::Bail);
            }
        }
        Ok(())
    }

    /// Skips `FRAME`s and records `PUT` / `MEMOIZE` of the last value.
    #[inline(always)]
    fn skip_memo_ops(&mut self) -> R<()> {
        match self.input.get(self.pos) {
            // One `MEMOIZE` after a value, CPython's usual: here, without a call.
            Some(&MEMOIZE)
                if !self
                    .input
                    .get(self.pos + 1)
                    .is_some_and(|&op| is_memo_op(op)) =>
            {
                self.pos += 1;
                self.memoize_last()
            }
            Some(&op) if is_memo_op(op) => self.memo_ops(),
            _ => Ok(()),
        }
    }

    #[inline(always)]
    fn memoize_last(&mut self) -> R<()> {
        let m = self.memo_of_last()?;
        self.memo.push(m);
        Ok(())
    }

    #[inline(never)]
    fn memo_ops(&mut self) -> R<()> {
        loop {
            match self.input.get(self.pos).copied() {
                Some(FRAME) => {
                    self.pos += 1;
                    let n = u64::from_le_bytes(self.arr()?);
                    if n > (self.input.len() - self.pos) as u64 {
                        return Err(StreamError::Bail);
                    }
                }
                Some(MEMOIZE) => {
                    self.pos += 1;
                    self.memoize_last()?;
                }
                Some(op @ (BINPUT | LONG_BINPUT)) => {
                    self.pos += 1;
                    let i = self.get_index(op)?;
                    self.put(i)?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn put(&mut self, i: usize) -> R<()> {
        // Dense indices only (what CPython writes); anything else goes to the machine.
        let m = self.memo_of_last()?;
        if i == self.memo.len() {
            self.memo.push(m);
            Ok(())
        } else if i < self.memo.len() {
            self.memo[i] = m;
            Ok(())
        } else {
            Err(StreamError::Bail)
        }
    }

    /// The length argument of a text or bytes opcode (see [`args::length`]).
    #[inline(always)]
    fn length(&mut self, op: u8) -> R<usize> {
        args::length(self.input, &mut self.pos, op)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(StreamError::Bail)
    }

    /// What the memo keeps of the value whose opcode starts at `last` (read before, so valid):
    /// that position, or [`NOTHING`] if it cannot be replayed; a bail when there is no value to
    /// memoize (`FENCE`, or right after a `MARK`).
    #[inline(always)]
    fn memo_of_last(&mut self) -> R<Memo<'de>> {
        if self.last == FENCE {
            return Err(StreamError::Bail);
        }
        let Some(&op) = self.input.get(self.last) else {
            return Ok(Memo::At(NOTHING));
        };
        Ok(match op {
            MARK => return Err(StreamError::Bail),
            // Read (and checked) just before: keep the text itself.
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 if self.last_text.0 == self.last => {
                Memo::Str(self.last_text.1)
            }
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 => Memo::At(self.last),
            SHORT_BINBYTES | BINBYTES | BINBYTES8 | BININT1 | BININT2 | BININT | LONG1
            | BINFLOAT => Memo::At(self.last),
            // A memoized `GET`: the value it fetched.
            BINGET | LONG_BINGET => {
                let mut p = self.last + 1;
                args::memo_index(self.input, &mut p, op)
                    .and_then(|i| self.memo.get(i as usize).copied())
                    .unwrap_or(Memo::At(NOTHING))
            }
            _ => Memo::At(NOTHING),
        })
    }

    /// The argument of a binary memo opcode (see [`args::memo_index`]).
    fn get_index(&mut self, op: u8) -> R<usize> {
        args::memo_index(self.input, &mut self.pos, op)
            .map(|i| i as usize)
            .ok_or(StreamError::Bail)
    }

    fn text(&mut self, n: usize) -> R<&'de str> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| StreamError::Bail)?;
        self.last_text = (self.last, s);
        Ok(s)
    }

    /// The value memoized at `i`: text read before (the common case, inline), or the value
    /// at the position kept.
    #[inline(always)]
    fn get(&mut self, i: usize) -> R<Head<'de>> {
        match self.memo.get(i) {
            Some(&Memo::Str(text)) => self.replay(text).map(Head::Str),
            Some(&Memo::At(at)) => self.get_at(at),
            None => Err(StreamError::Bail),
        }
    }

    /// Memoized text fetched again, which counts against the expansion allowed.
    #[inline(always)]
    fn replay(&mut self, text: &'de str) -> R<&'de str> {
        self.replay_budget = self
            .replay_budget
            .checked_sub(text.len() as u64 + 16)
            .ok_or(StreamError::Bail)?;
        Ok(text)
    }

    /// The memoized value whose opcode is at `at`, read again there.
    fn get_at(&mut self, at: usize) -> R<Head<'de>> {
        let op = *self.input.get(at).ok_or(StreamError::Bail)?;
        if matches!(
            op,
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 | SHORT_BINBYTES | BINBYTES | BINBYTES8
        ) {
            let mut p = at + 1;
            let n = args::length(self.input, &mut p, op).ok_or(StreamError::Bail)?;
            self.replay_budget = self
                .replay_budget
                .checked_sub(n.saturating_add(16))
                .ok_or(StreamError::Bail)?;
        }
        // Only scalars, text and bytes are kept (see `memo_of_last`; `NOTHING` is past the
        // input), read again where they are.
        let pos = self.pos;
        self.pos = at + 1;
        let head = self.head_at(op);
        self.pos = pos;
        head
    }

    /// Reads the opcode(s) that start the next value.
    #[inline(always)]
    fn head(&mut self) -> R<Head<'de>> {
        self.skip_memo_ops()?;
        let op = self.peek()?;
        self.last = self.pos;
        self.pos += 1;
        self.head_at(op)
    }

    /// The value of opcode `op`, whose arguments start at `pos`.
    #[inline(always)]
    fn head_at(&mut self, op: u8) -> R<Head<'de>> {
        Ok(match op {
            NONE => Head::None,
            NEWTRUE => Head::Bool(true),
            NEWFALSE => Head::Bool(false),
            BININT1 => Head::Int(self.arr::<1>()?[0].into()),
            BININT2 => Head::Int(u16::from_le_bytes(self.arr()?).into()),
            BININT => Head::Int(i32::from_le_bytes(self.arr()?).into()),
            LONG1 => {
                let n = self.arr::<1>()?[0] as usize;
                if n > 16 {
                    return Err(StreamError::Bail);
                }
                let b = self.take(n)?;
                let fill = if b.last().is_some_and(|x| x & 0x80 != 0) {
                    0xff
                } else {
                    0
                };
                let mut a = [fill; 16];
                a[..n].copy_from_slice(b);
                let v = i128::from_le_bytes(a);
                match i64::try_from(v) {
                    Ok(v) => Head::Int(v),
                    Err(_) => Head::Int128(v),
                }
            }
            BINFLOAT => Head::Float(f64::from_be_bytes(self.arr()?)),
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 => {
                let n = self.length(op)?;
                Head::Str(self.text(n)?)
            }
            SHORT_BINBYTES | BINBYTES | BINBYTES8 => {
                let n = self.length(op)?;
                Head::Bytes(self.take(n)?)
            }
            EMPTY_LIST => Head::List,
            EMPTY_DICT => Head::Dict,
            EMPTY_SET => Head::Set,
            EMPTY_TUPLE => Head::EmptyTuple,
            MARK => Head::Mark,
            BINGET => {
                let [i] = self.arr()?;
                self.get(i.into())?
            }
            LONG_BINGET => {
                let i = u32::from_le_bytes(self.arr()?);
                self.get(usize::try_from(i).map_err(|_| StreamError::Bail)?)?
            }
            _ => return Err(StreamError::Bail),
        })
    }

    /// Whether the container just read ends here: its closing opcode is next, or, `complete`
    /// as CPython writes containers, the parent's next value starts.
    fn at_end_or_parents(&self, complete: bool) -> R<bool> {
        Ok(self.at_container_end()? || (complete && is_value_start(self.peek()?)))
    }

    /// Whether the next opcode ends the container just read (a `MARK` would start another
    /// batch of its items).
    fn at_container_end(&self) -> R<bool> {
        let op = self.peek()?;
        Ok(is_end(op) && op != MARK)
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(StreamError::Bail);
        }
        Ok(())
    }

    fn visit<V: Visitor<'de>>(&mut self, head: Head<'de>, visitor: V) -> R<V::Value> {
        match head {
            Head::None => visitor.visit_unit(),
            Head::Bool(b) => visitor.visit_bool(b),
            Head::Int(i) => visitor.visit_i64(i),
            // As the machine visits a big int: unsigned when it is not negative.
            Head::Int128(i) => match (u64::try_from(i), u128::try_from(i)) {
                (Ok(u), _) => visitor.visit_u64(u),
                (_, Ok(u)) => visitor.visit_u128(u),
                _ => visitor.visit_i128(i),
            },
            Head::Float(f) => visitor.visit_f64(f),
            Head::Str(s) => visitor.visit_borrowed_str(s),
            Head::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Head::List | Head::Set => {
                self.enter()?;
                let set = matches!(head, Head::Set);
                // Handed over by value, so the visitor's loop keeps the cursor and the state in
                // registers; dropping `Items` writes them back.
                let items = Items {
                    input: self.input,
                    pos: self.pos,
                    last: self.last,
                    floats_below: 0,
                    s: self,
                    state: ItemState::Between,
                    set,
                    batch_end: if set { ADDITEMS } else { APPENDS },
                    single_end: if set { 0 } else { APPEND },
                };
                let v = visitor.visit_seq(items)?;
                // The Rust type must have taken every item (a longer list is not a shorter
                // tuple): the next opcode must end the container.
                if !self.items_between || !self.at_container_end()? {
                    return Err(StreamError::Bail);
                }
                self.close();
                Ok(v)
            }
            Head::Dict => {
                self.enter()?;
                let mut entries = Entries {
                    s: self,
                    state: ItemState::Between,
                    in_batch: 0,
                    complete: false,
                };
                let v = visitor.visit_map(&mut entries)?;
                if entries.state != ItemState::Between
                    || !entries.s.at_end_or_parents(entries.complete)?
                {
                    return Err(StreamError::Bail);
                }
                self.close();
                Ok(v)
            }
            Head::Mark => {
                self.enter()?;
                let mut items = Marked {
                    s: self,
                    done: false,
                };
                let v = visitor.visit_seq(&mut items)?;
                if !items.done {
                    // A Rust tuple takes its items and asks no further: its closing opcode
                    // must come next.
                    self.skip_memo_ops()?;
                    if !matches!(self.peek()?, TUPLE | LIST | FROZENSET) {
                        return Err(StreamError::Bail);
                    }
                    self.pos += 1;
                }
                self.close();
                Ok(v)
            }
            Head::EmptyTuple => {
                let v = visitor.visit_seq(Empty)?;
                self.last = NOTHING;
                Ok(v)
            }
        }
    }

    /// A container is complete: a `PUT` right after it names the container, which the stream
    /// cannot replay.
    fn close(&mut self) {
        self.depth -= 1;
        self.last = NOTHING;
    }
}

#[derive(PartialEq)]
enum ItemState {
    /// Before a batch (`MARK`, `APPEND`'s single item) or the end.
    Between,
    /// Inside a `MARK … APPENDS` batch.
    InBatch,
    /// A single item was read, its `APPEND` / `SETITEM` is next.
    Single,
}

/// The items of a list or set: `EMPTY_LIST` then batches `MARK items APPENDS` or `item APPEND`.
struct Items<'a, 'de> {
    s: &'a mut Stream<'de>,
    /// `s.input`, held here so that a run of floats does not reload it after each push (the
    /// compiler cannot tell that the vector's memory is not `s`).
    input: &'de [u8],
    /// The position and the last value's start while items are read: `s.pos` and `s.last`
    /// are brought up to date around every call that reads through `s`, so that a run of
    /// floats keeps them in registers instead of a store (and a reload) per item.
    pos: usize,
    last: usize,
    /// Positions below which a float may be read without further checks: the input's length
    /// less 8 while in a batch, 0 otherwise (one comparison for the state and the bounds).
    floats_below: usize,
    state: ItemState,
    set: bool,
    /// `APPENDS` (`ADDITEMS` for a set) and `APPEND` (none for a set: 0).
    batch_end: u8,
    single_end: u8,
}

impl Drop for Items<'_, '_> {
    fn drop(&mut self) {
        self.s.pos = self.pos;
        self.s.last = self.last;
        self.s.items_between = self.state == ItemState::Between;
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = StreamError;
    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        // The common case first: a float inside a batch.
        let at = self.pos;
        if at < self.floats_below {
            if let Some(&[BINFLOAT, a, b, c, d, e, f, g, h]) = self.input.get(at..at + 9) {
                self.last = at;
                self.pos = at + 9;
                let v = f64::from_be_bytes([a, b, c, d, e, f, g, h]);
                return seed.deserialize(FloatDe(v)).map(Some);
            }
        }
        self.s.pos = self.pos;
        self.s.last = self.last;
        let next = self.next_item(seed);
        self.pos = self.s.pos;
        self.last = self.s.last;
        self.floats_below = match self.state {
            ItemState::InBatch => self.input.len().saturating_sub(8),
            _ => 0,
        };
        next
    }

    /// How many items the list or set about to be read holds, for its first allocation (a
    /// vector of 10^4 items grown by doubling copies itself a dozen times, and glibc hands the
    /// blocks it outgrows back to the kernel, to be faulted in again for the next message).
    ///
    /// - The full batches of floats a list starts with are recognised by three bytes each,
    ///   without reading the floats between: CPython writes a batch of exactly [`BATCH`]
    ///   items, so `MARK` and `BINFLOAT` at its start, `BINFLOAT` and `APPENDS` 9000 bytes on.
    /// - Otherwise the first batch is counted opcode by opcode ([`batch_items`]); when it is a
    ///   full one and another batch follows, the rest of the input is taken to hold items at
    ///   the first batch's bytes per item.
    ///
    /// A peer can fake either pattern, so the hints of one message draw on a budget of its
    /// length: each item hinted costs at least one, an item guessed past the first batch one
    /// per byte it is guessed from, a float nine, so a hostile message cannot make the vectors
    /// it fills claim more items than it has bytes. Counting draws on a budget of twice the
    /// length, paid for every byte read whether or not the count succeeds: a list nested in a
    /// counted list is counted again, but no input is read more than twice over.
    /// (A `FRAME` inside a batch, or a shorter last batch, only ends the hint early.)
    fn size_hint(&self) -> Option<usize> {
        if self.state != ItemState::Between {
            return None;
        }
        let start = skip_memo_at(self.input, self.pos);
        if self.input.get(start) != Some(&MARK) {
            return None;
        }
        let budget = self.s.hint_budget.get();
        let (hint, cost) = match self.input.get(start + 1) {
            Some(&BINFLOAT) if !self.set => self.float_batches(start, budget),
            _ => None,
        }
        .or_else(|| self.counted_batch(start, budget))?;
        self.s.hint_budget.set(budget - cost);
        (hint > 0).then_some(hint)
    }
}

impl<'de> Items<'_, 'de> {
    /// The items of the full batches of floats a list starts with, and their cost to the
    /// hint budget (see [`de::SeqAccess::size_hint`]).
    fn float_batches(&self, start: usize, budget: usize) -> Option<(usize, usize)> {
        const SPAN: usize = 9 * BATCH;
        let (input, mut p, mut n) = (self.input, start, 0);
        while (n + BATCH) * 9 <= budget {
            match (
                input.get(p..p + 2),
                input.get(p + SPAN - 8),
                input.get(p + SPAN + 1),
            ) {
                (Some(&[MARK, BINFLOAT]), Some(&BINFLOAT), Some(&APPENDS)) => {}
                _ => break,
            }
            n += BATCH;
            p = skip_memo_at(input, p + SPAN + 2);
        }
        (n > 0).then_some((n, n * 9))
    }

    /// The items of the first batch, counted, and, when more batches follow a full one, the
    /// rest of the input at its bytes per item; and their cost to the hint budget.
    fn counted_batch(&self, start: usize, budget: usize) -> Option<(usize, usize)> {
        let input = self.input;
        let scan = self.s.scan_budget.get();
        let (n, end) = batch_items(input, start + 1, self.batch_end, scan);
        self.s.scan_budget.set(scan - (end - (start + 1)));
        let n = n.filter(|&n| n <= budget)?;
        let more = input.get(skip_memo_at(input, end + 1)) == Some(&MARK);
        if n != BATCH || !more {
            return Some((n, n));
        }
        let rest = (input.len() - end).min(budget - n);
        Some((n + rest / (end - start).div_ceil(n), n + rest))
    }

    #[inline(always)]
    fn next_item<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        let (batch_end, single_end) = (self.batch_end, self.single_end);
        if self.state == ItemState::InBatch {
            if let Some(&op) = self.s.input.get(self.s.pos) {
                if op != batch_end && !is_memo_op(op) {
                    return seed.deserialize(&mut *self.s).map(Some);
                }
            }
        }
        loop {
            self.s.skip_memo_ops()?;
            let op = self.s.peek()?;
            match self.state {
                ItemState::InBatch if op == batch_end => {
                    self.s.pos += 1;
                    // A `PUT` now names the container, which the stream cannot replay.
                    self.s.last = NOTHING;
                    self.state = ItemState::Between;
                }
                ItemState::InBatch => return seed.deserialize(&mut *self.s).map(Some),
                ItemState::Single if op == single_end && single_end != 0 => {
                    self.s.pos += 1;
                    // A `PUT` now names the container, which the stream cannot replay.
                    self.s.last = NOTHING;
                    self.state = ItemState::Between;
                }
                ItemState::Single => return Err(StreamError::Bail),
                ItemState::Between if op == MARK => {
                    self.s.pos += 1;
                    // Nothing above the mark yet: a `PUT` here underflows.
                    self.s.last = FENCE;
                    self.state = ItemState::InBatch;
                }
                ItemState::Between if is_end(op) => return Ok(None),
                ItemState::Between if !self.set => {
                    self.state = ItemState::Single;
                    return seed.deserialize(&mut *self.s).map(Some);
                }
                ItemState::Between => return Err(StreamError::Bail),
            }
        }
    }
}

/// Opcode classes, one table lookup each on the per-item path.
const MEMO_OP: u8 = 1;
const VALUE_START: u8 = 2;
const CLOSES: u8 = 4;

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let memo = [FRAME, MEMOIZE, BINPUT, LONG_BINPUT];
    let starts = [
        NONE,
        NEWTRUE,
        NEWFALSE,
        BININT,
        BININT1,
        BININT2,
        LONG1,
        BINFLOAT,
        SHORT_BINUNICODE,
        BINUNICODE,
        BINUNICODE8,
        SHORT_BINBYTES,
        BINBYTES,
        BINBYTES8,
        EMPTY_LIST,
        EMPTY_DICT,
        EMPTY_SET,
        EMPTY_TUPLE,
        BINGET,
        LONG_BINGET,
    ];
    let closes = [
        STOP, APPENDS, SETITEMS, ADDITEMS, APPEND, SETITEM, TUPLE, TUPLE1, TUPLE2, TUPLE3, LIST,
        DICT, FROZENSET, MARK,
    ];
    let mut i = 0;
    while i < memo.len() {
        t[memo[i] as usize] |= MEMO_OP;
        i += 1;
    }
    i = 0;
    while i < starts.len() {
        t[starts[i] as usize] |= VALUE_START;
        i += 1;
    }
    i = 0;
    while i < closes.len() {
        t[closes[i] as usize] |= CLOSES;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

/// `FRAME`, `MEMOIZE`, `BINPUT`, `LONG_BINPUT`: between values, never one.
#[inline(always)]
fn is_memo_op(op: u8) -> bool {
    CLASS[op as usize] & MEMO_OP != 0
}

/// Opcodes after which a container's items are over (its parent continues, or the pickle stops).
#[inline(always)]
fn is_end(op: u8) -> bool {
    CLASS[op as usize] & (CLOSES | VALUE_START) != 0
}

/// An opcode that starts a value: after a complete container, the next value of its parent.
#[inline(always)]
fn is_value_start(op: u8) -> bool {
    CLASS[op as usize] & VALUE_START != 0
}

/// The entries of a dict: `EMPTY_DICT` then `MARK (key value)* SETITEMS` or `key value SETITEM`.
struct Entries<'a, 'de> {
    s: &'a mut Stream<'de>,
    state: ItemState,
    /// Pairs read in the current `MARK … SETITEMS` batch.
    in_batch: usize,
    /// The dict is whole as CPython writes dicts: its last batch held fewer than [`BATCH`]
    /// pairs, or it ended with a lone `SETITEM` (CPython writes one only last). A value that
    /// starts next is the parent's, not another key of this dict.
    complete: bool,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = StreamError;
    fn size_hint(&self) -> Option<usize> {
        (self.state == ItemState::Between).then(|| self.s.dict_len_hint())
    }
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        loop {
            self.s.skip_memo_ops()?;
            let op = self.s.peek()?;
            match self.state {
                ItemState::InBatch if op == SETITEMS => {
                    self.complete = self.in_batch < BATCH;
                    self.in_batch = 0;
                    self.s.pos += 1;
                    // A `PUT` now names the container, which the stream cannot replay.
                    self.s.last = NOTHING;
                    self.state = ItemState::Between;
                }
                ItemState::InBatch => {
                    self.in_batch += 1;
                    return seed.deserialize(&mut *self.s).map(Some);
                }
                ItemState::Single if op == SETITEM => {
                    self.complete = true;
                    self.s.pos += 1;
                    // A `PUT` now names the container, which the stream cannot replay.
                    self.s.last = NOTHING;
                    self.state = ItemState::Between;
                }
                ItemState::Single => return Err(StreamError::Bail),
                ItemState::Between if op == MARK => {
                    self.s.pos += 1;
                    // Nothing above the mark yet: a `PUT` here underflows.
                    self.s.last = FENCE;
                    self.state = ItemState::InBatch;
                }
                ItemState::Between if is_end(op) && !is_value_start(op) => return Ok(None),
                // The parent's next value (see `complete`).
                ItemState::Between if self.complete => return Ok(None),
                ItemState::Between => {
                    // `key value SETITEM` or the parent's next value: only a SETITEM after the
                    // pair tells. The machine decides.
                    return Err(StreamError::Bail);
                }
            }
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> R<V::Value> {
        seed.deserialize(&mut *self.s)
    }
}

/// `MARK items CLOSE`, where CLOSE (`TUPLE`, `LIST`, `FROZENSET`) makes it a sequence.
struct Marked<'a, 'de> {
    s: &'a mut Stream<'de>,
    done: bool,
}

impl<'de> de::SeqAccess<'de> for Marked<'_, 'de> {
    type Error = StreamError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        if self.done {
            return Ok(None);
        }
        self.s.skip_memo_ops()?;
        let op = self.s.peek()?;
        match op {
            TUPLE | LIST | FROZENSET => {
                self.s.pos += 1;
                self.done = true;
                Ok(None)
            }
            _ if is_value_start(op) || op == MARK => seed.deserialize(&mut *self.s).map(Some),
            _ => Err(StreamError::Bail),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Stream<'de> {
    type Error = StreamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        let head = self.head()?;
        self.visit(head, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.skip_memo_ops()?;
        if self.peek()? == NONE {
            self.last = NOTHING;
            self.pos += 1;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> R<V::Value> {
        if name == crate::serde_impl::VALUE_TOKEN {
            // A dynamic value: the machine keeps everything (sharing, objects).
            return Err(StreamError::Bail);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> R<V::Value> {
        self.skip_memo_ops()?;
        let op = self.peek()?;
        if !(1..=3).contains(&len) || op == MARK || !is_value_start(op) || op == EMPTY_TUPLE {
            return self.deserialize_any(visitor);
        }
        // CPython writes short tuples postfix: `a b TUPLE2`. The Rust type says how many items
        // come; the closing opcode must agree.
        self.enter()?;
        let mut items = Counted { s: self, left: len };
        let v = visitor.visit_seq(&mut items)?;
        if items.left != 0 {
            return Err(StreamError::Bail);
        }
        self.skip_memo_ops()?;
        if self.peek()? != TUPLE1 + len as u8 - 1 {
            return Err(StreamError::Bail);
        }
        self.pos += 1;
        self.close();
        Ok(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> R<V::Value> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> R<V::Value> {
        Err(StreamError::Bail)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        let head = self.head()?;
        self.visit(head, de::IgnoredAny)?;
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.float() {
            Some(v) => visitor.visit_f64(v),
            None => self.deserialize_any(visitor),
        }
    }

    #[inline]
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_f64(visitor)
    }

    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.small_int() {
            Some(v) => visitor.visit_i64(v),
            None => self.deserialize_any(visitor),
        }
    }

    #[inline]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_i64(visitor)
    }

    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_i64(visitor)
    }

    #[inline]
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_i64(visitor)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.text_now()? {
            Some(s) => visitor.visit_borrowed_str(s),
            None => self.deserialize_any(visitor),
        }
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.skip_memo_ops()?;
        let v = match self.peek()? {
            NEWTRUE => true,
            NEWFALSE => false,
            _ => return self.deserialize_any(visitor),
        };
        self.last = self.pos;
        self.pos += 1;
        visitor.visit_bool(v)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i128 u8 u16 u128 char
        bytes byte_buf unit unit_struct seq map struct
    }
}

impl<'de> Stream<'de> {
    /// Text at the current position, read without the general dispatch (a struct's field
    /// names and its strings): a `SHORT_BINUNICODE` / `BINUNICODE`, or a `GET` of memoized
    /// text. `None` leaves everything else (and nothing read) to `head`.
    #[inline(always)]
    fn text_now(&mut self) -> R<Option<&'de str>> {
        self.skip_memo_ops()?;
        let at = self.pos;
        match self.input.get(at) {
            Some(&(op @ SHORT_BINUNICODE | op @ BINUNICODE)) => {
                self.last = at;
                self.pos = at + 1;
                let n = self.length(op)?;
                self.text(n).map(Some)
            }
            Some(&BINGET) => {
                let memo = self
                    .input
                    .get(at + 1)
                    .and_then(|&i| self.memo.get(usize::from(i)));
                let Some(&Memo::Str(text)) = memo else {
                    return Ok(None);
                };
                self.last = at;
                self.pos = at + 2;
                self.replay(text).map(Some)
            }
            _ => Ok(None),
        }
    }
}

impl Stream<'_> {
    /// A `BINFLOAT` at the current position, read without the general dispatch (the per-item
    /// cost of a list of floats); `None` leaves everything else to `head`.
    #[inline(always)]
    fn float(&mut self) -> Option<f64> {
        let b: [u8; 9] = self.input.get(self.pos..self.pos + 9)?.try_into().ok()?;
        if b[0] != BINFLOAT {
            return None;
        }
        let v = f64::from_be_bytes([b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8]]);
        self.last = self.pos;
        self.pos += 9;
        Some(v)
    }

    /// A `BININT1` / `BININT2` / `BININT` at the current position, like [`Self::float`].
    #[inline(always)]
    fn small_int(&mut self) -> Option<i64> {
        let rest = self.input.get(self.pos..)?;
        let (v, n) = match *rest {
            [BININT1, a, ..] => (i64::from(a), 2),
            [BININT2, a, b, ..] => (i64::from(u16::from_le_bytes([a, b])), 3),
            [BININT, a, b, c, d, ..] => (i64::from(i32::from_le_bytes([a, b, c, d])), 5),
            _ => return None,
        };
        self.last = self.pos;
        self.pos += n;
        Some(v)
    }

    /// How many entries the dict just opened certainly has: the pairs of each `MARK … SETITEMS`
    /// batch right after it that holds only scalars, text, bytes and `GET`s (CPython's dicts of
    /// strings and numbers, in batches of 1000). A `SETITEMS` whose `MARK` directly follows
    /// this dict (or its previous batch) can only target this dict, so the hint is never more
    /// than the entries present: a `HashMap` is allocated once instead of rehashing every key
    /// as it grows, and nothing is allocated that the message does not pay for. (Lists go
    /// without: the scan costs more than a `Vec`'s few reallocations.)
    fn dict_len_hint(&self) -> usize {
        let input = self.input;
        let mut entries = 0;
        let mut p = skip_memo_at(input, self.pos);
        while input.get(p) == Some(&MARK) {
            let (values, end) = scalar_run(input, p + 1);
            if input.get(end) != Some(&SETITEMS) {
                break;
            }
            entries += values / 2;
            p = skip_memo_at(input, end + 1);
        }
        entries
    }
}

/// Where the first opcode other than `MEMOIZE`, `BINPUT`, `LONG_BINPUT` or `FRAME` is, from `p`.
fn skip_memo_at(input: &[u8], mut p: usize) -> usize {
    loop {
        p += match input.get(p) {
            Some(&MEMOIZE) => 1,
            Some(&BINPUT) => 2,
            Some(&LONG_BINPUT) => 5,
            Some(&FRAME) => 9,
            _ => return p,
        };
    }
}

/// The scalars, text, bytes and `GET`s from `p` on, with the memo and frame opcodes between them: how
/// many, and where the first other opcode is.
fn scalar_run(input: &[u8], mut p: usize) -> (usize, usize) {
    let mut n = 0;
    while let Some(&op) = input.get(p) {
        let (width, value) = match op {
            MEMOIZE => (1, false),
            FRAME => (9, false),
            BINPUT => (2, false),
            LONG_BINPUT => (5, false),
            NONE | NEWTRUE | NEWFALSE | EMPTY_TUPLE => (1, true),
            BININT1 | BINGET => (2, true),
            BININT2 => (3, true),
            BININT | LONG_BINGET => (5, true),
            BINFLOAT => (9, true),
            SHORT_BINUNICODE | SHORT_BINBYTES => match input.get(p + 1) {
                Some(&len) => (2 + usize::from(len), true),
                None => break,
            },
            BINUNICODE | BINBYTES => match input.get(p + 1..p + 5) {
                Some(b) => (
                    5 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
                    true,
                ),
                None => break,
            },
            _ => break,
        };
        let next = p.saturating_add(width);
        if next > input.len() {
            break;
        }
        p = next;
        n += usize::from(value);
    }
    (n, p)
}

/// The items of a batch whose `MARK` is just before `p`, and where its closing `close`
/// (`APPENDS` or `ADDITEMS`) is: each opcode's effect on the stack is followed, nested
/// containers and marks included, without making anything. No count (`None`) for an opcode
/// the stream does not read, a stack that would underflow, nesting past 16 marks, or a batch
/// longer than `limit` bytes; then the position is where reading stopped.
fn batch_items(input: &[u8], mut p: usize, close: u8, limit: usize) -> (Option<usize>, usize) {
    // Values above the batch's mark, and that count at each mark opened inside the batch.
    let mut depth = 0usize;
    let mut marks = [0usize; 16];
    let mut open = 0;
    let limit = input.len().min(p.saturating_add(limit));
    while p < limit {
        let op = input[p];
        let mut next = p + 1;
        match op {
            NONE | NEWTRUE | NEWFALSE | EMPTY_TUPLE | EMPTY_LIST | EMPTY_DICT | EMPTY_SET => {
                depth += 1;
            }
            BININT1 | BINGET => (depth, next) = (depth + 1, p + 2),
            BININT2 => (depth, next) = (depth + 1, p + 3),
            BININT | LONG_BINGET => (depth, next) = (depth + 1, p + 5),
            BINFLOAT => (depth, next) = (depth + 1, p + 9),
            LONG1 => match input.get(next) {
                Some(&n) => (depth, next) = (depth + 1, next + 1 + usize::from(n)),
                None => break,
            },
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 | SHORT_BINBYTES | BINBYTES | BINBYTES8 => {
                match args::length(input, &mut next, op).and_then(|n| usize::try_from(n).ok()) {
                    Some(n) => next = next.saturating_add(n),
                    None => break,
                }
                depth += 1;
            }
            MEMOIZE => {}
            BINPUT => next = p + 2,
            LONG_BINPUT => next = p + 5,
            FRAME => next = p + 9,
            TUPLE1 if depth >= 1 => {}
            TUPLE2 if depth >= 2 => depth -= 1,
            TUPLE3 if depth >= 3 => depth -= 2,
            APPEND if depth >= 2 => depth -= 1,
            SETITEM if depth >= 3 => depth -= 2,
            MARK if open < marks.len() => {
                marks[open] = depth;
                open += 1;
            }
            TUPLE | LIST | DICT | FROZENSET if open > 0 => {
                open -= 1;
                depth = marks[open] + 1;
            }
            // Into the container below the inner mark, which must be there.
            APPENDS | SETITEMS | ADDITEMS if open > 0 && marks[open - 1] > 0 => {
                open -= 1;
                depth = marks[open];
            }
            _ if op == close && open == 0 => return (Some(depth), p),
            _ => break,
        }
        p = next;
    }
    (None, p.min(limit))
}

/// A `BINFLOAT` item already read: what `Stream` does at a float, without the dispatch.
struct FloatDe(f64);

impl<'de> de::Deserializer<'de> for FloatDe {
    type Error = StreamError;

    #[inline(always)]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        visitor.visit_f64(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> R<V::Value> {
        if name == crate::serde_impl::VALUE_TOKEN {
            return Err(StreamError::Bail);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> R<V::Value> {
        Err(StreamError::Bail)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq map struct identifier tuple tuple_struct
    }
}

/// The first `left` items of a postfix tuple.
struct Counted<'a, 'de> {
    s: &'a mut Stream<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Counted<'_, 'de> {
    type Error = StreamError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.s).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The items of `()`.
struct Empty;

impl<'de> de::SeqAccess<'de> for Empty {
    type Error = StreamError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, _seed: T) -> R<Option<T::Value>> {
        Ok(None)
    }
}

/// The known-answer file format, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
pub(crate) mod test_common;

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::test_common as common;
    use super::*;
    use crate::shape::{Shape, machine};
    use crate::{Protocol, Value, to_vec, value_to_vec};

    /// A container is taken as whole after a batch shorter than CPython's, so the value after it
    /// is read as the parent's; a writer that adds items after such a batch (CPython never
    /// does) must not make the stream answer differently from the machine: it bails.
    #[test]
    fn items_after_a_short_batch_are_not_lost() {
        use std::collections::HashMap;
        // [{'a': 1, 'b': 2}, {}] with 'b' set after the dict's first, short batch; and
        // [[1, 2], []] with 2 appended after the inner list's short batch.
        let dicts = [
            PROTO,
            4,
            EMPTY_LIST,
            MARK,
            EMPTY_DICT,
            MARK,
            SHORT_BINUNICODE,
            1,
            b'a',
            BININT1,
            1,
            SETITEMS,
            SHORT_BINUNICODE,
            1,
            b'b',
            BININT1,
            2,
            SETITEM,
            EMPTY_DICT,
            APPENDS,
            STOP,
        ];
        let want: Vec<HashMap<String, i64>> = vec![
            [("a".to_owned(), 1), ("b".to_owned(), 2)]
                .into_iter()
                .collect(),
            HashMap::new(),
        ];
        assert!(from_slice::<Vec<HashMap<String, i64>>>(&dicts, &Limits::default()).is_err());
        assert_eq!(
            crate::from_slice::<Vec<HashMap<String, i64>>>(&dicts).unwrap(),
            want
        );
        let lists = [
            PROTO, 4, EMPTY_LIST, MARK, EMPTY_LIST, MARK, BININT1, 1, APPENDS, BININT1, 2, APPEND,
            EMPTY_LIST, APPENDS, STOP,
        ];
        assert_eq!(
            crate::from_slice::<Vec<Vec<i64>>>(&lists).unwrap(),
            vec![vec![1, 2], vec![]]
        );
    }

    /// Wherever the stream answers, it answers what the machine answers.
    #[test]
    fn stream_agrees_with_the_machine_on_cpython_pickles() {
        let mut streamed = 0;
        let mut total = 0;
        for kat in [
            include_str!("../tests/data/kat-3.11.txt"),
            include_str!("../tests/data/kat-3.13.txt"),
            include_str!("../tests/data/kat-2.7.txt"),
        ] {
            for case in common::cases(kat) {
                let (name, bytes) = (case.name, case.pickle);
                let mut inputs = vec![bytes.clone()];
                // Our own output of the same value, in each protocol.
                if let Ok(v) = crate::value_from_slice(&bytes) {
                    for p in [Protocol::V2, Protocol::V3, Protocol::V4, Protocol::V5] {
                        inputs.push(value_to_vec(&v, p).unwrap());
                    }
                }
                for input in inputs {
                    total += 1;
                    if let Ok(fast) = from_slice::<Shape>(&input, &Limits::default()) {
                        streamed += 1;
                        assert_eq!(
                            Ok(fast),
                            machine::<Shape>(&input, &Limits::default()),
                            "{name}"
                        );
                    }
                }
            }
        }
        assert!(streamed * 3 > total, "{streamed} of {total} streamed");
    }

    /// Every input the fuzzer kept (seeds and crashes), through the fuzz target's check.
    #[test]
    fn stream_agrees_with_the_machine_on_fuzz_inputs() {
        let inputs = common::fuzz_inputs();
        for data in &inputs {
            crate::shape::stream_agrees_with_machine(data, &Limits::default());
        }
        assert!(inputs.len() > 500, "{} inputs", inputs.len());
    }

    /// A `PUT` with no value above the mark (or none at all) is CPython's stack underflow: the
    /// stream leaves it to the machine, which reports it.
    #[test]
    fn put_with_nothing_to_memoize_underflows() {
        let limits = Limits::default();
        for p in [
            &[BINPUT, 0, SHORT_BINBYTES, 0, STOP][..],
            &[PROTO, 4, MEMOIZE, NONE, STOP],
            &[PROTO, 2, EMPTY_LIST, MARK, BINPUT, 0, NONE, APPENDS, STOP],
            &[
                PROTO, 2, EMPTY_LIST, MARK, NONE, APPENDS, MARK, BINPUT, 0, NONE, APPENDS, STOP,
            ],
            &[
                PROTO, 2, EMPTY_DICT, MARK, BINPUT, 0, NONE, NONE, SETITEMS, STOP,
            ],
            &[PROTO, 2, MARK, BINPUT, 0, NONE, TUPLE, STOP],
        ] {
            assert!(from_slice::<Shape>(p, &limits).is_err(), "{p:?}");
            assert!(
                matches!(
                    crate::from_slice::<Shape>(p),
                    Err(crate::Error::StackUnderflow { .. })
                ),
                "{p:?}: {:?}",
                crate::from_slice::<Shape>(p)
            );
        }
    }

    /// A `PUT` right after a batch names the list, not its last item.
    #[test]
    fn put_after_a_batch_names_the_container() {
        // `[l, l]` where `l = [1.5]`, the memo entry of `l` written after its `APPENDS`.
        let mut p = vec![PROTO, 2, EMPTY_LIST, MARK, EMPTY_LIST, MARK, BINFLOAT];
        p.extend(1.5f64.to_be_bytes());
        p.extend([APPENDS, BINPUT, 0, BINGET, 0, APPENDS, STOP]);
        let limits = Limits::default();
        let want = machine::<Shape>(&p, &limits).unwrap();
        assert_eq!(
            want,
            Shape::Seq(vec![
                Shape::Seq(vec![Shape::Float(1.5f64.to_bits())]),
                Shape::Seq(vec![Shape::Float(1.5f64.to_bits())]),
            ])
        );
        if let Ok(fast) = from_slice::<Shape>(&p, &limits) {
            assert_eq!(fast, want);
        }
        crate::shape::stream_agrees_with_machine(&p, &limits);
    }

    /// The float fast path inside batches keeps the memo right: a float memoized, then fetched.
    #[test]
    fn floats_in_a_batch_with_memo_opcodes() {
        let mut p = vec![PROTO, 4, EMPTY_LIST, MEMOIZE, MARK, BINFLOAT];
        p.extend(1.5f64.to_be_bytes());
        p.extend([MEMOIZE, BINFLOAT]);
        p.extend(2.5f64.to_be_bytes());
        p.extend([BINGET, 1, NONE, BINFLOAT]);
        p.extend((-0.0f64).to_be_bytes());
        p.extend([APPENDS, STOP]);
        let limits = Limits::default();
        let opt: Vec<Option<f64>> = from_slice(&p, &limits).unwrap();
        assert_eq!(opt, [Some(1.5), Some(2.5), Some(1.5), None, Some(-0.0)]);
        assert!(opt[4].unwrap().is_sign_negative());
        assert_eq!(
            Ok(from_slice::<Shape>(&p, &limits).unwrap()),
            machine::<Shape>(&p, &limits)
        );
        // A None among floats is no f64: the stream gives up and the machine says why.
        assert!(from_slice::<Vec<f64>>(&p, &limits).is_err());
        assert!(crate::from_slice::<Vec<f64>>(&p).is_err());
        // 1-tuples of floats are written `BINFLOAT TUPLE1`: not floats, whatever the first byte.
        let tuples = to_vec(&vec![(1.5f64,), (2.5,)], Protocol::V4).unwrap();
        assert!(from_slice::<Vec<f64>>(&tuples, &limits).is_err());
        assert_eq!(
            crate::from_slice::<Vec<(f64,)>>(&tuples).unwrap(),
            [(1.5,), (2.5,)]
        );
    }

    /// A list of CPython's full batches of floats is allocated once, at its size; a shorter
    /// last batch or a frame inside a batch only ends the hint.
    #[test]
    fn float_batches_size_the_vector() {
        let limits = Limits::default();
        let floats: Vec<f64> = (0..3000).map(|i| f64::from(i) / 4.0).collect();
        for proto in [Protocol::V2, Protocol::V4, Protocol::V5] {
            let bytes = to_vec(&floats, proto).unwrap();
            let back: Vec<f64> = from_slice(&bytes, &limits).unwrap();
            assert_eq!(back, floats);
            assert_eq!(back.capacity(), 3000, "{proto:?}");
        }
        let longer: Vec<f64> = (0..2500).map(f64::from).collect();
        let back: Vec<f64> = from_slice(&to_vec(&longer, Protocol::V4).unwrap(), &limits).unwrap();
        assert_eq!(back, longer);
        assert!(back.capacity() >= 2500);
        // Under 1000 items there is no hint to give.
        let short: Vec<f64> = (0..999).map(f64::from).collect();
        let back: Vec<f64> = from_slice(&to_vec(&short, Protocol::V4).unwrap(), &limits).unwrap();
        assert_eq!(back, short);
    }

    /// Lists that fake the batch pattern cannot make the vectors they fill claim more than
    /// the message's bytes: 3000 lists of two floats, 63 KB, each looking like the start of a
    /// 1000-float batch, would otherwise reserve 24 MB.
    #[test]
    fn faked_float_batches_stay_within_the_message() {
        // `EMPTY_LIST MARK BINFLOAT f BINFLOAT g APPENDS`, 21 bytes. From each list's `MARK`,
        // 8992 bytes on is byte 2 of some list's first float, 9001 bytes on byte 2 of some
        // list's second float: faked, there they read `BINFLOAT` and `APPENDS`.
        let lists = |fake: bool| {
            let (mut f, mut g) = (1.0f64.to_be_bytes(), 2.0f64.to_be_bytes());
            if fake {
                (f[2], g[2]) = (BINFLOAT, APPENDS);
            }
            // In a tuple, which has no hint of its own to spend the budget on.
            let mut p = vec![PROTO, 4, MARK];
            for _ in 0..3000 {
                p.extend([EMPTY_LIST, MARK, BINFLOAT]);
                p.extend(f);
                p.push(BINFLOAT);
                p.extend(g);
                p.push(APPENDS);
            }
            p.extend([TUPLE, STOP]);
            let lists: Vec<Vec<f64>> = from_slice(&p, &Limits::default()).unwrap();
            assert_eq!(lists.len(), 3000);
            let want = [f64::from_be_bytes(f), f64::from_be_bytes(g)];
            assert!(lists.iter().all(|l| l == &want));
            let fooled = lists.iter().filter(|l| l.capacity() == 1000).count();
            // Items reserved beyond each list's own.
            let over: usize = lists.iter().map(|l| l.capacity() - l.len()).sum();
            (p.len(), fooled, over)
        };
        let (_, fooled, _) = lists(false);
        assert_eq!(fooled, 0);
        let (len, fooled, over) = lists(true);
        // Some lists were fooled, until the budget was spent; all of them together reserved
        // fewer items beyond their own than the message has bytes.
        assert!(fooled > 0);
        assert!(
            over <= len,
            "{over} items reserved beyond a {len} byte message"
        );
    }

    /// A list of anything the stream reads is sized by counting its first batch: exactly
    /// when that is all of it, and by the first batch's bytes per item when more follow.
    #[test]
    fn counted_batches_size_the_vector() {
        let limits = Limits::default();
        // Items of one width, so the rest of the input holds them at the first batch's rate.
        let item = |i: i64| (1000 + i, format!("item{i:05}"), i as f64, vec![i, -i]);
        for proto in [Protocol::V2, Protocol::V4, Protocol::V5] {
            for n in [1, 2, 999, 1000, 1001, 3000] {
                let items: Vec<_> = (0..n).map(item).collect();
                let bytes = to_vec(&items, proto).unwrap();
                let back: Vec<(i64, String, f64, Vec<i64>)> = from_slice(&bytes, &limits)
                    .unwrap_or_else(|_| panic!("{proto:?} {n} {bytes:?}"));
                assert_eq!(back, items);
                let cap = back.capacity() as i64;
                match n {
                    // One batch, counted.
                    ..=1000 => assert_eq!(cap, n, "{proto:?} {n}"),
                    // Extrapolated: a few items over, for the bytes after the last batch.
                    _ => assert!((n..n + 4).contains(&cap), "{proto:?} {n}: {cap}"),
                }
                assert!(back.iter().all(|(.., v)| v.capacity() == 2), "{proto:?}");
            }
        }
    }

    /// Lists whose first batch promises more than follows cannot make the vectors they fill
    /// claim more items than the message has bytes.
    #[test]
    fn faked_counted_batches_stay_within_the_message() {
        // Each list: a full batch of 1000 `None`s, one byte each, then another batch of one:
        // as counted, the rest of the message at one byte per item belongs to it.
        let mut p = vec![PROTO, 4, MARK];
        for _ in 0..200 {
            p.extend([EMPTY_LIST, MARK]);
            p.extend([NONE; 1000]);
            p.extend([APPENDS, MARK, NONE, APPENDS]);
        }
        p.extend([TUPLE, STOP]);
        let lists: Vec<Vec<Option<i64>>> = from_slice(&p, &Limits::default()).unwrap();
        assert_eq!(lists.len(), 200);
        assert!(lists.iter().all(|l| l.len() == 1001));
        let over: usize = lists.iter().map(|l| l.capacity() - l.len()).sum();
        // The first list was fooled; all of them together stay within the message.
        assert!(lists[0].capacity() > 50_000);
        assert!(
            over <= p.len(),
            "{over} items reserved beyond a {} byte message",
            p.len()
        );
    }

    /// The dict hint counts what is certainly the dict's, across batches and frames, and
    /// nothing of its siblings or parent.
    #[test]
    fn dict_hint_counts_only_the_dicts_own_entries() {
        let hint = |bytes: &[u8]| {
            let mut s = Stream {
                input: bytes,
                pos: 0,
                memo: Vec::new(),
                last: FENCE,
                last_text: (NOTHING, ""),
                depth: 0,
                max_depth: 1000,
                replay_budget: 0,
                items_between: true,
                hint_budget: Cell::new(bytes.len()),
                scan_budget: Cell::new(bytes.len()),
            };
            s.skip_header().unwrap();
            s.skip_memo_ops().unwrap();
            assert_eq!(s.peek().unwrap(), EMPTY_DICT);
            s.pos += 1;
            s.dict_len_hint()
        };
        // 2500 string entries in three batches (our encoder writes one batch; build CPython's
        // shape by hand, with a FRAME between batches).
        let mut p = vec![PROTO, 4, EMPTY_DICT, MEMOIZE];
        for batch in [1000, 1000, 500] {
            p.push(MARK);
            for i in 0..batch {
                for t in [format!("k{i}"), format!("v{i}")] {
                    p.extend([SHORT_BINUNICODE, t.len() as u8]);
                    p.extend(t.as_bytes());
                    p.push(MEMOIZE);
                }
            }
            p.push(SETITEMS);
            p.extend([FRAME, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        p.push(STOP);
        assert_eq!(hint(&p), 2500);
        // The same dict, then a sibling's batch: `[{k: v}, (1, 2, 3, 4)]` and `{}` followed by
        // a tuple's `MARK`: the tuple's items are not the dict's.
        let sibling = to_vec(
            &(
                std::collections::BTreeMap::from([(1, 2)]),
                (1, 2, 3, 4, 5, 6),
            ),
            Protocol::V4,
        )
        .unwrap();
        let at = sibling.iter().position(|&b| b == EMPTY_DICT).unwrap();
        assert_eq!(hint(&[&[PROTO, 4][..], &sibling[at..]].concat()), 1);
        let empty = to_vec(
            &(
                std::collections::BTreeMap::<i32, i32>::new(),
                (1, 2, 3, 4, 5, 6),
            ),
            Protocol::V4,
        )
        .unwrap();
        let at = empty.iter().position(|&b| b == EMPTY_DICT).unwrap();
        assert_eq!(hint(&[&[PROTO, 4][..], &empty[at..]].concat()), 0);
        // A batch that holds a container counts for nothing (its end is not known yet).
        let nested = to_vec(
            &std::collections::BTreeMap::from([(1, vec![1, 2]), (2, vec![3])]),
            Protocol::V4,
        )
        .unwrap();
        assert_eq!(hint(&nested), 0);
    }

    #[test]
    fn typed_shapes_stream_or_agree() {
        #[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
        struct Rec {
            name: String,
            floats: Vec<f64>,
            pair: (i32, String),
            opt: Option<Vec<u8>>,
        }
        let rec = Rec {
            name: "n".into(),
            floats: vec![1.5; 1001],
            pair: (-3, "x".into()),
            opt: Some(vec![1, 2]),
        };
        for p in [Protocol::V2, Protocol::V3, Protocol::V4, Protocol::V5] {
            let bytes = to_vec(&rec, p).unwrap();
            // The pair is written `a b TUPLE2`, items before their opcode: the Rust type's
            // length lets the stream read it.
            assert_eq!(from_slice::<Rec>(&bytes, &Limits::default()).unwrap(), rec);
            assert_eq!(crate::from_slice::<Rec>(&bytes).unwrap(), rec);
            let streamable = (&rec.name, &rec.floats, &rec.opt);
            let bytes = to_vec(&vec![streamable], p).unwrap();
            let fast: Vec<(String, Vec<f64>, Option<Vec<u8>>)> =
                from_slice(&bytes, &Limits::default()).unwrap();
            assert_eq!(
                fast,
                [(rec.name.clone(), rec.floats.clone(), rec.opt.clone())]
            );
        }
        // A 3-tuple is not a pair, in either path.
        let bytes = to_vec(&(1, 2, 3), Protocol::V4).unwrap();
        assert!(from_slice::<(i32, i32)>(&bytes, &Limits::default()).is_err());
        assert!(crate::from_slice::<(i32, i32)>(&bytes).is_err());
        let list = to_vec(&vec![1, 2, 3], Protocol::V4).unwrap();
        assert!(crate::from_slice::<(i32, i32)>(&list).is_err());
        assert_eq!(crate::from_slice::<Vec<i32>>(&list).unwrap(), [1, 2, 3]);
        let _ = Value::None;
    }
}
