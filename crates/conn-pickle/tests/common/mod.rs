//! Shared by conn-pickle's tests: the known-answer files' line format.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    reason = "helpers shared by test binaries, each using some"
)]

/// Bytes from lowercase hex.
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// One line of a `kat-*.txt` file: name, protocol, pickle, expected outcome.
pub struct Case<'a> {
    pub name: &'a str,
    pub proto: &'a str,
    pub pickle: Vec<u8>,
    pub expected: &'a str,
}

/// The cases of a known-answer file.
pub fn cases(text: &str) -> impl Iterator<Item = Case<'_>> {
    text.lines().map(|line| {
        let mut parts = line.split('\t');
        let mut next = || parts.next().unwrap();
        let (name, proto, hex, expected) = (next(), next(), next(), next());
        Case {
            name,
            proto,
            pickle: unhex(hex),
            expected,
        }
    })
}

/// Every input the fuzzer kept for the pickle decoder: its seeds (CPython's pickles) and the
/// regressions it found.
pub fn fuzz_inputs() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut inputs = Vec::new();
    for dir in ["seeds/pickle_decode", "regressions/pickle_decode"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            inputs.push(std::fs::read(&path).unwrap());
        }
    }
    inputs
}
