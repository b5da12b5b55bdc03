//! The transport layer of conn: OS handles and their readiness. It never parses a frame header
//! (`conn-framing` does).
//!
//! - [`Stream`]: a connected TCP or Unix stream socket, or one end of a pipe (a named pipe on
//!   Windows), with blocking I/O. On Unix every fd is close-on-exec; `EINTR` is retried by the callers' loops; socket writes use
//!   `MSG_NOSIGNAL`, so a vanished peer gives `EPIPE`, never `SIGPIPE`.
//! - [`Listener`]: a bound, listening TCP or Unix socket (paths and Linux abstract names) with
//!   CPython's backlog, `SO_REUSEADDR` on TCP, and an accept timeout.
//! - [`Stream::pair`] (`socketpair`, for `Pipe(duplex=True)`) and [`Stream::pipe`] (`pipe2`, for
//!   `Pipe(duplex=False)`).
//! - Readiness: [`wait_readable`] for one handle and [`wait_readable_many`] for many, each one
//!   `poll(2)` with a timeout, and [`Poller`], a persistent mio registry for many handles, whose cost per wait grows with the ready handles,
//!   not the registered ones.
//!
//! # One module per OS
//! The public types are the same everywhere; each OS has one private module behind them
//! (`unix/`, `windows/`), as mio has `sys` and quinn-udp has `imp`. [`Handle`] is the one OS
//! handle type the layers above see.
//!
//! # Windows
//! - [`Stream`] is a TCP socket or a message-mode named pipe end (AF_PIPE,
//!   [`StreamKind::MessagePipe`]): one [`Stream::write_message`] is one pipe message with no
//!   length header, and [`Stream::read_message`] reads it back in parts that say whether the
//!   message goes on, with [`Stream::message_left`] for the rest (CPython's `PeekNamedPipe`
//!   after its first read). Zero-length messages are messages, not end of file.
//! - [`Listener`] on a pipe name keeps two instances, as CPython's `PipeListener` does (one with
//!   a `ConnectNamedPipe` pending, a spare for the next client); the first is created with
//!   `FILE_FLAG_FIRST_PIPE_INSTANCE`. A client that came and went before `accept`
//!   (`ERROR_NO_DATA`) is a connection that reads end of file, not an error.
//! - [`Stream::connect`] to a pipe waits for a free instance while all are busy
//!   (`ERROR_PIPE_BUSY`, `WaitNamedPipe`) until its timeout, by default
//!   [`PIPE_CONNECT_TIMEOUT`] (CPython's 20 s).
//! - [`Stream::pair`] / [`Stream::simplex`] are CPython's Windows `Pipe()`: a one-instance
//!   message-mode pipe with a fresh random name.
//! - Readiness is built from Win32 events, not mio (see `windows/probe.rs`): every waitable
//!   object owns a probe armed before each wait; [`wait_readable_many`] and [`Poller`] wait on
//!   any number of pipes, sockets, listeners, pollers and process handles ([`Sentinel`]). A wait
//!   costs time in the number of handles waited on.
//! - Not built for Windows yet: handing handles to other processes (`send_handles`, adopting a
//!   handle with `TryFrom<OwnedHandle>`): `Unsupported`.
//!
//! Checked where: under Wine 8 by `cargo xtask windows` (every test of this crate and the
//! facade, and the Windows build against Linux CPython over TCP); AF_PIPE against a Windows
//! CPython is not run (none on these machines): the pipe protocol follows CPython's
//! `multiprocessing/connection.py` and `_winapi.c`.
//!
//! Unsafe code in the workspace lives only here (`unix/sys.rs`, and `windows/` for the Win32
//! calls), one `// SAFETY:` line per block.

#[cfg(not(any(unix, windows)))]
compile_error!("conn-transport supports Unix and Windows only");

mod client;
mod common;
mod connection;
mod error;
mod handle;
mod into_address;
mod listener;
mod messages;
pub mod os;
mod pipe;
pub mod process;
mod scheduler;
mod slab;
mod sys;
mod wait;

pub use client::{Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT};
pub use conn_framing::Pickle;
pub use connection::{Connection, IntoHandleError, Receiver, Sender};
pub use error::{Error, Operation, Result};
pub use handle::{Handle, OwnedHandle};
pub use into_address::IntoAddress;
pub use listener::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_PENDING_HANDSHAKES, KEPT_HANDSHAKE_FAILURES, Listener,
    ListenerBuilder,
};
pub use os::Sentinel;
pub use pipe::{Pipe, pipe, pipe_simplex};
pub use wait::{Endpoint, InsertError, WaitKey, WaitSet, Waitable, wait};

/// The codec connections use unless told otherwise: [`Pickle`], what CPython's `send()` /
/// `recv()` speak. Unpickling here never runs code.
pub type DefaultCodec = Pickle;

use conn_pickle::Value as PyValue;

/// How many file descriptors that arrive unasked (with bytes read ahead) a Unix connection
/// keeps for a later claim, by default (see [`Connection::set_max_unclaimed_handles`]). CPython
/// sends one per transfer; a peer that sends more before they are claimed has the excess closed
/// on arrival, an error of that connection only. Before a client has authenticated, a listener
/// takes in none.
pub const DEFAULT_MAX_UNCLAIMED_HANDLES: usize = 64;

/// What may cross threads, checked at compile time: a connection, its halves, a listener and a
/// wait set can be moved to another thread, and shared where `&self` methods suffice.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Connection>();
    send_sync::<Sender>();
    send_sync::<Receiver>();
    send_sync::<Listener>();
    send_sync::<Endpoint>();
    send_sync::<WaitSet<Connection>>();
    send_sync::<WaitSet<Endpoint>>();
    send_sync::<Error>();
    send_sync::<ClientBuilder>();
    send_sync::<ListenerBuilder>();
};

use std::time::{Duration, Instant};

/// The instant `timeout` from now; `None` for no timeout, and also for one so long that the
/// clock cannot express its end (`Duration::MAX`): both mean "wait with no limit", never a
/// panic.
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Time left until `deadline` (`None`: no limit), zero once it has passed.
pub(crate) fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}
