//! Python 2 text in pickles: quoted `STRING` literals, `raw-unicode-escape`, Latin-1, and the
//! module names `fix_imports` maps.

/// The Latin-1 bytes of `text`; `None` if a character is beyond U+00FF.
pub(super) fn latin1(text: &str) -> Option<Vec<u8>> {
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
pub(super) fn unquote_py2(line: &[u8]) -> Option<Vec<u8>> {
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
pub(super) fn raw_unicode_escape(line: &[u8]) -> Option<String> {
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
