//! What a hostile peer can send: deep nesting (on a 64 KiB stack), sharing bombs, lying
//! lengths, huge memo indices, long text ints, truncation anywhere, trailing garbage. Every one
//! is a value or a typed error; nothing panics, aborts, or allocates by a claim.

mod common;

use conn_pickle::{
    Error, Limit, Limits, Protocol, Value, from_slice, from_slice_with, value_from_slice,
    value_from_slice_with, value_to_vec,
};
use proptest::prelude::*;
use serde::Deserialize;

const DEPTH: usize = 100_000;

/// `[[[...[]...]]]` nested `DEPTH` deep: EMPTY_LIST × n, then APPEND × (n - 1).
fn nested_lists(n: usize) -> Vec<u8> {
    let mut p = vec![0x80, 4];
    p.extend(std::iter::repeat_n(b']', n));
    p.extend(std::iter::repeat_n(b'a', n - 1));
    p.push(b'.');
    p
}

/// `((((),),),)`: EMPTY_TUPLE, then TUPLE1 × (n - 1).
fn nested_tuples(n: usize) -> Vec<u8> {
    let mut p = vec![0x80, 4, b')'];
    p.extend(std::iter::repeat_n(0x85, n - 1));
    p.push(b'.');
    p
}

/// `{'k': {'k': ...}}`: (MARK 'k') × n, None, DICT × n.
fn nested_dicts(n: usize) -> Vec<u8> {
    let mut q = vec![0x80, 4];
    for _ in 0..n {
        q.extend_from_slice(&[b'(', 0x8c, 1, b'k']);
    }
    q.push(b'N');
    q.extend(std::iter::repeat_n(b'd', n));
    q.push(b'.');
    q
}

fn on_small_stack<F: FnOnce() + Send + 'static>(f: F) {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn deep_limits() -> Limits {
    Limits::default().max_depth(DEPTH as u32 + 10)
}

#[test]
fn nesting_100000_deep_on_a_64_kib_stack() {
    on_small_stack(|| {
        for (name, pickle) in [
            ("lists", nested_lists(DEPTH)),
            ("tuples", nested_tuples(DEPTH)),
            ("dicts", nested_dicts(DEPTH)),
        ] {
            // Default limits: a typed error, not a crash.
            let err = value_from_slice(&pickle).unwrap_err();
            assert_eq!(
                err,
                Error::LimitExceeded {
                    limit: Limit::Depth,
                    max: 1000
                },
                "{name}"
            );
            assert!(from_slice::<i64>(&pickle).is_err(), "{name}");
            // With the limit raised: decoded, printed, compared, re-encoded and dropped, all
            // without recursion.
            let value = value_from_slice_with(&pickle, &deep_limits()).unwrap();
            let text = value.to_string();
            assert!(text.len() >= 2 * DEPTH, "{name}: {}", text.len());
            let copy = value_from_slice_with(&pickle, &deep_limits()).unwrap();
            assert_eq!(value, copy, "{name}");
            let again = value_to_vec(&value, Protocol::V4).unwrap();
            let back = value_from_slice_with(&again, &deep_limits()).unwrap();
            assert_eq!(back, value, "{name}");
            // serde into a Value hands the value over whole: no recursion either.
            let via_serde: Value = from_slice_with(&pickle, &deep_limits()).unwrap();
            assert_eq!(via_serde, value, "{name}");
            drop((value, copy, back, via_serde));
        }
    });
}

#[test]
fn typed_decoding_of_deep_input_is_a_depth_error() {
    #[derive(Deserialize, Debug)]
    struct Tree(Vec<Self>);
    on_small_stack(|| {
        let err = from_slice::<Tree>(&nested_lists(DEPTH)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LimitExceeded {
                    limit: Limit::Depth,
                    ..
                }
            ),
            "{err}"
        );
    });
    // Within the limit it works (on an ordinary stack).
    let tree: Tree = from_slice(&nested_lists(50)).unwrap();
    let mut depth = 0;
    let mut t = &tree;
    while let Some(inner) = t.0.first() {
        depth += 1;
        t = inner;
    }
    assert_eq!(depth, 49);
}

/// `x = None; for _ in range(levels): x = [x, x]`, written with the memo: about 9 bytes a
/// level, 2**levels references.
fn sharing_bomb(levels: u8) -> Vec<u8> {
    let mut p = vec![0x80, 4];
    p.extend_from_slice(b"]\x94(NNe");
    for i in 0..levels - 1 {
        p.push(b'0'); // POP the previous level (it stays in the memo)
        p.extend_from_slice(&[b']', 0x94, b'(', b'h', i, b'h', i, b'e']);
    }
    p.push(b'.');
    p
}

#[test]
fn a_sharing_bomb_costs_its_own_size() {
    let pickle = sharing_bomb(30);
    assert!(pickle.len() < 300, "{}", pickle.len());
    // 2**30 references, 30 lists.
    let value = value_from_slice(&pickle).unwrap();
    let mut v = &value;
    let mut levels = 0;
    while let Some(items) = v.as_items() {
        let (Value::List(a), Value::List(b)) = (&items[0], &items[1]) else {
            break;
        };
        assert!(conn_pickle::Shared::ptr_eq(a, b), "still shared");
        levels += 1;
        v = &items[0];
    }
    assert_eq!(levels, 29);
    // Sharing survives re-encoding: the output is as small as the input.
    let again = value_to_vec(&value, Protocol::V4).unwrap();
    assert!(again.len() <= pickle.len() * 2, "{}", again.len());
    assert_eq!(value_from_slice(&again).unwrap(), value);
    // Copying it out into Rust types would make 2**30 values: refused up front.
    let err = from_slice::<Vec<Value>>(&pickle).unwrap_err();
    let err2 = from_slice::<Vec<Vec<Vec<Option<()>>>>>(&pickle).unwrap_err();
    for e in [err, err2] {
        assert!(
            matches!(
                e,
                Error::LimitExceeded {
                    limit: Limit::Expanded,
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn shared_text_is_not_copied_per_reference() {
    // One 1 MiB string referenced 100 000 times.
    let mut p = vec![0x80, 4, 0x8d];
    p.extend_from_slice(&(1u64 << 20).to_le_bytes());
    p.extend(std::iter::repeat_n(b'x', 1 << 20));
    p.extend_from_slice(&[0x94, b'0', b']', b'(']);
    for _ in 0..100_000 {
        p.extend_from_slice(b"h\x00");
    }
    p.extend_from_slice(b"e.");
    let value = value_from_slice(&p).unwrap();
    let items = value.as_items().unwrap();
    assert_eq!(items.len(), 100_000);
    let (Value::Str(a), Value::Str(b)) = (&items[0], &items[99_999]) else {
        panic!()
    };
    assert!(std::sync::Arc::ptr_eq(a, b));
    assert!(from_slice::<Vec<String>>(&p).is_err(), "100 GB of copies");
}

#[test]
fn lying_lengths_are_truncation_not_allocation() {
    for op in [0x8d_u8, 0x8e, 0x96, 0x95] {
        let mut p = vec![0x80, 4, op];
        p.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        p.extend_from_slice(b"abc");
        let err = value_from_slice(&p).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { offset: 2 }),
            "{op:#x}: {err}"
        );
    }
    for op in [b'X', b'B'] {
        let mut p = vec![0x80, 4, op];
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            value_from_slice(&p).unwrap_err(),
            Error::Truncated { .. }
        ));
    }
    // LONG4 claiming 2 GiB: over the int limit before any read.
    let mut p = vec![0x80, 4, 0x8b];
    p.extend_from_slice(&i32::MAX.to_le_bytes());
    assert_eq!(
        value_from_slice(&p).unwrap_err(),
        Error::LimitExceeded {
            limit: Limit::IntBytes,
            max: 1 << 20
        }
    );
    // Negative BINSTRING / LONG4 counts.
    assert!(matches!(
        value_from_slice(b"T\xff\xff\xff\xffabc.").unwrap_err(),
        Error::Malformed { .. }
    ));
}

#[test]
fn text_ints_follow_cpythons_digit_limit() {
    let ok = format!("I{}\n.", "7".repeat(4300));
    assert_eq!(
        value_from_slice(ok.as_bytes()).unwrap().to_string(),
        "7".repeat(4300)
    );
    let million = format!("I{}\n.", "7".repeat(1_000_000));
    let started = std::time::Instant::now();
    assert_eq!(
        value_from_slice(million.as_bytes()).unwrap_err(),
        Error::LimitExceeded {
            limit: Limit::IntDigits,
            max: 4300
        }
    );
    // Refused before any conversion (a generous bound: conversion would take seconds).
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(value_from_slice(b"I01\n.").unwrap(), Value::Bool(true));
    assert_eq!(value_from_slice(b"L-5L\n.").unwrap(), Value::Int(-5));
    assert!(value_from_slice(b"I12x\n.").is_err());
}

#[test]
fn memo_indices_far_apart_do_not_allocate() {
    // LONG_BINPUT 0xffffffff then LONG_BINGET of it.
    let p = b"\x80\x02K\x07r\xff\xff\xff\xff0j\xff\xff\xff\xff.";
    assert_eq!(value_from_slice(p).unwrap(), Value::Int(7));
    let missing = b"\x80\x02h\x05.";
    assert!(matches!(
        value_from_slice(missing).unwrap_err(),
        Error::MemoNotFound { index: 5, .. }
    ));
    let limits = Limits::default().max_memo(3);
    let mut p = vec![0x80, 4, b'N'];
    p.extend(std::iter::repeat_n(0x94, 4));
    p.push(b'.');
    assert_eq!(
        value_from_slice_with(&p, &limits).unwrap_err(),
        Error::LimitExceeded {
            limit: Limit::Memo,
            max: 3
        }
    );
}

#[test]
fn structure_errors_are_typed() {
    assert_eq!(
        value_from_slice(b"\x80\x06N.").unwrap_err(),
        Error::UnsupportedProtocol(6)
    );
    assert!(matches!(
        value_from_slice(b"N.junk").unwrap_err(),
        Error::TrailingData { offset: 2 }
    ));
    assert!(matches!(
        value_from_slice(b"NN.").unwrap_err(),
        Error::TrailingData { .. }
    ));
    assert!(matches!(
        value_from_slice(b".").unwrap_err(),
        Error::StackUnderflow { .. }
    ));
    assert!(matches!(
        value_from_slice(b"e.").unwrap_err(),
        Error::MarkNotFound { .. }
    ));
    assert!(matches!(
        value_from_slice(b"}(K\x01K\x02e.").unwrap_err(),
        Error::Malformed { .. }
    ));
    assert!(matches!(
        value_from_slice(b"\xff").unwrap_err(),
        Error::UnknownOpcode { opcode: 0xff, .. }
    ));
    assert!(matches!(
        value_from_slice(b"X\x02\x00\x00\x00\xed\xa0.").unwrap_err(),
        Error::InvalidUtf8 { .. } | Error::Truncated { .. }
    ));
    assert!(matches!(
        value_from_slice(b"X\x03\x00\x00\x00\xed\xa0\x80.").unwrap_err(),
        Error::InvalidUtf8 { .. }
    ));
    assert!(matches!(
        value_from_slice(b"").unwrap_err(),
        Error::Truncated { offset: 0 }
    ));
}

#[test]
fn every_prefix_of_real_pickles_is_an_error() {
    for case in common::cases(include_str!("data/kat-3.13.txt")).step_by(7) {
        let bytes = case.pickle;
        for cut in 0..bytes.len() {
            assert!(
                value_from_slice(&bytes[..cut]).is_err(),
                "{}: prefix {cut}",
                case.name
            );
            let _ = from_slice::<Value>(&bytes[..cut]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = value_from_slice(&bytes);
        let _ = from_slice::<Value>(&bytes);
        let _ = from_slice::<(i64, String)>(&bytes);
    }

    #[test]
    fn opcode_soup_never_panics(ops in proptest::collection::vec(
        prop_oneof![
            Just(b'('), Just(b'.'), Just(b'0'), Just(b'1'), Just(b'2'), Just(b'N'), Just(b']'),
            Just(b'}'), Just(b')'), Just(b'a'), Just(b'e'), Just(b's'), Just(b'u'), Just(b't'),
            Just(b'l'), Just(b'd'), Just(b'R'), Just(b'b'), Just(0x81u8), Just(0x85), Just(0x86),
            Just(0x8f), Just(0x90), Just(0x91), Just(0x92), Just(0x93), Just(0x94), Just(b'K'),
            Just(b'h'), Just(b'q'), Just(0x88),
        ], 0..40)) {
        let mut p = vec![0x80, 4];
        for op in ops {
            p.push(op);
            if matches!(op, b'K' | b'h' | b'q') {
                p.push(0);
            }
        }
        p.push(b'.');
        if let Ok(v) = value_from_slice(&p) {
            let _ = v.to_string();
            let again = value_to_vec(&v, Protocol::V4).unwrap();
            prop_assert_eq!(value_from_slice(&again).unwrap(), v);
        }
    }
}
