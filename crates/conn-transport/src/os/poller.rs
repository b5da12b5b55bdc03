//! [`Poller`]: a persistent registry of handles to wait on.

use std::io;
use std::time::Duration;

use super::Ready;
use crate::Handle;
use crate::sys;

/// A persistent set of handles to wait on, each under a key of the caller's. On Unix it is
/// mio (epoll, kqueue): a wait costs time in the handles that are ready, and reports are
/// edge-triggered (the caller re-arms what it did not drain, [`rearm`](Self::rearm)). On
/// Windows it is built from Win32 events: a wait costs time in the handles registered, and
/// reports are level-triggered.
#[derive(Debug)]
pub struct Poller {
    pub(crate) inner: sys::poller::Poller,
}

impl Poller {
    /// The registry's own handle, readable when a registered handle has something to report.
    ///
    /// **Windows:**
    /// The registry itself as a handle: ready when a registered handle is.
    pub fn handle(&self) -> Handle<'_> {
        self.inner.handle()
    }

    /// An empty registry.
    pub fn new() -> io::Result<Self> {
        sys::poller::Poller::new().map(|inner| Self { inner })
    }

    /// Registers `fd` for readability under `key`. The same fd twice is `AlreadyExists`
    /// (CPython's `KeyError`). The fd must stay open until [`remove`](Self::remove).
    ///
    /// **Windows:**
    /// Registers `handle` under `key`. A kernel object must stay open while registered.
    pub fn add(&mut self, handle: Handle<'_>, key: usize) -> io::Result<()> {
        self.inner.add(handle, key)
    }

    /// Deregisters `fd`.
    ///
    /// **Windows:**
    /// Deregisters `handle`.
    pub fn remove(&mut self, handle: Handle<'_>) -> io::Result<()> {
        self.inner.remove(handle)
    }

    /// Re-registers `fd` now, so that it is reported (and the registry's own handle is
    /// readable) if it is still ready.
    ///
    /// **Windows:**
    /// Every wait re-arms every handle: nothing to do.
    pub fn rearm_now(&mut self, handle: Handle<'_>, key: usize) -> io::Result<()> {
        self.inner.rearm_now(handle, key)
    }

    /// Asks that `fd` be reported again at the next wait if it is still ready. mio reports edges:
    /// call this for every fd a wait reported (and not removed) to keep level semantics.
    ///
    /// **Windows:**
    /// Every wait re-arms every handle: nothing to do.
    pub fn rearm(&mut self, handle: Handle<'_>, key: usize) {
        self.inner.rearm(handle, key)
    }

    /// Waits until at least one fd is ready or `timeout` passes (`None`: forever; zero: just
    /// look), and appends the ready keys to `ready`. Readable, hung-up and errored fds all count.
    ///
    /// **Windows:**
    /// Waits until a registered handle is ready or `timeout` passes, and appends one report
    /// per ready handle to `ready`.
    pub fn wait(&mut self, ready: &mut Vec<Ready>, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.wait(ready, timeout)
    }
}

/// Whether `handle` is readable (data, end of file or an error is waiting, a listener has a
/// client, a process has exited), waiting at most `timeout` (`None`: forever; zero: just look).
/// One `poll(2)` on Unix, `EINTR` retried with the time left.
pub fn wait_readable(handle: Handle<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    sys::poller::wait_readable(handle, timeout)
}

/// Which of `handles` are readable (positions, in input order), waiting at most `timeout`
/// (`None`: forever; zero: just look) until at least one is; empty on timeout. One `poll(2)`
/// call on Unix whatever the number of handles: the cheapest way to wait once on many (a
/// [`Poller`] pays one registration per handle, which only pays off when it is waited on many
/// times). On Windows, any number of handles (helper threads above 64); a bare socket waited
/// on is made non-blocking (`WSAEventSelect`).
pub fn wait_readable_many(
    handles: &[Handle<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    sys::poller::wait_readable_many(handles, timeout)
}
