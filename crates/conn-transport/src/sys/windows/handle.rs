//! What a handle is on Windows: a kernel object, a socket, or one of this crate's readiness
//! objects (a stream's or listener's probe, a poller's set), which have no OS handle that
//! signals readiness by itself.

use std::fmt;
use std::io;
use std::os::windows::io::{
    AsHandle, AsRawHandle, AsRawSocket, AsSocket, BorrowedHandle, BorrowedSocket,
    OwnedHandle as StdOwnedHandle, OwnedSocket,
};
use std::sync::Arc;

use super::poller::PollSet;
use super::probe::Probe;
use crate::{Handle, OwnedHandle};

/// A borrowed handle.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Borrowed<'a> {
    /// A waitable kernel object (a process handle): ready when signalled.
    Object(BorrowedHandle<'a>),
    /// A socket not owned by a stream of this crate: ready when readable.
    Socket(BorrowedSocket<'a>),
    /// A stream's or listener's probe.
    Probe(&'a Arc<Probe>),
    /// A poller: ready when any handle registered with it is.
    Set(&'a Arc<PollSet>),
}

/// An owned handle.
#[derive(Debug)]
pub(crate) enum Owned {
    Object(StdOwnedHandle),
    Socket(OwnedSocket),
    Probe(Arc<Probe>),
    Set(Arc<PollSet>),
}

impl Borrowed<'_> {
    pub(crate) fn id(&self) -> u64 {
        match self {
            Self::Object(h) => h.as_raw_handle() as u64,
            Self::Socket(s) => s.as_raw_socket(),
            Self::Probe(p) => Arc::as_ptr(p) as u64,
            Self::Set(s) => Arc::as_ptr(s) as u64,
        }
    }

    /// The OS handle of a kernel object or socket; `None` for this crate's readiness objects,
    /// which have none.
    pub(crate) fn os_handle(&self) -> Option<windows_sys::Win32::Foundation::HANDLE> {
        match self {
            Self::Object(h) => Some(h.as_raw_handle()),
            Self::Socket(s) => Some(s.as_raw_socket() as windows_sys::Win32::Foundation::HANDLE),
            Self::Probe(_) | Self::Set(_) => None,
        }
    }

    pub(crate) fn try_clone_to_owned(self) -> io::Result<Owned> {
        Ok(match self {
            Self::Object(h) => Owned::Object(h.try_clone_to_owned()?),
            Self::Socket(s) => Owned::Socket(s.try_clone_to_owned()?),
            Self::Probe(p) => Owned::Probe(Arc::clone(p)),
            Self::Set(s) => Owned::Set(Arc::clone(s)),
        })
    }

    pub(crate) fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Object(h) => write!(f, "object {:?}", h.as_raw_handle()),
            Self::Socket(s) => write!(f, "socket {}", s.as_raw_socket()),
            Self::Probe(_) => write!(f, "stream {:#x}", self.id()),
            Self::Set(_) => write!(f, "poller {:#x}", self.id()),
        }
    }
}

impl Owned {
    pub(crate) fn borrow(&self) -> Borrowed<'_> {
        match self {
            Self::Object(h) => Borrowed::Object(h.as_handle()),
            Self::Socket(s) => Borrowed::Socket(s.as_socket()),
            Self::Probe(p) => Borrowed::Probe(p),
            Self::Set(s) => Borrowed::Set(s),
        }
    }
}

impl<'a> Handle<'a> {
    pub(crate) fn probe(p: &'a Arc<Probe>) -> Self {
        Self {
            inner: Borrowed::Probe(p),
        }
    }

    pub(crate) fn set(s: &'a Arc<PollSet>) -> Self {
        Self {
            inner: Borrowed::Set(s),
        }
    }
}

impl<'a> From<BorrowedHandle<'a>> for Handle<'a> {
    /// A waitable kernel object (a process, an event): ready when signalled.
    fn from(h: BorrowedHandle<'a>) -> Self {
        Self {
            inner: Borrowed::Object(h),
        }
    }
}

impl<'a> From<BorrowedSocket<'a>> for Handle<'a> {
    /// A socket: ready when readable (or when a listening socket has a client waiting).
    fn from(s: BorrowedSocket<'a>) -> Self {
        Self {
            inner: Borrowed::Socket(s),
        }
    }
}

impl OwnedHandle {
    pub(crate) fn from_object(h: StdOwnedHandle) -> Self {
        Self {
            inner: Owned::Object(h),
        }
    }

    pub(crate) fn from_socket(s: OwnedSocket) -> Self {
        Self {
            inner: Owned::Socket(s),
        }
    }
}

impl From<StdOwnedHandle> for OwnedHandle {
    fn from(h: StdOwnedHandle) -> Self {
        Self::from_object(h)
    }
}

impl From<OwnedSocket> for OwnedHandle {
    fn from(s: OwnedSocket) -> Self {
        Self::from_socket(s)
    }
}

impl TryFrom<OwnedHandle> for StdOwnedHandle {
    type Error = OwnedHandle;

    /// The kernel object handle (a file, a pipe, a process…); anything else is given back.
    fn try_from(h: OwnedHandle) -> Result<Self, OwnedHandle> {
        match h.inner {
            Owned::Object(h) => Ok(h),
            inner => Err(OwnedHandle { inner }),
        }
    }
}

impl TryFrom<OwnedHandle> for OwnedSocket {
    type Error = OwnedHandle;

    /// The socket; anything else is given back.
    fn try_from(h: OwnedHandle) -> Result<Self, OwnedHandle> {
        match h.inner {
            Owned::Socket(s) => Ok(s),
            inner => Err(OwnedHandle { inner }),
        }
    }
}
