//! Hex text for bytes crossing a Python peer's stdin/stdout.

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex text; panics (fails the test) on anything else.
#[expect(clippy::unwrap_used, reason = "test helper: bad hex is a failed test")]
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
