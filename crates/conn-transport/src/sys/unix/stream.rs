//! `Stream`: one connected endpoint (TCP socket, Unix socket, or a pipe end) with blocking I/O.

use std::collections::VecDeque;
use std::io::{self, IoSlice, PipeReader, PipeWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use conn_address::Address;

use super::calls;
use crate::common::{connect_tcp, unsupported};
use crate::os::StreamKind;

#[derive(Debug)]
enum Inner {
    Tcp(TcpStream),
    Unix(UnixStream),
    PipeReader(PipeReader),
    PipeWriter(PipeWriter),
}

/// A connected, blocking byte stream. `Read` and `Write` are implemented for `&Stream` too, so
/// one thread may send while another receives.
#[derive(Debug)]
pub(crate) struct Stream {
    inner: Inner,
    /// For the ends of [`Stream::simplex`]: the one direction a Unix socket is used in.
    oneway: Option<OneWay>,
    /// File descriptors that arrived on a Unix socket with the bytes read ahead, one group per
    /// `SCM_RIGHTS` message, oldest first, until [`take_received_handles`] claims them (closed
    /// with the stream otherwise: never leaked, never lost to a read that was not asking).
    ///
    /// [`take_received_handles`]: Self::take_received_handles
    received: Mutex<VecDeque<Vec<OwnedFd>>>,
    /// The most fds that may wait in `received` (0: none are taken in at all, and any that
    /// arrive are closed by the kernel).
    max_unclaimed: AtomicUsize,
    /// Fds closed on arrival because `received` was full, since last reported.
    dropped: AtomicUsize,
    /// A transfer arrived truncated (`MSG_CTRUNC`), since last reported.
    truncated: AtomicBool,
}

/// The direction a one-way Unix socket end is used in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OneWay {
    Read,
    Write,
}

/// The socket buffer size asked for on both ends of a socketpair (the kernel may cap it:
/// `net.core.wmem_max` / `rmem_max` on Linux). Large messages then cross in fewer, larger
/// copies with fewer wake-ups; small ones are not affected (buffers are charged as used).
const PAIR_BUFFER: usize = 4 << 20;

/// A read from a pipe's write end.
fn read_from_write_end() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "cannot read from the write end of a pipe",
    )
}

/// Descriptors sent or received over anything but a Unix socket.
fn fds_need_unix() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "file descriptors travel only over Unix sockets",
    )
}

impl Stream {
    /// Connects to `address`. A host name means its IPv4 addresses (CPython's AF_INET), tried
    /// in turn; each try
    /// gives up after `timeout` (`None`: the OS's own limit). The stream is left blocking.
    pub(crate) fn connect(address: &Address, timeout: Option<Duration>) -> io::Result<Self> {
        address.validate().map_err(invalid_input)?;
        match address {
            Address::Inet { .. } => Ok(Self::from(connect_tcp(address, timeout)?)),
            Address::UnixPath(path) => Ok(Self::from(UnixStream::connect(path)?)),
            Address::UnixAbstract(name) => connect_abstract(name),
            Address::Pipe(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "AF_PIPE is Windows-only",
            )),
            _ => Err(unsupported(address)),
        }
    }

    fn of(inner: Inner) -> Self {
        Self {
            inner,
            oneway: None,
            received: Mutex::new(VecDeque::new()),
            max_unclaimed: AtomicUsize::new(crate::DEFAULT_MAX_UNCLAIMED_HANDLES),
            dropped: AtomicUsize::new(0),
            truncated: AtomicBool::new(false),
        }
    }

    /// Sets how many handles that arrive with bytes read ahead may wait for
    /// [`take_received_handles`](Self::take_received_handles) (default
    /// [`DEFAULT_MAX_UNCLAIMED_HANDLES`](crate::DEFAULT_MAX_UNCLAIMED_HANDLES)). Beyond it, the
    /// handles of a transfer are closed on arrival and counted
    /// ([`take_dropped_handles`](Self::take_dropped_handles)); 0 takes none in at all (the
    /// kernel closes them before they reach this process: what a listener sets until a client
    /// has authenticated). Bytes are never lost either way. Unix sockets only; elsewhere a no-op.
    pub(crate) fn set_max_unclaimed_handles(&self, max: usize) {
        self.max_unclaimed.store(max, Ordering::Relaxed);
    }

    /// The limit set by [`set_max_unclaimed_handles`](Self::set_max_unclaimed_handles).
    pub(crate) fn max_unclaimed_handles(&self) -> usize {
        self.max_unclaimed.load(Ordering::Relaxed)
    }

    /// How many handles were closed on arrival since the last call (over the limit of
    /// [`set_max_unclaimed_handles`](Self::set_max_unclaimed_handles)), and whether a transfer
    /// arrived truncated by the kernel (its handles closed too); both reset.
    pub(crate) fn take_dropped_handles(&self) -> (usize, bool) {
        (
            self.dropped.swap(0, Ordering::Relaxed),
            self.truncated.swap(false, Ordering::Relaxed),
        )
    }

    /// A connected pair of Unix stream sockets (`socketpair`), for `Pipe(duplex=True)`, with
    /// large socket buffers (see `PAIR_BUFFER`; best effort: a refusal leaves the defaults).
    pub(crate) fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = UnixStream::pair()?;
        for end in [&a, &b] {
            let _ = calls::set_socket_buffers(end.as_fd(), PAIR_BUFFER);
        }
        Ok((Self::from(a), Self::from(b)))
    }

    /// A one-way pair, for `Pipe(duplex=False)`: (read-only end, write-only end). A socketpair
    /// with large buffers, shut down in the unused directions, rather than an OS pipe: with
    /// its 64 KiB buffer a pipe moved 64 KiB to 64 MiB messages at 0.5–1 GiB/s here, the
    /// socketpair at 2–9 GiB/s. The ends report [`StreamKind::UnixReader`] and
    /// [`StreamKind::UnixWriter`]; as with a pipe, a write whose reader has gone is
    /// `BrokenPipe` (never `SIGPIPE`) and the reader sees EOF when the writer closes.
    pub(crate) fn simplex() -> io::Result<(Self, Self)> {
        let (r, w) = Self::pair()?;
        if let (Inner::Unix(rs), Inner::Unix(ws)) = (&r.inner, &w.inner) {
            rs.shutdown(Shutdown::Write)?;
            ws.shutdown(Shutdown::Read)?;
        }
        Ok((
            Self {
                oneway: Some(OneWay::Read),
                ..r
            },
            Self {
                oneway: Some(OneWay::Write),
                ..w
            },
        ))
    }

    /// A pipe (`pipe2` with `O_CLOEXEC`), for `Pipe(duplex=False)`: (read end, write end).
    pub(crate) fn pipe() -> io::Result<(Self, Self)> {
        let (r, w) = io::pipe()?;
        Ok((
            Self::of(Inner::PipeReader(r)),
            Self::of(Inner::PipeWriter(w)),
        ))
    }

    /// What this stream is.
    pub(crate) fn kind(&self) -> StreamKind {
        match self.inner {
            Inner::Tcp(_) => StreamKind::Tcp,
            Inner::Unix(_) => match self.oneway {
                None => StreamKind::Unix,
                Some(OneWay::Read) => StreamKind::UnixReader,
                Some(OneWay::Write) => StreamKind::UnixWriter,
            },
            Inner::PipeReader(_) => StreamKind::PipeReader,
            Inner::PipeWriter(_) => StreamKind::PipeWriter,
        }
    }

    /// Limits how long one read may block (`None`: forever); a read that times out fails with
    /// `WouldBlock` or `TimedOut`. Pipes have no such option: `Unsupported`.
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.set_read_timeout(timeout),
            Inner::Unix(s) => s.set_read_timeout(timeout),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Limits how long one write may block (`None`: forever). Pipes: `Unsupported`.
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.set_write_timeout(timeout),
            Inner::Unix(s) => s.set_write_timeout(timeout),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Sets `TCP_NODELAY` (TCP only; a no-op on other kinds).
    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.set_nodelay(nodelay),
            _ => Ok(()),
        }
    }

    /// The peer's address: a TCP peer's host and port, a named Unix peer's path. `None` for
    /// unnamed Unix peers (CPython's `''`) and pipes.
    pub(crate) fn peer_address(&self) -> Option<Address> {
        match &self.inner {
            Inner::Tcp(s) => s.peer_addr().ok().map(Address::from),
            Inner::Unix(s) => s.peer_addr().ok().and_then(|a| unix_address(&a)),
            _ => None,
        }
    }

    /// Shuts down both directions of a socket (the peer sees EOF); a no-op for pipes.
    pub(crate) fn shutdown(&self) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.shutdown(Shutdown::Both),
            Inner::Unix(s) => s.shutdown(Shutdown::Both),
            _ => Ok(()),
        }
    }

    /// Waits until a write would make progress (room in the buffer, or the peer gone), at most
    /// `timeout` (`None`: forever).
    pub(crate) fn wait_writable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        calls::poll_writable(self.as_fd(), timeout)
    }

    /// One write that never blocks: as much of `bufs` as fits now (`WouldBlock` if nothing
    /// does), whatever the fd's mode. Sockets use `MSG_DONTWAIT`; a pipe's write end is made
    /// non-blocking for the call (no one else writes through it).
    pub(crate) fn write_vectored_nonblocking(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &self.inner {
            Inner::Tcp(_) | Inner::Unix(_) => calls::send_vectored_nonblocking(self.as_fd(), bufs),
            Inner::PipeWriter(p) => {
                calls::set_nonblocking(self.as_fd(), true)?;
                let n = (&*p).write_vectored(bufs);
                calls::set_nonblocking(self.as_fd(), false)?;
                n
            }
            Inner::PipeReader(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "cannot write to the read end of a pipe",
            )),
        }
    }

    /// One read that never blocks: `WouldBlock` if nothing has arrived, 0 at EOF. Sockets use
    /// `MSG_DONTWAIT` (one system call); a pipe is polled first.
    pub(crate) fn read_nonblocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_nonblocking_drained(buf).map(|(n, _)| n)
    }

    /// [`read_nonblocking`](Self::read_nonblocking), also saying whether nothing more was
    /// queued when the read ended: a short read that did not stop at a descriptor transfer (a
    /// Unix socket's read ends after the bytes that carry fds, whatever follows them).
    pub(crate) fn read_nonblocking_drained(&self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        let want = buf.len();
        let short = |n: usize| (n, n < want);
        match &self.inner {
            Inner::Tcp(_) => calls::recv_nonblocking(self.as_fd(), buf).map(short),
            Inner::Unix(_) => {
                let (n, at_transfer) = self.recv_keeping_fds(buf, true)?;
                Ok((n, n < want && !at_transfer))
            }
            Inner::PipeReader(p) => {
                if calls::poll_readable(self.as_fd(), Some(Duration::ZERO))? {
                    (&*p).read(buf).map(short)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                }
            }
            Inner::PipeWriter(_) => Err(read_from_write_end()),
        }
    }

    /// Appends up to `n` bytes to `buf`, stopping early only at EOF (blocking until then), into
    /// the vector's spare capacity without zeroing it first (std's sockets and pipes read into
    /// uninitialized memory). Interruptions are retried.
    pub(crate) fn read_append(&self, buf: &mut Vec<u8>, n: u64) -> io::Result<usize> {
        match &self.inner {
            Inner::Tcp(s) => s.take(n).read_to_end(buf),
            Inner::Unix(s) => s.take(n).read_to_end(buf),
            Inner::PipeReader(p) => p.take(n).read_to_end(buf),
            Inner::PipeWriter(_) => Err(read_from_write_end()),
        }
    }

    /// A read from a Unix socket that keeps the file descriptors arriving with the bytes, up
    /// to the connection's limit (see
    /// [`set_max_unclaimed_handles`](Self::set_max_unclaimed_handles)).
    /// Also says whether the read ended at a descriptor transfer.
    fn recv_keeping_fds(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<(usize, bool)> {
        let max = self.max_unclaimed.load(Ordering::Relaxed);
        let got = calls::recv_with_fds(self.as_fd(), buf, nonblocking, max > 0)?;
        if got.truncated {
            // Part of a transfer was lost in the kernel: what did arrive is closed (dropped
            // here), and the next claim reports it.
            self.truncated.store(true, Ordering::Relaxed);
        } else if !got.fds.is_empty() {
            let mut received = self.received.lock().unwrap_or_else(PoisonError::into_inner);
            let held: usize = received.iter().map(Vec::len).sum();
            if held.saturating_add(got.fds.len()) > max {
                self.dropped.fetch_add(got.fds.len(), Ordering::Relaxed);
            } else {
                received.push_back(got.fds);
            }
        }
        Ok((got.len, got.at_transfer))
    }

    /// Sends `data` with `handles` attached (`SCM_RIGHTS`, one `sendmsg`), as CPython's
    /// `multiprocessing.reduction.sendfds` does; Unix sockets only (`Unsupported` otherwise).
    /// Returns the bytes of `data` sent.
    pub(crate) fn send_handles(
        &self,
        data: &[u8],
        handles: &[crate::Handle<'_>],
    ) -> io::Result<usize> {
        match &self.inner {
            Inner::Unix(_) => {
                let fds: Vec<BorrowedFd<'_>> = handles.iter().map(|h| h.fd()).collect();
                calls::send_with_fds(self.as_fd(), data, &fds)
            }
            _ => Err(fds_need_unix()),
        }
    }

    /// Reads into `buf` (blocking, within the read timeout) and returns the bytes read with
    /// the handles that came with them; Unix sockets only.
    /// A transfer the kernel truncated keeps its bytes and closes the handles that came:
    /// [`take_dropped_handles`](Self::take_dropped_handles) then reports it.
    pub(crate) fn recv_handles(
        &self,
        buf: &mut [u8],
    ) -> io::Result<(usize, Vec<crate::OwnedHandle>)> {
        match &self.inner {
            Inner::Unix(_) => {
                let got = calls::recv_with_fds(self.as_fd(), buf, false, true)?;
                if got.truncated {
                    self.truncated.store(true, Ordering::Relaxed);
                    return Ok((got.len, Vec::new()));
                }
                Ok((
                    got.len,
                    got.fds.into_iter().map(crate::OwnedHandle::from).collect(),
                ))
            }
            _ => Err(fds_need_unix()),
        }
    }

    /// The oldest group of handles that arrived with bytes read ahead, if any.
    pub(crate) fn take_received_handles(&self) -> Option<Vec<crate::OwnedHandle>> {
        let group = self
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()?;
        Some(group.into_iter().map(crate::OwnedHandle::from).collect())
    }

    /// Sets or clears `O_NONBLOCK` on the handle (reads and writes then give `WouldBlock`
    /// instead of waiting).
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        calls::set_nonblocking(self.as_fd(), nonblocking)
    }

    /// Whether a read would not block (data, EOF or an error is waiting), waiting at most
    /// `timeout` (`None`: forever; zero: just look).
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        calls::poll_readable(self.as_fd(), timeout)
    }

    /// Closes the stream now, reporting the OS's error (dropping it closes silently).
    pub(crate) fn close(self) -> io::Result<()> {
        calls::close(OwnedFd::from(self))
    }

    /// What the stream has read ahead of its reader: never anything on Unix (the layers above
    /// keep their own read-ahead). See the Windows version.
    pub(crate) fn read_ahead(&self) -> Option<usize> {
        None
    }

    /// Sends one message on a message-mode pipe (Windows only: `Unsupported` here).
    pub(crate) fn write_message(
        &self,
        _message: &[u8],
        _timeout: Option<Duration>,
    ) -> io::Result<()> {
        Err(crate::common::not_a_message_pipe())
    }

    /// Reads part of a message from a message-mode pipe (Windows only: `Unsupported` here).
    pub(crate) fn read_message(
        &self,
        _buf: &mut [u8],
        _timeout: Option<Duration>,
    ) -> io::Result<crate::os::MessagePart> {
        Err(crate::common::not_a_message_pipe())
    }

    /// Bytes of the current message not yet read (Windows only: `Unsupported` here).
    pub(crate) fn message_left(&self) -> io::Result<u64> {
        Err(crate::common::not_a_message_pipe())
    }

    fn is_socket(&self) -> bool {
        matches!(self.inner, Inner::Tcp(_) | Inner::Unix(_))
    }
}

fn invalid_input(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn connect_abstract(name: &[u8]) -> io::Result<Stream> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    Ok(Stream::from(UnixStream::connect_addr(&addr)?))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn connect_abstract(_name: &[u8]) -> io::Result<Stream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist only on Linux",
    ))
}

/// The `Address` of a Unix socket address: a path, an abstract name, or `None` if unnamed.
pub(crate) fn unix_address(addr: &std::os::unix::net::SocketAddr) -> Option<Address> {
    if let Some(path) = addr.as_pathname() {
        return Some(Address::UnixPath(path.to_owned()));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        if let Some(name) = addr.as_abstract_name() {
            return Some(Address::UnixAbstract(name.to_vec()));
        }
    }
    None
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Self {
        Self::of(Inner::Tcp(s))
    }
}

impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Self {
        Self::of(Inner::Unix(s))
    }
}

impl From<PipeReader> for Stream {
    fn from(p: PipeReader) -> Self {
        Self::of(Inner::PipeReader(p))
    }
}

impl From<PipeWriter> for Stream {
    fn from(p: PipeWriter) -> Self {
        Self::of(Inner::PipeWriter(p))
    }
}

impl TryFrom<OwnedFd> for Stream {
    type Error = io::Error;

    /// Adopts an fd handed in from elsewhere (inherited from a parent, received over a Unix
    /// socket, made by another library): a TCP or Unix stream socket, or one end of a pipe
    /// (its direction read from the fd's access mode). The fd is made blocking and
    /// close-on-exec, like every fd of this crate. Anything else is `InvalidInput`, and the fd
    /// is closed.
    fn try_from(fd: OwnedFd) -> io::Result<Self> {
        let kind = calls::stream_kind(fd.as_fd())?;
        calls::set_cloexec(fd.as_fd())?;
        calls::set_nonblocking(fd.as_fd(), false)?;
        let inner = match kind {
            StreamKind::Tcp => Inner::Tcp(TcpStream::from(fd)),
            StreamKind::Unix | StreamKind::UnixReader | StreamKind::UnixWriter => {
                Inner::Unix(UnixStream::from(fd))
            }
            StreamKind::PipeReader => Inner::PipeReader(PipeReader::from(fd)),
            StreamKind::PipeWriter => Inner::PipeWriter(PipeWriter::from(fd)),
            _ => return Err(crate::common::not_a_message_pipe()),
        };
        Ok(Self::of(inner))
    }
}

impl TryFrom<crate::OwnedHandle> for Stream {
    type Error = io::Error;

    /// Adopts an owned handle: see `TryFrom<OwnedFd>`.
    fn try_from(handle: crate::OwnedHandle) -> io::Result<Self> {
        Self::try_from(OwnedFd::from(handle))
    }
}

impl From<Stream> for crate::OwnedHandle {
    fn from(s: Stream) -> Self {
        OwnedFd::from(s).into()
    }
}

impl From<Stream> for OwnedFd {
    /// The fd, for handing to a child process (as its stdin, say).
    fn from(s: Stream) -> Self {
        match s.inner {
            Inner::Tcp(s) => s.into(),
            Inner::Unix(s) => s.into(),
            Inner::PipeReader(p) => p.into(),
            Inner::PipeWriter(p) => p.into(),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            Inner::Tcp(s) => (&*s).read(buf),
            Inner::Unix(_) => self.recv_keeping_fds(buf, false).map(|(n, _)| n),
            Inner::PipeReader(p) => (&*p).read(buf),
            Inner::PipeWriter(_) => Err(read_from_write_end()),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.inner {
            Inner::PipeWriter(p) => (&*p).write(buf),
            Inner::PipeReader(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "cannot write to the read end of a pipe",
            )),
            _ => calls::send(self.as_fd(), buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.is_socket() {
            calls::send_vectored(self.as_fd(), bufs)
        } else if let Inner::PipeWriter(p) = &self.inner {
            (&*p).write_vectored(bufs)
        } else {
            self.write(bufs.iter().find(|b| !b.is_empty()).map_or(&[], |b| &**b))
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    /// The handle readiness watches (see [`Handle`](crate::Handle)).
    pub(crate) fn handle(&self) -> crate::Handle<'_> {
        crate::Handle::from(self.as_fd())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::Tcp(s) => s.as_fd(),
            Inner::Unix(s) => s.as_fd(),
            Inner::PipeReader(p) => p.as_fd(),
            Inner::PipeWriter(p) => p.as_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// The public stream's Unix conversions.
mod public {
    use std::io::{PipeReader, PipeWriter};
    use std::net::TcpStream;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
    use std::os::unix::net::UnixStream;

    use crate::os::Stream;

    impl From<TcpStream> for Stream {
        fn from(s: TcpStream) -> Self {
            Self { inner: s.into() }
        }
    }

    impl From<UnixStream> for Stream {
        fn from(s: UnixStream) -> Self {
            Self { inner: s.into() }
        }
    }

    impl From<PipeReader> for Stream {
        fn from(p: PipeReader) -> Self {
            Self { inner: p.into() }
        }
    }

    impl From<PipeWriter> for Stream {
        fn from(p: PipeWriter) -> Self {
            Self { inner: p.into() }
        }
    }

    impl TryFrom<OwnedFd> for Stream {
        type Error = std::io::Error;

        /// Adopts an fd handed in from elsewhere (inherited from a parent, received over a Unix
        /// socket, made by another library): a TCP or Unix stream socket, or one end of a pipe
        /// (its direction read from the fd's access mode). The fd is made blocking and
        /// close-on-exec, like every fd of this crate. Anything else is `InvalidInput`, and the
        /// fd is closed.
        fn try_from(fd: OwnedFd) -> std::io::Result<Self> {
            super::Stream::try_from(fd).map(|inner| Self { inner })
        }
    }

    impl From<Stream> for OwnedFd {
        /// The fd, for handing to a child process (as its stdin, say).
        fn from(s: Stream) -> Self {
            s.inner.into()
        }
    }

    impl AsFd for Stream {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.inner.as_fd()
        }
    }

    impl AsRawFd for Stream {
        fn as_raw_fd(&self) -> RawFd {
            self.inner.as_raw_fd()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn adopted_fds_keep_their_kind_and_become_blocking_and_cloexec() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let a = Stream::try_from(OwnedFd::from(a)).unwrap();
        assert_eq!(a.kind(), StreamKind::Unix);
        assert_ne!(calls::fd_flags(a.as_fd()).unwrap() & libc::FD_CLOEXEC, 0);
        (&b).write_all(b"x").unwrap();
        let mut one = [0; 1];
        (&a).read_exact(&mut one).unwrap();
        // Blocking again: a read with nothing to read waits for the timeout.
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let e = (&a).read(&mut one).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        );

        let (r, w) = io::pipe().unwrap();
        let r = Stream::try_from(OwnedFd::from(r)).unwrap();
        let w = Stream::try_from(OwnedFd::from(w)).unwrap();
        assert_eq!(
            (r.kind(), w.kind()),
            (StreamKind::PipeReader, StreamKind::PipeWriter)
        );
        (&w).write_all(b"through").unwrap();
        let mut buf = [0; 7];
        (&r).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"through");

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let tcp = Stream::try_from(OwnedFd::from(tcp)).unwrap();
        assert_eq!(tcp.kind(), StreamKind::Tcp);
        assert!(tcp.peer_address().is_some());
    }

    #[test]
    fn adopting_other_fds_is_invalid_input() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let dgram = std::os::unix::net::UnixDatagram::unbound().unwrap();
        for fd in [
            OwnedFd::from(udp),
            OwnedFd::from(file),
            OwnedFd::from(dgram),
        ] {
            let e = Stream::try_from(fd).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
            assert!(
                e.to_string().contains("not a stream socket or a pipe end"),
                "{e}"
            );
        }
    }

    #[test]
    fn socketpair_carries_bytes_both_ways() {
        let (a, b) = Stream::pair().unwrap();
        (&a).write_all(b"ping").unwrap();
        let mut buf = [0; 4];
        (&b).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        (&b).write_all(b"pong").unwrap();
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        assert_eq!(a.kind(), StreamKind::Unix);
    }

    #[test]
    fn pipe_is_one_way() {
        let (r, w) = Stream::pipe().unwrap();
        assert_eq!(
            (r.kind(), w.kind()),
            (StreamKind::PipeReader, StreamKind::PipeWriter)
        );
        (&w).write_all(b"x").unwrap();
        let mut buf = [0; 1];
        (&r).read_exact(&mut buf).unwrap();
        assert!((&r).write(b"no").is_err());
        assert!((&w).read(&mut buf).is_err());
    }

    #[test]
    fn writing_to_a_vanished_peer_is_epipe_not_sigpipe() {
        let (a, b) = Stream::pair().unwrap();
        drop(b);
        let bufs = [IoSlice::new(b"head"), IoSlice::new(b"body")];
        let err = (&a).write_vectored(&bufs).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let err = (&a).write(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn readiness_sees_data_and_hangup() {
        let (a, b) = Stream::pair().unwrap();
        assert!(!a.wait_readable(Some(Duration::ZERO)).unwrap());
        assert!(!a.wait_readable(Some(Duration::from_millis(20))).unwrap());
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            (&b).write_all(b"!").unwrap();
            b
        });
        assert!(a.wait_readable(Some(Duration::from_secs(5))).unwrap());
        let b = t.join().unwrap();
        let mut one = [0; 1];
        (&a).read_exact(&mut one).unwrap();
        drop(b);
        assert!(
            a.wait_readable(Some(Duration::ZERO)).unwrap(),
            "hang-up counts as ready"
        );
        assert_eq!((&a).read(&mut one).unwrap(), 0);
    }

    #[test]
    fn fds_are_close_on_exec() {
        let (a, b) = Stream::pair().unwrap();
        let (r, w) = Stream::pipe().unwrap();
        for s in [&a, &b, &r, &w] {
            let flags = calls::fd_flags(s.as_fd()).unwrap();
            assert_ne!(flags & libc::FD_CLOEXEC, 0);
        }
    }

    #[test]
    fn close_reports_and_peer_sees_eof() {
        let (a, b) = Stream::pair().unwrap();
        a.close().unwrap();
        let mut buf = [0; 1];
        assert_eq!((&b).read(&mut buf).unwrap(), 0);
    }
}
