//! `Sentinel` on Windows: a process handle, signalled when the process exits (CPython's
//! `Process.sentinel` is the same handle).

use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle as StdOwnedHandle};
use std::time::Duration;

use windows_sys::Win32::System::Threading::{
    OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
};

use super::calls;
use crate::Handle;

/// A handle that becomes ready when a process exits. Waiting on it never reaps the process:
/// its exit code stays for `Child::wait`.
#[derive(Debug)]
pub(crate) struct Sentinel {
    pid: u32,
    process: StdOwnedHandle,
}

impl Sentinel {
    /// The sentinel of process `pid` (`OpenProcess` with `SYNCHRONIZE`).
    pub(crate) fn new(pid: u32) -> io::Result<Self> {
        // SAFETY: plain call; the result is checked and owned from here on.
        let h = unsafe {
            OpenProcess(
                PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
                0,
                pid,
            )
        };
        if h.is_null() {
            return Err(calls::last_error());
        }
        // SAFETY: a fresh process handle nothing else owns.
        let process = unsafe { StdOwnedHandle::from_raw_handle(h) };
        Ok(Self { pid, process })
    }

    /// The sentinel of `child`: a duplicate of its process handle (no race with the pid being
    /// reused).
    pub(crate) fn of(child: &std::process::Child) -> io::Result<Self> {
        Ok(Self {
            pid: child.id(),
            process: child.as_handle().try_clone_to_owned()?,
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The handle readiness watches.
    pub(crate) fn handle(&self) -> Handle<'_> {
        Handle::from(self.process.as_handle())
    }

    /// Whether the process has exited, waiting at most `timeout` (`None`: until it does).
    pub(crate) fn wait_exited(&self, timeout: Option<Duration>) -> io::Result<bool> {
        calls::wait_one(self.process.as_raw_handle(), timeout)
    }
}
