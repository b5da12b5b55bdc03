//! Starting a child that inherits chosen handles and no other: `CreateProcessW` with the
//! handles in a `PROC_THREAD_ATTRIBUTE_HANDLE_LIST`, so that of this process's inheritable
//! handles only those listed pass to the child (std's `Command` cannot list them on stable
//! Rust). An inherited handle has the same value in the child as in the parent; the parent
//! tells the child the values (on its command line, say).
//!
//! The command's program, arguments, added or removed environment variables and working
//! directory are used; its standard handles are this process's (std's `Command` does not say
//! what it was given for them), and `env_clear` cannot be seen either.

use std::ffi::{OsStr, OsString, c_void};
use std::io;
use std::mem::{size_of, size_of_val};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{
    AsRawHandle, FromRawHandle, FromRawSocket, OwnedHandle as StdOwnedHandle,
};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    CloseHandle, DUPLICATE_SAME_ACCESS, HANDLE, INVALID_HANDLE_VALUE, STILL_ACTIVE,
};
use windows_sys::Win32::Networking::WinSock::{SO_TYPE, SOCKET, SOL_SOCKET, getsockopt};
use windows_sys::Win32::System::Console::{
    GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Threading::{
    CREATE_UNICODE_ENVIRONMENT, CreateProcessW, DeleteProcThreadAttributeList,
    EXTENDED_STARTUPINFO_PRESENT, GetCurrentProcess, GetExitCodeProcess,
    InitializeProcThreadAttributeList, LPPROC_THREAD_ATTRIBUTE_LIST,
    PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROCESS_INFORMATION, STARTF_USESTDHANDLES, STARTUPINFOEXW,
    TerminateProcess, UpdateProcThreadAttribute,
};

use super::calls;
use super::handle::Owned;
use crate::OwnedHandle;

/// A copy of `handle` that child processes may inherit, with the same access.
pub(crate) fn inheritable_copy(handle: &OwnedHandle) -> io::Result<StdOwnedHandle> {
    let raw = handle.inner.borrow().os_handle().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "only a socket or pipe handle can pass to a child",
        )
    })?;
    duplicate(raw, true)
}

fn duplicate(raw: HANDLE, inheritable: bool) -> io::Result<StdOwnedHandle> {
    // SAFETY: `raw` is open in this process, duplicated within it.
    let out = unsafe {
        calls::duplicate_handle(
            GetCurrentProcess(),
            raw,
            GetCurrentProcess(),
            0,
            inheritable,
            DUPLICATE_SAME_ACCESS,
        )?
    };
    // SAFETY: a fresh handle nothing else owns.
    Ok(unsafe { StdOwnedHandle::from_raw_handle(out) })
}

/// A child started by [`spawn`].
#[derive(Debug)]
pub(crate) struct Child {
    process: StdOwnedHandle,
    pid: u32,
}

impl Child {
    pub(crate) fn id(&self) -> u32 {
        self.pid
    }

    /// Waits at most `timeout` (`None`: forever) for the child to exit.
    pub(crate) fn wait_timeout(&self, timeout: Option<Duration>) -> io::Result<Option<ExitStatus>> {
        if !calls::wait_one(self.process.as_raw_handle(), timeout)? {
            return Ok(None);
        }
        let mut code = 0u32;
        // SAFETY: our process handle; `code` is writable.
        if unsafe { GetExitCodeProcess(self.process.as_raw_handle(), &mut code) } == 0 {
            return Err(io::Error::last_os_error());
        }
        debug_assert_ne!(code, STILL_ACTIVE as u32);
        Ok(Some(std::os::windows::process::ExitStatusExt::from_raw(
            code,
        )))
    }

    pub(crate) fn kill(&self) -> io::Result<()> {
        // SAFETY: our process handle.
        if unsafe { TerminateProcess(self.process.as_raw_handle(), 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Starts `cmd` with `handles` (inheritable) inherited and no other handle of this process but
/// its standard ones.
pub(crate) fn spawn(cmd: &Command, handles: &[StdOwnedHandle]) -> io::Result<Child> {
    // The standard handles pass as inheritable copies, listed with the rest.
    let std_handles: Vec<Option<StdOwnedHandle>> =
        [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE]
            .into_iter()
            .map(|which| {
                // SAFETY: plain call.
                let h = unsafe { GetStdHandle(which) };
                if h.is_null() || h == INVALID_HANDLE_VALUE {
                    None
                } else {
                    duplicate(h, true).ok()
                }
            })
            .collect();
    let mut listed: Vec<HANDLE> = handles.iter().map(AsRawHandle::as_raw_handle).collect();
    listed.extend(std_handles.iter().flatten().map(AsRawHandle::as_raw_handle));

    let mut command_line = command_line(cmd)?;
    let environment = environment(cmd);
    let directory: Option<Vec<u16>> = cmd.get_current_dir().map(|d| wide(d.as_os_str()));

    let attributes = AttributeList::with_handles(&listed)?;
    // SAFETY: STARTUPINFOEXW is plain data; zero is its empty value.
    let mut info: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    info.StartupInfo.cb = size_of::<STARTUPINFOEXW>() as u32;
    info.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    let raw_std = |i: usize| {
        std_handles[i]
            .as_ref()
            .map_or(std::ptr::null_mut(), AsRawHandle::as_raw_handle)
    };
    info.StartupInfo.hStdInput = raw_std(0);
    info.StartupInfo.hStdOutput = raw_std(1);
    info.StartupInfo.hStdError = raw_std(2);
    info.lpAttributeList = attributes.as_ptr();
    // SAFETY: PROCESS_INFORMATION is plain data, filled by the call.
    let mut process: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer is valid for the call: the command line is a writable
    // NUL-terminated UTF-16 buffer, the environment block (if any) is double-NUL-terminated
    // UTF-16, the directory NUL-terminated; `info` holds an initialised attribute list whose
    // handles are open and inheritable.
    let ok = unsafe {
        CreateProcessW(
            std::ptr::null(),
            command_line.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            1,
            EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT,
            environment
                .as_ref()
                .map_or(std::ptr::null(), |e| e.as_ptr().cast::<c_void>()),
            directory.as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
            &info.StartupInfo,
            &mut process,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call returned a thread handle we own and do not need.
    unsafe { CloseHandle(process.hThread) };
    Ok(Child {
        // SAFETY: the call returned a process handle we own.
        process: unsafe { StdOwnedHandle::from_raw_handle(process.hProcess) },
        pid: process.dwProcessId,
    })
}

/// An initialised `PROC_THREAD_ATTRIBUTE_LIST` holding a handle list (which it points into:
/// the handles slice must outlive it).
struct AttributeList {
    buf: Vec<u64>,
}

impl AttributeList {
    fn with_handles(handles: &[HANDLE]) -> io::Result<Self> {
        let mut size = 0usize;
        // SAFETY: a size query with a null list fails with ERROR_INSUFFICIENT_BUFFER, setting
        // `size`.
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), 1, 0, &mut size) };
        let list = Self {
            buf: vec![0u64; size.div_ceil(8).max(1)],
        };
        // SAFETY: `buf` has at least `size` bytes, 8-aligned.
        if unsafe { InitializeProcThreadAttributeList(list.as_ptr(), 1, 0, &mut size) } == 0 {
            return Err(io::Error::last_os_error());
        }
        if !handles.is_empty() {
            // SAFETY: an initialised list; the handle array outlives the list (the caller's
            // contract) and its size is given in bytes.
            let ok = unsafe {
                UpdateProcThreadAttribute(
                    list.as_ptr(),
                    0,
                    PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                    handles.as_ptr().cast::<c_void>(),
                    size_of_val(handles),
                    std::ptr::null_mut(),
                    std::ptr::null(),
                )
            };
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(list)
    }

    fn as_ptr(&self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buf.as_ptr().cast_mut().cast::<c_void>()
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        // SAFETY: initialised in `with_handles` (a list whose initialisation failed is never
        // returned).
        unsafe { DeleteProcThreadAttributeList(self.as_ptr()) };
    }
}

/// The command line: the program and each argument quoted as the MSVC runtime and
/// `CommandLineToArgvW` read them back.
fn command_line(cmd: &Command) -> io::Result<Vec<u16>> {
    let mut line: Vec<u16> = Vec::new();
    let program = cmd.get_program();
    if program
        .encode_wide()
        .any(|c| c == u16::from(b'"') || c == 0)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a program name with a quote or NUL",
        ));
    }
    // The program name is read up to the next space unless quoted, and backslashes in it are
    // never escapes.
    line.push(u16::from(b'"'));
    line.extend(program.encode_wide());
    line.push(u16::from(b'"'));
    for arg in cmd.get_args() {
        line.push(u16::from(b' '));
        quote(arg, &mut line)?;
    }
    line.push(0);
    Ok(line)
}

fn quote(arg: &OsStr, out: &mut Vec<u16>) -> io::Result<()> {
    let wide: Vec<u16> = arg.encode_wide().collect();
    if wide.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an argument with a NUL",
        ));
    }
    let plain = !wide.is_empty()
        && !wide
            .iter()
            .any(|&c| c == u16::from(b' ') || c == u16::from(b'\t') || c == u16::from(b'"'));
    if plain {
        out.extend(wide);
        return Ok(());
    }
    out.push(u16::from(b'"'));
    let mut backslashes = 0usize;
    for c in wide {
        if c == u16::from(b'\\') {
            backslashes += 1;
            continue;
        }
        // Backslashes before a quote are escapes: double them, and escape the quote.
        let n = if c == u16::from(b'"') {
            backslashes * 2 + 1
        } else {
            backslashes
        };
        out.extend(std::iter::repeat_n(u16::from(b'\\'), n));
        out.push(c);
        backslashes = 0;
    }
    // Before the closing quote, too.
    out.extend(std::iter::repeat_n(u16::from(b'\\'), backslashes * 2));
    out.push(u16::from(b'"'));
    Ok(())
}

/// The environment block, if the command changes the environment: this process's with the
/// command's changes, names compared without case, sorted as Windows keeps them.
fn environment(cmd: &Command) -> Option<Vec<u16>> {
    let changes: Vec<(&OsStr, Option<&OsStr>)> = cmd.get_envs().collect();
    if changes.is_empty() {
        return None;
    }
    let key = |k: &OsStr| k.to_string_lossy().to_uppercase();
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (name, value) in changes {
        vars.retain(|(k, _)| key(k) != key(name));
        if let Some(value) = value {
            vars.push((name.to_owned(), value.to_owned()));
        }
    }
    vars.sort_by_key(|(k, _)| key(k));
    let mut block: Vec<u16> = Vec::new();
    for (k, v) in vars {
        block.extend(k.encode_wide());
        block.push(u16::from(b'='));
        block.extend(v.encode_wide());
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    Some(block)
}

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// Takes ownership of an inherited handle value: a socket if it is one, else a handle.
///
/// # Safety
/// `value` must be a handle this process inherited (or otherwise owns) and nothing else owns.
pub(crate) unsafe fn adopt_inherited(value: u64) -> io::Result<OwnedHandle> {
    let raw = usize::try_from(value)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a handle value"))?;
    super::share::winsock_started();
    let mut kind = 0i32;
    let mut len = size_of::<i32>() as i32;
    // SAFETY: asks a question of a value; a value that is not a socket fails.
    let is_socket = unsafe {
        getsockopt(
            raw as SOCKET,
            SOL_SOCKET,
            SO_TYPE,
            (&raw mut kind).cast::<u8>(),
            &mut len,
        )
    } == 0;
    Ok(if is_socket {
        // SAFETY: the caller's contract.
        let socket = unsafe { std::os::windows::io::OwnedSocket::from_raw_socket(raw as u64) };
        OwnedHandle {
            inner: Owned::Socket(socket),
        }
    } else {
        // SAFETY: the caller's contract.
        OwnedHandle::from_object(unsafe { StdOwnedHandle::from_raw_handle(raw as HANDLE) })
    })
}
