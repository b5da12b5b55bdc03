//! Windows: the same public types as on Unix, not built yet. Every constructor returns a typed
//! `Unsupported` error, so nothing of these types can exist at run time and every method on
//! them is an empty `match` over an uninhabited value. Named pipes (AF_PIPE) and Windows
//! sockets replace this module; the layers above need no change for them.

use std::io;

/// The error of everything on Windows until its transport is built.
fn not_yet(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what}: conn's Windows transport is not built yet"),
    )
}

/// A value that cannot exist: the inside of every type below.
#[derive(Debug)]
enum Never {}

pub(crate) mod stream {
    use std::io::{self, IoSlice, Read, Write};
    use std::time::Duration;

    use conn_address::Address;

    use super::{Never, not_yet};
    use crate::{Handle, StreamKind};

    /// A connected, blocking byte stream (not available on Windows yet: see the crate docs).
    #[derive(Debug)]
    pub struct Stream {
        never: Never,
    }

    impl Stream {
        /// Connects to `address` (Windows: always `Unsupported` for now).
        pub fn connect(address: &Address, timeout: Option<Duration>) -> io::Result<Self> {
            let _ = timeout;
            Err(not_yet(&format!("cannot open {address}")))
        }

        /// A connected pair (Windows: always `Unsupported` for now).
        pub fn pair() -> io::Result<(Self, Self)> {
            Err(not_yet("Pipe(duplex=True)"))
        }

        /// A one-way OS pipe (Windows: always `Unsupported` for now).
        pub fn pipe() -> io::Result<(Self, Self)> {
            Err(not_yet("an OS pipe"))
        }

        /// A one-way pair, for `Pipe(duplex=False)` (Windows: always `Unsupported` for now).
        pub fn simplex() -> io::Result<(Self, Self)> {
            Err(not_yet("Pipe(duplex=False)"))
        }

        /// What the stream is underneath.
        pub fn kind(&self) -> StreamKind {
            match self.never {}
        }

        /// Sets the timeout of blocking reads.
        pub fn set_read_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
            match self.never {}
        }

        /// Sets the timeout of blocking writes.
        pub fn set_write_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
            match self.never {}
        }

        /// Sets `TCP_NODELAY`.
        pub fn set_nodelay(&self, _nodelay: bool) -> io::Result<()> {
            match self.never {}
        }

        /// The peer's address.
        pub fn peer_address(&self) -> Option<Address> {
            match self.never {}
        }

        /// Shuts both directions down.
        pub fn shutdown(&self) -> io::Result<()> {
            match self.never {}
        }

        /// Whether the stream is writable, waiting at most `timeout`.
        pub fn wait_writable(&self, _timeout: Option<Duration>) -> io::Result<bool> {
            match self.never {}
        }

        /// One non-blocking vectored write.
        pub fn write_vectored_nonblocking(&self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            match self.never {}
        }

        /// One non-blocking read.
        pub fn read_nonblocking(&self, _buf: &mut [u8]) -> io::Result<usize> {
            match self.never {}
        }

        /// Reads up to `n` bytes onto the end of `buf`.
        pub fn read_append(&self, _buf: &mut Vec<u8>, _n: u64) -> io::Result<usize> {
            match self.never {}
        }

        /// Switches non-blocking mode.
        pub fn set_nonblocking(&self, _nonblocking: bool) -> io::Result<()> {
            match self.never {}
        }

        /// Whether the stream is readable, waiting at most `timeout`.
        pub fn wait_readable(&self, _timeout: Option<Duration>) -> io::Result<bool> {
            match self.never {}
        }

        /// Closes the stream, reporting the OS's error.
        pub fn close(self) -> io::Result<()> {
            match self.never {}
        }

        /// The handle readiness watches.
        pub fn handle(&self) -> Handle<'_> {
            match self.never {}
        }

        /// Sends `data` with `handles` attached.
        pub fn send_handles(&self, _data: &[u8], _handles: &[Handle<'_>]) -> io::Result<usize> {
            match self.never {}
        }

        /// Reads into `buf` with the handles that came with the bytes.
        pub fn recv_handles(
            &self,
            _buf: &mut [u8],
        ) -> io::Result<(usize, Vec<crate::OwnedHandle>)> {
            match self.never {}
        }

        /// The oldest group of handles that arrived with bytes read ahead.
        pub fn take_received_handles(&self) -> Option<Vec<crate::OwnedHandle>> {
            match self.never {}
        }
    }

    impl TryFrom<crate::OwnedHandle> for Stream {
        type Error = io::Error;

        /// Adopts an owned handle (Windows: no handle exists yet).
        fn try_from(handle: crate::OwnedHandle) -> io::Result<Self> {
            drop(handle);
            Err(not_yet("adopting a handle"))
        }
    }

    impl From<Stream> for crate::OwnedHandle {
        fn from(s: Stream) -> Self {
            match s.never {}
        }
    }

    impl Read for &Stream {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            match self.never {}
        }
    }

    impl Read for Stream {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            match self.never {}
        }
    }

    impl Write for &Stream {
        fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
            match self.never {}
        }

        fn flush(&mut self) -> io::Result<()> {
            match self.never {}
        }
    }

    impl Write for Stream {
        fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
            match self.never {}
        }

        fn flush(&mut self) -> io::Result<()> {
            match self.never {}
        }
    }
}

pub(crate) mod listener {
    use std::io;
    use std::time::Duration;

    use conn_address::Address;

    use super::{Never, not_yet};
    use crate::{Handle, Stream};

    /// A listening socket or pipe (not available on Windows yet: see the crate docs).
    #[derive(Debug)]
    pub struct Listener {
        never: Never,
    }

    impl Listener {
        /// Binds and listens on `address` (Windows: always `Unsupported` for now).
        pub fn bind(address: &Address, backlog: i32) -> io::Result<Self> {
            let _ = backlog;
            Err(not_yet(&format!("cannot listen on {address}")))
        }

        /// The bound address.
        pub fn address(&self) -> &Address {
            match self.never {}
        }

        /// Accepts one connection, waiting at most `timeout`.
        pub fn accept(&self, _timeout: Option<Duration>) -> io::Result<(Stream, Option<Address>)> {
            match self.never {}
        }

        /// Accepts one connection if one is waiting.
        pub fn try_accept(&self) -> io::Result<Option<(Stream, Option<Address>)>> {
            match self.never {}
        }

        /// Removes the socket file this listener created (none on Windows).
        pub fn remove_socket_file(&mut self) -> io::Result<()> {
            match self.never {}
        }

        /// Closes the listener, reporting the OS's error.
        pub fn close(self) -> io::Result<()> {
            match self.never {}
        }

        /// The handle readiness watches.
        pub fn handle(&self) -> Handle<'_> {
            match self.never {}
        }
    }
}

pub(crate) mod poller {
    use std::io;
    use std::time::Duration;

    use super::{Never, not_yet};
    use crate::{Handle, Ready};

    /// Whether `handle` is readable, waiting at most `timeout` (Windows: `Unsupported`).
    pub fn wait_readable(handle: Handle<'_>, timeout: Option<Duration>) -> io::Result<bool> {
        let _ = (handle, timeout);
        Err(not_yet("wait"))
    }

    /// Which of `handles` are readable (Windows: `Unsupported`).
    pub fn wait_readable_many(
        handles: &[Handle<'_>],
        timeout: Option<Duration>,
    ) -> io::Result<Vec<usize>> {
        let _ = (handles, timeout);
        Err(not_yet("wait"))
    }

    /// A persistent registry of handles to wait on (not available on Windows yet).
    #[derive(Debug)]
    pub struct Poller {
        never: Never,
    }

    impl Poller {
        /// An empty registry (Windows: always `Unsupported` for now).
        pub fn new() -> io::Result<Self> {
            Err(not_yet("a wait set"))
        }

        /// The registry's own handle.
        pub fn handle(&self) -> Handle<'_> {
            match self.never {}
        }

        /// Registers `handle` under `key`.
        pub fn add(&mut self, _handle: Handle<'_>, _key: usize) -> io::Result<()> {
            match self.never {}
        }

        /// Deregisters `handle`.
        pub fn remove(&mut self, _handle: Handle<'_>) -> io::Result<()> {
            match self.never {}
        }

        /// Re-registers `handle` now.
        pub fn rearm_now(&mut self, _handle: Handle<'_>, _key: usize) -> io::Result<()> {
            match self.never {}
        }

        /// Asks that `handle` be reported again at the next wait if still ready.
        pub fn rearm(&mut self, _handle: Handle<'_>, _key: usize) {
            match self.never {}
        }

        /// Waits until a handle is ready or `timeout` passes.
        pub fn wait(
            &mut self,
            _ready: &mut Vec<Ready>,
            _timeout: Option<Duration>,
        ) -> io::Result<()> {
            match self.never {}
        }
    }
}

pub(crate) mod sentinel {
    use std::io;
    use std::time::Duration;

    use super::{Never, not_yet};
    use crate::Handle;

    /// A handle that becomes readable when a child process exits (not available on Windows
    /// yet: process handles come with the Windows transport).
    #[derive(Debug)]
    pub struct Sentinel {
        never: Never,
    }

    impl Sentinel {
        /// The sentinel of child `pid` (Windows: always `Unsupported` for now).
        pub fn new(pid: u32) -> io::Result<Self> {
            Err(not_yet(&format!("a sentinel for process {pid}")))
        }

        /// The sentinel of `child` (Windows: always `Unsupported` for now).
        pub fn of(child: &std::process::Child) -> io::Result<Self> {
            Self::new(child.id())
        }

        /// The process id.
        pub fn pid(&self) -> u32 {
            match self.never {}
        }

        /// The handle readiness watches.
        pub fn handle(&self) -> Handle<'_> {
            match self.never {}
        }

        /// Whether the process has exited, waiting at most `timeout`.
        pub fn wait_exited(&self, _timeout: Option<Duration>) -> io::Result<bool> {
            match self.never {}
        }
    }
}

pub(crate) mod sys {
    use std::io;

    /// Whether `e` says the process is out of handles (never reported on Windows yet).
    pub(crate) fn is_out_of_fds(_e: &io::Error) -> bool {
        false
    }
}
