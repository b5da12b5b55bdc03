//! [`Handle`]: a borrowed OS handle to wait on, the one type readiness speaks on every OS.

use std::fmt;
use std::io;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
#[cfg(windows)]
use std::os::windows::io::{
    AsHandle, AsRawHandle, AsRawSocket, AsSocket, BorrowedHandle, BorrowedSocket,
    OwnedHandle as StdOwnedHandle, OwnedSocket,
};
#[cfg(windows)]
use std::sync::Arc;

#[cfg(windows)]
use crate::windows::{poller::PollSet, probe::Probe};

/// A borrowed OS handle that readiness can watch: a file descriptor on Unix; on Windows a
/// kernel object that signals (a process), a socket, or the readiness of one of this crate's
/// streams, listeners or pollers. Opaque, so that code waiting on handles is the same on every
/// OS; on Unix it converts to and from `BorrowedFd`.
#[derive(Clone, Copy)]
pub struct Handle<'a> {
    #[cfg(unix)]
    fd: BorrowedFd<'a>,
    #[cfg(windows)]
    pub(crate) inner: WinRef<'a>,
}

/// What a Windows handle is.
#[cfg(windows)]
#[derive(Clone, Copy, Debug)]
pub(crate) enum WinRef<'a> {
    /// A waitable kernel object (a process handle): ready when signalled.
    Object(BorrowedHandle<'a>),
    /// A socket not owned by a stream of this crate: ready when readable.
    Socket(BorrowedSocket<'a>),
    /// A stream's or listener's probe.
    Probe(&'a Arc<Probe>),
    /// A poller: ready when any handle registered with it is.
    Set(&'a Arc<PollSet>),
}

impl Handle<'_> {
    /// A number that identifies the handle among those open in this process now (the fd on
    /// Unix, the handle value or the readiness object's address on Windows): two handles with
    /// the same id are the same object.
    pub fn id(&self) -> u64 {
        #[cfg(unix)]
        {
            // fds are never negative.
            u64::try_from(self.fd.as_raw_fd()).unwrap_or(u64::MAX)
        }
        #[cfg(windows)]
        {
            match self.inner {
                WinRef::Object(h) => h.as_raw_handle() as u64,
                WinRef::Socket(s) => s.as_raw_socket(),
                WinRef::Probe(p) => Arc::as_ptr(p) as u64,
                WinRef::Set(s) => Arc::as_ptr(s) as u64,
            }
        }
    }

    /// A new owned handle to the same object (`dup` on Unix, close-on-exec;
    /// `DuplicateHandle` for a Windows kernel object; a shared reference for this crate's
    /// readiness objects).
    pub fn try_clone_to_owned(self) -> io::Result<OwnedHandle> {
        #[cfg(unix)]
        {
            Ok(OwnedHandle {
                fd: self.fd.try_clone_to_owned()?,
            })
        }
        #[cfg(windows)]
        {
            let inner = match self.inner {
                WinRef::Object(h) => WinOwned::Object(h.try_clone_to_owned()?),
                WinRef::Socket(s) => WinOwned::Socket(s.try_clone_to_owned()?),
                WinRef::Probe(p) => WinOwned::Probe(Arc::clone(p)),
                WinRef::Set(s) => WinOwned::Set(Arc::clone(s)),
            };
            Ok(OwnedHandle { inner })
        }
    }
}

#[cfg(windows)]
impl<'a> Handle<'a> {
    pub(crate) fn probe(p: &'a Arc<Probe>) -> Self {
        Self {
            inner: WinRef::Probe(p),
        }
    }

    pub(crate) fn set(s: &'a Arc<PollSet>) -> Self {
        Self {
            inner: WinRef::Set(s),
        }
    }
}

#[cfg(windows)]
impl<'a> From<BorrowedHandle<'a>> for Handle<'a> {
    /// A waitable kernel object (a process, an event): ready when signalled.
    fn from(h: BorrowedHandle<'a>) -> Self {
        Self {
            inner: WinRef::Object(h),
        }
    }
}

#[cfg(windows)]
impl<'a> From<BorrowedSocket<'a>> for Handle<'a> {
    /// A socket: ready when readable (or when a listening socket has a client waiting).
    fn from(s: BorrowedSocket<'a>) -> Self {
        Self {
            inner: WinRef::Socket(s),
        }
    }
}

/// An owned OS handle (a file descriptor on Unix), closed when dropped. Opaque like
/// [`Handle`]; on Unix it converts to and from `OwnedFd`.
pub struct OwnedHandle {
    #[cfg(unix)]
    fd: OwnedFd,
    #[cfg(windows)]
    pub(crate) inner: WinOwned,
}

#[cfg(windows)]
#[derive(Debug)]
pub(crate) enum WinOwned {
    Object(StdOwnedHandle),
    Socket(OwnedSocket),
    Probe(Arc<Probe>),
    Set(Arc<PollSet>),
}

impl OwnedHandle {
    /// The handle, borrowed.
    pub fn handle(&self) -> Handle<'_> {
        #[cfg(unix)]
        {
            Handle::from(self.fd.as_fd())
        }
        #[cfg(windows)]
        {
            let inner = match &self.inner {
                WinOwned::Object(h) => WinRef::Object(h.as_handle()),
                WinOwned::Socket(s) => WinRef::Socket(s.as_socket()),
                WinOwned::Probe(p) => WinRef::Probe(p),
                WinOwned::Set(s) => WinRef::Set(s),
            };
            Handle { inner }
        }
    }
}

#[cfg(windows)]
impl OwnedHandle {
    pub(crate) fn from_object(h: StdOwnedHandle) -> Self {
        Self {
            inner: WinOwned::Object(h),
        }
    }

    pub(crate) fn from_socket(s: OwnedSocket) -> Self {
        Self {
            inner: WinOwned::Socket(s),
        }
    }
}

#[cfg(windows)]
impl From<StdOwnedHandle> for OwnedHandle {
    fn from(h: StdOwnedHandle) -> Self {
        Self::from_object(h)
    }
}

impl fmt::Debug for OwnedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(unix)]
        {
            write!(f, "OwnedHandle(fd {})", self.fd.as_raw_fd())
        }
        #[cfg(windows)]
        {
            write!(f, "OwnedHandle({:?})", self.handle())
        }
    }
}

#[cfg(unix)]
impl From<OwnedFd> for OwnedHandle {
    fn from(fd: OwnedFd) -> Self {
        Self { fd }
    }
}

#[cfg(unix)]
impl From<OwnedHandle> for OwnedFd {
    fn from(handle: OwnedHandle) -> Self {
        handle.fd
    }
}

impl fmt::Debug for Handle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(unix)]
        {
            write!(f, "Handle(fd {})", self.fd.as_raw_fd())
        }
        #[cfg(windows)]
        {
            match self.inner {
                WinRef::Object(h) => write!(f, "Handle(object {:?})", h.as_raw_handle()),
                WinRef::Socket(s) => write!(f, "Handle(socket {})", s.as_raw_socket()),
                WinRef::Probe(_) => write!(f, "Handle(stream {:#x})", self.id()),
                WinRef::Set(_) => write!(f, "Handle(poller {:#x})", self.id()),
            }
        }
    }
}

#[cfg(unix)]
impl<'a> From<BorrowedFd<'a>> for Handle<'a> {
    fn from(fd: BorrowedFd<'a>) -> Self {
        Self { fd }
    }
}

#[cfg(unix)]
impl<'a> Handle<'a> {
    /// The file descriptor.
    pub fn fd(self) -> BorrowedFd<'a> {
        self.fd
    }
}

#[cfg(unix)]
impl AsFd for Handle<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd
    }
}

#[cfg(unix)]
impl AsRawFd for Handle<'_> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
