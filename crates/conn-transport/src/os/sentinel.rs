//! [`Sentinel`]: a process to wait for.

use std::io;
use std::time::Duration;

use crate::Handle;
use crate::sys;

/// A handle that becomes readable when a child process exits, so `wait` can wait on processes
/// and connections together: CPython's `Process.sentinel`.
///
/// On Linux it is a pidfd. Where there is none (an old kernel, other Unix systems) a thread
/// waits for the exit without reaping the child (`waitid(…, WNOWAIT)`) and then closes the
/// write end of a pipe whose read end is the sentinel. Either way the child stays the owner's
/// to wait for: take the sentinel before waiting on the child (once reaped, its pid may name
/// another process). On Windows it is the process handle, signalled when the process exits.
#[derive(Debug)]
pub struct Sentinel {
    pub(crate) inner: sys::sentinel::Sentinel,
}

impl Sentinel {
    /// The sentinel of child `pid` (a child of this process, not yet waited for): a pidfd
    /// where the kernel has them, else [`watching`](Self::watching).
    ///
    /// **Windows:**
    /// The sentinel of process `pid` (`OpenProcess` with `SYNCHRONIZE`).
    pub fn new(pid: u32) -> io::Result<Self> {
        sys::sentinel::Sentinel::new(pid).map(|inner| Self { inner })
    }

    /// The sentinel of `child` (not yet waited for); see [`new`](Self::new).
    ///
    /// **Windows:**
    /// The sentinel of `child`: a duplicate of its process handle (no race with the pid being
    /// reused).
    pub fn of(child: &std::process::Child) -> io::Result<Self> {
        sys::sentinel::Sentinel::of(child).map(|inner| Self { inner })
    }

    /// The sentinel of child `pid` kept by a watching thread (the fallback where there is no
    /// pidfd; also usable where there is). The thread ends when the child exits.
    #[cfg(unix)]
    pub fn watching(pid: u32) -> io::Result<Self> {
        sys::sentinel::Sentinel::watching(pid).map(|inner| Self { inner })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// The handle readiness watches: readable once the process has exited.
    ///
    /// **Windows:**
    /// The handle readiness watches.
    pub fn handle(&self) -> Handle<'_> {
        self.inner.handle()
    }

    /// Whether the process has exited, waiting at most `timeout` (`None`: until it does).
    pub fn wait_exited(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.inner.wait_exited(timeout)
    }
}
