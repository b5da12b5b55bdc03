//! Known answers from real CPython (`tests/data/kat-*.txt`, written by `tests/data/regen.sh`):
//! every corpus value in every protocol 2.7, 3.11 and 3.13 write, plus hand-made pickles for the
//! rare opcodes. Each must decode (or fail with the named error), print as Python's `repr` where
//! the file says so, and survive re-encoding in every protocol we write.

mod common;

use common::{cases, unhex};
use conn_pickle::{Error, Protocol, Value, value_from_slice, value_to_vec};

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Recursive => "Recursive",
        Error::Unsupported { .. } => "Unsupported",
        Error::Truncated { .. } => "Truncated",
        _ => "Other",
    }
}

fn check_file(name: &str, text: &str) -> usize {
    let mut checked = 0;
    for case in cases(text) {
        let label = format!("{name} {} protocol {}", case.name, case.proto);
        let (bytes, expected) = (case.pickle, case.expected);
        let result = value_from_slice(&bytes);
        if let Some(kind) = expected.strip_prefix("error:") {
            let err = result.expect_err(&label);
            assert_eq!(error_kind(&err), kind, "{label}: {err}");
            checked += 1;
            continue;
        }
        let value = result.unwrap_or_else(|e| panic!("{label}: {e}"));
        if let Some(repr) = expected.strip_prefix("repr:") {
            let repr = String::from_utf8(unhex(repr)).unwrap();
            assert_eq!(value.to_string(), repr, "{label}");
        }
        for out in [Protocol::V2, Protocol::V3, Protocol::V4, Protocol::V5] {
            if case.name.contains("fold") && out < Protocol::V4 {
                // `fold` exists only from protocol 4 on, in CPython as here.
                continue;
            }
            let again =
                value_to_vec(&value, out).unwrap_or_else(|e| panic!("{label} {out:?}: {e}"));
            let back: Value =
                value_from_slice(&again).unwrap_or_else(|e| panic!("{label} {out:?}: {e}"));
            assert_eq!(back, value, "{label} re-encoded as {out:?}");
        }
        checked += 1;
    }
    checked
}

#[test]
fn cpython_2_7_known_answers() {
    let n = check_file("2.7", include_str!("data/kat-2.7.txt"));
    assert!(n > 200, "{n}");
}

#[test]
fn cpython_3_11_known_answers() {
    let n = check_file("3.11", include_str!("data/kat-3.11.txt"));
    assert!(n > 500, "{n}");
}

#[test]
fn cpython_3_13_known_answers() {
    let n = check_file("3.13", include_str!("data/kat-3.13.txt"));
    assert!(n > 500, "{n}");
}

/// Protocols 0–2 carry Python 2 names, which every reader maps to Python 3 ones: a global that
/// would read back as another name is refused there, and written as it is from protocol 3 on.
#[test]
fn globals_that_protocol_2_cannot_carry() {
    for (module, name) in [
        ("__builtin__", "bytes"),
        ("exceptions", "ValueError"),
        ("builtins", "unicode"),
        ("copy_reg", "x"),
    ] {
        let v = Value::global(module, name);
        let e = value_to_vec(&v, Protocol::V2).unwrap_err();
        assert!(matches!(e, Error::Unpicklable(_)), "{module}.{name}: {e}");
        for p in [Protocol::V3, Protocol::V4, Protocol::V5] {
            let back = value_from_slice(&value_to_vec(&v, p).unwrap()).unwrap();
            assert_eq!(back, v, "{module}.{name} {p:?}");
        }
    }
    // Python 3 names go through protocol 2 and come back as they were.
    for (module, name) in [
        ("builtins", "str"),
        ("builtins", "range"),
        ("copyreg", "_reconstructor"),
        ("collections", "OrderedDict"),
    ] {
        let v = Value::global(module, name);
        let back = value_from_slice(&value_to_vec(&v, Protocol::V2).unwrap()).unwrap();
        assert_eq!(back, v, "{module}.{name}");
    }
}
