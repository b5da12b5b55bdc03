//! What every OS module shares: the kinds of stream, readiness reports, and address helpers.

use std::io;
use std::net::ToSocketAddrs;

use conn_address::Address;

/// What a [`Stream`](crate::os::Stream) is underneath.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamKind {
    /// A TCP socket (IPv4 or IPv6).
    Tcp,
    /// A Unix stream socket (a path, an abstract name, or one end of a `socketpair`).
    Unix,
    /// The read end of a one-way Unix socket pair (`Stream::simplex`, `Pipe(duplex=False)`).
    UnixReader,
    /// The write end of a one-way Unix socket pair.
    UnixWriter,
    /// The read end of a pipe.
    PipeReader,
    /// The write end of a pipe.
    PipeWriter,
    /// A Windows message-mode named pipe, both ways (AF_PIPE, `Pipe(duplex=True)`): one write
    /// is one message, with no header (see [`Stream::read_message`](crate::os::Stream::read_message)).
    MessagePipe,
    /// The read end of a one-way message-mode pipe (Windows `Pipe(duplex=False)`).
    MessagePipeReader,
    /// The write end of a one-way message-mode pipe.
    MessagePipeWriter,
}

impl StreamKind {
    /// Whether the OS keeps message boundaries, so a message travels without a length header
    /// (Windows named pipes, as CPython's `PipeConnection`).
    pub fn keeps_messages(self) -> bool {
        matches!(
            self,
            Self::MessagePipe | Self::MessagePipeReader | Self::MessagePipeWriter
        )
    }
}

/// One part of a message read from a message-mode pipe, or its end of file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessagePart {
    /// `len` bytes of the current message; `more`: the message goes on.
    Data {
        /// Bytes read.
        len: usize,
        /// Whether the message has more bytes.
        more: bool,
    },
    /// The other end has closed: no more messages.
    End,
}

/// The error of the message calls on a stream that carries bytes, not messages.
pub(crate) fn not_a_message_pipe() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "only message-mode pipes (Windows AF_PIPE) carry messages",
    )
}

/// One readiness report from [`Poller::wait`](crate::os::Poller::wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    pub(crate) key: usize,
}

impl Ready {
    /// The key the handle was registered with.
    pub fn key(&self) -> usize {
        self.key
    }
}

/// An address of a kind this version does not know how to open.
pub(crate) fn unsupported(address: &Address) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("cannot open {address}: not supported here"),
    )
}

/// Connects a TCP socket to `address` (an AF_INET address): a host name means its IPv4
/// addresses, tried in turn; each try gives up after `timeout` (`None`, or a timeout the clock
/// cannot express such as `Duration::MAX`: the OS's own limit).
pub(crate) fn connect_tcp(
    address: &Address,
    timeout: Option<std::time::Duration>,
) -> io::Result<std::net::TcpStream> {
    use std::net::TcpStream;
    let Address::Inet { host, port } = address else {
        return Err(unsupported(address));
    };
    let targets: Vec<_> = match host {
        conn_address::Host::Ip(ip) => vec![(*ip, *port).into()],
        conn_address::Host::Name(name) => resolve_ipv4(name, *port)?,
    };
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{address} resolved to no address"),
    );
    for target in targets {
        let attempt = match timeout.filter(|_| crate::deadline_after(timeout).is_some()) {
            Some(t) => TcpStream::connect_timeout(&target, t),
            None => TcpStream::connect(target),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The IPv4 addresses `name` resolves to: a host name in an AF_INET address means IPv4, as in
/// CPython (`socket.AF_INET`), so `localhost` is 127.0.0.1 even where the resolver lists `::1`
/// first. An IPv6 literal (`[::1]:6000`) is still IPv6.
pub(crate) fn resolve_ipv4(name: &str, port: u16) -> io::Result<Vec<std::net::SocketAddr>> {
    let found: Vec<_> = (name, port)
        .to_socket_addrs()?
        .filter(std::net::SocketAddr::is_ipv4)
        .collect();
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name} has no IPv4 address (AF_INET host names are IPv4, as in CPython)"),
        ));
    }
    Ok(found)
}
