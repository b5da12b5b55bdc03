//! `Display` for [`Value`]: what Python's `repr()` prints, written with an explicit stack so
//! nesting depth costs heap, not call stack.
//!
//! Differences, by necessity: an inert object prints as its class's name called with its
//! arguments (`KeyError('missing')`, which is Python's repr for exceptions; a dataclass rebuilt
//! from state prints its fields by name); a `str` prints non-ASCII characters as they are except
//! for C0/C1 controls, separators and format characters (Python consults the full Unicode
//! database); an int over 4300 digits prints in hexadecimal where Python's `repr` refuses.

use std::borrow::Cow;
use std::fmt::{self, Write};

use crate::value::{Date, Object, ObjectKind, Time, TimeDelta, TimeZone, Value};

enum Task<'a> {
    Value(&'a Value),
    Lit(&'static str),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut stack = vec![Task::Value(self)];
        while let Some(task) = stack.pop() {
            match task {
                Task::Lit(s) => f.write_str(s)?,
                Task::Text(s) => f.write_str(&s)?,
                Task::Value(v) => expand(v, &mut stack, f)?,
            }
        }
        Ok(())
    }
}

/// Pushes, in reverse, what prints `items` joined by `", "` between `open` and `close`.
fn seq<'a>(stack: &mut Vec<Task<'a>>, open: &'static str, items: &'a [Value], close: &'static str) {
    stack.push(Task::Lit(close));
    for (i, item) in items.iter().enumerate().rev() {
        stack.push(Task::Value(item));
        if i > 0 {
            stack.push(Task::Lit(", "));
        }
    }
    stack.push(Task::Lit(open));
}

fn map<'a>(
    stack: &mut Vec<Task<'a>>,
    open: &'static str,
    items: &'a [(Value, Value)],
    close: &'static str,
) {
    stack.push(Task::Lit(close));
    for (i, (k, v)) in items.iter().enumerate().rev() {
        stack.push(Task::Value(v));
        stack.push(Task::Lit(": "));
        stack.push(Task::Value(k));
        if i > 0 {
            stack.push(Task::Lit(", "));
        }
    }
    stack.push(Task::Lit(open));
}

fn expand<'a>(v: &'a Value, stack: &mut Vec<Task<'a>>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match v {
        Value::None => f.write_str("None"),
        Value::Bool(true) => f.write_str("True"),
        Value::Bool(false) => f.write_str("False"),
        Value::Int(i) => write!(f, "{i}"),
        Value::BigInt(b) => write!(f, "{b}"),
        Value::Float(x) => f.write_str(&float_repr(*x)),
        Value::Complex(c) => {
            if c.re == 0.0 && c.re.is_sign_positive() {
                write!(f, "{}j", short_float(c.im))
            } else {
                let im = short_float(c.im);
                let sign = if im.starts_with('-') { "" } else { "+" };
                write!(f, "({}{sign}{im}j)", short_float(c.re))
            }
        }
        Value::Str(s) => f.write_str(&str_repr(s)),
        Value::Bytes(b) => write!(f, "b{}", bytes_repr(b)),
        Value::ByteArray(b) => write!(f, "bytearray(b{})", bytes_repr(b)),
        Value::LegacyStr(b) => f.write_str(&bytes_repr(b)),
        Value::List(items) => {
            seq(stack, "[", items, "]");
            Ok(())
        }
        Value::Tuple(items) if items.len() == 1 => {
            seq(stack, "(", items, ",)");
            Ok(())
        }
        Value::Tuple(items) => {
            seq(stack, "(", items, ")");
            Ok(())
        }
        Value::Dict(items) => {
            map(stack, "{", items, "}");
            Ok(())
        }
        Value::Set(items) if items.is_empty() => f.write_str("set()"),
        Value::Set(items) => {
            seq(stack, "{", items, "}");
            Ok(())
        }
        Value::FrozenSet(items) if items.is_empty() => f.write_str("frozenset()"),
        Value::FrozenSet(items) => {
            seq(stack, "frozenset({", items, "})");
            Ok(())
        }
        Value::OrderedDict(items) if items.is_empty() => f.write_str("OrderedDict()"),
        Value::OrderedDict(items) => {
            map(stack, "OrderedDict({", items, "})");
            Ok(())
        }
        Value::Date(d) => f.write_str(&date_args(d, "datetime.date(")),
        Value::Time(t) => {
            stack.push(Task::Lit(")"));
            time_tail(t, stack);
            stack.push(Task::Text(format!("datetime.time({}", time_fields(t))));
            Ok(())
        }
        Value::DateTime(dt) => {
            stack.push(Task::Lit(")"));
            time_tail(dt.time(), stack);
            let date = date_args(&dt.date(), "datetime.datetime(");
            let date = date.trim_end_matches(')');
            stack.push(Task::Text(format!("{date}, {}", time_fields(dt.time()))));
            Ok(())
        }
        Value::TimeDelta(td) => f.write_str(&timedelta_repr(td)),
        Value::TimeZone(tz) => f.write_str(&timezone_repr(tz)),
        Value::Decimal(d) => write!(f, "Decimal({})", str_repr(d)),
        Value::Uuid(u) => write!(f, "UUID('{}')", uuid_text(u)),
        Value::Global(g) => {
            if g.module() == "builtins" {
                write!(f, "<class '{}'>", escape_text(g.name()))
            } else {
                write!(
                    f,
                    "<class '{}.{}'>",
                    escape_text(g.module()),
                    escape_text(g.name())
                )
            }
        }
        Value::Object(o) => {
            object(o, stack);
            Ok(())
        }
    }
}

fn object<'a>(o: &'a Object, stack: &mut Vec<Task<'a>>) {
    stack.push(Task::Lit(")"));
    let mut parts: Vec<Vec<Task<'a>>> = Vec::new();
    for a in o.args_slice() {
        parts.push(vec![Task::Value(a)]);
    }
    let named = |entries: &'a [(Value, Value)], parts: &mut Vec<Vec<Task<'a>>>| {
        for (k, v) in entries {
            match k.as_str() {
                Some(name) => parts.push(vec![
                    Task::Text(format!("{}=", escape_text(name))),
                    Task::Value(v),
                ]),
                None => parts.push(vec![Task::Value(k), Task::Lit("="), Task::Value(v)]),
            }
        }
    };
    if let Some(kw) = o.kwargs().and_then(Value::as_entries) {
        named(kw, &mut parts);
    }
    match o.state() {
        Some(state) if o.kind() == ObjectKind::New => match state.as_entries() {
            Some(entries) => named(entries, &mut parts),
            None => parts.push(vec![Task::Lit("state="), Task::Value(state)]),
        },
        Some(state) => parts.push(vec![Task::Lit("state="), Task::Value(state)]),
        None => {}
    }
    if (!o.args_slice().is_empty() || !matches!(o.args(), Value::Tuple(_)))
        && !matches!(o.args(), Value::Tuple(_))
    {
        parts.insert(0, vec![Task::Lit("*"), Task::Value(o.args())]);
    }
    for (i, part) in parts.into_iter().enumerate().rev() {
        for t in part.into_iter().rev() {
            stack.push(t);
        }
        if i > 0 {
            stack.push(Task::Lit(", "));
        }
    }
    match o.class() {
        Some(g) => stack.push(Task::Text(format!("{}(", escape_text(g.name())))),
        None => {
            stack.push(Task::Lit("("));
            stack.push(Task::Value(o.callable()));
        }
    }
}

fn date_args(d: &Date, prefix: &str) -> String {
    format!("{prefix}{}, {}, {})", d.year(), d.month(), d.day())
}

fn time_fields(t: &Time) -> String {
    let mut s = format!("{}, {}", t.hour(), t.minute());
    if t.second() != 0 || t.microsecond() != 0 {
        let _ = write!(s, ", {}", t.second());
    }
    if t.microsecond() != 0 {
        let _ = write!(s, ", {}", t.microsecond());
    }
    s
}

fn time_tail<'a>(t: &'a Time, stack: &mut Vec<Task<'a>>) {
    if t.fold() {
        stack.push(Task::Lit(", fold=1"));
    }
    if let Some(tz) = t.tzinfo() {
        stack.push(Task::Value(tz));
        stack.push(Task::Lit(", tzinfo="));
    }
}

pub(crate) fn timedelta_repr(td: &TimeDelta) -> String {
    let mut parts = Vec::new();
    if td.days() != 0 {
        parts.push(format!("days={}", td.days()));
    }
    if td.seconds() != 0 {
        parts.push(format!("seconds={}", td.seconds()));
    }
    if td.microseconds() != 0 {
        parts.push(format!("microseconds={}", td.microseconds()));
    }
    if parts.is_empty() {
        "datetime.timedelta(0)".into()
    } else {
        format!("datetime.timedelta({})", parts.join(", "))
    }
}

fn timezone_repr(tz: &TimeZone) -> String {
    if tz.offset().total_microseconds() == 0 && tz.name().is_none() {
        return "datetime.timezone.utc".into();
    }
    match tz.name() {
        Some(name) => format!(
            "datetime.timezone({}, {})",
            timedelta_repr(&tz.offset()),
            str_repr(name)
        ),
        None => format!("datetime.timezone({})", timedelta_repr(&tz.offset())),
    }
}

pub(crate) fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for exponents -4..16,
/// scientific otherwise, `.0` on integral values.
pub fn float_repr(x: f64) -> String {
    let s = short_float(x);
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        format!("{s}.0")
    } else {
        s
    }
}

/// `repr` without the forced `.0` (how `complex` prints its parts).
fn short_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        if exp < 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else {
            let point = exp as usize + 1;
            if digits.len() <= point {
                format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
            } else {
                format!("{sign}{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{head}{frac}e{esign}{:02}", exp.abs())
    }
}

fn printable(c: char) -> bool {
    let u = u32::from(c);
    !(u < 0x20
        || (0x7f..=0xa0).contains(&u)
        || u == 0xad
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x206f).contains(&u)
        || u == 0x3000
        || u == 0xfeff
        || (0xe000..=0xf8ff).contains(&u)
        || (0xfff0..=0xfffb).contains(&u)
        || (0x600..=0x605).contains(&u)
        || u == 0x61c
        || u == 0x6dd
        || u == 0x70f
        || u == 0x8e2
        || u == 0x180e
        || (0x13430..=0x1343f).contains(&u)
        || (0x1bca0..=0x1bca3).contains(&u)
        || (0x1d173..=0x1d17a).contains(&u)
        || (0xe0000..=0xe007f).contains(&u)
        || u >= 0xf0000)
}

/// `s` as it may be shown on a terminal or in a log: unchanged if every character is
/// printable, otherwise with each backslash and non-printable character escaped as in
/// Python's `repr()` (`\n`, `\x1b`, `\u202e`…) but without quotes. Text a peer controls
/// (a global's names, an object's class and keyword names, messages quoting them) goes
/// through this wherever conn prints it.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if s.chars().all(|c| c != '\\' && printable(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Whether `s` holds no character a terminal or log would act on: no C0 or C1 control, no
/// DEL, no bidi or line separator, nothing else Python's `repr()` escapes. What `Display`
/// and error messages of this crate produce always passes.
pub fn is_printable_text(s: &str) -> bool {
    s.chars().all(printable)
}

/// Pushes `c` escaped as `repr()` escapes it.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if printable(c) => out.push(c),
        c => {
            let u = u32::from(c);
            let _ = if u <= 0xff {
                write!(out, "\\x{u:02x}")
            } else if u <= 0xffff {
                write!(out, "\\u{u:04x}")
            } else {
                write!(out, "\\U{u:08x}")
            };
        }
    }
}

/// Python's `repr(str)`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => push_escaped(&mut out, c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(bytes)` without the `b` prefix.
fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 2);
    out.push(char::from(quote));
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(char::from(c));
            }
            0x20..=0x7e => out.push(char::from(c)),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(char::from(quote));
    out
}
