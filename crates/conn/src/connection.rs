//! `Connection`: a transport, CPython's framing and a codec. `Sender` and `Receiver` are its two
//! halves, which `split` hands to different threads.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use conn_framing::{Codec, FrameReader, write_frame, write_frames};
use conn_transport::{Stream, StreamKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{DefaultCodec, Error, Pickle, PyValue, Result};

/// An encode buffer larger than this is not kept between sends.
const KEEP_SEND_BUFFER: usize = 1 << 20;

/// The stream, shared by the two halves of a split connection.
#[derive(Debug, Clone)]
struct Shared(Arc<Stream>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}

/// The sending half of a connection: `send` and `send_bytes`.
#[derive(Debug)]
pub struct Sender<C = DefaultCodec> {
    stream: Arc<Stream>,
    codec: C,
    out: Vec<u8>,
}

/// The receiving half of a connection: `recv`, `recv_bytes*` and `poll`.
#[derive(Debug)]
pub struct Receiver<C = DefaultCodec> {
    reader: FrameReader<Shared>,
    codec: C,
}

impl<C: Codec> Sender<C> {
    /// Sends `value` encoded by the codec (CPython's `send(obj)`). An encoding error sends
    /// nothing.
    pub fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.out.clear();
        self.codec.encode_into(value, &mut self.out)?;
        self.send_encoded()
    }

    /// Sends what was encoded into `self.out`, then drops a large encode buffer.
    fn send_encoded(&mut self) -> Result<()> {
        let sent = write_frame(&mut &*self.stream, &self.out);
        if self.out.capacity() > KEEP_SEND_BUFFER {
            self.out = Vec::new();
        }
        sent.map_err(|e| Error::from_io(e, "write"))
    }

    /// Sends one message (CPython's `send_bytes(buf)`; slice `buf` for `offset`/`size`).
    /// Header and payload leave in one write.
    pub fn send_bytes(&mut self, buf: &[u8]) -> Result<()> {
        write_frame(&mut &*self.stream, buf).map_err(|e| Error::from_io(e, "write"))
    }
}

impl<C: Codec> Receiver<C> {
    /// Receives one message and decodes it with the codec (CPython's `recv()`). A message that
    /// does not decode is consumed; the connection stays usable.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        let message = self.recv_bytes()?;
        Ok(self.codec.decode(&message)?)
    }

    /// Receives one message (CPython's `recv_bytes()`), up to the connection's maximum message
    /// size (unlimited by default).
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        Ok(self.reader.read_frame(None)?)
    }

    /// Receives one message of at most `maxlength` bytes (CPython's `recv_bytes(maxlength)`);
    /// a longer one is [`Error::BadMessageLength`], its body left unread.
    pub fn recv_bytes_max(&mut self, maxlength: usize) -> Result<Vec<u8>> {
        Ok(self.reader.read_frame(Some(maxlength as u64))?)
    }

    /// Receives one message into `buf` and returns its length (CPython's `recv_bytes_into`; pass
    /// `&mut buf[offset..]` for an offset). A message longer than `buf` is
    /// [`Error::BufferTooShort`] holding the whole message; the connection stays usable.
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        Ok(self.reader.read_frame_into(buf)?)
    }

    /// Whether there is something to receive (CPython's `poll(timeout)`): a whole message
    /// already buffered, or bytes, EOF or an error waiting on the handle. Waits at most `timeout`:
    /// `Some(Duration::ZERO)` (CPython's default `0`, and what a negative timeout means there)
    /// just looks; `None` waits with no limit. True does not promise a whole message: if only part
    /// has arrived, `recv` waits for the rest.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.reader.has_buffered_frame() {
            return Ok(true);
        }
        Ok(self.reader.get_ref().0.wait_readable(timeout)?)
    }

    /// Sets the longest message accepted by `recv` / `recv_bytes` (default: unlimited, as
    /// CPython). Memory grows with bytes received, never with a claimed length, either way.
    pub fn set_max_message(&mut self, max: u64) {
        self.reader.set_max_message(max);
    }

    fn has_buffered_frame(&self) -> bool {
        self.reader.has_buffered_frame()
    }
}

impl Sender<Pickle> {
    /// Sends a dynamic Python value (what `send(obj)` sends for an object no Rust type spells:
    /// mixed lists, big ints, sets).
    pub fn send_value(&mut self, value: &PyValue) -> Result<()> {
        self.out.clear();
        self.codec.encode_value(value, &mut self.out)?;
        self.send_encoded()
    }
}

impl Receiver<Pickle> {
    /// Receives any Python value as a dynamic [`PyValue`] (the same as `recv::<PyValue>()`).
    pub fn recv_value(&mut self) -> Result<PyValue> {
        let message = self.recv_bytes()?;
        Ok(self.codec.decode_value(&message)?)
    }
}

impl Connection<Pickle> {
    /// Sends a dynamic Python value; see [`Sender::send_value`].
    pub fn send_value(&mut self, value: &PyValue) -> Result<()> {
        self.sender()?.send_value(value)
    }

    /// Receives any Python value; see [`Receiver::recv_value`].
    pub fn recv_value(&mut self) -> Result<PyValue> {
        self.receiver()?.recv_value()
    }
}

/// A connection to a peer: CPython's `multiprocessing.connection.Connection`.
///
/// `send` / `recv` carry values through the codec `C` ([`Pickle`](crate::Pickle) by default, for
/// Python peers; [`Postcard`](crate::Postcard) for Rust peers); `send_bytes` / `recv_bytes` carry
/// raw messages. The frames are CPython's, so either end may be Python.
///
/// Checks run in CPython's order: closed ([`Error::Closed`]), then direction
/// ([`Error::ReadOnly`] / [`Error::WriteOnly`]), then arguments, then I/O. Dropping a connection
/// closes it without blocking; [`close`](Self::close) reports the OS's error. To send from one
/// thread while another receives, [`split`](Self::split) it.
#[derive(Debug)]
pub struct Connection<C = DefaultCodec> {
    halves: Option<(Sender<C>, Receiver<C>)>,
    readable: bool,
    writable: bool,
}

impl<C: Codec + Clone> Connection<C> {
    /// Wraps a connected stream (CPython's `Connection(handle)`). A pipe's read end is
    /// read-only, its write end write-only; sockets are both.
    pub fn from_stream(stream: Stream, codec: C) -> Self {
        let (readable, writable) = match stream.kind() {
            StreamKind::PipeReader => (true, false),
            StreamKind::PipeWriter => (false, true),
            StreamKind::Tcp | StreamKind::Unix => (true, true),
        };
        let stream = Arc::new(stream);
        let sender = Sender {
            stream: Arc::clone(&stream),
            codec: codec.clone(),
            out: Vec::new(),
        };
        let receiver = Receiver {
            reader: FrameReader::new(Shared(stream)),
            codec,
        };
        Self {
            halves: Some((sender, receiver)),
            readable,
            writable,
        }
    }
}

impl<C: Codec> Connection<C> {
    /// Whether the connection has been closed (CPython's `closed`).
    pub fn closed(&self) -> bool {
        self.halves.is_none()
    }

    /// Whether it may receive (CPython's `readable`); false on a write-only end and after a
    /// `bad message length`.
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether it may send (CPython's `writable`).
    pub fn writable(&self) -> bool {
        self.writable
    }

    fn sender(&mut self) -> Result<&mut Sender<C>> {
        match &mut self.halves {
            None => Err(Error::Closed),
            Some(_) if !self.writable => Err(Error::ReadOnly),
            Some((tx, _)) => Ok(tx),
        }
    }

    fn receiver(&mut self) -> Result<&mut Receiver<C>> {
        match &mut self.halves {
            None => Err(Error::Closed),
            Some(_) if !self.readable => Err(Error::WriteOnly),
            Some((_, rx)) => Ok(rx),
        }
    }

    /// Sends `value` through the codec (CPython's `send(obj)`).
    pub fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.sender()?.send(value)
    }

    /// Sends one message (CPython's `send_bytes`).
    pub fn send_bytes(&mut self, buf: &[u8]) -> Result<()> {
        self.sender()?.send_bytes(buf)
    }

    /// Receives one value through the codec (CPython's `recv()`).
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        self.receiver()?.recv()
    }

    /// Receives one message (CPython's `recv_bytes()`).
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        self.receiver()?.recv_bytes()
    }

    /// Receives one message of at most `maxlength` bytes (CPython's `recv_bytes(maxlength)`).
    ///
    /// A longer message is [`Error::BadMessageLength`] and its body stays unread, so, as in
    /// CPython, the connection stops being readable ([`Error::WriteOnly`] afterwards), or is
    /// closed if it was read-only.
    pub fn recv_bytes_max(&mut self, maxlength: usize) -> Result<Vec<u8>> {
        let result = self.receiver()?.recv_bytes_max(maxlength);
        if let Err(Error::BadMessageLength { .. }) = &result {
            if self.writable {
                self.readable = false;
            } else {
                self.halves = None;
            }
        }
        result
    }

    /// Receives one message into `buf` (CPython's `recv_bytes_into`); see
    /// [`Receiver::recv_bytes_into`].
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.receiver()?.recv_bytes_into(buf)
    }

    /// Whether there is something to receive, waiting at most `timeout` (CPython's `poll`); see
    /// [`Receiver::poll`].
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        match &self.halves {
            None => Err(Error::Closed),
            Some(_) if !self.readable => Err(Error::WriteOnly),
            Some((_, rx)) => rx.poll(timeout),
        }
    }

    /// Sets the longest message `recv` / `recv_bytes` accept (default: unlimited, as CPython).
    pub fn set_max_message(&mut self, max: u64) {
        if let Some((_, rx)) = &mut self.halves {
            rx.set_max_message(max);
        }
    }

    /// The OS handle (CPython's `fileno()`); [`Error::Closed`] once closed.
    pub fn fileno(&self) -> Result<BorrowedFd<'_>> {
        match &self.halves {
            None => Err(Error::Closed),
            Some((tx, _)) => Ok(tx.stream.as_fd()),
        }
    }

    /// Closes the connection (CPython's `close()`), returning the OS's error if closing failed.
    /// Closing twice is fine. Unread buffered messages are discarded.
    pub fn close(&mut self) -> Result<()> {
        let Some((tx, rx)) = self.halves.take() else {
            return Ok(());
        };
        drop(rx);
        match Arc::try_unwrap(tx.stream) {
            Ok(stream) => Ok(stream.close()?),
            // Unreachable while the halves are private; dropping still closes the handle.
            Err(_) => Ok(()),
        }
    }

    /// Splits the connection into a sending and a receiving half that may live on different
    /// threads. Both must be dropped for the handle to close. Needs an open connection that is
    /// both readable and writable.
    pub fn split(mut self) -> Result<(Sender<C>, Receiver<C>)> {
        match self.halves.take() {
            None => Err(Error::Closed),
            Some(_) if !self.readable => Err(Error::WriteOnly),
            Some(_) if !self.writable => Err(Error::ReadOnly),
            Some(halves) => Ok(halves),
        }
    }

    /// Whether a whole message is already buffered in user space (so a receive will not block).
    pub fn has_buffered_message(&self) -> bool {
        self.halves
            .as_ref()
            .is_some_and(|(_, rx)| rx.has_buffered_frame())
    }

    /// Sets `TCP_NODELAY` (TCP only; other transports ignore it). Off by default, as in
    /// CPython: each message already leaves in one write, and Nagle's algorithm only delays a
    /// small message sent right after another unacknowledged one (write, write, read). Turn it on
    /// for such patterns.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        let (tx, _) = self.halves.as_ref().ok_or(Error::Closed)?;
        Ok(tx.stream.set_nodelay(nodelay)?)
    }

    /// Runs the handshake `f` with a read/write timeout on the socket and Nagle off: a server
    /// answering a pipelined client writes its verdict and its response back to back, which
    /// Nagle and delayed ACKs would stall for 40 ms. Both settings are restored afterwards.
    pub(crate) fn handshake<T>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let is_socket = self
            .halves
            .as_ref()
            .is_some_and(|(tx, _)| matches!(tx.stream.kind(), StreamKind::Tcp | StreamKind::Unix));
        if is_socket {
            self.set_socket_options(timeout, true)?;
        }
        let result = f(self)?;
        if is_socket {
            self.set_socket_options(None, false)?;
        }
        Ok(result)
    }

    fn set_socket_options(&self, timeout: Option<Duration>, nodelay: bool) -> Result<()> {
        let (tx, _) = self.halves.as_ref().ok_or(Error::Closed)?;
        tx.stream.set_read_timeout(timeout)?;
        tx.stream.set_write_timeout(timeout)?;
        tx.stream.set_nodelay(nodelay)?;
        Ok(())
    }
}

impl<C: Codec> conn_auth::Channel for Connection<C> {
    type Error = Error;

    fn send_message(&mut self, message: &[u8]) -> Result<()> {
        self.send_bytes(message)
    }

    fn recv_message(&mut self, max_len: usize) -> Result<Vec<u8>> {
        self.recv_bytes_max(max_len)
    }

    fn send_messages(&mut self, messages: &[&[u8]]) -> Result<()> {
        let tx = self.sender()?;
        write_frames(&mut &*tx.stream, messages).map_err(|e| Error::from_io(e, "write"))
    }
}

impl<C: Codec> AsFd for Connection<C> {
    /// The OS handle.
    ///
    /// # Panics
    /// If the connection is closed; [`Connection::fileno`] returns [`Error::Closed`] instead.
    #[allow(clippy::panic)] // AsFd cannot fail; the panic is documented and fileno() is the fallible way
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self.fileno() {
            Ok(fd) => fd,
            Err(_) => panic!("Connection::as_fd on a closed connection (use fileno())"),
        }
    }
}

impl<C: Codec> AsRawFd for Connection<C> {
    /// The OS handle, or -1 once closed.
    fn as_raw_fd(&self) -> RawFd {
        self.fileno().map_or(-1, |fd| fd.as_raw_fd())
    }
}

impl<C> AsFd for Sender<C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl<C> AsFd for Receiver<C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.reader.get_ref().0.as_fd()
    }
}

impl<C: Codec> crate::Waitable for Connection<C> {
    fn wait_fd(&self) -> Result<BorrowedFd<'_>> {
        self.fileno()
    }

    fn has_buffered(&self) -> bool {
        self.has_buffered_message()
    }
}

impl<C: Codec> crate::Waitable for Receiver<C> {
    fn wait_fd(&self) -> Result<BorrowedFd<'_>> {
        Ok(self.as_fd())
    }

    fn has_buffered(&self) -> bool {
        self.has_buffered_frame()
    }
}
