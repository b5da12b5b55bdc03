//! A handle on Unix is a file descriptor.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::{Handle, OwnedHandle};

/// A borrowed handle: a file descriptor.
#[derive(Clone, Copy)]
pub(crate) struct Borrowed<'a>(pub(crate) BorrowedFd<'a>);

/// An owned handle: a file descriptor, closed on drop.
pub(crate) struct Owned(pub(crate) OwnedFd);

impl Borrowed<'_> {
    pub(crate) fn id(&self) -> u64 {
        // fds are never negative.
        u64::try_from(self.0.as_raw_fd()).unwrap_or(u64::MAX)
    }

    pub(crate) fn try_clone_to_owned(self) -> io::Result<Owned> {
        Ok(Owned(self.0.try_clone_to_owned()?))
    }

    pub(crate) fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fd {}", self.0.as_raw_fd())
    }
}

impl Owned {
    pub(crate) fn borrow(&self) -> Borrowed<'_> {
        Borrowed(self.0.as_fd())
    }
}

impl<'a> From<BorrowedFd<'a>> for Handle<'a> {
    fn from(fd: BorrowedFd<'a>) -> Self {
        Self {
            inner: Borrowed(fd),
        }
    }
}

impl<'a> Handle<'a> {
    /// The file descriptor.
    pub(crate) fn fd(self) -> BorrowedFd<'a> {
        self.inner.0
    }
}

impl AsFd for Handle<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.0
    }
}

impl AsRawFd for Handle<'_> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.0.as_raw_fd()
    }
}

impl From<OwnedFd> for OwnedHandle {
    fn from(fd: OwnedFd) -> Self {
        Self { inner: Owned(fd) }
    }
}

impl From<OwnedHandle> for OwnedFd {
    fn from(handle: OwnedHandle) -> Self {
        handle.inner.0
    }
}
