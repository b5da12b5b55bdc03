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
//! On Windows, CPython hands handles to a child by duplicating them into it (`DuplicateHandle`);
//! conn does not do that yet: [`inherit`] and the handle transfers return `Unsupported`, and a child connects to a named pipe its parent
//! listens on instead (`examples/seed_wait.rs`). `Sentinel` works on both (a process handle on
//! Windows).

use std::process::Command;

use conn_framing::Codec;

use crate::{Connection, Result};

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
        Err(crate::Error::Io(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "handing connections to a child process is not built for Windows yet",
        )))
    }
}
