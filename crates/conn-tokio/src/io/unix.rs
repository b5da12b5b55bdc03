//! Unix: the blocking layer's [`Stream`] and [`Listener`] (`conn_transport::os`) registered
//! with tokio's reactor (`AsyncFd`). Reads and writes are the transport's own non-blocking
//! calls (so a Unix socket keeps descriptors that arrive with the bytes read ahead, and writes
//! never raise `SIGPIPE`), tried when the reactor says the handle is ready.

use std::io::{self, IoSlice};

use conn_address::Address;
use conn_framing::MessageRead;
use conn_transport::os::{Listener, Stream, StreamKind};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A stream registered with the reactor.
#[derive(Debug)]
pub(crate) struct Io {
    fd: AsyncFd<Stream>,
}

/// Registers an owned stream or listener with the current runtime's reactor; outside a runtime
/// (where tokio would panic) an error, with the object given back.
#[expect(
    unsafe_code,
    reason = "tokio's registration is unsafe: the fd must outlive it"
)]
fn register<T: std::os::fd::AsRawFd>(inner: T) -> Result<AsyncFd<T>, (io::Error, T)> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err((super::no_runtime(), inner));
    }
    // SAFETY: `T` is conn-transport's `Stream` or `Listener`, which owns its fd: the fd is open
    // until `T` is dropped, which happens only after the `AsyncFd` gives `T` up (drop or
    // `into_inner`), and `as_raw_fd` always returns that same fd.
    unsafe { AsyncFd::register(inner) }.map_err(|e| {
        let (inner, error) = e.into_parts();
        (error, inner)
    })
}

/// Runs a non-blocking call again while it is interrupted by a signal; tokio's `async_io`
/// retries `WouldBlock` (after waiting for readiness), every other outcome is the caller's.
fn retry<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl Io {
    /// Registers `stream` with the current runtime's reactor (outside a runtime: an error,
    /// with the stream given back).
    pub(crate) fn new(stream: Stream) -> Result<Self, (io::Error, Stream)> {
        register(stream).map(|fd| Self { fd })
    }

    /// The stream.
    pub(crate) fn stream(&self) -> &Stream {
        self.fd.get_ref()
    }

    /// What the stream is.
    pub(crate) fn kind(&self) -> StreamKind {
        self.stream().kind()
    }

    /// The stream, taken off the reactor.
    pub(crate) fn into_stream(self) -> Stream {
        self.fd.into_inner()
    }

    /// Message-mode pipes are Windows' only: `Unsupported` (see `kind`).
    pub(crate) async fn read_message(&self, _buf: &mut [u8]) -> io::Result<MessageRead> {
        Err(super::no_message_pipes())
    }

    /// Reads what has arrived into `buf`, waiting until something has (0 at end of file).
    /// Cancel-safe: a read either happened whole before the future returned or not at all
    /// (the non-blocking read is tried only when the reactor says ready, and the wait starts
    /// again after `WouldBlock`). A short read that drained the socket forgets its readiness
    /// at once, saving the next receive a `WouldBlock` read; one that stopped at a descriptor
    /// transfer does not (more may be queued behind it). tokio forgets only readiness it has
    /// not seen renewed since, so no wake-up is lost.
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| retry(|| fd.get_ref().read_nonblocking_drained(buf))) {
                Ok(Ok((n, drained))) => {
                    if drained && n > 0 {
                        guard.clear_ready();
                    }
                    return Ok(n);
                }
                Ok(Err(e)) => return Err(e),
                // `WouldBlock`: `try_io` forgot the readiness; wait again.
                Err(_) => {}
            }
        }
    }

    /// Sends `data` with `handles` attached once the socket has room (Unix sockets): a short
    /// message, which goes whole or not at all.
    pub(crate) async fn send_handles(
        &self,
        data: &[u8],
        handles: &[conn_transport::Handle<'_>],
    ) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                retry(|| s.send_handles(data, handles))
            })
            .await
    }

    /// Writes as much of `bufs` as fits, waiting until something does.
    pub(crate) async fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                retry(|| s.write_vectored_nonblocking(bufs))
            })
            .await
    }
}

/// A listening socket registered with the reactor.
#[derive(Debug)]
pub(crate) struct Accepting {
    fd: AsyncFd<Listener>,
}

impl Accepting {
    /// Binds `address` with `backlog` and registers it with the current runtime's reactor.
    pub(crate) fn bind(address: &Address, backlog: i32) -> io::Result<Self> {
        let listener = Listener::bind(address, backlog)?;
        register(listener).map(|fd| Self { fd }).map_err(|(e, _)| e)
    }

    /// The listener.
    pub(crate) fn listener(&self) -> &Listener {
        self.fd.get_ref()
    }

    /// The listener, taken off the reactor.
    pub(crate) fn into_listener(self) -> Listener {
        self.fd.into_inner()
    }

    /// The next client in the backlog, waiting until one comes. Cancel-safe.
    pub(crate) async fn accept(&self) -> io::Result<(Stream, Option<Address>)> {
        self.fd
            .async_io(Interest::READABLE, |l| {
                retry(|| l.try_accept()?.ok_or(io::ErrorKind::WouldBlock.into()))
            })
            .await
    }
}
