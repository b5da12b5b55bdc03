//! [`Listener`]: a bound, listening socket or named pipe.

use std::io;
use std::time::Duration;

use conn_address::Address;

use super::Stream;
use crate::Handle;
use crate::sys;

/// A bound, listening TCP or Unix socket (paths and Linux abstract names), or on Windows a
/// named pipe's instances, with CPython's backlog, `SO_REUSEADDR` on TCP and an accept timeout.
/// It accepts bare [`Stream`]s: no handshake (the connection layer's
/// [`Listener`](crate::Listener) adds it).
#[derive(Debug)]
pub struct Listener {
    pub(crate) inner: sys::listener::Listener,
}

impl Listener {
    /// Binds and listens on `address` with `backlog` (CPython's default is 1).
    ///
    /// TCP sockets get `SO_REUSEADDR`, so a restarted server can rebind over `TIME_WAIT`. A host
    /// name binds its first IPv4 address (CPython's AF_INET: `localhost` is 127.0.0.1 even where
    /// the resolver lists `::1` first). Binding a Unix path that exists — a live socket or
    /// a stale file — fails with `AddrInUse`, as in CPython; nothing is unlinked first.
    ///
    /// **Windows:**
    /// Binds and listens on `address`: TCP with `backlog`, but never less than std's 128
    /// (Windows refuses a client beyond the backlog outright, where Linux lets it try again, so
    /// CPython's default of 1 would turn a burst of clients away), or a named pipe (`backlog`
    /// is not used, as in CPython).
    pub fn bind(address: &Address, backlog: i32) -> io::Result<Self> {
        sys::listener::Listener::bind(address, backlog).map(|inner| Self { inner })
    }

    /// The bound address; for TCP port 0, the port the OS chose.
    ///
    /// **Windows:**
    /// The bound address (for TCP port 0, the port the OS chose).
    pub fn address(&self) -> &Address {
        self.inner.address()
    }

    /// Accepts one connection, waiting at most `timeout` (`None`: forever); a timeout is
    /// `TimedOut`. Returns the blocking stream and the peer's address (`None` for an unnamed
    /// Unix peer). `EINTR` and spurious wake-ups are retried.
    ///
    /// **Windows:**
    /// Accepts one connection, waiting at most `timeout` (`None`: forever); `TimedOut` after.
    pub fn accept(&self, timeout: Option<Duration>) -> io::Result<(Stream, Option<Address>)> {
        self.inner
            .accept(timeout)
            .map(|(inner, peer)| (Stream { inner }, peer))
    }

    /// Accepts one connection if a client is waiting, without waiting: `Ok(None)` if none is.
    /// The stream is blocking. A client that connected and reset before we accepted is skipped.
    /// Out of descriptors (`EMFILE`, `ENFILE`; see `Error::OutOfFds` in the connection layer) is an error, which
    /// retrying at once will repeat.
    ///
    /// **Windows:**
    /// Accepts one connection if a client is waiting, without blocking.
    pub fn try_accept(&self) -> io::Result<Option<(Stream, Option<Address>)>> {
        self.inner
            .try_accept()
            .map(|o| o.map(|(inner, peer)| (Stream { inner }, peer)))
    }

    /// Removes the socket file this listener created, if it is still that file (a file another
    /// process bound there since is left alone). Abstract names and TCP have no file. Returns
    /// `NotFound` if the file has already gone, as CPython's `close()` raises
    /// `FileNotFoundError`.
    ///
    /// **Windows:**
    /// There is no socket file on Windows: nothing to remove.
    pub fn remove_socket_file(&mut self) -> io::Result<()> {
        self.inner.remove_socket_file()
    }

    /// Closes the socket now, reporting the OS's error. Does not remove the socket file.
    ///
    /// **Windows:**
    /// Closes the listener (its socket, or every instance of its pipe).
    pub fn close(self) -> io::Result<()> {
        self.inner.close()
    }

    /// The handle readiness watches (see [`Handle`](crate::Handle)).
    ///
    /// **Windows:**
    /// The handle readiness watches: ready when a client waits.
    pub fn handle(&self) -> Handle<'_> {
        self.inner.handle()
    }
}
