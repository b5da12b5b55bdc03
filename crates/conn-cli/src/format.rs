//! How messages are printed (`--format`) and how typed messages are sent (`--input`).
//!
//! `repr` prints a pickle as Python's `repr` of what it holds; `json` prints it as JSON, with
//! tagged objects for what JSON lacks (see [`json`]); `text` prints a bytes message as UTF-8;
//! `hex` prints the message's bytes in hex; `raw` writes them as they are (never to a
//! terminal). Whatever a peer sent reaches the terminal escaped.

use std::fmt::Write as _;

use conn::Pickle;
use conn::PyValue;
use conn::pickle::{Protocol, escape_text, float_repr};

use crate::literal::{self, Syntax};
use crate::text::{escape, json_string};

/// How received messages are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Python's repr of the pickle (what CPython's `recv()` would return).
    Repr,
    /// The pickle as JSON (bytes, tuples, sets, big ints and the rest tagged; see the README).
    Json,
    /// The bytes as UTF-8 text (what `recv_bytes()` returns, decoded), escaped.
    Text,
    /// The bytes in hex.
    Hex,
    /// The bytes as they are, nothing added (not to a terminal).
    Raw,
}

/// What the user types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Input {
    /// A Python literal, sent as a pickle (CPython's `send(obj)`).
    Python,
    /// JSON, sent as a pickle.
    Json,
    /// UTF-8 text, sent as a bytes message (CPython's `send_bytes`).
    Text,
    /// Hex digits, sent as a bytes message.
    Hex,
}

/// How typed messages are read and received ones printed: the options `connect` and `listen`
/// share.
#[derive(clap::Args, Debug)]
pub(crate) struct MessageArgs {
    /// What a typed message (or --reply) is written as.
    #[arg(long, value_enum, default_value_t = Input::Python)]
    pub(crate) input: Input,
    /// How received messages are printed.
    #[arg(long, value_enum, default_value_t = Format::Repr)]
    pub(crate) format: Format,
    /// The pickle protocol typed values are sent with (2 for Python 2 peers).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub(crate) protocol: u8,
}

/// The pickle protocol a typed value is sent with.
pub(crate) fn protocol(n: u8) -> Result<Protocol, String> {
    match n {
        2 => Ok(Protocol::V2),
        3 => Ok(Protocol::V3),
        4 => Ok(Protocol::V4),
        5 => Ok(Protocol::V5),
        _ => Err(format!("--protocol {n}: 2, 3, 4 or 5")),
    }
}

/// The message to send for `text` typed as `input`.
pub(crate) fn message(text: &str, input: Input, protocol: Protocol) -> Result<Vec<u8>, String> {
    let value = match input {
        Input::Text => return Ok(text.as_bytes().to_vec()),
        Input::Hex => {
            let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            return literal::unhex(&digits).ok_or_else(|| "not hex digits".to_owned());
        }
        Input::Python => literal::parse(text, Syntax::Python)?,
        Input::Json => literal::parse(text, Syntax::Json)?,
    };
    let mut out = Vec::new();
    Pickle::new()
        .protocol(protocol)
        .encode_value(&value, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A received message as `format` prints it (without a line end; `raw` is the bytes).
pub(crate) fn render(message: &[u8], format: Format) -> Vec<u8> {
    let decoded = || Pickle::new().decode_value(message);
    match format {
        Format::Raw => message.to_vec(),
        Format::Hex => hex(message).into_bytes(),
        Format::Text => text(message).into_bytes(),
        Format::Repr => match decoded() {
            Ok(v) => v.to_string().into_bytes(),
            // What CPython's `recv_bytes()` would return, marked.
            Err(_) => format!("b'{}' (not a pickle)", escape(message)).into_bytes(),
        },
        Format::Json => match decoded() {
            Ok(v) => {
                let mut out = String::new();
                json(&v, &mut out);
                out.into_bytes()
            }
            Err(_) => format!("{{\"$not_pickle\":\"{}\"}}", hex(message)).into_bytes(),
        },
    }
}

/// Bytes as text: valid UTF-8 as Python's `repr()` shows a str, without quotes (conn-pickle's
/// `escape_text`: backslashes and every non-printable character escaped); invalid bytes as
/// `\xNN`.
fn text(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape_text(chunk.valid()));
        out.push_str(&escape(chunk.invalid()));
    }
    out
}

/// `v` as JSON: `None` null, `bool`, `int` (any size) and finite `float` as numbers, `str` as
/// strings, `list` as arrays, `dict` with `str` keys as objects. The rest as tagged objects:
/// `{"$bytes": hex}`, `{"$bytearray": hex}`, `{"$tuple": [...]}`, `{"$set": [...]}`,
/// `{"$frozenset": [...]}`, `{"$dict": [[k, v], ...]}` (other keys), `{"$float": "nan"}`
/// (and `"inf"`, `"-inf"`), and `{"$repr": "..."}` (Python's repr) for datetimes, decimals,
/// UUIDs, complex numbers, classes and objects. The tags other than `$repr` read back in.
pub(crate) fn json(v: &PyValue, out: &mut String) {
    let seq = |tag: Option<&str>, items: &[PyValue], out: &mut String| {
        if let Some(t) = tag {
            let _ = write!(out, "{{\"{t}\":");
        }
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json(item, out);
        }
        out.push(']');
        if tag.is_some() {
            out.push('}');
        }
    };
    match v {
        PyValue::None => out.push_str("null"),
        PyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::BigInt(b) => {
            let _ = write!(out, "{b}");
        }
        PyValue::Float(f) if f.is_nan() => out.push_str("{\"$float\":\"nan\"}"),
        PyValue::Float(f) if f.is_infinite() => {
            let sign = if *f < 0.0 { "-" } else { "" };
            let _ = write!(out, "{{\"$float\":\"{sign}inf\"}}");
        }
        PyValue::Float(f) => out.push_str(&float_repr(*f)),
        PyValue::Str(s) => out.push_str(&json_string(s)),
        PyValue::Bytes(b) | PyValue::LegacyStr(b) => {
            let _ = write!(out, "{{\"$bytes\":\"{}\"}}", hex(b));
        }
        PyValue::ByteArray(b) => {
            let _ = write!(out, "{{\"$bytearray\":\"{}\"}}", hex(b));
        }
        PyValue::List(items) => seq(None, items, out),
        PyValue::Tuple(items) => seq(Some("$tuple"), items, out),
        PyValue::Set(items) => seq(Some("$set"), items, out),
        PyValue::FrozenSet(items) => seq(Some("$frozenset"), items, out),
        PyValue::Dict(entries) | PyValue::OrderedDict(entries) => {
            if entries.iter().all(|(k, _)| matches!(k, PyValue::Str(_))) {
                out.push('{');
                for (i, (k, val)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json(k, out);
                    out.push(':');
                    json(val, out);
                }
                out.push('}');
            } else {
                out.push_str("{\"$dict\":[");
                for (i, (k, val)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('[');
                    json(k, out);
                    out.push(',');
                    json(val, out);
                    out.push(']');
                }
                out.push_str("]}");
            }
        }
        other => {
            let _ = write!(out, "{{\"$repr\":{}}}", json_string(&other.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(python: &str) -> String {
        let m = message(python, Input::Python, Protocol::V4).unwrap();
        String::from_utf8(render(&m, Format::Json)).unwrap()
    }

    #[test]
    fn json_output_is_tagged_where_json_has_no_type() {
        assert_eq!(
            round("{'a': [1, 2.5, None], 'b': b'hi'}"),
            "{\"a\":[1,2.5,null],\"b\":{\"$bytes\":\"6869\"}}"
        );
        assert_eq!(
            round("(1, {2}, {3: 'x'})"),
            "{\"$tuple\":[1,{\"$set\":[2]},{\"$dict\":[[3,\"x\"]]}]}"
        );
        assert_eq!(
            round("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        assert_eq!(round("float('nan')"), "{\"$float\":\"nan\"}");
        // What json prints reads back as the same value.
        for v in [
            "(1, b'\\x00', {2}, {3: None}, [float('-inf')])",
            "{'k': 'v\\n'}",
        ] {
            let printed = round(v);
            let again = message(&printed, Input::Json, Protocol::V4).unwrap();
            assert_eq!(
                String::from_utf8(render(&again, Format::Json)).unwrap(),
                printed
            );
        }
    }

    #[test]
    fn peer_text_is_escaped() {
        assert_eq!(
            text(b"ok\x1b[2J\n\xff\xe2\x80\xae"),
            "ok\\x1b[2J\\n\\xff\\u202e"
        );
        let repr = String::from_utf8(render(b"\x1b]0;pwn\x07", Format::Repr)).unwrap();
        assert!(!repr.contains('\x1b'), "{repr}");
        assert_eq!(repr, "b'\\x1b]0;pwn\\x07' (not a pickle)");
    }
}
