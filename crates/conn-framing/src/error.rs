//! `FrameError`: everything that can go wrong between a frame header and its last byte.

use std::fmt;
use std::io;

/// Which part of a frame was being read when the stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// The 4-byte length header.
    Header,
    /// The 8-byte length that follows a `-1` header (messages over 2 GiB).
    ExtendedLength,
    /// The payload.
    Body,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "length header",
            Self::ExtendedLength => "extended length",
            Self::Body => "message body",
        })
    }
}

/// Why a frame could not be read or written.
///
/// Each variant names the CPython exception it stands for.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The stream ended cleanly between frames (CPython: `EOFError`).
    #[error("end of file")]
    Eof,
    /// The stream ended inside a frame (CPython: `OSError('got end of file during message')`).
    ///
    /// CPython raises `EOFError` instead when the stream ends right after a complete header; here
    /// that is `Truncated` with `received == 0`, because a message was lost.
    #[error("got end of file during message: {received} of {expected} bytes of the {unit}")]
    Truncated {
        /// The part of the frame being read.
        unit: Unit,
        /// Bytes that part should have had.
        expected: u64,
        /// Bytes of it that arrived.
        received: u64,
    },
    /// A negative length other than the `-1` marker. CPython reads such a header as an empty
    /// message and loses step with the stream; here it is an error.
    #[error("invalid frame header: negative length {header}")]
    NegativeLength {
        /// The header as a signed number.
        header: i32,
    },
    /// The frame is longer than allowed; its body was not read, so the stream is out of step
    /// (CPython: `OSError('bad message length')`).
    #[error("bad message length: {len} bytes, the limit is {max}")]
    TooLarge {
        /// The length the header claimed.
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// The caller's buffer is smaller than the message, which was read whole and is returned
    /// here; the stream stays in step (CPython: `multiprocessing.BufferTooShort`).
    #[error("buffer too short for a message of {} bytes", message.len())]
    BufferTooShort {
        /// The whole message.
        message: Vec<u8>,
    },
    /// Memory for the message could not be had (CPython: `MemoryError`).
    #[error("cannot allocate {len} bytes for a message")]
    OutOfMemory {
        /// The message length.
        len: u64,
    },
    /// An earlier error left the stream part-way through a frame; nothing more can be read.
    #[error("the stream is out of step after an earlier error inside a frame")]
    Desynchronized,
    /// The underlying reader or writer failed (CPython: `OSError`).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl fmt::Debug for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eof => f.write_str("Eof"),
            Self::Truncated {
                unit,
                expected,
                received,
            } => f
                .debug_struct("Truncated")
                .field("unit", unit)
                .field("expected", expected)
                .field("received", received)
                .finish(),
            Self::NegativeLength { header } => f
                .debug_struct("NegativeLength")
                .field("header", header)
                .finish(),
            Self::TooLarge { len, max } => f
                .debug_struct("TooLarge")
                .field("len", len)
                .field("max", max)
                .finish(),
            // A message can be gigabytes: show its size, not its bytes.
            Self::BufferTooShort { message } => f
                .debug_struct("BufferTooShort")
                .field("message_len", &message.len())
                .finish_non_exhaustive(),
            Self::OutOfMemory { len } => f.debug_struct("OutOfMemory").field("len", len).finish(),
            Self::Desynchronized => f.write_str("Desynchronized"),
            Self::Io(e) => f.debug_tuple("Io").field(e).finish(),
        }
    }
}
