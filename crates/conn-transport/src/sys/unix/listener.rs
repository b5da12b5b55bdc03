//! `Listener`: a bound, listening TCP or Unix socket, and accepting from it with a timeout.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use conn_address::{Address, Host};

use super::calls;
use super::stream::Stream;

#[derive(Debug)]
enum Inner {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A listening socket. The OS fd is non-blocking inside (so [`accept`](Self::accept) can time
/// out); accepted streams are blocking.
#[derive(Debug)]
pub(crate) struct Listener {
    inner: Inner,
    address: Address,
    /// (device, inode) of the socket file this listener created, so only that file is unlinked.
    socket_file: Option<(u64, u64)>,
}

impl Listener {
    /// Binds and listens on `address` with `backlog` (CPython's default is 1).
    ///
    /// TCP sockets get `SO_REUSEADDR`, so a restarted server can rebind over `TIME_WAIT`. A host
    /// name binds its first IPv4 address (CPython's AF_INET: `localhost` is 127.0.0.1 even where
    /// the resolver lists `::1` first). Binding a Unix path that exists — a live socket or
    /// a stale file — fails with `AddrInUse`, as in CPython; nothing is unlinked first.
    pub(crate) fn bind(address: &Address, backlog: i32) -> io::Result<Self> {
        address
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let inner = match address {
            Address::Inet { host, port } => {
                let listener = match host {
                    // std sets SO_REUSEADDR on Unix before binding.
                    Host::Ip(ip) => TcpListener::bind((*ip, *port))?,
                    Host::Name(name) => {
                        let first = crate::common::resolve_ipv4(name, *port)?[0];
                        TcpListener::bind(first)?
                    }
                };
                Inner::Tcp(listener)
            }
            Address::UnixPath(path) => Inner::Unix(UnixListener::bind(path).map_err(|e| {
                if e.kind() == io::ErrorKind::AddrInUse {
                    io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("address already in use: {}", path.display()),
                    )
                } else {
                    e
                }
            })?),
            Address::UnixAbstract(name) => Inner::Unix(bind_abstract(name)?),
            Address::Pipe(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "AF_PIPE is Windows-only",
                ));
            }
            _ => return Err(crate::common::unsupported(address)),
        };
        let mut listener = Self {
            inner,
            address: address.clone(),
            socket_file: None,
        };
        calls::listen(listener.as_fd(), backlog)?;
        match &listener.inner {
            Inner::Tcp(l) => {
                l.set_nonblocking(true)?;
                listener.address = Address::from(l.local_addr()?);
            }
            Inner::Unix(l) => {
                l.set_nonblocking(true)?;
                if let Address::UnixPath(path) = address {
                    let meta = std::fs::symlink_metadata(path)?;
                    listener.socket_file = Some((meta.dev(), meta.ino()));
                }
            }
        }
        Ok(listener)
    }

    /// The bound address; for TCP port 0, the port the OS chose.
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// Accepts one connection, waiting at most `timeout` (`None`: forever); a timeout is
    /// `TimedOut`. Returns the blocking stream and the peer's address (`None` for an unnamed
    /// Unix peer). `EINTR` and spurious wake-ups are retried.
    pub(crate) fn accept(
        &self,
        timeout: Option<Duration>,
    ) -> io::Result<(Stream, Option<Address>)> {
        let deadline = crate::deadline_after(timeout);
        loop {
            if let Some(pair) = self.try_accept()? {
                return Ok(pair);
            }
            let left = crate::time_left(deadline);
            if left.is_some_and(|l| l.is_zero()) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no connection to accept within the timeout",
                ));
            }
            calls::poll_readable(self.as_fd(), left)?;
        }
    }

    /// Accepts one connection if a client is waiting, without waiting: `Ok(None)` if none is.
    /// The stream is blocking. A client that connected and reset before we accepted is skipped.
    /// Out of descriptors (`EMFILE`, `ENFILE`; see `Error::OutOfFds` in the connection layer) is an error, which
    /// retrying at once will repeat.
    pub(crate) fn try_accept(&self) -> io::Result<Option<(Stream, Option<Address>)>> {
        loop {
            let accepted = match &self.inner {
                Inner::Tcp(l) => l.accept().and_then(|(s, peer)| {
                    let s = blocking(s, std::net::TcpStream::set_nonblocking)?;
                    Ok((Stream::from(s), Some(Address::from(peer))))
                }),
                Inner::Unix(l) => l.accept().and_then(|(s, peer)| {
                    let s = blocking(s, std::os::unix::net::UnixStream::set_nonblocking)?;
                    Ok((Stream::from(s), super::stream::unix_address(&peer)))
                }),
            };
            match accepted {
                Ok(pair) => return Ok(Some(pair)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the socket file this listener created, if it is still that file (a file another
    /// process bound there since is left alone). Abstract names and TCP have no file. Returns
    /// `NotFound` if the file has already gone, as CPython's `close()` raises
    /// `FileNotFoundError`.
    pub(crate) fn remove_socket_file(&mut self) -> io::Result<()> {
        let (Some(id), Address::UnixPath(path)) = (self.socket_file.take(), &self.address) else {
            return Ok(());
        };
        remove_if_same(path, id)
    }

    /// Closes the socket now, reporting the OS's error. Does not remove the socket file.
    pub(crate) fn close(self) -> io::Result<()> {
        let fd: std::os::fd::OwnedFd = match self.inner {
            Inner::Tcp(l) => l.into(),
            Inner::Unix(l) => l.into(),
        };
        calls::close(fd)
    }
}

fn remove_if_same(path: &Path, (dev, ino): (u64, u64)) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if (meta.dev(), meta.ino()) == (dev, ino) {
        std::fs::remove_file(path)
    } else {
        Ok(())
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_abstract(name: &[u8]) -> io::Result<UnixListener> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    UnixListener::bind_addr(&addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_abstract(_name: &[u8]) -> io::Result<UnixListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist only on Linux",
    ))
}

impl Listener {
    /// The handle readiness watches (see [`Handle`](crate::Handle)).
    pub(crate) fn handle(&self) -> crate::Handle<'_> {
        crate::Handle::from(self.as_fd())
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::Tcp(l) => l.as_fd(),
            Inner::Unix(l) => l.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for crate::os::Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for crate::os::Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// A socket `accept` returned, made blocking (`set_nonblocking` is its type's): the listener
/// is non-blocking and the stream must not be. Linux never passes `O_NONBLOCK` on to an
/// accepted socket, so nothing is called there (a system call fewer per connection); the BSDs
/// and macOS do pass it on.
fn blocking<S>(s: S, set_nonblocking: fn(&S, bool) -> io::Result<()>) -> io::Result<S> {
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    set_nonblocking(&s, false)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = set_nonblocking;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use conn_address::PrivateSocketDir;

    use super::*;

    #[test]
    fn tcp_port_zero_reports_the_real_port() {
        let l = Listener::bind(&"127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let Address::Inet { port, .. } = l.address() else {
            panic!()
        };
        assert_ne!(*port, 0);
        let c = Stream::connect(l.address(), Some(Duration::from_secs(5))).unwrap();
        let (s, peer) = l.accept(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(peer, c_local(&c));
        (&c).write_all(b"hi").unwrap();
        let mut buf = [0; 2];
        (&s).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    /// Whether `O_NONBLOCK` is set on `fd`.
    fn is_nonblocking(fd: BorrowedFd<'_>) -> bool {
        calls::status_flags(fd).unwrap() & libc::O_NONBLOCK != 0
    }

    /// The listener is non-blocking and what it accepts is blocking, over TCP and Unix
    /// sockets, on every Unix (Linux gets there with no call of its own).
    #[test]
    fn accepted_streams_block() {
        let dir = PrivateSocketDir::create().unwrap();
        for address in ["127.0.0.1:0".parse::<Address>().unwrap(), dir.address()] {
            let l = Listener::bind(&address, 1).unwrap();
            assert!(is_nonblocking(l.as_fd()));
            let _c = Stream::connect(l.address(), Some(Duration::from_secs(5))).unwrap();
            let (s, _) = l.accept(Some(Duration::from_secs(5))).unwrap();
            assert!(!is_nonblocking(s.as_fd()), "{address}");
        }
    }

    fn c_local(c: &Stream) -> Option<Address> {
        let fd = c.as_fd().try_clone_to_owned().unwrap();
        let tcp = std::net::TcpStream::from(fd);
        Some(Address::from(tcp.local_addr().unwrap()))
    }

    #[test]
    fn accept_times_out() {
        let l = Listener::bind(&"127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let err = l.accept(Some(Duration::from_millis(30))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn unix_path_bind_twice_fails_and_file_is_removed_once() {
        let dir = PrivateSocketDir::create().unwrap();
        let addr = dir.address();
        let mut l = Listener::bind(&addr, 1).unwrap();
        let err = Listener::bind(&addr, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(
            err.to_string()
                .contains(&*dir.socket_path().to_string_lossy())
        );
        let _c = Stream::connect(&addr, None).unwrap();
        let (_s, peer) = l.accept(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(peer, None, "an unnamed Unix client");
        l.remove_socket_file().unwrap();
        assert!(!dir.socket_path().exists());
    }

    #[test]
    fn a_replaced_socket_file_is_not_removed() {
        let dir = PrivateSocketDir::create().unwrap();
        let mut l = Listener::bind(&dir.address(), 1).unwrap();
        std::fs::remove_file(dir.socket_path()).unwrap();
        std::fs::write(dir.socket_path(), b"someone else's").unwrap();
        l.remove_socket_file().unwrap();
        assert!(dir.socket_path().exists());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_names_bind_and_connect() {
        let name = format!("conn-test-{}", std::process::id());
        let addr = Address::unix_abstract(name.as_bytes()).unwrap();
        let l = Listener::bind(&addr, 1).unwrap();
        let _c = Stream::connect(&addr, None).unwrap();
        l.accept(Some(Duration::from_secs(5))).unwrap();
    }
}
