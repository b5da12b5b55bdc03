#![doc = include_str!("../README.md")]

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
pub mod sharing;
mod slab;
mod transfer;

/// Sans-IO pieces shared with other shells of the connection layer (conn-tokio's): the accept
/// engine with its keys, the checks of a descriptor transfer, the reader of message-mode pipes
/// and, on Windows, the waker of a task on a Win32 event; not part of the API.
#[doc(hidden)]
pub mod engine {
    pub use crate::messages::MessageCursor;
    pub use crate::scheduler::Scheduler;
    pub use crate::slab::Key;
    #[cfg(windows)]
    pub use crate::sys::wake::EventWait;
    pub use crate::transfer::{acknowledgement, claimed_handles, dropped_handles, single_handle};
}
mod sys;
mod wait;

pub use client::{Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT};
pub use conn_framing::Pickle;
pub use connection::{Connection, IntoHandleError, Receiver, Sender};
pub use error::{Error, Operation, Result};
pub use handle::{Handle, OwnedHandle};
pub use into_address::{IntoAddress, check_family};
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
