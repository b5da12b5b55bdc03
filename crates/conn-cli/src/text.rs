//! Peer text made safe for a terminal: what a peer sends is never printed raw.

/// `bytes` as printable ASCII: printable characters as they are (backslash doubled), the
/// rest as `\n`, `\r`, `\t` or `\xNN`, as Python writes a bytes literal.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// At most `max` bytes of `bytes`, escaped, with `…` if cut.
pub(crate) fn preview(bytes: &[u8], max: usize) -> String {
    let mut s = escape(&bytes[..bytes.len().min(max)]);
    if bytes.len() > max {
        s.push('…');
    }
    s
}

/// `s` as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_bytes_never_reach_the_terminal_raw() {
        assert_eq!(escape(b"ok \x1b[31m\n\\\xff"), "ok \\x1b[31m\\n\\\\\\xff");
        assert!(
            escape(&(0..=255).collect::<Vec<u8>>())
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b))
        );
        assert_eq!(preview(b"abcdef", 3), "abc…");
        assert_eq!(json_string("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
