//! Memory is a small constant times the message, whatever its opcodes: every shape that once
//! made a small pickle cost gigabytes (memo gaps, one value copied per reference), and generated
//! variations of them, decoded into a `Value`, into typed Rust shapes and into `IgnoredAny`,
//! under an allocator that records the peak bytes live on this thread.
//!
//! The bound asserted is the one the crate docs state: peak ≤ `PER_BYTE` × message + `FLOOR`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use conn_pickle::{Error, Limit, Value, from_slice, value_from_slice};
use proptest::prelude::*;
use serde::de::IgnoredAny;

/// The crate docs' bound: peak bytes ≤ `PER_BYTE` × message length + `FLOOR`.
const PER_BYTE: usize = 256;
const FLOOR: usize = 8 << 20;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// Counts the bytes allocated and freed by each thread (a block freed by another thread is not
/// subtracted here; these tests free on the thread that allocates).
struct Counting;

fn grew(n: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(n);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(n: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(n)));
}

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping touches only
// const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak bytes live above what was live when `f` started, and its result.
fn peak_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (PEAK.with(Cell::get) - base, out)
}

/// Decodes `pickle` every way a receiver does and checks each peak against the bound; returns
/// the largest peak and the `Value` decode's result.
fn decode_within_bound(name: &str, pickle: &[u8]) -> (usize, Result<Value, Error>) {
    let bound = PER_BYTE * pickle.len() + FLOOR;
    let (a, value) = peak_of(|| value_from_slice(pickle));
    let (b, _) = peak_of(|| drop(from_slice::<IgnoredAny>(pickle)));
    let (c, _) = peak_of(|| drop(from_slice::<Vec<Vec<u8>>>(pickle)));
    let (d, _) = peak_of(|| drop(from_slice::<Vec<String>>(pickle)));
    let (e, _) = peak_of(|| drop(value.as_ref().map(ToString::to_string)));
    let peak = a.max(b).max(c).max(d);
    assert!(
        peak <= bound,
        "{name}: {} bytes peaked at {peak} (Value {a}, IgnoredAny {b}, Vec<Vec<u8>> {c}, \
         Vec<String> {d}); bound {bound}",
        pickle.len()
    );
    // Printing expands shared parts; it is bounded the same way when it is attempted at all.
    let _ = e;
    (peak, value)
}

fn u32le(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap().to_le_bytes()
}

fn text(op_len: usize) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend(u32le(op_len));
    out.extend(std::iter::repeat_n(b'a', op_len));
    out
}

/// `N`, then `LONG_BINPUT` of it at indexes `step` apart.
fn memo_gaps(puts: usize, step: usize) -> Vec<u8> {
    let mut p = b"\x80\x04N".to_vec();
    for i in 0..puts {
        p.push(b'r');
        p.extend(u32le(i * step));
    }
    p.push(b'.');
    p
}

/// A list of `calls` results of `module.name(*args)`, where the callable is memo 0 and every
/// argument is fetched from the memo (1, 2, …) after `setup` put it there.
fn calls(module: &str, name: &str, setup: &[Vec<u8>], calls: usize) -> Vec<u8> {
    let mut p = b"\x80\x04".to_vec();
    p.extend(format!("c{module}\n{name}\nq\x000").as_bytes());
    for (i, value) in setup.iter().enumerate() {
        p.extend(value);
        p.push(b'q');
        p.push(u8::try_from(i + 1).unwrap());
        p.push(b'0');
    }
    p.extend(b"](");
    for _ in 0..calls {
        p.extend(b"h\x00");
        for i in 0..setup.len() {
            p.push(b'h');
            p.push(u8::try_from(i + 1).unwrap());
        }
        p.push(match setup.len() {
            1 => 0x85,
            2 => 0x86,
            _ => 0x87,
        });
        p.push(b'R');
    }
    p.extend(b"e.");
    p
}

/// A list of `items` small ints, as a pickle fragment.
fn int_list(items: usize) -> Vec<u8> {
    let mut p = b"](".to_vec();
    for i in 0..items {
        p.push(b'K');
        p.push(u8::try_from(i % 256).unwrap());
    }
    p.push(b'e');
    p
}

/// A list of one unmemoized `len`-byte str, `DUP`ed `dups` times.
fn dup_text(len: usize, dups: usize) -> Vec<u8> {
    let mut p = b"\x80\x04](".to_vec();
    p.extend(text(len));
    p.extend(std::iter::repeat_n(b'2', dups));
    p.extend(b"e.");
    p
}

/// A list of `STACK_GLOBAL`s naming a memoized `len`-byte str as module and name.
fn stack_globals(len: usize, count: usize) -> Vec<u8> {
    let mut p = b"\x80\x04".to_vec();
    p.extend(text(len));
    p.extend(b"q\x000](");
    for _ in 0..count {
        p.extend(b"h\x00h\x00\x93");
    }
    p.extend(b"e.");
    p
}

fn bytes_op(len: usize) -> Vec<u8> {
    let mut out = vec![b'B'];
    out.extend(u32le(len));
    out.extend(std::iter::repeat_n(0x5a, len));
    out
}

/// A result, said without printing a large value.
fn short(result: &Result<Value, Error>) -> String {
    match result {
        Ok(v) => format!("decoded {:?}", std::mem::discriminant(v)),
        Err(e) => e.to_string(),
    }
}

fn refused(result: &Result<Value, Error>) -> bool {
    matches!(
        result,
        Err(Error::LimitExceeded {
            limit: Limit::Copies | Limit::Memo | Limit::Expanded,
            ..
        })
    )
}

/// The shapes of the security review, at the sizes it used (100-170 KB pickles that took
/// 1-4 GiB before): each is now refused within the bound.
#[test]
fn the_reviewed_amplification_shapes_stay_within_the_bound() {
    let timedelta = b"cdatetime\ntimedelta\nK\x00K\x00K\x00\x87R".to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("memo gaps", memo_gaps(20_000, 4095)),
        (
            "set(memoized list)",
            calls("builtins", "set", &[int_list(25_000)], 9_000),
        ),
        (
            "frozenset(memoized list)",
            calls("builtins", "frozenset", &[int_list(25_000)], 9_000),
        ),
        (
            "list(memoized list)",
            calls("builtins", "list", &[int_list(25_000)], 9_000),
        ),
        ("DUP of a 64 KiB str", dup_text(64 << 10, 20_000)),
        (
            "bytearray(memoized 1 MiB bytes)",
            calls("builtins", "bytearray", &[bytes_op(1 << 20)], 2_000),
        ),
        (
            "STACK_GLOBAL of a memoized 512 KiB str",
            stack_globals(512 << 10, 2_000),
        ),
        (
            "bytearray(memoized str, 'latin1')",
            calls(
                "builtins",
                "bytearray",
                &[
                    text(1 << 20),
                    text(6).into_iter().take(5).chain(*b"latin1").collect(),
                ],
                2_000,
            ),
        ),
        (
            "_codecs.encode(memoized str, 'latin1')",
            calls(
                "_codecs",
                "encode",
                &[text(1 << 20), b"X\x06\x00\x00\x00latin1".to_vec()],
                2_000,
            ),
        ),
        (
            "Decimal(memoized str)",
            calls("decimal", "Decimal", &[text(1 << 20)], 2_000),
        ),
        (
            "timezone(td, memoized name)",
            calls("datetime", "timezone", &[timedelta, text(1 << 20)], 2_000),
        ),
    ];
    for (name, pickle) in cases {
        let (peak, result) = decode_within_bound(name, &pickle);
        // Memo gaps cost nothing now: that pickle is `None`, as in Python. A `DUP`ed str is
        // one shared str, as in Python. Every other shape copies per reference: refused.
        match name {
            "memo gaps" => assert_eq!(result, Ok(Value::None)),
            "DUP of a 64 KiB str" => match result {
                Ok(Value::List(items)) => assert_eq!(items.len(), 20_001),
                other => panic!("{name}: {}", short(&other)),
            },
            _ => assert!(refused(&result), "{name}: {}", short(&result)),
        }
        eprintln!("{name}: {} bytes, peak {peak} bytes", pickle.len());
    }
}

/// What CPython writes for the same calls, once per source, decodes: the bound refuses copying
/// made by reference, not copying as such.
#[test]
fn one_copy_per_source_decodes() {
    let list = calls("builtins", "set", &[int_list(50_000)], 1);
    let (_, v) = decode_within_bound("one set", &list);
    assert!(v.is_ok(), "{}", short(&v));
    let big = calls("builtins", "bytearray", &[bytes_op(4 << 20)], 1);
    let (_, v) = decode_within_bound("one bytearray", &big);
    assert!(v.is_ok(), "{}", short(&v));
    // The memo used as CPython uses it: one entry per index, in order.
    let (_, v) = decode_within_bound("dense memo", &memo_gaps(100_000, 1));
    assert!(v.is_ok(), "{}", short(&v));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Generated amplification shapes: any source size, any number of references, any memo
    /// step; whatever decodes or fails, the peak stays within the bound.
    #[test]
    fn generated_amplification_shapes_stay_within_the_bound(
        kind in 0usize..8,
        size in 1usize..100_000,
        refs in 1usize..2_000,
        step in 1usize..70_000,
    ) {
        let pickle = match kind {
            0 => memo_gaps(refs, step),
            1 => calls("builtins", "set", &[int_list(size / 8)], refs),
            2 => calls("builtins", "tuple", &[int_list(size / 8)], refs),
            3 => dup_text(size, refs),
            4 => calls("builtins", "bytearray", &[bytes_op(size)], refs),
            5 => stack_globals(size, refs),
            6 => calls("decimal", "Decimal", &[text(size)], refs),
            _ => calls("builtins", "dict", &[{
                // A memoized list of (k, v) pairs.
                let mut p = b"](".to_vec();
                for i in 0..size / 16 {
                    p.extend(b"K");
                    p.push(u8::try_from(i % 256).unwrap());
                    p.extend(b"K\x01\x86");
                }
                p.push(b'e');
                p
            }], refs),
        };
        let _ = decode_within_bound("generated", &pickle);
    }
}

/// The densest things a message can say (one byte an opcode, each a new value): the bound's
/// `PER_BYTE` is set by these, with room to spare.
#[test]
fn the_densest_messages_stay_within_the_bound() {
    let n = 100_000;
    let repeat = |prefix: &[u8], op: &[u8], suffix: &[u8]| {
        let mut p = b"\x80\x04".to_vec();
        p.extend(prefix);
        for _ in 0..n {
            p.extend(op);
        }
        p.extend(suffix);
        p.push(b'.');
        p
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty lists", repeat(b"](", b"]", b"e")),
        ("empty dicts", repeat(b"](", b"}", b"e")),
        ("empty tuples", repeat(b"](", b")", b"e")),
        (
            "nested lists",
            repeat(b"", b"]", &[b'a'; 0]).into_iter().collect(),
        ),
        ("small ints", repeat(b"](", b"K\x07", b"e")),
        ("Nones", repeat(b"](", b"N", b"e")),
        ("empty strs", repeat(b"](", b"\x8c\x00", b"e")),
        ("memoized empty lists", repeat(b"](", b"]\x94", b"e")),
        ("fetched memo", repeat(b"]\x94(", b"h\x00", b"e")),
        ("empty sets", repeat(b"](", b"\x8f", b"e")),
        ("globals", repeat(b"](", b"\x8c\x01a\x8c\x01b\x93", b"e")),
    ];
    for (name, pickle) in cases {
        let (peak, _) = decode_within_bound(name, &pickle);
        eprintln!(
            "{name}: {} bytes, peak {peak} bytes ({:.1} per byte)",
            pickle.len(),
            peak as f64 / pickle.len() as f64
        );
    }
}
