//! [`Stream`]: a connected stream socket or pipe end.

use std::io::{self, IoSlice, Read, Write};
use std::time::Duration;

use conn_address::Address;

use super::{MessagePart, StreamKind};
use crate::sys;
use crate::{Handle, OwnedHandle};

/// A connected, blocking byte stream: a TCP or Unix stream socket or one end of a pipe on Unix;
/// a TCP socket or a message-mode named pipe end on Windows. `Read` and `Write` are implemented
/// for `&Stream` too, so one thread may send while another receives.
#[derive(Debug)]
pub struct Stream {
    pub(crate) inner: sys::stream::Stream,
}

impl Stream {
    /// Connects to `address`. A host name means its IPv4 addresses (CPython's AF_INET), tried
    /// in turn; each try
    /// gives up after `timeout` (`None`: the OS's own limit). The stream is left blocking.
    ///
    /// **Windows:**
    /// Connects to `address`: TCP (a host name means its IPv4 addresses, as CPython's AF_INET;
    /// each try gives up after `timeout`, `None`: the OS's limit) or a named pipe (AF_PIPE:
    /// while every instance is busy, waits for one until `timeout`, `None`: 20 s as CPython).
    pub fn connect(address: &Address, timeout: Option<Duration>) -> io::Result<Self> {
        sys::stream::Stream::connect(address, timeout).map(|inner| Self { inner })
    }

    /// Sets how many handles that arrive with bytes read ahead may wait for
    /// [`take_received_handles`](Self::take_received_handles) (default
    /// [`DEFAULT_MAX_UNCLAIMED_HANDLES`](crate::DEFAULT_MAX_UNCLAIMED_HANDLES)). Beyond it, the
    /// handles of a transfer are closed on arrival and counted
    /// ([`take_dropped_handles`](Self::take_dropped_handles)); 0 takes none in at all (the
    /// kernel closes them before they reach this process: what a listener sets until a client
    /// has authenticated). Bytes are never lost either way. Unix sockets only; elsewhere a no-op.
    ///
    /// **Windows:**
    /// Handles do not arrive with bytes on Windows: a no-op, for the same API everywhere.
    pub fn set_max_unclaimed_handles(&self, max: usize) {
        self.inner.set_max_unclaimed_handles(max)
    }

    /// The limit set by [`set_max_unclaimed_handles`](Self::set_max_unclaimed_handles).
    ///
    /// **Windows:**
    /// Always [`DEFAULT_MAX_UNCLAIMED_HANDLES`](crate::DEFAULT_MAX_UNCLAIMED_HANDLES) on
    /// Windows, where handles do not arrive with bytes.
    pub fn max_unclaimed_handles(&self) -> usize {
        self.inner.max_unclaimed_handles()
    }

    /// How many handles were closed on arrival since the last call (over the limit of
    /// [`set_max_unclaimed_handles`](Self::set_max_unclaimed_handles)), and whether a transfer
    /// arrived truncated by the kernel (its handles closed too); both reset.
    ///
    /// **Windows:**
    /// Nothing is dropped on Windows: `(0, false)`.
    pub fn take_dropped_handles(&self) -> (usize, bool) {
        self.inner.take_dropped_handles()
    }

    /// A connected pair of Unix stream sockets (`socketpair`), for `Pipe(duplex=True)`, with
    /// large socket buffers (see `PAIR_BUFFER`; best effort: a refusal leaves the defaults).
    ///
    /// **Windows:**
    /// A connected pair of message-mode named pipe ends, for `Pipe(duplex=True)`, as CPython
    /// makes it on Windows (a one-instance pipe with a fresh random name, remote clients
    /// refused).
    pub fn pair() -> io::Result<(Self, Self)> {
        sys::stream::Stream::pair().map(|(a, b)| (Self { inner: a }, Self { inner: b }))
    }

    /// A one-way pair, for `Pipe(duplex=False)`: (read-only end, write-only end). A socketpair
    /// with large buffers, shut down in the unused directions, rather than an OS pipe: with
    /// its 64 KiB buffer a pipe moved 64 KiB to 64 MiB messages at 0.5–1 GiB/s here, the
    /// socketpair at 2–9 GiB/s. The ends report [`StreamKind::UnixReader`] and
    /// [`StreamKind::UnixWriter`]; as with a pipe, a write whose reader has gone is
    /// `BrokenPipe` (never `SIGPIPE`) and the reader sees EOF when the writer closes.
    ///
    /// **Windows:**
    /// A one-way pair of message-mode pipe ends, for `Pipe(duplex=False)`: (read end, write
    /// end).
    pub fn simplex() -> io::Result<(Self, Self)> {
        sys::stream::Stream::simplex().map(|(a, b)| (Self { inner: a }, Self { inner: b }))
    }

    /// A pipe (`pipe2` with `O_CLOEXEC`), for `Pipe(duplex=False)`: (read end, write end).
    ///
    /// **Windows:**
    /// The same as [`simplex`](Self::simplex) on Windows (there is no byte pipe to prefer).
    pub fn pipe() -> io::Result<(Self, Self)> {
        sys::stream::Stream::pipe().map(|(a, b)| (Self { inner: a }, Self { inner: b }))
    }

    /// What this stream is.
    pub fn kind(&self) -> StreamKind {
        self.inner.kind()
    }

    /// Limits how long one read may block (`None`: forever); a read that times out fails with
    /// `WouldBlock` or `TimedOut`. Pipes have no such option: `Unsupported`.
    ///
    /// **Windows:**
    /// Limits how long one blocking read may wait (`None`: forever); a read that times out
    /// fails with `TimedOut`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    /// Limits how long one write may block (`None`: forever). Pipes: `Unsupported`.
    ///
    /// **Windows:**
    /// Limits how long one blocking write may wait (`None`: forever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)
    }

    /// Sets `TCP_NODELAY` (TCP only; a no-op on other kinds).
    ///
    /// **Windows:**
    /// Sets `TCP_NODELAY` (TCP only; a no-op on pipes).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// The peer's address: a TCP peer's host and port, a named Unix peer's path. `None` for
    /// unnamed Unix peers (CPython's `''`) and pipes.
    ///
    /// **Windows:**
    /// The peer's address: a TCP peer's host and port; `None` for pipes.
    pub fn peer_address(&self) -> Option<Address> {
        self.inner.peer_address()
    }

    /// Shuts down both directions of a socket (the peer sees EOF); a no-op for pipes.
    pub fn shutdown(&self) -> io::Result<()> {
        self.inner.shutdown()
    }

    /// Waits until a write would make progress (room in the buffer, or the peer gone), at most
    /// `timeout` (`None`: forever).
    ///
    /// **Windows:**
    /// Waits until a write would make progress, at most `timeout`. A pipe write is one whole
    /// message with its own timeout: always true.
    pub fn wait_writable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.inner.wait_writable(timeout)
    }

    /// One write that never blocks: as much of `bufs` as fits now (`WouldBlock` if nothing
    /// does), whatever the fd's mode. Sockets use `MSG_DONTWAIT`; a pipe's write end is made
    /// non-blocking for the call (no one else writes through it).
    ///
    /// **Windows:**
    /// One write that never blocks (`WouldBlock` if nothing fits). Sockets only: a pipe takes
    /// whole messages ([`write_message`](Self::write_message)).
    pub fn write_vectored_nonblocking(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored_nonblocking(bufs)
    }

    /// One read that never blocks: `WouldBlock` if nothing has arrived, 0 at EOF. Sockets use
    /// `MSG_DONTWAIT` (one system call); a pipe is polled first.
    ///
    /// **Windows:**
    /// One read that never blocks: `WouldBlock` if nothing has arrived, 0 at EOF. Sockets only
    /// (pipes: [`read_message`](Self::read_message)).
    pub fn read_nonblocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_nonblocking(buf)
    }

    /// Appends up to `n` bytes to `buf`, stopping early only at EOF (blocking until then), into
    /// the vector's spare capacity without zeroing it first (std's sockets and pipes read into
    /// uninitialized memory). Interruptions are retried.
    ///
    /// **Windows:**
    /// Appends up to `n` bytes to `buf`, stopping early only at EOF (waiting within the read
    /// timeout until then). Sockets only.
    pub fn read_append(&self, buf: &mut Vec<u8>, n: u64) -> io::Result<usize> {
        self.inner.read_append(buf, n)
    }

    /// Sends `data` with `handles` attached (`SCM_RIGHTS`, one `sendmsg`), as CPython's
    /// `multiprocessing.reduction.sendfds` does; Unix sockets only (`Unsupported` otherwise).
    /// Returns the bytes of `data` sent.
    ///
    /// **Windows:**
    /// Descriptors travel with bytes over Unix sockets only: `Unsupported` on Windows, where a
    /// handle is duplicated into the receiving process instead
    /// ([`Sender::send_handle`](crate::Sender::send_handle)).
    pub fn send_handles(&self, data: &[u8], handles: &[Handle<'_>]) -> io::Result<usize> {
        self.inner.send_handles(data, handles)
    }

    /// Reads into `buf` (blocking, within the read timeout) and returns the bytes read with
    /// the handles that came with them; Unix sockets only.
    /// A transfer the kernel truncated keeps its bytes and closes the handles that came:
    /// [`take_dropped_handles`](Self::take_dropped_handles) then reports it.
    ///
    /// **Windows:**
    /// `Unsupported` on Windows; see [`send_handles`](Self::send_handles).
    pub fn recv_handles(&self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedHandle>)> {
        self.inner.recv_handles(buf)
    }

    /// The oldest group of handles that arrived with bytes read ahead, if any.
    ///
    /// **Windows:**
    /// Never any on Windows.
    pub fn take_received_handles(&self) -> Option<Vec<OwnedHandle>> {
        self.inner.take_received_handles()
    }

    /// Sets or clears `O_NONBLOCK` on the handle (reads and writes then give `WouldBlock`
    /// instead of waiting).
    ///
    /// **Windows:**
    /// Windows streams are non-blocking underneath and wait by themselves; this is accepted
    /// and changes nothing (the non-blocking calls are `read_nonblocking` and
    /// `write_vectored_nonblocking`).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }

    /// Whether a read would not block (data, EOF or an error is waiting), waiting at most
    /// `timeout` (`None`: forever; zero: just look).
    pub fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.inner.wait_readable(timeout)
    }

    /// Closes the stream now, reporting the OS's error (dropping it closes silently).
    pub fn close(self) -> io::Result<()> {
        self.inner.close()
    }

    /// What the stream has read ahead of its reader: never anything on Unix (the layers above
    /// keep their own read-ahead).
    ///
    /// **Windows:**
    /// What the stream has read ahead of its reader and would lose if its handle were given up:
    /// on a pipe, the bytes of a message part read into the transport's buffer (possibly zero,
    /// for a zero-length message), after stopping a read under way; `None` if nothing.
    pub fn read_ahead(&self) -> Option<usize> {
        self.inner.read_ahead()
    }

    /// Sends one message on a message-mode pipe (Windows only: `Unsupported` here).
    ///
    /// **Windows:**
    /// Sends `message` as one pipe message, waiting at most `timeout` (`None`: as long as it
    /// takes) for the reader to take it; a write still under way then is cancelled and fails
    /// with `TimedOut`. Message-mode pipes only; at most 4 GiB - 1 (one `WriteFile`).
    pub fn write_message(&self, message: &[u8], timeout: Option<Duration>) -> io::Result<()> {
        self.inner.write_message(message, timeout)
    }

    /// Reads part of a message from a message-mode pipe (Windows only: `Unsupported` here).
    ///
    /// **Windows:**
    /// Reads the next part of the current message into `buf` (the start of the next message if
    /// the last one was read whole), waiting at most `timeout` (`None`: forever; zero: just
    /// look) and failing with `WouldBlock` if nothing came. Message-mode pipes only.
    pub fn read_message(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<MessagePart> {
        self.inner.read_message(buf, timeout)
    }

    /// Bytes of the current message not yet read (Windows only: `Unsupported` here).
    ///
    /// **Windows:**
    /// Bytes of the current message not yet read (after a [`read_message`](Self::read_message)
    /// that said `more`): what CPython asks `PeekNamedPipe` before reading the rest.
    pub fn message_left(&self) -> io::Result<u64> {
        self.inner.message_left()
    }

    /// The handle readiness watches (see [`Handle`](crate::Handle)).
    ///
    /// **Windows:**
    /// The handle readiness watches.
    pub fn handle(&self) -> Handle<'_> {
        self.inner.handle()
    }
}

/// What an async shell needs on Unix to keep its reactor's readiness exact; not part of the API.
#[cfg(unix)]
#[doc(hidden)]
impl Stream {
    /// [`read_nonblocking`](Self::read_nonblocking), also saying whether nothing more was
    /// queued when the read ended: a short read that did not stop at a descriptor transfer (a
    /// Unix socket's read ends after the bytes that carry fds, whatever follows them). A
    /// reactor may then forget the stream's readiness without another read.
    pub fn read_nonblocking_drained(&self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        self.inner.read_nonblocking_drained(buf)
    }
}

/// What an async shell needs on Windows, where readiness is a Win32 event (see
/// [`EventWait`](crate::engine::EventWait)); not part of the API.
#[cfg(windows)]
#[doc(hidden)]
impl Stream {
    /// Starts writing `bytes` without waiting: on a message-mode pipe as one message, on a
    /// socket as one overlapped send that completes once the OS has taken every byte. The
    /// stream keeps the bytes until the write is over; dropping the stream first cancels it.
    /// One write at a time.
    pub fn start_write(&self, bytes: Vec<u8>) -> io::Result<()> {
        self.inner.start_write(bytes)
    }

    /// Ready when the write of [`start_write`](Self::start_write) is over (`Ok`: every byte
    /// went); until then the task of `cx` is woken when it is.
    pub fn poll_written(
        &self,
        wait: &mut crate::engine::EventWait,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        self.inner.poll_written(wait, cx)
    }
}

/// Reads as its shared reference does.
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

/// Writes as its shared reference does.
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blocking read (within the read timeout). On Windows, sockets only: a pipe is read by
/// messages ([`Stream::read_message`]).
impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.inner).read(buf)
    }
}

/// A blocking write (within the write timeout). Socket writes never raise `SIGPIPE`. On a
/// Windows pipe, one call is one message.
impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.inner).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.inner).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    /// The process at the other end: on Windows, of a named pipe (this process's own id for a
    /// pipe within it); `None` for a socket, and on Unix.
    pub fn peer_pid(&self) -> Option<u32> {
        #[cfg(windows)]
        let pid = self.inner.peer_pid();
        #[cfg(unix)]
        let pid = None;
        pid
    }
}

impl TryFrom<OwnedHandle> for Stream {
    type Error = io::Error;

    /// Adopts an owned handle handed in from elsewhere (inherited from a parent, received over
    /// a Unix socket, made by another library): on Unix a TCP or Unix stream socket or one end
    /// of a pipe (its direction read from the fd's access mode), made blocking and
    /// close-on-exec; anything else is `InvalidInput`, and the handle is closed. On Windows a
    /// connected socket (a TCP stream) or a named pipe end (message mode, both ways: narrow it
    /// with the connection's directions).
    fn try_from(handle: OwnedHandle) -> io::Result<Self> {
        sys::stream::Stream::try_from(handle).map(|inner| Self { inner })
    }
}

impl From<Stream> for OwnedHandle {
    /// The OS handle, for handing to a child process or another library. On Windows, bytes a
    /// pipe had read ahead are lost (see [`Stream::read_ahead`]).
    fn from(s: Stream) -> Self {
        Self::from(s.inner)
    }
}
