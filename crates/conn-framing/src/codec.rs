//! The `Codec` trait: how `send(obj)` / `recv()` turn values into message bytes and back.

use std::error::Error as StdError;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Turns values into message payloads and back. A `Connection<C: Codec>` uses its codec for
/// `send` / `recv`; `send_bytes` / `recv_bytes` bypass it.
///
/// Decoding never runs code: unlike Python's `pickle.loads`, a codec only builds the value asked
/// for, or fails with a [`CodecError`].
pub trait Codec {
    /// A short name for errors ("pickle", "postcard").
    const NAME: &'static str;

    /// Appends the encoding of `value` to `out`.
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError>;

    /// Decodes one value from a whole message.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;

    /// The encoding of `value` as a new vector.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.encode_into(value, &mut out)?;
        Ok(out)
    }
}

/// Which way a codec failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecOp {
    /// Value to bytes (CPython: `PicklingError`, `TypeError`); nothing was sent.
    Encode,
    /// Bytes to value (CPython: `UnpicklingError`); the message was consumed, the stream stays in
    /// step.
    Decode,
}

/// A value could not be encoded, or a message could not be decoded into the type asked for.
#[derive(Debug)]
pub struct CodecError {
    codec: &'static str,
    op: CodecOp,
    source: Box<dyn StdError + Send + Sync>,
}

impl CodecError {
    /// An error of codec `codec`, failing in direction `op`.
    pub fn new(
        codec: &'static str,
        op: CodecOp,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            codec,
            op,
            source: source.into(),
        }
    }

    /// The codec's name.
    pub fn codec(&self) -> &'static str {
        self.codec
    }

    /// Whether encoding or decoding failed.
    pub fn op(&self) -> CodecOp {
        self.op
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            CodecOp::Encode => "encode a value",
            CodecOp::Decode => "decode a message",
        };
        write!(f, "{} could not {op}: {}", self.codec, self.source)
    }
}

impl StdError for CodecError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
