//! [`Sentinel`]: a handle that becomes readable when a child process exits.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use super::calls;
use crate::Handle;

/// A handle that becomes readable when a child process exits, so `wait` can wait on processes
/// and connections together: CPython's `Process.sentinel`.
///
/// On Linux it is a pidfd. Where there is none (an old kernel, other Unix systems) a thread
/// waits for the exit without reaping the child (`waitid(…, WNOWAIT)`) and then closes the
/// write end of a pipe whose read end is the sentinel. Either way the child stays the owner's
/// to wait for: take the sentinel before waiting on the child (once reaped, its pid may name
/// another process).
#[derive(Debug)]
pub(crate) struct Sentinel {
    fd: OwnedFd,
    pid: u32,
}

impl Sentinel {
    /// The sentinel of child `pid` (a child of this process, not yet waited for): a pidfd
    /// where the kernel has them, else [`watching`](Self::watching).
    pub(crate) fn new(pid: u32) -> io::Result<Self> {
        match calls::pidfd_open(pid) {
            Ok(fd) => Ok(Self { fd, pid }),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Self::watching(pid),
            Err(e) => Err(e),
        }
    }

    /// The sentinel of `child` (not yet waited for); see [`new`](Self::new).
    pub(crate) fn of(child: &std::process::Child) -> io::Result<Self> {
        Self::new(child.id())
    }

    /// The sentinel of child `pid` kept by a watching thread (the fallback where there is no
    /// pidfd; also usable where there is). The thread ends when the child exits.
    pub(crate) fn watching(pid: u32) -> io::Result<Self> {
        let (reader, writer) = io::pipe()?;
        std::thread::Builder::new()
            .name(format!("conn-sentinel-{pid}"))
            .spawn(move || {
                // Exited, or not our child (ECHILD: gone already): either way, ready.
                let _ = calls::wait_exit_without_reaping(pid);
                drop(writer);
            })?;
        Ok(Self {
            fd: reader.into(),
            pid,
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The handle readiness watches: readable once the process has exited.
    pub(crate) fn handle(&self) -> Handle<'_> {
        Handle::from(self.fd.as_fd())
    }

    /// Whether the process has exited, waiting at most `timeout` (`None`: until it does).
    pub(crate) fn wait_exited(&self, timeout: Option<Duration>) -> io::Result<bool> {
        calls::poll_readable(self.fd.as_fd(), timeout)
    }
}

impl AsFd for Sentinel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsFd for crate::os::Sentinel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    const LONG: Option<Duration> = Some(Duration::from_secs(30));

    #[test]
    fn ready_when_the_child_exits_or_is_killed_and_not_before() {
        for watching in [false, true] {
            let make = |pid| {
                if watching {
                    Sentinel::watching(pid)
                } else {
                    Sentinel::new(pid)
                }
            };
            let mut quick = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
            let s = make(quick.id()).unwrap();
            assert!(s.wait_exited(LONG).unwrap());
            // Not reaped by the sentinel: the status is still ours to collect.
            assert_eq!(quick.wait().unwrap().code(), Some(3));

            let mut slow = Command::new("sleep").arg("30").spawn().unwrap();
            let s = make(slow.id()).unwrap();
            assert!(!s.wait_exited(Some(Duration::from_millis(50))).unwrap());
            slow.kill().unwrap();
            assert!(s.wait_exited(LONG).unwrap());
            assert!(slow.wait().unwrap().code().is_none(), "killed by a signal");
        }
    }
}
