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
//! # One module per OS
//! The public types are the same everywhere; each OS has one private module behind them
//! (`unix/`, `windows.rs`), as mio has `sys` and quinn-udp has `imp`. Unix is complete. On
//! Windows the types exist and every constructor returns a typed `Unsupported` error ("not
//! built yet"): AF_PIPE and Windows sockets come next, and nothing above this crate has to
//! change for them. [`Handle`] is the one OS handle type the layers above see.
//!
//! Unsafe code in the workspace lives only here, in `unix/sys.rs`, one `// SAFETY:` line per
//! block.

#[cfg(not(any(unix, windows)))]
compile_error!("conn-transport supports Unix and (not yet working) Windows only");

mod common;
mod handle;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix::{listener, poller, stream, sys};
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::stream::PIPE_CONNECT_TIMEOUT;
#[cfg(windows)]
use windows::{listener, poller, stream, sys};

pub use common::{MessagePart, Ready, StreamKind};
pub use handle::{Handle, OwnedHandle};
pub use listener::Listener;
pub use poller::{Poller, wait_readable, wait_readable_many};
pub use stream::Stream;
#[cfg(unix)]
pub use unix::sentinel::Sentinel;
#[cfg(windows)]
pub use windows::sentinel::Sentinel;

/// Arranges for `cmd`'s child to receive each `(handle, number)` pair as descriptor `number`
/// (3 or more, all different), open across `exec`, while every other descriptor stays
/// close-on-exec: what CPython's `subprocess.Popen(pass_fds=…)` does, with the number chosen.
/// The handles stay open in the parent as long as `cmd` holds them. Unix only.
#[cfg(unix)]
pub fn inherit_in_child(
    cmd: &mut std::process::Command,
    pairs: Vec<(OwnedHandle, i32)>,
) -> std::io::Result<()> {
    sys::inherit_in_child(
        cmd,
        pairs
            .into_iter()
            .map(|(h, n)| (std::os::fd::OwnedFd::from(h), n))
            .collect(),
    )
}

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
