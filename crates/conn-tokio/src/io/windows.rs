//! Windows: streams (TCP sockets and message-mode pipe ends) and listeners stay the
//! transport's own, read without blocking and written with overlapped sends that keep their
//! bytes; each wait is an [`EventWait`] on the Win32 event the transport signals (a
//! thread-pool wait that wakes the task). tokio's reactor is not used: its named pipes read
//! through 4 KiB buffers that lose message boundaries (a zero-length message reads as end of
//! file), and under Wine 8 its sockets stall under a burst of clients (1000 concurrent echo
//! clients of plain tokio TCP never finished), where the event waits served them.

use std::future::poll_fn;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use conn_address::Address;
use conn_framing::{Header, MessageRead};
use conn_transport::engine::{EventWait, MessageCursor};
use conn_transport::os::{Listener, Stream, StreamKind};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connected stream with its waits.
#[derive(Debug)]
pub(crate) struct Io {
    /// The reader's place in the current pipe message and its wait (first, with `write`: a
    /// wait must go before the events it waits on, which the stream owns).
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
        Ok(Self {
            read: Mutex::new((MessageCursor::default(), EventWait::new())),
            write: Mutex::new(EventWait::new()),
            stream,
        })
    }

    /// The stream.
    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// What the stream is.
    pub(crate) fn kind(&self) -> StreamKind {
        self.stream.kind()
    }

    /// The stream, taken off the runtime.
    pub(crate) fn into_stream(self) -> Stream {
        let Self {
            read,
            write,
            stream,
        } = self;
        drop((read, write));
        stream
    }

    /// Reads what has arrived into `buf`, waiting until something has (0 at end of file).
    /// Sockets only. Cancel-safe: the read happens whole between two awaits or not at all.
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            let mut guard = lock(&self.read);
            loop {
                match self.stream.read_nonblocking(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => return Poll::Ready(other),
                }
                match guard.1.poll_handle(self.stream.handle(), cx) {
                    Poll::Ready(Ok(())) => {}
                    other => return other.map(|r| r.map(|()| 0)),
                }
            }
        })
        .await
    }

    /// Reads the next part of a pipe message into `buf`, saying where messages begin (see
    /// `MessageCursor`). Cancel-safe: bytes are taken from the transport only when the call
    /// returns them.
    pub(crate) async fn read_message(&self, buf: &mut [u8]) -> io::Result<MessageRead> {
        poll_fn(|cx| {
            let mut guard = lock(&self.read);
            let (cursor, wait) = &mut *guard;
            loop {
                match cursor.read(&self.stream, buf, Some(Duration::ZERO)) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => return Poll::Ready(other),
                }
                match wait.poll_handle(self.stream.handle(), cx) {
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

    /// Writes frames: on a message-mode pipe each payload as one message (a pipe message has
    /// no header: its length is the pipe's), on a socket the frames, each header with its
    /// payload, in one overlapped send. `started` is set once the first write is under way;
    /// the bytes are copied, so a write whose future is dropped goes on from the stream's
    /// copy.
    pub(crate) async fn write_frames(
        &self,
        payloads: &[&[u8]],
        started: &mut bool,
    ) -> io::Result<()> {
        if self.kind().keeps_messages() {
            for payload in payloads {
                self.write_whole(payload.to_vec(), started).await?;
            }
            return Ok(());
        }
        let total = payloads.iter().map(|p| p.len() + 12).sum();
        let mut bytes = Vec::with_capacity(total);
        for payload in payloads {
            bytes.extend_from_slice(Header::new(payload.len() as u64).as_bytes());
            bytes.extend_from_slice(payload);
        }
        self.write_whole(bytes, started).await
    }

    async fn write_whole(&self, bytes: Vec<u8>, started: &mut bool) -> io::Result<()> {
        self.stream.start_write(bytes)?;
        *started = true;
        poll_fn(|cx| self.stream.poll_written(&mut lock(&self.write), cx)).await
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
