//! Handles and sockets handed to other processes as CPython hands them on Windows
//! (`multiprocessing/reduction.py` `DupHandle`, `resource_sharer.py` `DupSocket`):
//!
//! - a pipe end is lent: its handle stays open in the sender, named in the pickle with the
//!   sender's pid, and the receiver takes it out (`DuplicateHandle` with
//!   `DUPLICATE_CLOSE_SOURCE`); a handle sent with `send_handle` is duplicated into the
//!   receiver's process instead, and the pickle names the receiver's own pid;
//! - a socket stays in the sender's resource sharer, which answers a claim with the
//!   `WSAPROTOCOL_INFOW` that `WSADuplicateSocketW` fills for the claimer's pid; the claimer
//!   makes its socket from it (`WSASocketW`, CPython's `socket.fromshare`).
//!
//! A handle value that names this process is adopted as it is, as CPython does: the peer is
//! trusted with it. One that names another process is taken only from the peer of the pipe it
//! came over (when it came over a pipe), so a peer cannot make this process take handles out of
//! a third one.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::TcpStream;
use std::os::windows::io::{
    AsRawHandle, AsRawSocket, FromRawHandle, FromRawSocket, IntoRawHandle,
    OwnedHandle as StdOwnedHandle,
};
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{
    DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, GetHandleInformation, HANDLE,
};
use windows_sys::Win32::Networking::WinSock::{
    FROM_PROTOCOL_INFO, INVALID_SOCKET, SOCKET, WSA_FLAG_NO_HANDLE_INHERIT, WSA_FLAG_OVERLAPPED,
    WSADATA, WSADuplicateSocketW, WSAGetLastError, WSAPROTOCOL_INFOW, WSASocketW, WSAStartup,
};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_TYPE_PIPE, GetFileType,
};
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcess, PROCESS_DUP_HANDLE};

use super::calls;
use super::handle::Owned;
use crate::os::StreamKind;
use crate::sharing::wire::Wrapped;
use crate::{Error, Handle, OwnedHandle, Result};

/// The access CPython's `send_handle` writes in its `DupHandle` (`DUPLICATE_SAME_ACCESS`,
/// passed as the desired access).
pub(crate) const SEND_HANDLE_ACCESS: u32 = DUPLICATE_SAME_ACCESS;

/// A pipe end lent to a peer: closed again unless [`leave_to_peer`](Self::leave_to_peer).
pub(crate) struct LentPipe {
    handle: Option<StdOwnedHandle>,
    wrapped: Wrapped,
}

impl LentPipe {
    /// What the pickle says.
    pub(crate) fn wrapped(&self) -> &Wrapped {
        &self.wrapped
    }

    /// The pickle went out: the handle is now the peer's to take out of this process (it stays
    /// open here until it does, as in CPython).
    pub(crate) fn leave_to_peer(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.into_raw_handle();
        }
    }
}

/// A connection's pipe handle, ready to be lent (`Ok`), or the handle given back when it is a
/// socket (`Err`), which goes through the resource sharer.
pub(crate) fn lend_pipe(
    handle: OwnedHandle,
    readable: bool,
    writable: bool,
) -> io::Result<std::result::Result<LentPipe, OwnedHandle>> {
    match handle.inner {
        Owned::Object(h) => {
            let access = if readable { FILE_GENERIC_READ } else { 0 }
                | if writable { FILE_GENERIC_WRITE } else { 0 };
            let wrapped = Wrapped::Handle {
                handle: h.as_raw_handle() as usize as u64,
                access,
                pid: std::process::id(),
            };
            Ok(Ok(LentPipe {
                handle: Some(h),
                wrapped,
            }))
        }
        inner => Ok(Err(OwnedHandle { inner })),
    }
}

/// The process at the other end of a named pipe, if it is another one.
pub(crate) fn pipe_peer_pid(h: HANDLE) -> Option<u32> {
    let own = std::process::id();
    let (mut client, mut server) = (0u32, 0u32);
    // SAFETY: `h` is an open pipe handle of the caller's; the outputs are valid u32s.
    let (c, s) = unsafe {
        (
            GetNamedPipeClientProcessId(h, &mut client),
            GetNamedPipeServerProcessId(h, &mut server),
        )
    };
    match (c != 0, s != 0) {
        (true, _) if client != own => Some(client),
        (_, true) if server != own => Some(server),
        (true, true) => Some(own),
        _ => None,
    }
}

/// Duplicates `handle` into process `pid` (CPython's `DupHandle(handle, access, pid)`), for
/// [`Sender::send_handle`](crate::Sender::send_handle): the value it has there.
pub(crate) fn duplicate_into(handle: Handle<'_>, pid: u32) -> Result<u64> {
    let raw = handle.inner.os_handle().ok_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "only an OS handle or socket can be sent, not one of this crate's streams: \
             send the connection itself with send_connection",
        ))
    })?;
    let process = open_for_duplication(pid)?;
    // SAFETY: `raw` is open in this process (borrowed for the call), `process` is a process
    // handle with PROCESS_DUP_HANDLE.
    let out = unsafe {
        calls::duplicate_handle(
            GetCurrentProcess(),
            raw,
            process.as_raw_handle(),
            0,
            false,
            DUPLICATE_SAME_ACCESS,
        )?
    };
    Ok(out as usize as u64)
}

/// The handle a `DupHandle` names, made this process's: as it is when it names this process,
/// otherwise taken out of process `pid` with `access` (`DUPLICATE_CLOSE_SOURCE`). `peer` is
/// the pid at the other end of the pipe the pickle came over, if it came over one: a handle in
/// any other process is refused.
pub(crate) fn take_handle(
    handle: u64,
    access: u32,
    pid: u32,
    peer: Option<u32>,
) -> Result<StdOwnedHandle> {
    let value = usize::try_from(handle)
        .map_err(|_| invalid("a handle value beyond this machine's handles"))?
        as HANDLE;
    if pid == std::process::id() {
        let mut flags = 0u32;
        // SAFETY: only asks about the value; a value that is not a handle fails.
        if unsafe { GetHandleInformation(value, &mut flags) } == 0 {
            return Err(Error::Io(io::Error::last_os_error()));
        }
        // SAFETY: the peer duplicated this handle into this process for us (CPython's
        // contract for a `DupHandle` naming the receiver); nothing else here owns it.
        return Ok(unsafe { StdOwnedHandle::from_raw_handle(value) });
    }
    if let Some(peer) = peer {
        if peer != pid {
            return Err(invalid(&format!(
                "the handle is in process {pid}, not in the peer's ({peer})"
            )));
        }
    }
    let process = open_for_duplication(pid)?;
    // SAFETY: `process` has PROCESS_DUP_HANDLE; `value` is a value in that process, the peer's
    // to give (a wrong one fails).
    let out = unsafe {
        calls::duplicate_handle(
            process.as_raw_handle(),
            value,
            GetCurrentProcess(),
            access,
            false,
            DUPLICATE_CLOSE_SOURCE,
        )?
    };
    // SAFETY: a fresh handle of this process.
    Ok(unsafe { StdOwnedHandle::from_raw_handle(out) })
}

/// The stream of a handed pipe end, with the directions the pickle gives.
pub(crate) fn take_pipe(
    peer: Option<u32>,
    handle: u64,
    access: u32,
    pid: u32,
    readable: bool,
    writable: bool,
) -> Result<crate::os::Stream> {
    let h = take_handle(handle, access, pid, peer)?;
    // SAFETY: an open handle of ours.
    if unsafe { GetFileType(h.as_raw_handle()) } != FILE_TYPE_PIPE {
        return Err(invalid("the handed connection's handle is not a pipe"));
    }
    let kind = match (readable, writable) {
        (true, true) => StreamKind::MessagePipe,
        (true, false) => StreamKind::MessagePipeReader,
        _ => StreamKind::MessagePipeWriter,
    };
    Ok(crate::os::Stream {
        inner: super::stream::Stream::pipe_end(h, kind)?,
    })
}

/// What the sharer sends for a socket claimed by process `pid` (CPython's `socket.share`).
pub(crate) fn share_socket(resource: &OwnedHandle, pid: u32) -> Result<Vec<u8>> {
    let Owned::Socket(s) = &resource.inner else {
        return Err(invalid(
            "only sockets are shared through the resource sharer",
        ));
    };
    let mut info = MaybeUninit::<WSAPROTOCOL_INFOW>::zeroed();
    // SAFETY: an open socket; `info` is a writable WSAPROTOCOL_INFOW.
    if unsafe { WSADuplicateSocketW(s.as_raw_socket() as SOCKET, pid, info.as_mut_ptr()) } != 0 {
        return Err(Error::Io(wsa_error()));
    }
    // SAFETY: filled by the call above (and zeroed before).
    let info = unsafe { info.assume_init() };
    // SAFETY: WSAPROTOCOL_INFOW is plain data; its bytes are what CPython sends.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&raw const info).cast::<u8>(),
            size_of::<WSAPROTOCOL_INFOW>(),
        )
    };
    Ok(bytes.to_vec())
}

/// The stream of a socket shared with this process (CPython's `socket.fromshare`).
pub(crate) fn socket_stream(share: &[u8]) -> Result<crate::os::Stream> {
    if share.len() != size_of::<WSAPROTOCOL_INFOW>() {
        return Err(invalid(&format!(
            "a shared socket's description is {} bytes, not {}",
            share.len(),
            size_of::<WSAPROTOCOL_INFOW>()
        )));
    }
    winsock_started();
    let mut info = MaybeUninit::<WSAPROTOCOL_INFOW>::zeroed();
    // SAFETY: `share` has exactly the struct's size; WSAPROTOCOL_INFOW is plain data, valid
    // for any bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(share.as_ptr(), info.as_mut_ptr().cast::<u8>(), share.len());
    }
    // SAFETY: `info` is initialised above; the call copies from it.
    let socket = unsafe {
        WSASocketW(
            FROM_PROTOCOL_INFO,
            FROM_PROTOCOL_INFO,
            FROM_PROTOCOL_INFO,
            info.as_ptr(),
            0,
            WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT,
        )
    };
    if socket == INVALID_SOCKET {
        return Err(Error::Io(wsa_error()));
    }
    // SAFETY: a fresh socket nothing else owns.
    let tcp = unsafe { TcpStream::from_raw_socket(socket as u64) };
    Ok(crate::os::Stream {
        inner: super::stream::Stream::tcp(tcp)?,
    })
}

/// A process handle with `PROCESS_DUP_HANDLE`.
fn open_for_duplication(pid: u32) -> Result<StdOwnedHandle> {
    // SAFETY: plain call; a null result is an error.
    let process = unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, pid) };
    if process.is_null() {
        return Err(Error::Io(io::Error::last_os_error()));
    }
    // SAFETY: a fresh handle nothing else owns.
    Ok(unsafe { StdOwnedHandle::from_raw_handle(process) })
}

/// Winsock is started in this process (a process that receives a socket may have made none).
pub(crate) fn winsock_started() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let mut data = MaybeUninit::<WSADATA>::zeroed();
        // SAFETY: `data` is writable; the start is counted and never undone (as std's own).
        unsafe { WSAStartup(0x202, data.as_mut_ptr()) };
    });
}

fn wsa_error() -> io::Error {
    // SAFETY: plain call.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

fn invalid(what: &str) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidData, what.to_owned()))
}
