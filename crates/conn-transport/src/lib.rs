//! The transport layer of conn: OS handles and their readiness. It never parses a frame header
//! (`conn-framing` does).
//!
//! - [`Stream`]: a connected TCP or Unix stream socket, or one end of a pipe, with blocking I/O.
//!   Every fd is close-on-exec; `EINTR` is retried by the callers' loops; socket writes use
//!   `MSG_NOSIGNAL`, so a vanished peer gives `EPIPE`, never `SIGPIPE`.
//! - [`Listener`]: a bound, listening TCP or Unix socket (paths and Linux abstract names) with
//!   CPython's backlog, `SO_REUSEADDR` on TCP, and an accept timeout.
//! - [`Stream::pair`] (`socketpair`, for `Pipe(duplex=True)`) and [`Stream::pipe`] (`pipe2`, for
//!   `Pipe(duplex=False)`).
//! - Readiness: [`wait_readable`] for one handle and [`wait_readable_many`] for many, each one
//!   `poll(2)` with a timeout, and [`Poller`], a persistent mio registry for many handles, whose cost per wait grows with the ready handles,
//!   not the registered ones.
//!
//! Only Unix is implemented; Windows named pipes (AF_PIPE) are refused by `conn-address` with a
//! typed error on other platforms and are not built here yet.
//!
//! Unsafe code in the workspace lives only here, in `sys.rs`, one `// SAFETY:` line per block.

#[cfg(not(unix))]
compile_error!("conn-transport supports Unix only so far (Windows named pipes are not built yet)");

mod handle;
mod listener;
mod poller;
mod stream;
mod sys;

pub use handle::Handle;
pub use listener::Listener;
pub use poller::{Poller, Ready, wait_readable, wait_readable_many};
pub use stream::{Stream, StreamKind};

use std::time::{Duration, Instant};

/// The instant `timeout` from now; `None` for no timeout, and also for one so long that the
/// clock cannot express its end (`Duration::MAX`): both mean "wait with no limit", never a
/// panic.
pub fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Time left until `deadline` (`None`: no limit), zero once it has passed.
pub fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Whether `e` says the process (`EMFILE`) or the whole system (`ENFILE`) is out of file
/// descriptors: retrying at once cannot succeed, so a serve loop must back off.
pub fn is_out_of_fds(e: &std::io::Error) -> bool {
    sys::is_out_of_fds(e)
}
