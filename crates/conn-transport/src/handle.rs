//! [`Handle`]: a borrowed OS handle to wait on, the one type readiness speaks on every OS.

use std::fmt;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// A borrowed OS handle that readiness can watch: a file descriptor on Unix (a socket or pipe
/// handle on Windows, when that is built). Opaque, so that code waiting on handles is the same
/// on every OS; on Unix it converts to and from [`BorrowedFd`].
#[derive(Clone, Copy)]
pub struct Handle<'a> {
    #[cfg(unix)]
    fd: BorrowedFd<'a>,
    #[cfg(not(unix))]
    _never: std::marker::PhantomData<&'a ()>,
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
            0
        }
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
            f.write_str("Handle")
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
