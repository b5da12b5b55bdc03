//! The per-OS modules behind the public OS types (mio's `sys`): `unix/` and `windows/`, one of
//! which is compiled. Each provides the same modules with the same items, and the public types
//! in [`crate::os`] and [`crate::handle`] wrap them (`pub struct Stream { inner: sys::Stream }`),
//! so the public API, and its documentation, is written once.
//!
//! The contract each OS module keeps:
//! - `handle`: `Borrowed<'a>` and `Owned`, what a [`Handle`](crate::Handle) and an
//!   [`OwnedHandle`](crate::OwnedHandle) hold (`id`, `try_clone_to_owned`, `describe`,
//!   `borrow`), plus the OS's conversions to and from std's handle types.
//! - `stream::Stream`: blocking I/O by default, `Read`/`Write` on `&Stream`, non-blocking reads
//!   and vectored writes, timeouts, `wait_readable`/`wait_writable`, the message calls (Windows
//!   pipes; `Unsupported` elsewhere), descriptor passing (Unix sockets; `Unsupported` elsewhere:
//!   Windows hands handles over with `share.rs`, by `DuplicateHandle` and `WSADuplicateSocketW`),
//!   and `handle()`. Every handle the module creates is close-on-exec (not inheritable).
//! - `listener::Listener`: bind with a backlog, `accept` with a timeout, `try_accept`, the
//!   socket file's removal, `handle()`.
//! - `poller`: `wait_readable(handle, timeout)`, `wait_readable_many(handles, timeout)`
//!   (positions of the ready ones) and `Poller` (a persistent registry keyed by `usize`,
//!   reporting `Ready` keys; Unix: mio, edge-triggered, re-armed by the caller; Windows: events,
//!   level-triggered).
//! - `sentinel::Sentinel`: a process that can be waited on, and whether it has exited.
//! - `calls`: the raw OS calls, the only place with `unsafe`, one `// SAFETY:` note per block;
//!   `is_out_of_fds` (`EMFILE`/`ENFILE`), and on Unix `inherit_in_child`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
