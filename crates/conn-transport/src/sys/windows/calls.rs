//! The Win32 calls the Windows module makes, each wrapped once with its `// SAFETY:` line:
//! events, waits over any number of handles, overlapped results, and sockets' readiness.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle as StdOwnedHandle};
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED, ERROR_TOO_MANY_OPEN_FILES, HANDLE,
    WAIT_FAILED, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Networking::WinSock::{
    POLLERR, POLLHUP, POLLRDNORM, POLLWRNORM, SOCKET, WSAEMFILE, WSAENOBUFS, WSAPOLLFD, WSAPoll,
};
use windows_sys::Win32::System::IO::OVERLAPPED;
use windows_sys::Win32::System::Threading::{
    CreateEventW, INFINITE, ResetEvent, SetEvent, WaitForMultipleObjects, WaitForSingleObject,
};

/// The most handles one `WaitForMultipleObjects` takes (`MAXIMUM_WAIT_OBJECTS`).
const MAX_WAIT: usize = 64;

/// Whether `e` says the process is out of handles or sockets.
pub(crate) fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == ERROR_TOO_MANY_OPEN_FILES as i32 || c == WSAEMFILE || c == WSAENOBUFS)
}

/// Whether a pipe error means the other end is gone: end of file for a reader.
pub(crate) fn is_pipe_gone(code: u32) -> bool {
    matches!(
        code,
        ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED | ERROR_NO_DATA
    )
}

/// The calling thread's last error as an `io::Error`.
pub(crate) fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// The last error's code.
pub(crate) fn last_code() -> u32 {
    io::Error::last_os_error()
        .raw_os_error()
        .map_or(0, |c| c as u32)
}

/// Milliseconds for a Win32 wait: rounded up (a wait never ends early), `INFINITE` for none,
/// and capped just below `INFINITE` for a long finite one.
pub(crate) fn millis(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => INFINITE,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).unwrap_or(INFINITE - 1).min(INFINITE - 1)
        }
    }
}

/// A manual-reset event, closed on drop.
#[derive(Debug)]
pub(crate) struct Event(StdOwnedHandle);

impl Event {
    /// A new manual-reset event, not signalled.
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: no security attributes (not inheritable), no name; the handle is checked and
        // owned from here on.
        let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        if h.is_null() {
            return Err(last_error());
        }
        // SAFETY: `h` is a fresh event handle nothing else owns.
        Ok(Self(unsafe { StdOwnedHandle::from_raw_handle(h) }))
    }

    pub(crate) fn raw(&self) -> HANDLE {
        self.0.as_raw_handle()
    }

    pub(crate) fn set(&self) {
        // SAFETY: the event handle is open for `self`'s lifetime.
        unsafe { SetEvent(self.raw()) };
    }

    pub(crate) fn reset(&self) {
        // SAFETY: as in `set`.
        unsafe { ResetEvent(self.raw()) };
    }
}

/// Whether a waitable handle is signalled now.
pub(crate) fn is_signalled(h: HANDLE) -> bool {
    // SAFETY: a zero-timeout wait on a handle the caller keeps open.
    unsafe { WaitForSingleObject(h, 0) == WAIT_OBJECT_0 }
}

/// Waits on one handle; true if it is signalled within `timeout`.
pub(crate) fn wait_one(h: HANDLE, timeout: Option<Duration>) -> io::Result<bool> {
    wait_chunk(&[h], millis(timeout))
}

/// Up to 64 handles, one wait.
fn wait_chunk(handles: &[HANDLE], ms: u32) -> io::Result<bool> {
    // SAFETY: `handles` holds at most 64 open handles, all alive for the call.
    let r = unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, ms) };
    match r {
        WAIT_TIMEOUT => Ok(false),
        WAIT_FAILED => Err(last_error()),
        r if (r as usize) < WAIT_OBJECT_0 as usize + handles.len() => Ok(true),
        // WAIT_ABANDONED_n: a mutex, never one of ours; counts as ready.
        _ => Ok(true),
    }
}

/// Waits until any of `handles` is signalled or `timeout` passes; true if one is. Any number of
/// handles: above 64, one helper thread waits on each group of 63 plus a stop event (what
/// CPython 3.12's `BatchedWaitForMultipleObjects` does), after a sweep that finds ready ones
/// without threads. No handle at all waits out the timeout (`None`: forever, as CPython's
/// `wait([])`).
pub(crate) fn wait_any(handles: &[HANDLE], timeout: Option<Duration>) -> io::Result<bool> {
    if handles.is_empty() {
        match timeout {
            Some(t) => std::thread::sleep(t),
            None => loop {
                std::thread::park();
            },
        }
        return Ok(false);
    }
    if handles.len() <= MAX_WAIT {
        return wait_chunk(handles, millis(timeout));
    }
    for chunk in handles.chunks(MAX_WAIT) {
        if wait_chunk(chunk, 0)? {
            return Ok(true);
        }
    }
    if timeout == Some(Duration::ZERO) {
        return Ok(false);
    }
    let stop = Event::new()?;
    // Handles cross threads as numbers: raw pointers are not `Send`.
    let stop_raw = stop.raw() as usize;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        for chunk in handles.chunks(MAX_WAIT - 1) {
            let group: Vec<usize> = chunk.iter().map(|&h| h as usize).collect();
            let tx = tx.clone();
            scope.spawn(move || {
                let mut raw: Vec<HANDLE> = group.into_iter().map(|h| h as HANDLE).collect();
                raw.push(stop_raw as HANDLE);
                let r = wait_chunk(&raw, INFINITE);
                let _ = tx.send(r);
            });
        }
        drop(tx);
        let first = match timeout {
            None => rx.recv().ok(),
            Some(t) => rx.recv_timeout(t).ok(),
        };
        stop.set();
        // The stop event is set only after the first answer: that answer came from a group.
        first.unwrap_or(Ok(false))
    })
}

/// A zeroed `OVERLAPPED` that signals `event` on completion.
pub(crate) fn overlapped(event: &Event) -> OVERLAPPED {
    overlapped_raw(event.raw())
}

/// A zeroed `OVERLAPPED` that signals the event `event` on completion.
pub(crate) fn overlapped_raw(event: HANDLE) -> OVERLAPPED {
    // SAFETY: OVERLAPPED is plain data; all-zero is its documented initial state.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.hEvent = event;
    ov
}

/// What an overlapped operation came to.
pub(crate) enum Outcome {
    /// Done: this many bytes.
    Done(u32),
    /// Done, and the message goes on (`ERROR_MORE_DATA`): this many bytes.
    More(u32),
    /// Still in progress.
    Pending,
    /// Failed with this Win32 error code.
    Failed(u32),
}

/// The state of an overlapped operation on `h`, waiting for it if `wait`.
///
/// # Safety
/// `ov` must be the `OVERLAPPED` of an operation started on `h`, alive until it completes.
pub(crate) unsafe fn overlapped_result(h: HANDLE, ov: *const OVERLAPPED, wait: bool) -> Outcome {
    let mut n = 0u32;
    // SAFETY: the caller's contract.
    let ok = unsafe {
        windows_sys::Win32::System::IO::GetOverlappedResult(h, ov, &mut n, i32::from(wait))
    };
    if ok != 0 {
        return Outcome::Done(n);
    }
    match last_code() {
        windows_sys::Win32::Foundation::ERROR_IO_INCOMPLETE => Outcome::Pending,
        windows_sys::Win32::Foundation::ERROR_MORE_DATA => Outcome::More(n),
        code => Outcome::Failed(code),
    }
}

/// The state of an overlapped operation on socket `s` (`WSAGetOverlappedResult`), waiting
/// for it if `wait`.
///
/// # Safety
/// `ov` must be the `OVERLAPPED` of an operation started on `s`, alive until it completes.
pub(crate) unsafe fn socket_overlapped_result(
    s: SOCKET,
    ov: *const OVERLAPPED,
    wait: bool,
) -> Outcome {
    let (mut n, mut flags) = (0u32, 0u32);
    // SAFETY: the caller's contract.
    let ok = unsafe {
        windows_sys::Win32::Networking::WinSock::WSAGetOverlappedResult(
            s,
            ov,
            &mut n,
            i32::from(wait),
            &mut flags,
        )
    };
    if ok != 0 {
        return Outcome::Done(n);
    }
    // SAFETY: no arguments; the calling thread's last Winsock error.
    match unsafe { windows_sys::Win32::Networking::WinSock::WSAGetLastError() } {
        windows_sys::Win32::Networking::WinSock::WSA_IO_INCOMPLETE => Outcome::Pending,
        code => Outcome::Failed(code as u32),
    }
}

/// Starts an overlapped send of `len` bytes at `ptr` on socket `s` (several buffers for a
/// write past 4 GiB); `Ok` if it completed or is under way.
///
/// # Safety
/// The bytes and `ov` must stay valid until the operation is over.
pub(crate) unsafe fn start_send(
    s: SOCKET,
    ptr: *const u8,
    len: usize,
    ov: *mut OVERLAPPED,
) -> io::Result<()> {
    use windows_sys::Win32::Networking::WinSock::{SOCKET_ERROR, WSA_IO_PENDING, WSABUF, WSASend};
    let chunk = u32::MAX as usize;
    let bufs: Vec<WSABUF> = (0..len.div_ceil(chunk).max(1))
        .map(|i| WSABUF {
            len: (len - i * chunk).min(chunk) as u32,
            // SAFETY: inside the caller's bytes (WSASend only reads through it).
            buf: unsafe { ptr.add(i * chunk) }.cast_mut(),
        })
        .collect();
    // SAFETY: the caller's contract; the WSABUF array is read during the call only.
    let r = unsafe {
        WSASend(
            s,
            bufs.as_ptr(),
            bufs.len() as u32,
            std::ptr::null_mut(),
            0,
            ov,
            None,
        )
    };
    if r == SOCKET_ERROR {
        // SAFETY: no arguments; the calling thread's last Winsock error.
        let code = unsafe { windows_sys::Win32::Networking::WinSock::WSAGetLastError() };
        if code != WSA_IO_PENDING {
            return Err(io::Error::from_raw_os_error(code));
        }
    }
    Ok(())
}

/// Cancels the operation of `ov` on `h` and waits until it has finished (it may have
/// completed meanwhile: the outcome says how).
///
/// # Safety
/// As for [`overlapped_result`].
pub(crate) unsafe fn cancel_and_wait(h: HANDLE, ov: *const OVERLAPPED) -> Outcome {
    // SAFETY: the caller's contract; a cancel of a finished operation is a harmless no-op.
    unsafe {
        windows_sys::Win32::System::IO::CancelIoEx(h, ov);
        overlapped_result(h, ov, true)
    }
}

/// Whether socket `s` is readable (data, end of file or an error waiting), or writable, within
/// `timeout`: `WSAPoll` on one socket.
pub(crate) fn poll_socket(s: SOCKET, write: bool, timeout: Option<Duration>) -> io::Result<bool> {
    let mut fd = WSAPOLLFD {
        fd: s,
        events: if write { POLLWRNORM } else { POLLRDNORM },
        revents: 0,
    };
    let ms = match timeout {
        None => -1,
        Some(t) => i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
    };
    // SAFETY: one valid WSAPOLLFD for the call; the socket stays open meanwhile.
    let r = unsafe { WSAPoll(&mut fd, 1, ms) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r > 0 && fd.revents & (POLLRDNORM | POLLWRNORM | POLLHUP | POLLERR) != 0)
}

/// `DuplicateHandle`: handle `raw` of process `from` made a new handle of process `to`, with
/// `access` and `options` as the call takes them; its value in `to`.
///
/// # Safety
/// `from` and `to` are open process handles with `PROCESS_DUP_HANDLE` (or the current-process
/// pseudo handle); `raw` is a value in `from` the caller may duplicate (a wrong value fails;
/// with `DUPLICATE_CLOSE_SOURCE` it is closed in `from`).
pub(crate) unsafe fn duplicate_handle(
    from: HANDLE,
    raw: HANDLE,
    to: HANDLE,
    access: u32,
    inheritable: bool,
    options: u32,
) -> io::Result<HANDLE> {
    let mut out: HANDLE = std::ptr::null_mut();
    // SAFETY: the caller's contract; `out` receives the new value.
    let ok = unsafe {
        windows_sys::Win32::Foundation::DuplicateHandle(
            from,
            raw,
            to,
            &mut out,
            access,
            i32::from(inheritable),
            options,
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(out)
}

/// A wide, NUL-terminated copy of `s` for the `W` functions.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Signals do not reach threads on Windows (a console handler runs on its own thread): nothing
/// to block.
pub(crate) fn block_signals_in_this_thread() {}

/// Nothing to clean up at exit on Windows (a named pipe goes with its last handle): a no-op.
pub(crate) fn at_exit(_f: extern "C" fn()) -> bool {
    false
}
