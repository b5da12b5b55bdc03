//! Windows: a TCP socket is watched by tokio's `TcpStream` through a second handle (its
//! reactor watches sockets well); a message-mode pipe end stays the transport's `Stream`, read
//! and written through its own overlapped calls, with each wait an [`EventWait`] on the Win32
//! event the transport signals (a thread-pool wait that wakes the task). Listeners of both
//! families are awaited the same way. tokio's `NamedPipeServer`/`NamedPipeClient` are not used: their reads go through 4 KiB
//! buffers that lose message boundaries, and a zero-length message reads as end of file.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use conn_address::Address;
use conn_framing::MessageRead;
use conn_transport::engine::{EventWait, MessageCursor};
use conn_transport::os::{Listener, Stream, StreamKind};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connected stream.
#[derive(Debug)]
pub(crate) enum Io {
    /// tokio's `TcpStream` over a second handle to the socket; the transport's stream keeps
    /// the first, so that giving the stream back can never fail.
    Tcp {
        tcp: tokio::net::TcpStream,
        stream: Stream,
    },
    Pipe(Pipe),
}

/// A message-mode pipe end with its waits.
#[derive(Debug)]
pub(crate) struct Pipe {
    /// The reader's place in the current message and its wait (first, with `write`: a wait
    /// must go before the events it waits on, which the stream owns).
    read: Mutex<(MessageCursor, EventWait)>,
    write: Mutex<EventWait>,
    stream: Stream,
}

impl Io {
    /// Takes `stream` into the current runtime (outside a runtime: an error, with the stream
    /// given back).
    pub(crate) fn new(stream: Stream) -> Result<Self, (io::Error, Stream)> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err((super::no_runtime(), stream));
        }
        match stream.try_clone_tcp() {
            Ok(Some(socket)) => match tokio::net::TcpStream::from_std(socket) {
                Ok(tcp) => Ok(Self::Tcp { tcp, stream }),
                Err(e) => Err((e, stream)),
            },
            Ok(None) => Ok(Self::Pipe(Pipe {
                read: Mutex::new((MessageCursor::default(), EventWait::new())),
                write: Mutex::new(EventWait::new()),
                stream,
            })),
            Err(e) => Err((e, stream)),
        }
    }

    /// The stream.
    pub(crate) fn stream(&self) -> &Stream {
        match self {
            Self::Tcp { stream, .. } | Self::Pipe(Pipe { stream, .. }) => stream,
        }
    }

    /// The stream, taken off the runtime.
    pub(crate) fn into_stream(self) -> Stream {
        match self {
            Self::Tcp { tcp, stream } => {
                drop(tcp);
                stream
            }
            Self::Pipe(p) => p.stream,
        }
    }

    /// What the stream is.
    pub(crate) fn kind(&self) -> StreamKind {
        self.stream().kind()
    }

    /// Reads what has arrived into `buf`, waiting until something has (0 at end of file).
    /// TCP only. Cancel-safe: the read happens whole between two awaits or not at all.
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let tcp = self.tcp()?;
        loop {
            tcp.readable().await?;
            match tcp.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
        }
    }

    /// Writes as much of `bufs` as fits, waiting until something does. TCP only.
    pub(crate) async fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let tcp = self.tcp()?;
        loop {
            tcp.writable().await?;
            match tcp.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
        }
    }

    /// Reads the next part of a pipe message into `buf`, saying where messages begin (see
    /// `MessageCursor`). Cancel-safe: bytes are taken from the transport only when the call
    /// returns them.
    pub(crate) async fn read_message(&self, buf: &mut [u8]) -> io::Result<MessageRead> {
        let pipe = self.pipe()?;
        poll_fn(|cx| {
            let mut guard = lock(&pipe.read);
            let (cursor, wait) = &mut *guard;
            loop {
                match cursor.read(&pipe.stream, buf, Some(Duration::ZERO)) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => return Poll::Ready(other),
                }
                match wait.poll_handle(pipe.stream.handle(), cx) {
                    Poll::Ready(Ok(())) => {}
                    other => {
                        return other.map(|r| {
                            r.map(|()| MessageRead {
                                len: 0,
                                begins: None,
                            })
                        });
                    }
                }
            }
        })
        .await
    }

    /// Sends `message` as one pipe message. The bytes are copied: a write the future no longer
    /// waits for (cancelled) goes on from the stream's own copy.
    pub(crate) async fn write_message(&self, message: &[u8]) -> io::Result<()> {
        let pipe = self.pipe()?;
        pipe.stream.start_message(message.to_vec())?;
        poll_fn(|cx| pipe.stream.poll_message_sent(&mut lock(&pipe.write), cx)).await
    }

    fn tcp(&self) -> io::Result<&tokio::net::TcpStream> {
        match self {
            Self::Tcp { tcp, .. } => Ok(tcp),
            Self::Pipe(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a message-mode pipe takes whole messages",
            )),
        }
    }

    fn pipe(&self) -> io::Result<&Pipe> {
        match self {
            Self::Pipe(p) => Ok(p),
            Self::Tcp { .. } => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a TCP stream has no messages",
            )),
        }
    }
}

/// A listener awaited on its readiness event.
#[derive(Debug)]
pub(crate) struct Accepting {
    /// First: the wait goes before the listener's event.
    wait: Mutex<EventWait>,
    listener: Listener,
}

impl Accepting {
    /// Binds `address` (`backlog` as the blocking listener takes it).
    pub(crate) fn bind(address: &Address, backlog: i32) -> io::Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(super::no_runtime());
        }
        Ok(Self {
            wait: Mutex::new(EventWait::new()),
            listener: Listener::bind(address, backlog)?,
        })
    }

    /// The listener.
    pub(crate) fn listener(&self) -> &Listener {
        &self.listener
    }

    /// The listener, no longer awaited.
    pub(crate) fn into_listener(self) -> Listener {
        let Self { wait, listener } = self;
        drop(wait);
        listener
    }

    /// The next client, waiting until one comes. Cancel-safe: a client is taken only when it
    /// is returned.
    pub(crate) async fn accept(&self) -> io::Result<(Stream, Option<Address>)> {
        loop {
            if let Some(accepted) = self.listener.try_accept()? {
                return Ok(accepted);
            }
            poll_fn(|cx| lock(&self.wait).poll_handle(self.listener.handle(), cx)).await?;
        }
    }
}
