//! [`Handle`]: a borrowed OS handle to wait on, the one type readiness speaks on every OS.

use std::fmt;
use std::io;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The inside of a handle on an OS whose transport is not built yet: no value exists.
#[cfg(not(unix))]
#[derive(Clone, Copy, Debug)]
enum Never {}

/// A borrowed OS handle that readiness can watch: a file descriptor on Unix (a socket or pipe
/// handle on Windows, when that is built). Opaque, so that code waiting on handles is the same
/// on every OS; on Unix it converts to and from [`BorrowedFd`].
#[derive(Clone, Copy)]
pub struct Handle<'a> {
    #[cfg(unix)]
    fd: BorrowedFd<'a>,
    #[cfg(not(unix))]
    never: (Never, std::marker::PhantomData<&'a ()>),
}

impl Handle<'_> {
    /// A number that identifies the handle among those open in this process now (the fd on
    /// Unix): two handles with the same id are the same OS object.
    pub fn id(&self) -> u64 {
        #[cfg(unix)]
        {
            // fds are never negative.
            u64::try_from(self.fd.as_raw_fd()).unwrap_or(u64::MAX)
        }
        #[cfg(not(unix))]
        {
            match self.never.0 {}
        }
    }

    /// A new owned handle to the same OS object (`dup` on Unix), close-on-exec.
    pub fn try_clone_to_owned(self) -> io::Result<OwnedHandle> {
        #[cfg(unix)]
        {
            Ok(OwnedHandle {
                fd: self.fd.try_clone_to_owned()?,
            })
        }
        #[cfg(not(unix))]
        {
            match self.never.0 {}
        }
    }
}

/// An owned OS handle (a file descriptor on Unix), closed when dropped. Opaque like
/// [`Handle`]; on Unix it converts to and from [`OwnedFd`].
pub struct OwnedHandle {
    #[cfg(unix)]
    fd: OwnedFd,
    #[cfg(not(unix))]
    never: Never,
}

impl OwnedHandle {
    /// The handle, borrowed.
    pub fn handle(&self) -> Handle<'_> {
        #[cfg(unix)]
        {
            Handle::from(self.fd.as_fd())
        }
        #[cfg(not(unix))]
        {
            match self.never {}
        }
    }
}

impl fmt::Debug for OwnedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(unix)]
        {
            write!(f, "OwnedHandle(fd {})", self.fd.as_raw_fd())
        }
        #[cfg(not(unix))]
        {
            let _ = f;
            match self.never {}
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
        #[cfg(not(unix))]
        {
            let _ = f;
            match self.never.0 {}
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
