//! Readiness on Windows. Every waitable object of this module owns a [`Probe`]: a manual-reset
//! event plus what makes it signal. A wait first *arms* each probe, then waits on the events
//! (`WaitForMultipleObjects`, any number: see `calls::wait_any`). Arming is what makes the wait
//! level-triggered: a socket's event is reset and set again at once if the socket is still
//! readable; a pipe starts its next read if none is under way.
//!
//! - A socket (stream or listener) is tied to its event with `WSAEventSelect(FD_READ |
//!   FD_CLOSE | FD_ACCEPT)`; arming resets the event and checks with a zero-timeout `WSAPoll`.
//! - A message-mode pipe is read through the probe: one overlapped `ReadFile` into the probe's
//!   buffer at a time, signalling the event when it completes. Its bytes then wait there for
//!   the reader, with whether the message goes on (`ERROR_MORE_DATA`). Unlike a zero-byte read
//!   (CPython's way to wait on a pipe), this never swallows a zero-length message and never
//!   races a reader in another thread.
//! - A pipe listener keeps one `ConnectNamedPipe` pending on its front instance; the event
//!   signals when a client arrives.

use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_IO_PENDING, ERROR_MORE_DATA, ERROR_NO_DATA, ERROR_OPERATION_ABORTED,
    ERROR_PIPE_CONNECTED, HANDLE,
};
use windows_sys::Win32::Networking::WinSock::SOCKET;
use windows_sys::Win32::Storage::FileSystem::ReadFile;
use windows_sys::Win32::System::IO::OVERLAPPED;
use windows_sys::Win32::System::Pipes::{ConnectNamedPipe, PeekNamedPipe};

use super::calls::{self, Event, Outcome};
use crate::os::MessagePart;

/// How much of a pipe message one read takes into the probe's buffer.
pub(crate) const PIPE_CHUNK: usize = 64 * 1024;

/// A raw handle that may cross threads: the object it names is owned elsewhere (by the
/// stream or listener holding the probe), and every use happens under the probe's lock while
/// that owner has not shut the probe.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw(pub(crate) HANDLE);
// SAFETY: a HANDLE is a process-wide number, usable from any thread; see the type's docs.
unsafe impl Send for Raw {}
// SAFETY: as above.
unsafe impl Sync for Raw {}

/// An `OVERLAPPED` at a fixed address (boxed), as a pending operation needs.
pub(crate) struct Ov(Box<OVERLAPPED>);
// SAFETY: the OVERLAPPED is touched only under the probe's (or writer's) lock.
unsafe impl Send for Ov {}

impl Ov {
    pub(crate) fn new(event: &Event) -> Self {
        Self(Box::new(calls::overlapped(event)))
    }

    /// Clears the status fields for a new operation (the event stays).
    pub(crate) fn fresh(&mut self) -> *mut OVERLAPPED {
        let event = self.0.hEvent;
        *self.0 = calls::overlapped_raw(event);
        &mut *self.0
    }

    pub(crate) fn ptr(&self) -> *const OVERLAPPED {
        &*self.0
    }
}

impl std::fmt::Debug for Ov {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OVERLAPPED")
    }
}

/// A readiness source; see the module docs.
#[derive(Debug)]
pub(crate) struct Probe {
    event: Event,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The owner has closed its handle: nothing may touch it any more.
    closed: bool,
    source: Source,
}

#[derive(Debug)]
pub(crate) enum Source {
    /// A socket tied to the event with `WSAEventSelect`.
    Socket(SOCKET),
    /// A message-mode pipe end read through the probe.
    Pipe(PipeRead),
    /// A pipe listener's instances.
    Accept(PipeAccept),
    /// Nothing to read from (a pipe's write-only end): never ready by itself.
    Never,
}

/// A message-mode pipe's reads.
#[derive(Debug)]
pub(crate) struct PipeRead {
    handle: Raw,
    buf: Box<[u8]>,
    ov: Ov,
    read: ReadState,
}

#[derive(Debug)]
enum ReadState {
    Idle,
    Pending,
    Filled { len: usize, pos: usize, more: bool },
    Eof,
    Failed(u32),
}

impl Probe {
    pub(crate) fn new(event: Event, source: Source) -> Self {
        Self {
            event,
            state: Mutex::new(State {
                closed: false,
                source,
            }),
        }
    }

    /// A probe reading pipe `handle`.
    pub(crate) fn pipe(handle: HANDLE) -> io::Result<Self> {
        let event = Event::new()?;
        let read = PipeRead {
            handle: Raw(handle),
            buf: vec![0; PIPE_CHUNK].into_boxed_slice(),
            ov: Ov::new(&event),
            read: ReadState::Idle,
        };
        Ok(Self::new(event, Source::Pipe(read)))
    }

    pub(crate) fn event(&self) -> HANDLE {
        self.event.raw()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Prepares for a wait: afterwards the event is signalled exactly when the object is ready
    /// (now or later).
    pub(crate) fn arm(&self) {
        let mut st = self.lock();
        if st.closed {
            self.event.set();
            return;
        }
        match &mut st.source {
            Source::Socket(s) => {
                self.event.reset();
                if calls::poll_socket(*s, false, Some(std::time::Duration::ZERO)).unwrap_or(true) {
                    self.event.set();
                }
            }
            Source::Pipe(p) => {
                p.settle();
                if matches!(p.read, ReadState::Idle) {
                    p.start(&self.event);
                }
            }
            Source::Accept(a) => {
                a.settle();
                if matches!(a.state, AcceptState::Idle) {
                    a.start(&self.event);
                }
            }
            Source::Never => self.event.reset(),
        }
    }

    /// The owner is closing its handle: stop and wait out any operation on it; waiters see the
    /// probe ready from now on (the object then reports that it is closed).
    pub(crate) fn shut(&self) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        match &mut st.source {
            Source::Pipe(p) => p.cancel(),
            Source::Accept(a) => a.close_all(),
            Source::Socket(_) | Source::Never => {}
        }
        st.closed = true;
        self.event.set();
    }

    /// One step of reading the current pipe message into `out`: `None` if a read is under way
    /// (wait on the event), after starting one if none was.
    pub(crate) fn pipe_read(&self, out: &mut [u8]) -> Option<io::Result<MessagePart>> {
        let mut st = self.lock();
        if st.closed {
            return Some(Err(closed()));
        }
        let Source::Pipe(p) = &mut st.source else {
            return Some(Err(io::ErrorKind::Unsupported.into()));
        };
        p.settle();
        if matches!(p.read, ReadState::Idle) {
            p.start(&self.event);
            p.settle();
        }
        p.take(out)
    }

    /// Bytes of the current message not yet read: those in the buffer and, if the message goes
    /// on, those still in the pipe (`PeekNamedPipe`).
    pub(crate) fn pipe_message_left(&self) -> io::Result<u64> {
        let mut st = self.lock();
        if st.closed {
            return Err(closed());
        }
        let Source::Pipe(p) = &mut st.source else {
            return Err(io::ErrorKind::Unsupported.into());
        };
        if matches!(p.read, ReadState::Pending) {
            // The rest of a message is in the pipe already (a message is queued whole), so
            // a read started meanwhile completes at once.
            // SAFETY: the pending read was started on `handle` with this OVERLAPPED.
            let outcome = unsafe { calls::overlapped_result(p.handle.0, p.ov.ptr(), true) };
            p.finish(outcome);
        }
        let (buffered, more) = match p.read {
            ReadState::Filled { len, pos, more } => ((len - pos) as u64, more),
            ReadState::Idle => (0, true),
            _ => return Ok(0),
        };
        if !more {
            return Ok(buffered);
        }
        let mut left = 0u32;
        // SAFETY: a peek with no buffer on the open pipe handle; only `left` is written.
        let ok = unsafe {
            PeekNamedPipe(
                p.handle.0,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut left,
            )
        };
        if ok == 0 {
            let code = calls::last_code();
            if calls::is_pipe_gone(code) {
                return Ok(buffered);
            }
            return Err(io::Error::from_raw_os_error(code as i32));
        }
        Ok(buffered + u64::from(left))
    }

    /// What a pipe has read ahead and not handed out, after stopping a read under way (so the
    /// answer stays true until the next read): the bytes of a message part, possibly zero (a
    /// zero-length message), or `None`.
    pub(crate) fn pipe_read_ahead(&self) -> Option<usize> {
        let mut st = self.lock();
        if st.closed {
            return None;
        }
        let Source::Pipe(p) = &mut st.source else {
            return None;
        };
        p.cancel();
        match p.read {
            ReadState::Filled { len, pos, .. } => Some(len - pos),
            _ => None,
        }
    }

    /// Runs `f` on the listener's state (pipe listeners only).
    pub(crate) fn with_accept<T>(
        &self,
        f: impl FnOnce(&mut PipeAccept, &Event) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut st = self.lock();
        if st.closed {
            return Err(closed());
        }
        match &mut st.source {
            Source::Accept(a) => f(a, &self.event),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the handle is closed")
}

impl PipeRead {
    /// Starts a read into the buffer.
    fn start(&mut self, event: &Event) {
        let ov = self.ov.fresh();
        // SAFETY: the buffer and OVERLAPPED are boxed (fixed addresses) and outlive the
        // operation: `cancel` waits it out before either can go, and the pipe handle is open
        // until the owner shuts the probe.
        let ok = unsafe {
            ReadFile(
                self.handle.0,
                self.buf.as_mut_ptr(),
                self.buf.len() as u32,
                std::ptr::null_mut(),
                ov,
            )
        };
        if ok != 0 {
            self.read = ReadState::Pending;
            return;
        }
        match calls::last_code() {
            ERROR_IO_PENDING | ERROR_MORE_DATA => self.read = ReadState::Pending,
            code => {
                self.read = if calls::is_pipe_gone(code) {
                    ReadState::Eof
                } else {
                    ReadState::Failed(code)
                };
                event.set();
            }
        }
    }

    /// Collects a finished read without waiting.
    fn settle(&mut self) {
        if matches!(self.read, ReadState::Pending) {
            // SAFETY: the pending read was started on `handle` with this OVERLAPPED.
            let outcome = unsafe { calls::overlapped_result(self.handle.0, self.ov.ptr(), false) };
            self.finish(outcome);
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.read = match outcome {
            Outcome::Pending => ReadState::Pending,
            Outcome::Done(n) => ReadState::Filled {
                len: n as usize,
                pos: 0,
                more: false,
            },
            Outcome::More(n) => ReadState::Filled {
                len: n as usize,
                pos: 0,
                more: true,
            },
            Outcome::Failed(ERROR_OPERATION_ABORTED) => ReadState::Idle,
            Outcome::Failed(code) if calls::is_pipe_gone(code) => ReadState::Eof,
            Outcome::Failed(code) => ReadState::Failed(code),
        };
    }

    /// Hands out what a finished read brought.
    fn take(&mut self, out: &mut [u8]) -> Option<io::Result<MessagePart>> {
        match &mut self.read {
            ReadState::Filled { len, pos, more } => {
                let n = out.len().min(*len - *pos);
                out[..n].copy_from_slice(&self.buf[*pos..*pos + n]);
                *pos += n;
                let part = MessagePart::Data {
                    len: n,
                    more: *more || *pos < *len,
                };
                if *pos == *len {
                    self.read = ReadState::Idle;
                }
                Some(Ok(part))
            }
            ReadState::Eof => Some(Ok(MessagePart::End)),
            ReadState::Failed(code) => Some(Err(io::Error::from_raw_os_error(*code as i32))),
            ReadState::Idle | ReadState::Pending => None,
        }
    }

    /// Cancels a read under way and waits until it has stopped.
    fn cancel(&mut self) {
        if matches!(self.read, ReadState::Pending) {
            // SAFETY: as in `settle`.
            let outcome = unsafe { calls::cancel_and_wait(self.handle.0, self.ov.ptr()) };
            self.finish(outcome);
        }
    }
}

/// A pipe listener's instances: `front` waits for the next client, `spare` lets one more
/// client connect meanwhile (CPython keeps the same two).
#[derive(Debug)]
pub(crate) struct PipeAccept {
    pub(crate) name: Vec<u16>,
    pub(crate) front: Option<Raw>,
    pub(crate) spare: Option<Raw>,
    ov: Ov,
    pub(crate) state: AcceptState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptState {
    Idle,
    Pending,
    Connected,
    Failed(u32),
}

impl PipeAccept {
    pub(crate) fn new(name: Vec<u16>, front: HANDLE, spare: Option<HANDLE>, event: &Event) -> Self {
        Self {
            name,
            front: Some(Raw(front)),
            spare: spare.map(Raw),
            ov: Ov::new(event),
            state: AcceptState::Idle,
        }
    }

    /// Starts waiting for a client on the front instance.
    pub(crate) fn start(&mut self, event: &Event) {
        let Some(front) = self.front else {
            return;
        };
        let ov = self.ov.fresh();
        // SAFETY: the OVERLAPPED is boxed and outlives the operation (`close_all` waits it
        // out); `front` is open while it is ours.
        let ok = unsafe { ConnectNamedPipe(front.0, ov) };
        self.state = if ok != 0 {
            AcceptState::Connected
        } else {
            match calls::last_code() {
                ERROR_IO_PENDING => AcceptState::Pending,
                // A client connected before we asked, or came and went (bpo-14725): both are
                // a connection to hand out.
                ERROR_PIPE_CONNECTED | ERROR_NO_DATA => AcceptState::Connected,
                code => AcceptState::Failed(code),
            }
        };
        if self.state != AcceptState::Pending {
            event.set();
        }
    }

    /// Collects a finished wait for a client without waiting.
    pub(crate) fn settle(&mut self) {
        if self.state != AcceptState::Pending {
            return;
        }
        let Some(front) = self.front else {
            return;
        };
        // SAFETY: the pending connect was started on `front` with this OVERLAPPED.
        let outcome = unsafe { calls::overlapped_result(front.0, self.ov.ptr(), false) };
        self.state = match outcome {
            Outcome::Pending => AcceptState::Pending,
            Outcome::Done(_) | Outcome::More(_) | Outcome::Failed(ERROR_NO_DATA) => {
                AcceptState::Connected
            }
            Outcome::Failed(ERROR_OPERATION_ABORTED) => AcceptState::Idle,
            Outcome::Failed(code) => AcceptState::Failed(code),
        };
    }

    /// Moves on to the next instance after the front one was handed out or closed: the spare
    /// comes to the front and a new spare is made. If the OS refuses new instances, the front
    /// may be left empty; the next accept tries again.
    pub(crate) fn next_instance(&mut self, make: impl Fn(&[u16]) -> Option<Raw>) {
        self.front = self.spare.take().or_else(|| make(&self.name));
        self.spare = make(&self.name);
        self.state = AcceptState::Idle;
    }

    /// Stops the pending connect and closes every instance.
    pub(crate) fn close_all(&mut self) {
        if let (AcceptState::Pending, Some(front)) = (self.state, self.front) {
            // SAFETY: as in `settle`.
            let _ = unsafe { calls::cancel_and_wait(front.0, self.ov.ptr()) };
        }
        self.state = AcceptState::Idle;
        for h in [self.front.take(), self.spare.take()].into_iter().flatten() {
            // SAFETY: the instance handles are ours and no operation is pending on them.
            unsafe { CloseHandle(h.0) };
        }
    }
}

impl Drop for PipeAccept {
    fn drop(&mut self) {
        self.close_all();
    }
}
