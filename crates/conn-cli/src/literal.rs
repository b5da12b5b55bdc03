//! What the user types, as a Python value: a Python literal of the common types, or JSON with
//! the tags `--format json` prints (so output can be typed back in).
//!
//! Python literals: `None`, `True`, `False`, integers of any size (`0x`, `0o`, `0b`, `_`),
//! floats (`1.5`, `1e3`, `inf`/`nan` as `float('inf')`), strings (`'…'`, `"…"`, with `\n`,
//! `\t`, `\\`, `\'`, `\"`, `\xNN`, `\uNNNN`, `\UNNNNNNNN` escapes), bytes (`b'…'`), lists,
//! tuples (`()`, `(1,)`), dicts, sets. Nesting is limited to [`MAX_DEPTH`].
//!
//! JSON: `null`, booleans, numbers (integers of any size stay integers), strings, arrays
//! (lists), objects (dicts with `str` keys), and the tagged objects `{"$bytes": "hex"}`,
//! `{"$bytearray": "hex"}`, `{"$tuple": [...]}`, `{"$set": [...]}`, `{"$frozenset": [...]}`,
//! `{"$dict": [[key, value], ...]}` (any keys) and `{"$float": "nan" | "inf" | "-inf"}`.

use conn::PyValue;
use conn::pickle::{BigInt, Shared};

/// How deep a typed value may nest.
pub(crate) const MAX_DEPTH: usize = 100;

/// Which syntax the user types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Syntax {
    /// A Python literal.
    Python,
    /// JSON (with conn's tags for bytes, tuples, sets…).
    Json,
}

/// Parses `text` as one value in `syntax`.
pub(crate) fn parse(text: &str, syntax: Syntax) -> Result<PyValue, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        json: syntax == Syntax::Json,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.error("unexpected text after the value"));
    }
    if p.json {
        return untag(v, 0);
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    json: bool,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at character {}", self.i + 1)
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, w: &str) -> bool {
        let end = self.i + w.len();
        let next_is_ident = self
            .s
            .get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if self.s.get(self.i..end) == Some(w.as_bytes()) && !next_is_ident {
            self.i = end;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, String> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH}")));
        }
        self.ws();
        let (none, t, f) = if self.json {
            ("null", "true", "false")
        } else {
            ("None", "True", "False")
        };
        if self.word(none) {
            return Ok(PyValue::None);
        }
        if self.word(t) {
            return Ok(PyValue::Bool(true));
        }
        if self.word(f) {
            return Ok(PyValue::Bool(false));
        }
        match self.peek() {
            None => Err(self.error("a value is missing")),
            Some(b'[') => {
                self.i += 1;
                Ok(PyValue::list(self.items(b']', depth)?))
            }
            Some(b'(') if !self.json => self.tuple(depth),
            Some(b'{') => self.braces(depth),
            Some(b'"') => self.string().map(|s| PyValue::str(s.as_str())),
            Some(b'\'') if !self.json => self.string().map(|s| PyValue::str(s.as_str())),
            Some(b'b' | b'B')
                if !self.json && matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) =>
            {
                self.i += 1;
                let s = self.string()?;
                let bytes: Option<Vec<u8>> =
                    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
                bytes
                    .map(|b| PyValue::Bytes(b.into()))
                    .ok_or_else(|| self.error("a bytes literal holds only characters below 256"))
            }
            Some(b'f') if !self.json && self.word("float") => self.float_call(),
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(_) => Err(self.error("not a value this parser knows")),
        }
    }

    /// `float('inf')`, `float('-inf')`, `float('nan')`.
    fn float_call(&mut self) -> Result<PyValue, String> {
        self.ws();
        if !self.eat(b'(') {
            return Err(self.error("expected ( after float"));
        }
        self.ws();
        let s = self.string()?;
        self.ws();
        if !self.eat(b')') {
            return Err(self.error("expected )"));
        }
        match s.trim().to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" => Ok(PyValue::Float(f64::INFINITY)),
            "-inf" | "-infinity" => Ok(PyValue::Float(f64::NEG_INFINITY)),
            "nan" => Ok(PyValue::Float(f64::NAN)),
            other => other
                .parse::<f64>()
                .map(PyValue::Float)
                .map_err(|_| self.error("float() of something not a number")),
        }
    }

    /// Items up to `close`, separated by commas (a trailing comma allowed in Python).
    fn items(&mut self, close: u8, depth: usize) -> Result<Vec<PyValue>, String> {
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.eat(close) {
                return Ok(out);
            }
            out.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(close) {
                return Ok(out);
            }
            if !self.eat(b',') {
                return Err(self.error("expected , or a closing bracket"));
            }
            if self.json {
                self.ws();
                if self.peek() == Some(close) {
                    return Err(self.error("a trailing comma is not JSON"));
                }
            }
        }
    }

    fn tuple(&mut self, depth: usize) -> Result<PyValue, String> {
        self.i += 1;
        self.ws();
        if self.eat(b')') {
            return Ok(PyValue::tuple(Vec::new()));
        }
        let first = self.value(depth + 1)?;
        self.ws();
        if self.eat(b')') {
            // `(x)` is x, as in Python.
            return Ok(first);
        }
        if !self.eat(b',') {
            return Err(self.error("expected , or )"));
        }
        let mut rest = self.items(b')', depth)?;
        rest.insert(0, first);
        Ok(PyValue::tuple(rest))
    }

    /// A dict (`{k: v, ...}`, `{}`) or a set (`{a, b}`).
    fn braces(&mut self, depth: usize) -> Result<PyValue, String> {
        self.i += 1;
        self.ws();
        if self.eat(b'}') {
            return Ok(PyValue::dict(Vec::new()));
        }
        let first = self.value(depth + 1)?;
        self.ws();
        if self.json || self.peek() == Some(b':') {
            let mut entries = Vec::new();
            let mut key = first;
            loop {
                self.ws();
                if !self.eat(b':') {
                    return Err(self.error("expected :"));
                }
                let value = self.value(depth + 1)?;
                entries.push((key, value));
                self.ws();
                if self.eat(b'}') {
                    return Ok(PyValue::dict(entries));
                }
                if !self.eat(b',') {
                    return Err(self.error("expected , or }"));
                }
                self.ws();
                if !self.json && self.eat(b'}') {
                    return Ok(PyValue::dict(entries));
                }
                key = self.value(depth + 1)?;
            }
        }
        let mut items = vec![first];
        self.ws();
        if !self.eat(b'}') {
            if !self.eat(b',') {
                return Err(self.error("expected , or }"));
            }
            items.extend(self.items(b'}', depth)?);
        }
        Ok(PyValue::set(items))
    }

    fn string(&mut self) -> Result<String, String> {
        let Some(quote) = self.peek() else {
            return Err(self.error("expected a string"));
        };
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err(self.error("the string never ends"));
            };
            self.i += 1;
            if c == quote {
                return Ok(out);
            }
            if c != b'\\' {
                // Copy one whole UTF-8 character.
                let start = self.i - 1;
                let len = match c {
                    0xf0.. => 4,
                    0xe0.. => 3,
                    0xc0.. => 2,
                    _ => 1,
                };
                let ch = self
                    .s
                    .get(start..start + len)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or_else(|| self.error("not UTF-8"))?;
                out.push_str(ch);
                self.i = start + len;
                continue;
            }
            let Some(&e) = self.s.get(self.i) else {
                return Err(self.error("the string never ends"));
            };
            self.i += 1;
            match e {
                b'n' => out.push('\n'),
                b't' => out.push('\t'),
                b'r' => out.push('\r'),
                b'0' if !self.json => out.push('\0'),
                b'b' if self.json => out.push('\u{8}'),
                b'f' if self.json => out.push('\u{c}'),
                b'/' if self.json => out.push('/'),
                b'\\' | b'\'' | b'"' => out.push(char::from(e)),
                b'x' if !self.json => out.push(self.hex_char(2)?),
                b'u' => out.push(self.hex_char(4)?),
                b'U' if !self.json => out.push(self.hex_char(8)?),
                _ => return Err(self.error("an escape this parser does not know")),
            }
        }
    }

    fn hex_char(&mut self, digits: usize) -> Result<char, String> {
        let text = self
            .s
            .get(self.i..self.i + digits)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| self.error("a short escape"))?;
        let code = u32::from_str_radix(text, 16).map_err(|_| self.error("a bad hex escape"))?;
        self.i += digits;
        char::from_u32(code).ok_or_else(|| self.error("not a Unicode character"))
    }

    fn number(&mut self) -> Result<PyValue, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_'))
        {
            // A sign only at the start or after an exponent.
            if matches!(self.peek(), Some(b'+' | b'-'))
                && self.i > start
                && !matches!(self.s[self.i - 1], b'e' | b'E')
            {
                break;
            }
            self.i += 1;
        }
        let text =
            std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.error("not a number"))?;
        let clean: String = text.chars().filter(|&c| c != '_').collect();
        if self.json && text.contains('_') {
            return Err(self.error("not a JSON number"));
        }
        let (neg, digits) = match clean.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
        };
        let radix = match digits.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("0x") if !self.json => Some(16),
            Some("0o") if !self.json => Some(8),
            Some("0b") if !self.json => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            let v = i128::from_str_radix(&digits[2..], radix)
                .map_err(|_| self.error("not a number"))?;
            return Ok(int(if neg { -v } else { v }));
        }
        if digits.bytes().all(|b| b.is_ascii_digit()) && !digits.is_empty() {
            return match clean.parse::<i64>() {
                Ok(v) => Ok(PyValue::Int(v)),
                Err(_) => BigInt::parse_decimal(&clean)
                    .map(PyValue::BigInt)
                    .ok_or_else(|| self.error("not a number")),
            };
        }
        clean
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(PyValue::Float)
            .ok_or_else(|| self.error("not a number"))
    }
}

fn int(v: i128) -> PyValue {
    i64::try_from(v).map_or_else(|_| PyValue::BigInt(BigInt::from_i128(v)), PyValue::Int)
}

/// Hex digits as bytes (`None` if they are not pairs of hex digits).
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Turns JSON's tagged objects into the values they stand for.
fn untag(v: PyValue, depth: usize) -> Result<PyValue, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH}"));
    }
    let all = |items: &[PyValue]| -> Result<Vec<PyValue>, String> {
        items.iter().cloned().map(|i| untag(i, depth + 1)).collect()
    };
    match v {
        PyValue::List(items) => Ok(PyValue::list(all(&items)?)),
        PyValue::Dict(entries) => {
            if let [(PyValue::Str(tag), inner)] = entries.as_slice() {
                let hex = |what: &str| match inner {
                    PyValue::Str(s) => unhex(s).ok_or_else(|| format!("{what}: not hex")),
                    _ => Err(format!("{what}: a hex string")),
                };
                let list = |what: &str| match inner {
                    PyValue::List(items) => all(items),
                    _ => Err(format!("{what}: an array")),
                };
                match &**tag {
                    "$bytes" => return hex("$bytes").map(|b| PyValue::Bytes(b.into())),
                    "$bytearray" => return hex("$bytearray").map(|b| PyValue::ByteArray(b.into())),
                    "$tuple" => return list("$tuple").map(PyValue::tuple),
                    "$set" => return list("$set").map(PyValue::set),
                    "$frozenset" => {
                        return list("$frozenset").map(|i| PyValue::FrozenSet(Shared::new(i)));
                    }
                    "$float" => {
                        return match inner {
                            PyValue::Str(s) if &**s == "nan" => Ok(PyValue::Float(f64::NAN)),
                            PyValue::Str(s) if &**s == "inf" => Ok(PyValue::Float(f64::INFINITY)),
                            PyValue::Str(s) if &**s == "-inf" => {
                                Ok(PyValue::Float(f64::NEG_INFINITY))
                            }
                            _ => Err("$float: \"nan\", \"inf\" or \"-inf\"".into()),
                        };
                    }
                    "$dict" => {
                        let pairs = list("$dict")?;
                        let entries = pairs
                            .into_iter()
                            .map(|p| match p {
                                PyValue::List(kv) if kv.len() == 2 => {
                                    Ok((kv[0].clone(), kv[1].clone()))
                                }
                                _ => Err("$dict: an array of [key, value] pairs".to_owned()),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        return Ok(PyValue::dict(entries));
                    }
                    _ => {}
                }
            }
            let entries = entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), untag(v.clone(), depth + 1)?)))
                .collect::<Result<Vec<_>, String>>()?;
            Ok(PyValue::dict(entries))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(s: &str) -> String {
        parse(s, Syntax::Python)
            .map(|v| v.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    fn json(s: &str) -> String {
        parse(s, Syntax::Json)
            .map(|v| v.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn python_literals_read_as_python_would() {
        assert_eq!(py("None"), "None");
        assert_eq!(
            py(" [1, -2, 3.5, 'a\\n', b'\\x00b', True] "),
            "[1, -2, 3.5, 'a\\n', b'\\x00b', True]"
        );
        assert_eq!(py("(1,)"), "(1,)");
        assert_eq!(py("(1)"), "1");
        assert_eq!(py("()"), "()");
        assert_eq!(py("{'k': (1, 2), 3: None}"), "{'k': (1, 2), 3: None}");
        assert_eq!(py("{1, 2}"), "{1, 2}");
        assert_eq!(
            py("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        assert_eq!(py("0xff"), "255");
        assert_eq!(py("1_000"), "1000");
        assert_eq!(py("float('inf')"), "inf");
        assert_eq!(py("'\\u00e9t\\u00e9'"), "'été'");
        assert_eq!(py("\"it's\""), "\"it's\"");
    }

    #[test]
    fn json_reads_with_conn_tags() {
        assert_eq!(
            json("{\"a\": [1, 2.5, null, true], \"b\": \"x\"}"),
            "{'a': [1, 2.5, None, True], 'b': 'x'}"
        );
        assert_eq!(json("{\"$bytes\": \"6869\"}"), "b'hi'");
        assert_eq!(json("{\"$tuple\": [1, {\"$set\": [2]}]}"), "(1, {2})");
        assert_eq!(json("{\"$dict\": [[1, 2]]}"), "{1: 2}");
        assert_eq!(json("99999999999999999999999"), "99999999999999999999999");
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        for bad in [
            "",
            "[",
            "[1,",
            "{'a'}x",
            "'unterminated",
            "b'\\u20ac'",
            "0x",
            "1e999",
            "{1: }",
            "\\",
            "(1 2)",
            "[1 2]",
            "{\"$bytes\": 5}",
            "'\\x4'",
            "float('x')",
            "-",
            ".",
            "+",
        ] {
            assert!(
                py(bad).starts_with("error: ") || json(bad).starts_with("error: "),
                "{bad}"
            );
        }
        let deep = "[".repeat(MAX_DEPTH + 5);
        assert!(py(&deep).contains("deeper"));
        assert!(json("[1,]").starts_with("error: "));
    }
}
