//! The one place conn-tokio meets the OS: the blocking layer's streams and listeners
//! (`conn_transport::os`) driven without blocking a runtime thread. Per OS:
//!
//! - Unix (`unix.rs`): registered with tokio's reactor (`AsyncFd`).
//! - Windows (`windows.rs`): TCP sockets handed to tokio's `TcpStream`; message-mode pipes and
//!   listeners awaited on their Win32 events (`conn_transport::engine::EventWait`), since
//!   tokio's named pipes read through 4 KiB buffers that lose message boundaries.
//!
//! Each gives `Io` (a connected stream: `new`, `kind`, `into_stream`, byte reads and writes,
//! whole-message reads and writes on message-mode pipes) and `Accepting` (a listener: `bind`,
//! `listener`, `into_listener`, `accept`), every async method cancel-safe.

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
pub(crate) use unix::{Accepting, Io};
#[cfg(windows)]
pub(crate) use windows::{Accepting, Io};

/// The error of a message call on a byte stream.
#[cfg(unix)]
fn no_message_pipes() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "message-mode pipes exist on Windows only",
    )
}

/// The error outside a runtime (where tokio would panic).
fn no_runtime() -> std::io::Error {
    std::io::Error::other("conn-tokio needs a tokio runtime: call this inside one")
}
