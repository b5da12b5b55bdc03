//! What can go wrong reading or writing a pickle. Every failure is one of these; none panics.

use std::fmt;

/// Which limit of [`Limits`](crate::Limits) a message exceeded.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Nesting of containers and objects ([`Limits::max_depth`](crate::Limits::max_depth)).
    Depth,
    /// Memo entries ([`Limits::max_memo`](crate::Limits::max_memo)).
    Memo,
    /// Values built ([`Limits::max_values`](crate::Limits::max_values)).
    Values,
    /// Digits of a text int ([`Limits::max_int_digits`](crate::Limits::max_int_digits)).
    IntDigits,
    /// Bytes of a binary int ([`Limits::max_int_bytes`](crate::Limits::max_int_bytes)).
    IntBytes,
    /// Size of a shared structure once copied out into Rust types
    /// ([`Limits::max_expanded`](crate::Limits::max_expanded)).
    Expanded,
    /// Copying the message made of values it had already built: `set(l)`, `bytearray(b)`, a
    /// name given to `STACK_GLOBAL` or `Decimal`, named again and again (one unit a slot or a
    /// byte; a message may copy as much as its own length plus 64 Ki units), or the text its
    /// values hold, copies included, adding up to more than twice the message plus that.
    Copies,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Depth => "nesting depth",
            Self::Memo => "memo entries",
            Self::Values => "values",
            Self::IntDigits => "digits of a text int",
            Self::IntBytes => "bytes of a binary int",
            Self::Expanded => "expanded size",
            Self::Copies => "copies of values already built",
        })
    }
}

/// A pickle could not be decoded or a value could not be encoded.
///
/// Decoding errors carry the byte offset of the opcode at fault. Messages follow CPython's
/// `UnpicklingError` texts where CPython has one, and never echo peer bytes.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The data ended inside an opcode or before `STOP` (CPython: "pickle data was truncated").
    #[error("pickle data was truncated (at byte {offset})")]
    Truncated {
        /// Where the opcode that ran out of data starts.
        offset: usize,
    },
    /// A byte that is no opcode of protocols 0–5 (CPython: "invalid load key").
    #[error("invalid load key, {opcode:#04x} (at byte {offset})")]
    UnknownOpcode {
        /// The byte.
        opcode: u8,
        /// Where it is.
        offset: usize,
    },
    /// `PROTO` names a protocol above 5.
    #[error("unsupported pickle protocol: {0}")]
    UnsupportedProtocol(u8),
    /// An opcode needed more values than the stack holds.
    #[error("unpickling stack underflow (at byte {offset})")]
    StackUnderflow {
        /// Where the opcode is.
        offset: usize,
    },
    /// An opcode needed a `MARK` and there is none.
    #[error("could not find MARK (at byte {offset})")]
    MarkNotFound {
        /// Where the opcode is.
        offset: usize,
    },
    /// `GET` of a memo index never `PUT`.
    #[error("Memo value not found at index {index} (at byte {offset})")]
    MemoNotFound {
        /// The index asked for.
        index: u64,
        /// Where the opcode is.
        offset: usize,
    },
    /// An opcode whose argument or operands are not what it needs (a text int that is no
    /// number, `APPENDS` onto a dict, a date with month 13…).
    #[error("malformed {opcode} (at byte {offset}): {reason}")]
    Malformed {
        /// The opcode's name, as `pickletools` spells it.
        opcode: &'static str,
        /// Where it is.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A string that should be UTF-8 is not (or holds a lone surrogate, which Rust's `str` cannot).
    #[error("invalid UTF-8 in a str (at byte {offset})")]
    InvalidUtf8 {
        /// Where the opcode is.
        offset: usize,
    },
    /// A feature this crate refuses by design: persistent ids, the extension registry,
    /// out-of-band buffers. Documented in the crate docs.
    #[error("unsupported {what} (at byte {offset})")]
    Unsupported {
        /// What it is.
        what: &'static str,
        /// Where it is.
        offset: usize,
    },
    /// Bytes follow the `STOP` opcode, or the stack holds more than one value at `STOP`.
    #[error("data left over after the pickle (at byte {offset})")]
    TrailingData {
        /// Where the extra data starts.
        offset: usize,
    },
    /// A structure that contains itself (`l = []; l.append(l)`). Not representable by the
    /// value model; refused rather than cut.
    #[error("the pickle holds a self-referencing structure")]
    Recursive,
    /// A limit of [`Limits`](crate::Limits) was exceeded.
    #[error("limit exceeded: {limit} over {max}")]
    LimitExceeded {
        /// Which one.
        limit: Limit,
        /// Its value.
        max: u64,
    },
    /// A value cannot be written as a pickle of the chosen protocol (a global name with a
    /// newline, a map key serde cannot write, `NEWOBJ_EX` before protocol 4…).
    #[error("cannot pickle: {}", crate::escape_text(.0))]
    Unpicklable(String),
    /// A serde error: the message is valid but does not match the Rust type asked for, or a
    /// type's own `Serialize` / `Deserialize` failed.
    ///
    /// Its text may quote the message (serde names the variant or field it did not expect):
    /// `Display` escapes it as [`escape_text`](crate::escape_text) does.
    #[error("{}", crate::escape_text(.0))]
    Custom(String),
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}
