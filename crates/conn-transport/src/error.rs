//! `Error`: every failure of a connection, listener, client or wait, each variant named after
//! the Python exception it stands for.

use std::fmt;
use std::io;

use conn_address::AddressError;
use conn_auth::{AuthError, HandshakeError};
use conn_framing::{CodecError, FrameError};

/// What a [`Error::Timeout`] interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `Listener::accept`.
    Accept,
    /// Connecting (`Client`).
    Connect,
    /// The authentication handshake, either side.
    Handshake,
    /// A receive.
    Read,
    /// A send.
    Write,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Accept => "accept",
            Self::Connect => "connect",
            Self::Handshake => "the handshake",
            Self::Read => "a receive",
            Self::Write => "a send",
        })
    }
}

/// The connection layer's error (the facade's too). Each variant says which exception CPython
/// raises for the same case.
///
/// `Display` is a sentence for an end user; `Debug` (what `fn main() -> Result<…>` prints) is
/// the variant's name and that sentence, never nested structures or message bytes.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection was closed (CPython: `OSError('handle is closed')`).
    #[error("handle is closed")]
    Closed,
    /// Receiving on a write-only end, or after a `bad message length`
    /// (CPython: `OSError('connection is write-only')`).
    #[error("connection is write-only")]
    WriteOnly,
    /// Sending on a read-only end (CPython: `OSError('connection is read-only')`).
    #[error("connection is read-only")]
    ReadOnly,
    /// The peer closed the connection between messages (CPython: `EOFError`).
    #[error("end of file: the peer closed the connection")]
    Eof,
    /// A message longer than the limit; its body was not read, so the connection stops being
    /// readable, or is closed if it is read-only (CPython: `OSError('bad message length')`).
    #[error("bad message length: {len} bytes, the limit is {max}")]
    BadMessageLength {
        /// The length the peer announced.
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// The buffer given to `recv_bytes_into` is too small; the whole message is here and the
    /// connection stays usable (CPython: `multiprocessing.BufferTooShort`).
    #[error("buffer too short for a message of {} bytes", message.len())]
    BufferTooShort {
        /// The whole message.
        message: Vec<u8>,
    },
    /// A broken frame: the stream ended inside a message, a negative length, no memory for it,
    /// or an earlier such error (CPython: `OSError('got end of file during message')` and kin).
    #[error(transparent)]
    Framing(FrameError),
    /// A value could not be encoded, or a message decoded into the type asked for (CPython:
    /// `PicklingError` / `UnpicklingError`). A decode error consumed its message; the connection
    /// stays usable.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Authentication failed (CPython: `multiprocessing.AuthenticationError`).
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    /// A bad address or family (CPython: `ValueError` / `TypeError`).
    #[error(transparent)]
    Address(#[from] AddressError),
    /// An operation did not finish within its timeout (CPython has no such timeouts; Python's
    /// own would raise `TimeoutError`).
    #[error("timed out during {operation}")]
    Timeout {
        /// What was being done.
        operation: Operation,
    },
    /// `accept` on a closed listener (CPython: `OSError('listener is closed')`).
    #[error("listener is closed")]
    ListenerClosed,
    /// The same object (fd) twice in one `wait` (CPython: `KeyError`).
    #[error("object {index} is already registered (same fd as an earlier one)")]
    DuplicateObject {
        /// Its position in the list.
        index: usize,
    },
    /// The process (`EMFILE`) or the system (`ENFILE`) has no file descriptor left for a new
    /// connection. `accept` waited before reporting it (backing off, up to a second), so a serve
    /// loop that logs and goes on does not spin; it accepts again once descriptors are freed
    /// (CPython: `OSError(EMFILE)`, returned at once).
    #[error("no file descriptor left to accept a connection: {0}")]
    OutOfFds(io::Error),
    /// Handing a connection's handle over now would lose data: bytes already read from it
    /// wait in this process (`read_ahead`), or a send timed out part way through a message
    /// (`cut_off`). No CPython counterpart: CPython reads one message at a time and has no send
    /// timeouts, so its handles never hold data in user space or stop mid-message.
    #[error("{}", hand_over_sentence(*read_ahead, *cut_off))]
    HandOver {
        /// Bytes read ahead and not yet received as messages.
        read_ahead: usize,
        /// Whether a send stopped part way through a message.
        cut_off: bool,
    },
    /// File descriptors did not arrive as [`Connection::send_handles`](crate::Connection::send_handles)
    /// (CPython's `sendfds`) announces them: none came with the count byte, their number is not
    /// the one announced, or there are more than the receiver asked for. Any that did arrive
    /// are closed (CPython: `RuntimeError`).
    #[error("{}", handle_transfer_sentence(*announced, *received, *max))]
    HandleTransfer {
        /// The count byte: how many were sent, modulo 256.
        announced: u8,
        /// How many arrived.
        received: usize,
        /// How many the receiver asked for at most.
        max: usize,
    },
    /// File descriptors that arrived unasked were closed on arrival: more than the connection
    /// keeps unclaimed ([`Connection::set_max_unclaimed_handles`](crate::Connection::set_max_unclaimed_handles)),
    /// or the kernel truncated a transfer. The bytes that came with them were kept; only this
    /// connection is affected. Reported by the next `recv_handles`. No CPython counterpart
    /// (CPython reads fds only when asked).
    #[error("{}", handles_dropped_sentence(*dropped, *truncated, *max))]
    HandlesDropped {
        /// How many were closed for being over the limit.
        dropped: usize,
        /// Whether a transfer arrived truncated by the kernel.
        truncated: bool,
        /// The connection's limit on unclaimed descriptors.
        max: usize,
    },
    /// A listener closed a new client at once: as many handshakes as it allows
    /// ([`ListenerBuilder::max_pending_handshakes`](crate::ListenerBuilder::max_pending_handshakes))
    /// were already in progress. Counted among the handshake failures, never returned by
    /// `accept`. No CPython counterpart (CPython handles one client at a time).
    #[error("too many clients authenticating at once (at most {max}): a new one was closed")]
    TooManyPendingHandshakes {
        /// The listener's limit.
        max: usize,
    },
    /// A message that should have held a connection or a handle, as CPython pickles them,
    /// held something else (CPython: whatever unpickling or rebuilding it raises, often
    /// `AttributeError` or `TypeError`). The message was consumed; nothing was adopted.
    #[error("{0}")]
    NotHandedOver(crate::sharing::wire::NotHandedOver),
    /// A resource sharer had nothing under this key: claimed already (a handed connection can
    /// be received once), or its sender stopped sharing (CPython: `EOFError` in `detach`).
    #[error("the resource sharer has no resource {key}: claimed already, or no longer shared")]
    NotShared {
        /// The resource's number at the sharer.
        key: u64,
    },
    /// This process's resource sharer holds as many unclaimed resources as it may
    /// ([`sharing::set_max_pending`](crate::sharing::set_max_pending)); nothing was sent and
    /// the connection handed over is closed. No CPython counterpart (CPython's is unbounded).
    #[error("the resource sharer already holds {max} unclaimed resources")]
    SharerFull {
        /// The limit.
        max: usize,
    },
    /// An OS error (CPython: `OSError` and its subclasses).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<crate::sharing::wire::NotHandedOver> for Error {
    fn from(e: crate::sharing::wire::NotHandedOver) -> Self {
        Self::NotHandedOver(e)
    }
}

fn handles_dropped_sentence(dropped: usize, truncated: bool, max: usize) -> String {
    match (dropped, truncated) {
        (0, _) => "a file descriptor transfer arrived truncated by the kernel; the descriptors \
                   that came were closed"
            .to_owned(),
        (n, false) => format!(
            "{n} file descriptors that arrived unasked were closed: the connection keeps at \
             most {max} unclaimed"
        ),
        (n, true) => format!(
            "{n} file descriptors that arrived unasked were closed (at most {max} are kept \
             unclaimed), and a transfer arrived truncated by the kernel"
        ),
    }
}

fn handle_transfer_sentence(announced: u8, received: usize, max: usize) -> String {
    if received == 0 {
        format!(
            "no file descriptor arrived with the transfer's count byte ({announced}): the peer \
             sent a plain byte, not a handle"
        )
    } else if received % 256 != usize::from(announced) {
        format!("the peer announced {announced} file descriptors and {received} arrived")
    } else {
        format!("{received} file descriptors arrived where at most {max} were expected")
    }
}

fn hand_over_sentence(read_ahead: usize, cut_off: bool) -> String {
    if cut_off {
        "cannot hand the connection's handle over: a send timed out part way through a \
         message, so the stream stops mid-message"
            .to_owned()
    } else {
        format!(
            "cannot hand the connection's handle over: {read_ahead} bytes already read from it \
             would be lost (receive the buffered messages first)"
        )
    }
}

impl Error {
    /// The name of the Python exception CPython raises in the same case, down to the `OSError`
    /// subclass (`ConnectionRefusedError`, `FileNotFoundError`, `BrokenPipeError`, …).
    pub fn python_exception(&self) -> &'static str {
        match self {
            Self::Eof => "EOFError",
            Self::BufferTooShort { .. } => "BufferTooShort",
            Self::Auth(_) => "AuthenticationError",
            Self::Codec(e) if e.op() == conn_framing::CodecOp::Encode => "PicklingError",
            Self::Codec(_) => "UnpicklingError",
            Self::Address(_) => "ValueError",
            Self::Timeout { .. } => "TimeoutError",
            Self::DuplicateObject { .. } => "KeyError",
            Self::HandleTransfer { .. } | Self::HandlesDropped { .. } => "RuntimeError",
            Self::Io(e) => os_error_class(e),
            _ => "OSError",
        }
    }

    /// The error an I/O failure during `operation` is: out of descriptors, a timeout
    /// (`WouldBlock` and `TimedOut`), or the OS error itself. For shells that drive
    /// connections themselves (an async runtime's).
    pub fn from_io(e: io::Error, operation: Operation) -> Self {
        if crate::os::is_out_of_fds(&e) {
            return Self::OutOfFds(e);
        }
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::Timeout { operation },
            _ => Self::Io(e),
        }
    }

    /// The error a framing failure during `operation` is: end of file, a message over the
    /// limit (CPython's "bad message length"), `BufferTooShort`, an I/O error, or the framing
    /// error itself.
    pub fn from_frame(e: FrameError, operation: Operation) -> Self {
        match e {
            FrameError::Eof => Self::Eof,
            FrameError::TooLarge { len, max } => Self::BadMessageLength { len, max },
            FrameError::BufferTooShort { message } => Self::BufferTooShort { message },
            FrameError::Io(e) => Self::from_io(e, operation),
            other => Self::Framing(other),
        }
    }
}

/// The `OSError` subclass CPython raises for `e` (PEP 3151's mapping from errno).
fn os_error_class(e: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "ConnectionRefusedError",
        K::ConnectionReset => "ConnectionResetError",
        K::ConnectionAborted => "ConnectionAbortedError",
        K::BrokenPipe => "BrokenPipeError",
        K::NotFound => "FileNotFoundError",
        K::AlreadyExists => "FileExistsError",
        K::PermissionDenied => "PermissionError",
        K::TimedOut => "TimeoutError",
        K::Interrupted => "InterruptedError",
        K::WouldBlock => "BlockingIOError",
        K::NotADirectory => "NotADirectoryError",
        K::IsADirectory => "IsADirectoryError",
        _ => "OSError",
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Self {
        Self::from_frame(e, Operation::Read)
    }
}

impl From<HandshakeError<Self>> for Error {
    fn from(e: HandshakeError<Self>) -> Self {
        match e {
            HandshakeError::Auth(a) => Self::Auth(a),
            HandshakeError::Channel(Self::Timeout { .. }) => Self::Timeout {
                operation: Operation::Handshake,
            },
            HandshakeError::Channel(c) => c,
            HandshakeError::Random(io) => Self::Io(io),
            // A kind added to conn-auth later: an I/O-level failure until mapped here, with its
            // cause kept.
            other => Self::Io(io::Error::other(other.to_string())),
        }
    }
}

impl fmt::Debug for Error {
    /// The variant and the sentence: `Io(Connection refused (os error 111))`. A message in a
    /// `BufferTooShort` shows as its size (it can be gigabytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Closed => "Closed",
            Self::WriteOnly => "WriteOnly",
            Self::ReadOnly => "ReadOnly",
            Self::Eof => "Eof",
            Self::BadMessageLength { .. } => "BadMessageLength",
            Self::BufferTooShort { .. } => "BufferTooShort",
            Self::Framing(_) => "Framing",
            Self::Codec(_) => "Codec",
            Self::Auth(_) => "Auth",
            Self::Address(_) => "Address",
            Self::Timeout { .. } => "Timeout",
            Self::ListenerClosed => "ListenerClosed",
            Self::DuplicateObject { .. } => "DuplicateObject",
            Self::OutOfFds(_) => "OutOfFds",
            Self::HandOver { .. } => "HandOver",
            Self::HandleTransfer { .. } => "HandleTransfer",
            Self::HandlesDropped { .. } => "HandlesDropped",
            Self::TooManyPendingHandshakes { .. } => "TooManyPendingHandshakes",
            Self::NotHandedOver(_) => "NotHandedOver",
            Self::NotShared { .. } => "NotShared",
            Self::SharerFull { .. } => "SharerFull",
            Self::Io(_) => "Io",
        };
        write!(f, "{name}({self})")
    }
}

/// `Result` with this layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
