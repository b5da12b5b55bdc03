//! The OS layer: stream sockets and pipes, listening sockets and readiness, with blocking and
//! non-blocking I/O and no framing. The connection types above it are built on these; they are
//! public for programs that want a CPython-compatible socket without a connection around it.

use crate::sys;

mod listener;
mod poller;
mod sentinel;
mod stream;

pub use crate::common::{MessagePart, Ready, StreamKind};
pub use listener::Listener;
pub use poller::{Poller, wait_readable, wait_readable_many};
pub use sentinel::Sentinel;
pub use stream::Stream;

/// Whether a file descriptor transfer is acknowledged on this OS, as CPython's
/// `multiprocessing.reduction` does: on macOS the receiver answers each batch with the byte
/// `b"A"` and the sender waits for it (`ACKNOWLEDGE = sys.platform == 'darwin'`); elsewhere
/// neither happens.
pub const HANDLES_ACKNOWLEDGED: bool = cfg!(target_os = "macos");

/// How long a Windows pipe client waits for a free instance when no timeout is given
/// (CPython's 20 s).
pub const PIPE_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Arranges for `cmd`'s child to receive each `(handle, number)` pair as descriptor `number`
/// (3 or more, all different), open across `exec`, while every other descriptor stays
/// close-on-exec: what CPython's `subprocess.Popen(pass_fds=…)` does, with the number chosen.
/// The handles stay open in the parent as long as `cmd` holds them. Unix only.
#[cfg(unix)]
pub fn inherit_in_child(
    cmd: &mut std::process::Command,
    pairs: Vec<(crate::OwnedHandle, i32)>,
) -> std::io::Result<()> {
    sys::calls::inherit_in_child(
        cmd,
        pairs
            .into_iter()
            .map(|(h, n)| (std::os::fd::OwnedFd::from(h), n))
            .collect(),
    )
}

/// Whether `e` says the process (`EMFILE`) or the whole system (`ENFILE`) is out of file
/// descriptors: retrying at once cannot succeed, so a serve loop must back off.
pub fn is_out_of_fds(e: &std::io::Error) -> bool {
    sys::calls::is_out_of_fds(e)
}
