//! Windows: TCP sockets and message-mode named pipes (AF_PIPE) behind the same public types as
//! on Unix, with readiness built from Win32 events rather than mio: mio's registry can hold a
//! handle in one completion port only, cannot watch process handles, and its `NamedPipe` reads
//! through 4 KiB buffers that lose message boundaries (a zero-length message looks like end of
//! file). See `probe.rs` for how waiting works.

pub(crate) mod calls;
pub(crate) mod handle;
pub(crate) mod listener;
pub(crate) mod poller;
pub(crate) mod probe;
pub(crate) mod sentinel;
pub(crate) mod share;
pub(crate) mod spawn;
pub(crate) mod stream;
pub(crate) mod wake;
