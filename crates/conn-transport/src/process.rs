//! Child processes that inherit a connection: CPython's `Process` handed one end of a `Pipe`,
//! or `subprocess.Popen(…, pass_fds=[conn.fileno()])` with a `Connection(fd)` in the child.
//!
//! In the parent, [`inherit`] gives the child each connection at an fd number of your choice
//! (tell the child the number, on its command line say); every other descriptor of the parent
//! stays close-on-exec, so nothing else leaks into the child, and no other child gets these.
//! In the child, the inherited descriptor becomes a connection again with the one `unsafe` line
//! that any inherited fd needs (the process must not own that number twice):
//!
//! ```no_run
//! # #[cfg(unix)]
//! # fn main() -> conn_transport::Result<()> {
//! use std::os::fd::{FromRawFd, OwnedFd};
//! let fd: i32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
//! // SAFETY: the parent passed this fd to us for this connection, and nothing else owns it.
//! let mut conn = conn_transport::Connection::<conn_transport::Pickle>::try_from(unsafe { OwnedFd::from_raw_fd(fd) })?;
//! let n: i64 = conn.recv()?;
//! conn.send(&(n * n))?;
//! # Ok(())
//! # }
//! # #[cfg(not(unix))]
//! # fn main() {}
//! ```
//!
//! A Python child does the same with `multiprocessing.connection.Connection(fd)`; a Python
//! parent passes a `Pipe()` end to a Rust child with `pass_fds`. `examples/child_pipe.rs` shows
//! both sides.
//!
//! [`Inheritance`] does the same on every OS: the parent adds connections and learns the number
//! the child finds each under (a descriptor on Unix; on Windows the handle's value, which an
//! inherited handle keeps), starts the child with them and nothing else of its own (on Windows a
//! `CreateProcessW` handle list), and the child takes each back with [`inherited`]. A child may
//! also be handed connections later, over a connection it has, with
//! [`Connection::send_connection`](crate::Connection::send_connection), as CPython's `send` of
//! a connection does. [`Sentinel`] works on both (a process handle on
//! Windows).

use std::io;
use std::process::{Command, ExitStatus};

use conn_framing::Codec;

use crate::{Connection, OwnedHandle, Result, Sentinel};

/// Makes `cmd`'s child inherit each connection as the fd number paired with it (3 or more, all
/// different; pass every connection of a child in one call). The connections move into `cmd`:
/// the parent's copies close when `cmd` is dropped, so drop it after `spawn` for the child's
/// end to be the only one (the peer then sees EOF when the child exits). A connection that
/// cannot give up its handle without losing data ([`Connection::into_owned_handle`]) is an
/// error, and so is a number below 3 or used twice.
pub fn inherit<C: Codec + Clone>(
    cmd: &mut Command,
    connections: impl IntoIterator<Item = (Connection<C>, i32)>,
) -> Result<()> {
    #[cfg(unix)]
    {
        let mut pairs = Vec::new();
        for (conn, number) in connections {
            pairs.push((conn.into_owned_handle()?, number));
        }
        Ok(crate::os::inherit_in_child(cmd, pairs)?)
    }
    #[cfg(windows)]
    {
        let _ = (cmd, connections.into_iter());
        Err(crate::Error::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            "a Windows child cannot be given a handle number: use process::Inheritance",
        )))
    }
}

/// Connections for one child process to inherit, and nothing else of this process's (what
/// CPython's `Process` does with the `Pipe` ends it is given, or `Popen(pass_fds=…)`), on every
/// OS:
///
/// ```no_run
/// # fn main() -> conn_transport::Result<()> {
/// use std::process::Command;
/// let (mut ours, theirs) = conn_transport::pipe()?;
/// let mut inheritance = conn_transport::process::Inheritance::new();
/// let number = inheritance.add(theirs)?;
/// let mut cmd = Command::new("worker");
/// cmd.arg(number.to_string());
/// let mut child = inheritance.spawn(cmd)?;
/// ours.send(&"work")?;
/// # let _ = child.wait();
/// # Ok(())
/// # }
/// ```
///
/// and in the child, `unsafe { conn_transport::process::inherited(number) }` (see
/// [`inherited`]). On Windows the handles are inheritable from [`add`](Self::add) until
/// [`spawn`](Self::spawn) returns, so a child another thread starts meanwhile with std's
/// `Command` (which passes every inheritable handle) could get them too: spawn right after
/// adding. On Unix they are never inheritable in the parent.
#[derive(Debug, Default)]
pub struct Inheritance {
    #[cfg(unix)]
    pairs: Vec<(OwnedHandle, i32)>,
    #[cfg(windows)]
    handles: Vec<std::os::windows::io::OwnedHandle>,
}

impl Inheritance {
    /// Nothing to inherit yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `conn` for the child; returns the number the child finds it under: on Unix the
    /// descriptor number (3 for the first, then 4…), on Windows the handle's value. Refused,
    /// as [`Connection::into_owned_handle`] refuses, when handing it over would lose data.
    pub fn add<C: Codec + Clone>(&mut self, conn: Connection<C>) -> Result<u64> {
        let handle = conn.into_owned_handle()?;
        #[cfg(unix)]
        let number = {
            let number = 3 + i32::try_from(self.pairs.len()).unwrap_or(i32::MAX - 3);
            self.pairs.push((handle, number));
            u64::try_from(number).unwrap_or_default()
        };
        #[cfg(windows)]
        let number = {
            use std::os::windows::io::AsRawHandle;
            let copy = crate::sys::spawn::inheritable_copy(&handle)?;
            let number = copy.as_raw_handle() as usize as u64;
            self.handles.push(copy);
            number
        };
        Ok(number)
    }

    /// Starts `cmd` with the connections added, then closes this process's copies (the peer
    /// sees end of file once the child's are closed too). On Unix, std's `spawn` with the
    /// descriptors placed and every other descriptor close-on-exec. On Windows,
    /// `CreateProcessW` with only these handles and this process's standard handles
    /// inherited; `cmd`'s program, arguments, environment changes and directory are used, its
    /// standard handles settings are not (std does not expose them), nor `env_clear`.
    pub fn spawn(self, cmd: Command) -> Result<Child> {
        #[cfg(unix)]
        let child = {
            let mut cmd = cmd;
            crate::os::inherit_in_child(&mut cmd, self.pairs)?;
            let child = cmd.spawn()?;
            drop(cmd);
            child
        };
        #[cfg(windows)]
        let child = crate::sys::spawn::spawn(&cmd, &self.handles)?;
        Ok(Child { inner: child })
    }
}

/// In a child: takes the connection handle inherited under `number` (from the parent's
/// [`Inheritance::add`], or CPython's `pass_fds`); make it a connection with
/// [`Connection::from_owned_handle`].
///
/// # Safety
/// `number` must be what the parent passed for this connection, and nothing else in this
/// process may own it (take it once).
pub unsafe fn inherited(number: u64) -> Result<OwnedHandle> {
    #[cfg(unix)]
    let handle = {
        use std::os::fd::{FromRawFd, OwnedFd};
        let fd = i32::try_from(number)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a descriptor number"))?;
        // SAFETY: the caller's contract.
        OwnedHandle::from(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    #[cfg(windows)]
    // SAFETY: the caller's contract.
    let handle = unsafe { crate::sys::spawn::adopt_inherited(number)? };
    Ok(handle)
}

/// A child started by [`Inheritance::spawn`].
#[derive(Debug)]
pub struct Child {
    #[cfg(unix)]
    inner: std::process::Child,
    #[cfg(windows)]
    inner: crate::sys::spawn::Child,
}

impl Child {
    /// Its process id.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        #[cfg(unix)]
        let status = self.inner.wait();
        #[cfg(windows)]
        let status = self
            .inner
            .wait_timeout(None)?
            .ok_or_else(|| io::Error::other("an endless wait ended"));
        status
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        #[cfg(unix)]
        let status = self.inner.try_wait();
        #[cfg(windows)]
        let status = self.inner.wait_timeout(Some(std::time::Duration::ZERO));
        status
    }

    /// Ends it (SIGKILL; `TerminateProcess` on Windows).
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }

    /// A handle that becomes ready when it exits, for [`wait`](crate::wait) and
    /// [`WaitSet`](crate::WaitSet) (CPython's `Process.sentinel`).
    pub fn sentinel(&self) -> io::Result<Sentinel> {
        #[cfg(unix)]
        let sentinel = Sentinel::of(&self.inner);
        #[cfg(windows)]
        let sentinel = Sentinel::new(self.inner.id());
        sentinel
    }
}
