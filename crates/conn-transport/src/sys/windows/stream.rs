//! `Stream` on Windows: a TCP socket (length-prefixed frames, as on Unix) or a message-mode
//! named pipe end (AF_PIPE: one write is one message, as CPython's `PipeConnection`).
//!
//! Sockets are non-blocking underneath (`WSAEventSelect` ties each to its probe's event and
//! makes it so); a blocking call waits with `WSAPoll`, within the stream's timeout. Pipes are
//! overlapped: reads go through the probe (see `probe.rs`), a write is one `WriteFile` waited
//! for within its timeout and cancelled after it.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::windows::io::{
    AsRawHandle, AsRawSocket, FromRawHandle, OwnedHandle as StdOwnedHandle, OwnedSocket,
};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use conn_address::{Address, Family, arbitrary_address};
use windows_sys::Win32::Foundation::{
    ERROR_IO_PENDING, ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, GENERIC_READ, GENERIC_WRITE, HANDLE,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Networking::WinSock::{FD_CLOSE, FD_READ, SOCKET, WSAEventSelect};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING, PIPE_ACCESS_DUPLEX, PIPE_ACCESS_INBOUND,
    WriteFile,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, PIPE_READMODE_MESSAGE, SetNamedPipeHandleState, WaitNamedPipeW,
};

use super::calls::{self, Event, Outcome};
use super::probe::{Ov, Probe, Raw, Source};
use super::wake::EventWait;
use crate::common::{connect_tcp, unsupported};
use crate::os::{MessagePart, PIPE_CONNECT_TIMEOUT, StreamKind};
use crate::{Handle, deadline_after, time_left};

#[derive(Debug)]
enum Inner {
    Tcp(TcpStream),
    Pipe { handle: StdOwnedHandle },
}

/// The overlapped write machinery: one write at a time. A pipe has it from the start (every
/// pipe write is overlapped); a socket gets it at its first write started without waiting.
#[derive(Debug)]
struct Writer {
    event: Event,
    ov: Ov,
    /// What is written to (owned by the stream).
    target: Target,
    /// The bytes of a write started by `start_write` and not yet collected, kept here until
    /// the write is over (a `Vec`'s bytes do not move with it).
    in_flight: Option<Vec<u8>>,
}

/// A writer's pipe handle or socket.
#[derive(Debug, Clone, Copy)]
enum Target {
    Pipe(Raw),
    Socket(SOCKET),
}

impl Writer {
    fn new(target: Target) -> io::Result<Self> {
        let event = Event::new()?;
        Ok(Self {
            ov: Ov::new(&event),
            event,
            target,
            in_flight: None,
        })
    }

    /// The state of the write under way, waiting for it if `wait`.
    ///
    /// # Safety
    /// A write must have been started on the target with this writer's OVERLAPPED.
    unsafe fn outcome(&self, wait: bool) -> Outcome {
        match self.target {
            // SAFETY: the caller's contract.
            Target::Pipe(h) => unsafe { calls::overlapped_result(h.0, self.ov.ptr(), wait) },
            // SAFETY: the caller's contract.
            Target::Socket(s) => unsafe { calls::socket_overlapped_result(s, self.ov.ptr(), wait) },
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.in_flight.is_some() {
            let h = match self.target {
                Target::Pipe(h) => h.0,
                Target::Socket(s) => s as HANDLE,
            };
            // SAFETY: the write was started on the target (still open: the writer goes
            // first, see `Stream`) with this OVERLAPPED; it is stopped before its bytes go.
            unsafe { windows_sys::Win32::System::IO::CancelIoEx(h, self.ov.ptr()) };
            // SAFETY: as above.
            let _ = unsafe { self.outcome(true) };
        }
    }
}

/// A connected, blocking stream. `Read` and `Write` are implemented for `&Stream` too, so one
/// thread may send while another receives.
#[derive(Debug)]
pub(crate) struct Stream {
    /// First, so that it drops (and stops the probe's reads) before the handle closes.
    probe: ShutOnDrop,
    /// Before `inner`, so that a write under way is stopped before the handle closes.
    /// Boxed: most sockets never have one, and a stream is moved around by value.
    writer: Mutex<Option<Box<Writer>>>,
    inner: Inner,
    kind: StreamKind,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
}

/// The stream's probe, shut when the stream goes (before its handle closes: see `Stream`).
#[derive(Debug)]
struct ShutOnDrop(Arc<Probe>);

impl std::ops::Deref for ShutOnDrop {
    type Target = Probe;

    fn deref(&self) -> &Probe {
        &self.0
    }
}

impl Drop for ShutOnDrop {
    fn drop(&mut self) {
        self.0.shut();
    }
}

fn invalid_input(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ties `socket` to a new event (which also makes it non-blocking).
pub(crate) fn socket_probe(socket: SOCKET, events: u32) -> io::Result<Probe> {
    let event = Event::new()?;
    // SAFETY: an open socket and an open event, both kept by the caller for the probe's life.
    if unsafe { WSAEventSelect(socket, event.raw() as isize, events as i32) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Probe::new(event, Source::Socket(socket)))
}

/// The handle of a new message-mode pipe instance named `name`.
pub(crate) fn create_instance(
    name: &[u16],
    access: u32,
    first: bool,
    instances: u32,
    reject_remote: bool,
) -> io::Result<std::os::windows::raw::HANDLE> {
    use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_FIRST_PIPE_INSTANCE;
    use windows_sys::Win32::System::Pipes::{
        CreateNamedPipeW, NMPWAIT_WAIT_FOREVER, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_MESSAGE,
        PIPE_WAIT,
    };
    let open_mode = access
        | FILE_FLAG_OVERLAPPED
        | if first {
            FILE_FLAG_FIRST_PIPE_INSTANCE
        } else {
            0
        };
    let pipe_mode = PIPE_TYPE_MESSAGE
        | PIPE_READMODE_MESSAGE
        | PIPE_WAIT
        | if reject_remote {
            PIPE_REJECT_REMOTE_CLIENTS
        } else {
            0
        };
    // SAFETY: `name` is NUL-terminated UTF-16; default security (not inheritable).
    let h = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            open_mode,
            pipe_mode,
            instances,
            PIPE_BUFFER,
            PIPE_BUFFER,
            NMPWAIT_WAIT_FOREVER,
            std::ptr::null(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(calls::last_error());
    }
    Ok(h)
}

/// The buffer sizes asked for a pipe instance (advisory: Windows grows them as needed).
const PIPE_BUFFER: u32 = 64 * 1024;

/// Opens the client end of pipe `name`, overlapped, in message read mode.
fn open_client(name: &[u16], access: u32) -> io::Result<Option<StdOwnedHandle>> {
    // SAFETY: `name` is NUL-terminated UTF-16; no sharing, default security, no template.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        let code = calls::last_code();
        if code == ERROR_PIPE_BUSY {
            return Ok(None);
        }
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    // SAFETY: a fresh handle nothing else owns.
    let owned = unsafe { StdOwnedHandle::from_raw_handle(h) };
    let mode = PIPE_READMODE_MESSAGE;
    // SAFETY: the open pipe handle and a valid mode; the other two values are left alone.
    if unsafe {
        SetNamedPipeHandleState(
            owned.as_raw_handle(),
            &mode,
            std::ptr::null(),
            std::ptr::null(),
        )
    } == 0
    {
        return Err(calls::last_error());
    }
    Ok(Some(owned))
}

/// Connects to pipe `name` as CPython's `PipeClient` does: open it, and while every instance is
/// busy, wait for one (`WaitNamedPipe`) until the deadline.
fn connect_pipe(name: &str, timeout: Option<Duration>) -> io::Result<Stream> {
    let wide = calls::wide(name);
    let deadline = deadline_after(Some(timeout.unwrap_or(PIPE_CONNECT_TIMEOUT)));
    loop {
        if let Some(h) = open_client(&wide, GENERIC_READ | GENERIC_WRITE)? {
            return Stream::pipe_end(h, StreamKind::MessagePipe);
        }
        let left = time_left(deadline).unwrap_or_default();
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("every instance of {name} stayed busy"),
            ));
        }
        let ms = calls::millis(Some(left.min(Duration::from_secs(1))));
        // SAFETY: a NUL-terminated name; the result is only a hint (the open is retried).
        unsafe { WaitNamedPipeW(wide.as_ptr(), ms) };
    }
}

/// Waits for the client of a fresh server instance `h` (already there for a pair).
fn await_client(h: &StdOwnedHandle) -> io::Result<()> {
    let event = Event::new()?;
    let mut ov = Ov::new(&event);
    let ptr = ov.fresh();
    // SAFETY: `ov` lives until the operation is over (waited for below).
    if unsafe { ConnectNamedPipe(h.as_raw_handle(), ptr) } != 0 {
        return Ok(());
    }
    match calls::last_code() {
        ERROR_PIPE_CONNECTED => Ok(()),
        ERROR_IO_PENDING => {
            // SAFETY: the connect just started on `h` with `ov`.
            match unsafe { calls::overlapped_result(h.as_raw_handle(), ov.ptr(), true) } {
                Outcome::Done(_) | Outcome::More(_) => Ok(()),
                Outcome::Failed(code) => Err(io::Error::from_raw_os_error(code as i32)),
                Outcome::Pending => Err(io::ErrorKind::TimedOut.into()),
            }
        }
        code => Err(io::Error::from_raw_os_error(code as i32)),
    }
}

impl Stream {
    /// Connects to `address`: TCP (a host name means its IPv4 addresses, as CPython's AF_INET;
    /// each try gives up after `timeout`, `None`: the OS's limit) or a named pipe (AF_PIPE:
    /// while every instance is busy, waits for one until `timeout`, `None`: 20 s as CPython).
    pub(crate) fn connect(address: &Address, timeout: Option<Duration>) -> io::Result<Self> {
        address.validate().map_err(invalid_input)?;
        match address {
            Address::Inet { .. } => Self::tcp(connect_tcp(address, timeout)?),
            Address::Pipe(name) => connect_pipe(name, timeout),
            Address::UnixPath(_) | Address::UnixAbstract(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "AF_UNIX is not available on Windows",
            )),
            _ => Err(unsupported(address)),
        }
    }

    /// Wraps a connected TCP socket.
    pub(crate) fn tcp(stream: TcpStream) -> io::Result<Self> {
        let probe = socket_probe(stream.as_raw_socket() as SOCKET, FD_READ | FD_CLOSE)?;
        stream.set_nonblocking(true)?;
        Ok(Self {
            writer: Mutex::new(None),
            inner: Inner::Tcp(stream),
            kind: StreamKind::Tcp,
            probe: ShutOnDrop(Arc::new(probe)),
            read_timeout: Mutex::new(None),
            write_timeout: Mutex::new(None),
        })
    }

    /// Wraps a connected message-mode pipe end.
    pub(crate) fn pipe_end(handle: StdOwnedHandle, kind: StreamKind) -> io::Result<Self> {
        let probe = if kind == StreamKind::MessagePipeWriter {
            Probe::new(Event::new()?, Source::Never)
        } else {
            Probe::pipe(handle.as_raw_handle())?
        };
        let writer = Writer::new(Target::Pipe(Raw(handle.as_raw_handle())))?;
        Ok(Self {
            writer: Mutex::new(Some(Box::new(writer))),
            inner: Inner::Pipe { handle },
            kind,
            probe: ShutOnDrop(Arc::new(probe)),
            read_timeout: Mutex::new(None),
            write_timeout: Mutex::new(None),
        })
    }

    /// A connected pair of message-mode named pipe ends, for `Pipe(duplex=True)`, as CPython
    /// makes it on Windows (a one-instance pipe with a fresh random name, remote clients
    /// refused).
    pub(crate) fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = pipe_pair(true)?;
        Ok((
            Self::pipe_end(a, StreamKind::MessagePipe)?,
            Self::pipe_end(b, StreamKind::MessagePipe)?,
        ))
    }

    /// A one-way pair of message-mode pipe ends, for `Pipe(duplex=False)`: (read end, write
    /// end).
    pub(crate) fn simplex() -> io::Result<(Self, Self)> {
        let (r, w) = pipe_pair(false)?;
        Ok((
            Self::pipe_end(r, StreamKind::MessagePipeReader)?,
            Self::pipe_end(w, StreamKind::MessagePipeWriter)?,
        ))
    }

    /// The same as [`simplex`](Self::simplex) on Windows (there is no byte pipe to prefer).
    pub(crate) fn pipe() -> io::Result<(Self, Self)> {
        Self::simplex()
    }

    /// What this stream is.
    pub(crate) fn kind(&self) -> StreamKind {
        self.kind
    }

    /// Limits how long one blocking read may wait (`None`: forever); a read that times out
    /// fails with `TimedOut`.
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        *lock(&self.read_timeout) = timeout;
        Ok(())
    }

    /// Limits how long one blocking write may wait (`None`: forever).
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        *lock(&self.write_timeout) = timeout;
        Ok(())
    }

    /// Sets `TCP_NODELAY` (TCP only; a no-op on pipes).
    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.set_nodelay(nodelay),
            Inner::Pipe { .. } => Ok(()),
        }
    }

    /// The peer's address: a TCP peer's host and port; `None` for pipes.
    pub(crate) fn peer_address(&self) -> Option<Address> {
        match &self.inner {
            Inner::Tcp(s) => s.peer_addr().ok().map(Address::from),
            Inner::Pipe { .. } => None,
        }
    }

    /// Shuts down both directions of a socket (the peer sees EOF); a no-op for pipes.
    pub(crate) fn shutdown(&self) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.shutdown(Shutdown::Both),
            Inner::Pipe { .. } => Ok(()),
        }
    }

    /// Waits until a write would make progress, at most `timeout`. A pipe write is one whole
    /// message with its own timeout: always true.
    pub(crate) fn wait_writable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        match &self.inner {
            Inner::Tcp(s) => calls::poll_socket(s.as_raw_socket() as SOCKET, true, timeout),
            Inner::Pipe { .. } => Ok(true),
        }
    }

    /// One write that never blocks (`WouldBlock` if nothing fits). Sockets only: a pipe takes
    /// whole messages ([`write_message`](Self::write_message)).
    pub(crate) fn write_vectored_nonblocking(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &self.inner {
            Inner::Tcp(s) => (&*s).write_vectored(bufs),
            Inner::Pipe { .. } => Err(whole_messages()),
        }
    }

    /// One read that never blocks: `WouldBlock` if nothing has arrived, 0 at EOF. Sockets only
    /// (pipes: [`read_message`](Self::read_message)).
    pub(crate) fn read_nonblocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            Inner::Tcp(s) => (&*s).read(buf),
            Inner::Pipe { .. } => Err(whole_messages()),
        }
    }

    /// Appends up to `n` bytes to `buf`, stopping early only at EOF (waiting within the read
    /// timeout until then). Sockets only.
    pub(crate) fn read_append(&self, buf: &mut Vec<u8>, n: u64) -> io::Result<usize> {
        let Inner::Tcp(s) = &self.inner else {
            return Err(whole_messages());
        };
        let start = buf.len();
        let timeout = *lock(&self.read_timeout);
        // `read_to_end` keeps what it read before `WouldBlock`: each retry asks for the rest.
        until_ready(s, false, timeout, || {
            let got = (buf.len() - start) as u64;
            s.take(n - got).read_to_end(buf).map(|_| buf.len() - start)
        })
    }

    /// Sends `message` as one pipe message, waiting at most `timeout` (`None`: as long as it
    /// takes) for the reader to take it; a write still under way then is cancelled and fails
    /// with `TimedOut`. Message-mode pipes only; at most 4 GiB - 1 (one `WriteFile`).
    pub(crate) fn write_message(
        &self,
        message: &[u8],
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let len = self.message_len(message.len())?;
        let mut guard = lock(&self.writer);
        let Some(w) = guard.as_mut() else {
            return Err(crate::common::not_a_message_pipe());
        };
        if w.in_flight.is_some() {
            return Err(write_under_way());
        }
        let Target::Pipe(h) = w.target else {
            return Err(crate::common::not_a_message_pipe());
        };
        let h = h.0;
        let ov = w.ov.fresh();
        // SAFETY: `message` and the OVERLAPPED outlive the operation: it is waited for (or
        // cancelled and waited for) before this function returns.
        let ok = unsafe { WriteFile(h, message.as_ptr(), len, std::ptr::null_mut(), ov) };
        if ok == 0 {
            let code = calls::last_code();
            if code != ERROR_IO_PENDING {
                return Err(io::Error::from_raw_os_error(code as i32));
            }
            if !calls::wait_one(w.event.raw(), timeout)? {
                // SAFETY: the write was started on `h` with this OVERLAPPED.
                return match unsafe { calls::cancel_and_wait(h, w.ov.ptr()) } {
                    Outcome::Done(n) if n == len => Ok(()),
                    _ => Err(io::ErrorKind::TimedOut.into()),
                };
            }
        }
        // SAFETY: as above; the operation is over.
        match unsafe { calls::overlapped_result(h, w.ov.ptr(), true) } {
            Outcome::Done(n) if n == len => Ok(()),
            Outcome::Done(_) | Outcome::More(_) | Outcome::Pending => {
                Err(io::ErrorKind::WriteZero.into())
            }
            Outcome::Failed(code) => Err(io::Error::from_raw_os_error(code as i32)),
        }
    }

    /// `len` as one pipe message's `WriteFile` count, on a message-mode pipe that may write.
    fn message_len(&self, len: usize) -> io::Result<u32> {
        if !matches!(self.inner, Inner::Pipe { .. }) {
            return Err(crate::common::not_a_message_pipe());
        }
        if self.kind == StreamKind::MessagePipeReader {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "cannot write to the read end of a pipe",
            ));
        }
        u32::try_from(len).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Windows pipe message is at most 4 GiB - 1",
            )
        })
    }

    /// Starts writing `bytes` without waiting: on a pipe as one message (one `WriteFile`), on
    /// a socket as one overlapped `WSASend` (which completes once the OS has taken every
    /// byte). The stream keeps the bytes until the write is over
    /// ([`poll_written`](Self::poll_written) collects it; dropping the stream first cancels
    /// it). One write at a time: a second is refused while one is under way.
    pub(crate) fn start_write(&self, bytes: Vec<u8>) -> io::Result<()> {
        let mut guard = lock(&self.writer);
        let target = match &self.inner {
            Inner::Pipe { .. } => {
                self.message_len(bytes.len())?;
                None
            }
            Inner::Tcp(s) => Some(Target::Socket(s.as_raw_socket() as SOCKET)),
        };
        if guard.is_none() {
            if let Some(target) = target {
                *guard = Some(Box::new(Writer::new(target)?));
            }
        }
        let Some(w) = guard.as_mut() else {
            return Err(crate::common::not_a_message_pipe());
        };
        if w.in_flight.is_some() {
            return Err(write_under_way());
        }
        // The bytes stay where they are while the `Vec` is held in `in_flight`.
        let (ptr, len) = (bytes.as_ptr(), bytes.len());
        w.in_flight = Some(bytes);
        let ov = w.ov.fresh();
        let started = match w.target {
            Target::Pipe(h) => {
                // SAFETY: the bytes and the OVERLAPPED are kept by the writer until the write
                // is collected, or cancelled and waited out when the writer drops (before the
                // handle); `len` fits a u32 (checked above).
                let ok = unsafe { WriteFile(h.0, ptr, len as u32, std::ptr::null_mut(), ov) };
                match calls::last_code() {
                    _ if ok != 0 => Ok(()),
                    ERROR_IO_PENDING => Ok(()),
                    code => Err(io::Error::from_raw_os_error(code as i32)),
                }
            }
            // SAFETY: as above, for the socket.
            Target::Socket(s) => unsafe { calls::start_send(s, ptr, len, ov) },
        };
        if started.is_err() {
            w.in_flight = None;
        }
        started
    }

    /// Ready when the write started by [`start_write`](Self::start_write) is over: `Ok` when
    /// every byte went (or no write was under way); until then the task of `cx` is woken
    /// when it is.
    pub(crate) fn poll_written(
        &self,
        wait: &mut EventWait,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        use std::task::Poll;
        loop {
            let mut guard = lock(&self.writer);
            let Some(w) = guard.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let Some(len) = w.in_flight.as_ref().map(Vec::len) else {
                return Poll::Ready(Ok(()));
            };
            // SAFETY: the write was started on the target with this OVERLAPPED and its bytes
            // are held in `in_flight`.
            let result = match unsafe { w.outcome(false) } {
                Outcome::Pending => {
                    let event = w.event.raw();
                    drop(guard);
                    match wait.poll_event(event, cx) {
                        Poll::Ready(Ok(())) => continue,
                        other => return other,
                    }
                }
                Outcome::Done(n) if n as usize == len => Ok(()),
                Outcome::Done(_) | Outcome::More(_) => Err(io::ErrorKind::WriteZero.into()),
                Outcome::Failed(code) => Err(io::Error::from_raw_os_error(code as i32)),
            };
            w.in_flight = None;
            return Poll::Ready(result);
        }
    }

    /// Reads the next part of the current message into `buf` (the start of the next message if
    /// the last one was read whole), waiting at most `timeout` (`None`: forever; zero: just
    /// look) and failing with `WouldBlock` if nothing came. Message-mode pipes only.
    pub(crate) fn read_message(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<MessagePart> {
        if !self.kind.keeps_messages() {
            return Err(crate::common::not_a_message_pipe());
        }
        if self.kind == StreamKind::MessagePipeWriter {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "cannot read from the write end of a pipe",
            ));
        }
        let deadline = deadline_after(timeout);
        loop {
            if let Some(part) = self.probe.pipe_read(buf) {
                return part;
            }
            let left = time_left(deadline);
            if left.is_some_and(|l| l.is_zero()) || !calls::wait_one(self.probe.event(), left)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    /// Bytes of the current message not yet read (after a [`read_message`](Self::read_message)
    /// that said `more`): what CPython asks `PeekNamedPipe` before reading the rest.
    pub(crate) fn message_left(&self) -> io::Result<u64> {
        if !self.kind.keeps_messages() {
            return Err(crate::common::not_a_message_pipe());
        }
        self.probe.pipe_message_left()
    }

    /// What the stream has read ahead of its reader and would lose if its handle were given up:
    /// on a pipe, the bytes of a message part read into the transport's buffer (possibly zero,
    /// for a zero-length message), after stopping a read under way; `None` if nothing.
    pub(crate) fn read_ahead(&self) -> Option<usize> {
        match &self.inner {
            Inner::Tcp(_) => None,
            Inner::Pipe { .. } => self.probe.pipe_read_ahead(),
        }
    }

    /// Windows streams are non-blocking underneath and wait by themselves; this is accepted
    /// and changes nothing (the non-blocking calls are `read_nonblocking` and
    /// `write_vectored_nonblocking`).
    pub(crate) fn set_nonblocking(&self, _nonblocking: bool) -> io::Result<()> {
        Ok(())
    }

    /// Whether a read would not block (data, EOF or an error is waiting), waiting at most
    /// `timeout` (`None`: forever; zero: just look).
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        match &self.inner {
            Inner::Tcp(s) => calls::poll_socket(s.as_raw_socket() as SOCKET, false, timeout),
            Inner::Pipe { .. } => {
                // A finished read (bytes, EOF or an error held) left the event set; arming
                // starts a read only if none is under way or held.
                self.probe.arm();
                calls::wait_one(self.probe.event(), timeout)
            }
        }
    }

    /// Closes the stream now, reporting the OS's error (dropping it closes silently).
    pub(crate) fn close(self) -> io::Result<()> {
        // Drop shuts the probe and closes the handle; closing a valid handle does not fail.
        drop(self);
        Ok(())
    }

    /// The handle readiness watches.
    pub(crate) fn handle(&self) -> Handle<'_> {
        Handle::probe(&self.probe.0)
    }

    /// Descriptors travel with bytes over Unix sockets only: `Unsupported` on Windows, where a
    /// handle is duplicated into the receiving process instead (`Sender::send_handle`).
    pub(crate) fn send_handles(&self, _data: &[u8], _handles: &[Handle<'_>]) -> io::Result<usize> {
        Err(handles_unsupported())
    }

    /// `Unsupported` on Windows; see [`send_handles`](Self::send_handles).
    pub(crate) fn recv_handles(
        &self,
        _buf: &mut [u8],
    ) -> io::Result<(usize, Vec<crate::OwnedHandle>)> {
        Err(handles_unsupported())
    }

    /// Handles do not arrive with bytes on Windows: a no-op, for the same API everywhere.
    pub(crate) fn set_max_unclaimed_handles(&self, max: usize) {
        let _ = max;
    }

    /// Always [`DEFAULT_MAX_UNCLAIMED_HANDLES`](crate::DEFAULT_MAX_UNCLAIMED_HANDLES) on
    /// Windows, where handles do not arrive with bytes.
    pub(crate) fn max_unclaimed_handles(&self) -> usize {
        crate::DEFAULT_MAX_UNCLAIMED_HANDLES
    }

    /// Nothing is dropped on Windows: `(0, false)`.
    pub(crate) fn take_dropped_handles(&self) -> (usize, bool) {
        (0, false)
    }

    /// Never any on Windows.
    pub(crate) fn take_received_handles(&self) -> Option<Vec<crate::OwnedHandle>> {
        None
    }
}

/// Runs `op` on non-blocking socket `s` until it does not say `WouldBlock`, waiting for the
/// socket to become readable (or writable) in between, at most `timeout` each time
/// (`TimedOut` after it).
fn until_ready<T>(
    s: &TcpStream,
    write: bool,
    timeout: Option<Duration>,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !calls::poll_socket(s.as_raw_socket() as SOCKET, write, timeout)? {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            other => return other,
        }
    }
}

/// A byte-stream call on a message-mode pipe.
fn whole_messages() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a message-mode pipe takes whole messages (read_message / write_message)",
    )
}

fn write_under_way() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        "a write started without waiting is still under way on this pipe",
    )
}

/// Ends a socket's tie to a readiness event (`WSAEventSelect`), so that the event may close
/// while the socket lives on; the socket stays non-blocking.
fn untie_socket(s: &TcpStream) {
    // SAFETY: an open socket; a null event with no network events cancels the association.
    unsafe { WSAEventSelect(s.as_raw_socket() as SOCKET, 0, 0) };
}

fn handles_unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "handles do not travel with bytes on Windows: use send_handle / recv_handle",
    )
}

/// The two ends of a fresh one-instance message-mode pipe: (server, client). Duplex: both ways;
/// otherwise the server reads and the client writes (CPython's `PIPE_ACCESS_INBOUND`).
fn pipe_pair(duplex: bool) -> io::Result<(StdOwnedHandle, StdOwnedHandle)> {
    let Address::Pipe(name) = arbitrary_address(Family::Pipe).map_err(invalid_input)? else {
        return Err(io::ErrorKind::InvalidData.into());
    };
    let wide = calls::wide(&name);
    let access = if duplex {
        PIPE_ACCESS_DUPLEX
    } else {
        PIPE_ACCESS_INBOUND
    };
    let server = create_instance(&wide, access, true, 1, true)?;
    // SAFETY: a fresh handle nothing else owns.
    let server = unsafe { StdOwnedHandle::from_raw_handle(server) };
    let client_access = if duplex {
        GENERIC_READ | GENERIC_WRITE
    } else {
        GENERIC_WRITE
    };
    let client = open_client(&wide, client_access)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "a fresh pipe was busy"))?;
    await_client(&server)?;
    Ok((server, client))
}

impl TryFrom<crate::OwnedHandle> for Stream {
    type Error = io::Error;

    /// Adopts a connected socket (as a TCP stream) or a named pipe end (both ways; narrow it
    /// with the connection's directions). Any other handle is `InvalidInput` (and closed).
    fn try_from(handle: crate::OwnedHandle) -> io::Result<Self> {
        use super::handle::Owned;
        match handle.inner {
            Owned::Socket(s) => Self::tcp(TcpStream::from(s)),
            Owned::Object(h) => {
                // SAFETY: an open handle of ours.
                let kind = unsafe {
                    windows_sys::Win32::Storage::FileSystem::GetFileType(h.as_raw_handle())
                };
                if kind != windows_sys::Win32::Storage::FileSystem::FILE_TYPE_PIPE {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "the handle is neither a socket nor a pipe",
                    ));
                }
                Self::pipe_end(h, StreamKind::MessagePipe)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "one of this crate's readiness objects is not a stream handle",
            )),
        }
    }
}

impl Stream {
    /// The process at the other end, for a named pipe to another process (or this one);
    /// `None` for a socket.
    pub(crate) fn peer_pid(&self) -> Option<u32> {
        match &self.inner {
            Inner::Tcp(_) => None,
            Inner::Pipe { handle } => super::share::pipe_peer_pid(handle.as_raw_handle()),
        }
    }
}

impl From<Stream> for crate::OwnedHandle {
    /// The socket or pipe handle. Bytes a pipe had read ahead into the probe are lost.
    fn from(s: Stream) -> Self {
        let Stream {
            probe,
            writer,
            inner,
            ..
        } = s;
        // Stop the probe's reads and a write under way first; the handle itself stays open.
        drop(probe);
        drop(writer);
        match inner {
            Inner::Tcp(t) => {
                untie_socket(&t);
                Self::from_socket(OwnedSocket::from(t))
            }
            Inner::Pipe { handle, .. } => Self::from_object(handle),
        }
    }
}

impl Read for &Stream {
    /// A blocking read (within the read timeout: `TimedOut` after it). Sockets only.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Inner::Tcp(s) = &self.inner else {
            return Err(whole_messages());
        };
        let timeout = *lock(&self.read_timeout);
        until_ready(s, false, timeout, || (&*s).read(buf))
    }
}

impl Write for &Stream {
    /// A blocking write (within the write timeout). On a pipe, `buf` is sent as one message.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let timeout = *lock(&self.write_timeout);
        let s = match &self.inner {
            Inner::Tcp(s) => s,
            Inner::Pipe { .. } => {
                self.write_message(buf, timeout)?;
                return Ok(buf.len());
            }
        };
        until_ready(s, true, timeout, || (&*s).write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let timeout = *lock(&self.write_timeout);
        let s = match &self.inner {
            Inner::Tcp(s) => s,
            Inner::Pipe { .. } => {
                // One call, one message: the slices are joined.
                let message: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
                return self.write(&message);
            }
        };
        until_ready(s, true, timeout, || (&*s).write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawHandle for crate::os::Stream {
    /// The pipe handle, or the socket as a handle value (what CPython's `fileno()` gives on
    /// Windows for either).
    fn as_raw_handle(&self) -> std::os::windows::io::RawHandle {
        self.inner.as_raw_handle()
    }
}

impl AsRawHandle for Stream {
    /// The pipe handle, or the socket as a handle value (what CPython's `fileno()` gives on
    /// Windows for either).
    fn as_raw_handle(&self) -> std::os::windows::io::RawHandle {
        match &self.inner {
            Inner::Tcp(s) => s.as_raw_socket() as std::os::windows::io::RawHandle,
            Inner::Pipe { handle, .. } => handle.as_raw_handle(),
        }
    }
}
