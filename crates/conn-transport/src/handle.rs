//! [`Handle`] and [`OwnedHandle`]: the one OS handle type readiness speaks on every OS. What a
//! handle is on each OS is the per-OS module's business (`sys::*::handle`); this file only
//! defines the public types around it.

use std::fmt;
use std::io;

use crate::sys::handle::{Borrowed, Owned};

/// A borrowed OS handle that readiness can watch: a file descriptor on Unix; on Windows a
/// kernel object that signals (a process), a socket, or the readiness of one of this crate's
/// streams, listeners or pollers. Opaque, so that code waiting on handles is the same on every
/// OS; on Unix it converts to and from `BorrowedFd`, on Windows it is made from a
/// `BorrowedHandle` (ready when signalled) or a `BorrowedSocket` (ready when readable).
#[derive(Clone, Copy)]
pub struct Handle<'a> {
    pub(crate) inner: Borrowed<'a>,
}

impl Handle<'_> {
    /// A number that identifies the handle among those open in this process now (the fd on
    /// Unix, the handle value or the readiness object's address on Windows): two handles with
    /// the same id are the same object.
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    /// A new owned handle to the same object (`dup` on Unix, close-on-exec;
    /// `DuplicateHandle` for a Windows kernel object; a shared reference for this crate's
    /// readiness objects).
    pub fn try_clone_to_owned(self) -> io::Result<OwnedHandle> {
        Ok(OwnedHandle {
            inner: self.inner.try_clone_to_owned()?,
        })
    }
}

impl fmt::Debug for Handle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle(")?;
        self.inner.describe(f)?;
        write!(f, ")")
    }
}

/// An owned OS handle (a file descriptor on Unix), closed when dropped. Opaque like
/// [`Handle`]; on Unix it converts to and from `OwnedFd`, on Windows it is made from a
/// std `OwnedHandle`.
pub struct OwnedHandle {
    pub(crate) inner: Owned,
}

impl OwnedHandle {
    /// The handle, borrowed.
    pub fn handle(&self) -> Handle<'_> {
        Handle {
            inner: self.inner.borrow(),
        }
    }
}

impl fmt::Debug for OwnedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnedHandle(")?;
        self.handle().inner.describe(f)?;
        write!(f, ")")
    }
}
