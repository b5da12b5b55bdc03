//! `Connection`: CPython's `Connection` under tokio, over the same framing core as the blocking
//! one (`conn_framing::Decoder`).

use std::io;
#[cfg(unix)]
use std::io::IoSlice;
use std::sync::Arc;

#[cfg(unix)]
use conn_framing::Header;
use conn_framing::{Codec, Decoder, MessageRead, Need, Pickle};
use conn_pickle::Value as PyValue;
use conn_transport::{Error, Operation, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(unix)]
use conn_transport::engine::{acknowledgement, claimed_handles, dropped_handles, single_handle};
#[cfg(unix)]
use conn_transport::os::HANDLES_ACKNOWLEDGED;
use conn_transport::os::Stream;
use conn_transport::{Handle, OwnedHandle};

use crate::io::Io;

/// A connection to a peer, under tokio: CPython's `Connection` (`send` / `recv` through the
/// codec, `send_bytes` / `recv_bytes`, `poll` as [`readable`](Self::readable)), with the wire
/// bytes of the blocking `conn::Connection`. [`into_split`](Self::into_split) gives owned
/// halves for two tasks.
///
/// # Cancellation
///
/// | method | if its future is dropped before it completes |
/// |---|---|
/// | `recv`, `recv_bytes`, `recv_bytes_max`, `recv_value`, `recv_bytes_into`, `readable` | nothing is lost: bytes already read stay buffered, and the next receive returns the whole message |
/// | `send`, `send_bytes`, `send_value` | if part of the message was written, the connection can no longer send ([`Error::HandOver`]'s reason: the peer would be out of step), as after a blocking send's timeout; if nothing was written, nothing happened |
/// | `recv_handles`, `recv_handle` (Unix) | nothing is lost: the count byte and its descriptors are taken together or not at all |
/// | `send_handles`, `send_handle` (Unix) | the one byte with its descriptors goes whole or not at all |
/// | `send_handle`, `send_handle_to` (Windows) | as `send_bytes`; a handle already duplicated into the peer stays open there |
/// | `recv_handle` (Windows) | as `recv_bytes` until the message arrives; then it completes without waiting |
/// | `send_connection` | as `send_bytes`; the connection handed over is closed (or, if the pickle went out, the peer's to claim) |
/// | `recv_connection` | as `recv_bytes` until the message arrives; dropped while claiming from the sender's sharer, the handed connection is lost |
/// | `close` | the connection is closed when the future is dropped |
///
/// Timeouts are the caller's: wrap a call in `tokio::time::timeout`, which cancels it as above.
pub struct Connection<C = Pickle> {
    tx: Sender<C>,
    rx: Receiver<C>,
}

/// The sending half of a [`Connection`] (see [`Connection::into_split`]).
pub struct Sender<C = Pickle> {
    io: Arc<Io>,
    codec: C,
    /// A send was cut off part way: the peer would read the rest as a new message.
    broken: bool,
    /// The encode buffer, kept between sends while small.
    encoded: Vec<u8>,
    /// CPython's `writable`: false on a read-only end ([`Error::ReadOnly`]).
    writable: bool,
}

/// The receiving half of a [`Connection`] (see [`Connection::into_split`]).
pub struct Receiver<C = Pickle> {
    io: Arc<Io>,
    codec: C,
    decoder: Decoder,
    at_eof: bool,
    /// CPython's `readable`: false on a write-only end ([`Error::WriteOnly`]).
    readable: bool,
}

/// An encode buffer larger than this is not kept between sends.
const KEEP_SEND_BUFFER: usize = 1 << 20;

impl<C: Codec + Clone> Connection<C> {
    /// A connection over a registered stream.
    pub(crate) fn from_io(io: Io, codec: C) -> Self {
        Self::from_parts(Arc::new(io), codec, Decoder::new())
    }

    /// Takes over a blocking connection's stream, registered with the current runtime (call it
    /// inside one), with its codec and message limit. Refused, with the blocking connection
    /// given back, when it holds bytes read ahead or was cut off mid-send, as
    /// [`into_owned_handle`](conn_transport::Connection::into_owned_handle) refuses.
    pub fn from_blocking(
        conn: conn_transport::Connection<C>,
    ) -> std::result::Result<Self, conn_transport::IntoHandleError<C>> {
        let codec = conn.codec().clone();
        let max = conn.max_message();
        let (readable, writable) = (conn.readable(), conn.writable());
        let stream = conn.into_stream()?;
        match Io::new(stream) {
            Ok(io) => {
                let mut c = Self::from_io(io, codec);
                c.set_max_message(max);
                c.set_directions(readable, writable);
                Ok(c)
            }
            Err((e, stream)) => {
                let mut back = conn_transport::Connection::from_stream(stream, codec);
                back.set_max_message(max);
                Err(conn_transport::IntoHandleError::new(back, Error::Io(e)))
            }
        }
    }

    /// Gives the stream back as a blocking connection, taken off the runtime, with its codec
    /// and message limit. Refused (the connection given back) when bytes were read ahead or a
    /// send was cut off part way.
    pub fn into_blocking(self) -> std::result::Result<conn_transport::Connection<C>, Box<Self>> {
        let Self { tx, rx } = self;
        if tx.broken || !rx.decoder.between_frames() {
            return Err(Box::new(Self { tx, rx }));
        }
        let Sender {
            io: tx_io,
            writable,
            ..
        } = tx;
        drop(tx_io);
        let Receiver {
            io,
            codec,
            decoder,
            readable,
            ..
        } = rx;
        match Arc::try_unwrap(io) {
            Ok(io) => {
                let mut conn = conn_transport::Connection::from_stream(io.into_stream(), codec);
                // Never both false: a connection keeps at least one direction.
                let _ = conn.narrow_directions(readable, writable);
                conn.set_max_message(decoder.max_message());
                Ok(conn)
            }
            // Both halves were taken apart above: the stream has no other owner.
            Err(io) => {
                let mut back = Self::from_parts(io, codec, decoder);
                back.set_directions(readable, writable);
                Err(Box::new(back))
            }
        }
    }

    fn from_parts(io: Arc<Io>, codec: C, decoder: Decoder) -> Self {
        Self {
            tx: Sender {
                io: Arc::clone(&io),
                codec: codec.clone(),
                broken: false,
                encoded: Vec::new(),
                writable: true,
            },
            rx: Receiver {
                io,
                codec,
                decoder,
                at_eof: false,
                readable: true,
            },
        }
    }
}

impl<C: Codec> Connection<C> {
    /// Sends a value through the codec (CPython's `send(obj)`).
    pub async fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.tx.send(value).await
    }

    /// Sends one message of raw bytes (CPython's `send_bytes`).
    pub async fn send_bytes(&mut self, buf: &[u8]) -> Result<()> {
        self.tx.send_bytes(buf).await
    }

    /// Receives a value through the codec (CPython's `recv()`).
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        self.rx.recv().await
    }

    /// Receives one message's bytes (CPython's `recv_bytes()`).
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        self.rx.recv_bytes().await
    }

    /// Receives one message's bytes, refusing one longer than `maxlength` (CPython's
    /// `recv_bytes(maxlength)`: the connection is then out of step).
    pub async fn recv_bytes_max(&mut self, maxlength: usize) -> Result<Vec<u8>> {
        self.rx.recv_bytes_max(maxlength).await
    }

    /// Receives one message into `buf` and returns its length (CPython's `recv_bytes_into`);
    /// one that does not fit is returned whole in [`Error::BufferTooShort`].
    pub async fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.rx.recv_bytes_into(buf).await
    }

    /// Waits until a receive would not wait: a whole message is buffered, or end of file or an
    /// error is there to report (CPython's `poll(None)`; `poll(t)` is this under
    /// `tokio::time::timeout`).
    pub async fn readable(&mut self) -> Result<()> {
        self.rx.readable().await
    }

    /// Sets the longest message accepted; longer ones are [`Error::BadMessageLength`].
    pub fn set_max_message(&mut self, max: u64) {
        self.rx.decoder.set_max_message(max);
    }

    /// Splits the connection into owned halves, for one task sending and another receiving.
    pub fn into_split(self) -> (Sender<C>, Receiver<C>) {
        (self.tx, self.rx)
    }

    /// Puts two halves of the same connection back together; halves of different connections
    /// are given back.
    #[expect(
        clippy::type_complexity,
        reason = "the two halves, given back as they came"
    )]
    pub fn reunite(
        tx: Sender<C>,
        rx: Receiver<C>,
    ) -> std::result::Result<Self, Box<(Sender<C>, Receiver<C>)>> {
        if Arc::ptr_eq(&tx.io, &rx.io) {
            Ok(Self { tx, rx })
        } else {
            Err(Box::new((tx, rx)))
        }
    }

    /// Closes the connection (CPython's `close()`): the peer sees end of file. Unread buffered
    /// messages are discarded.
    pub async fn close(self) -> Result<()> {
        let Self { tx, rx } = self;
        drop(rx);
        drop(tx);
        Ok(())
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.tx.codec
    }

    /// Whether a send was cut off part way, so the connection can no longer send.
    pub fn is_broken(&self) -> bool {
        self.tx.broken
    }

    /// Whether it may receive (CPython's `readable`): false on the write end of a one-way pair
    /// or a connection handed over write-only, where receives are [`Error::WriteOnly`].
    pub fn is_readable(&self) -> bool {
        self.rx.readable
    }

    /// Whether it may send (CPython's `writable`): false on a read-only end, where sends are
    /// [`Error::ReadOnly`].
    pub fn is_writable(&self) -> bool {
        self.tx.writable
    }

    /// Sets the directions (a `pipe_simplex` end's, or those a conversion carries over).
    pub(crate) fn set_directions(&mut self, readable: bool, writable: bool) {
        self.rx.readable = readable;
        self.tx.writable = writable;
    }

    /// The stream underneath.
    pub(crate) fn stream(&self) -> &Stream {
        self.tx.io.stream()
    }

    /// Sends messages one after another in as few writes as possible (the handshake's verdict
    /// and challenge leave together).
    pub(crate) async fn send_all(&mut self, messages: &[Vec<u8>]) -> Result<()> {
        let slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        self.tx.write_frames(&slices).await
    }
}

/// Connections handed between processes as CPython hands them (see the blocking
/// `send_connection` and `conn_transport::sharing`).
impl<C: Codec + Clone> Connection<C> {
    /// Hands `conn` (a blocking connection, between messages) to the peer as CPython's
    /// `send(conn)` does; see the blocking `send_connection`. Take an async connection's
    /// stream back first with [`into_blocking`](Self::into_blocking).
    pub async fn send_connection<D: Codec + Clone>(
        &mut self,
        conn: conn_transport::Connection<D>,
    ) -> Result<()> {
        let (readable, writable) = (conn.readable(), conn.writable());
        let handle = conn.into_owned_handle()?;
        let handover = conn_transport::sharing::Handover::prepare(handle, readable, writable)?;
        self.send_bytes(handover.pickle()).await?;
        handover.sent();
        Ok(())
    }

    /// Receives a connection handed over as CPython hands one, with its directions, as an async
    /// connection speaking `codec` (registered with the current runtime); see the blocking
    /// `recv_connection`. The claim from the sender's resource sharer runs on tokio's blocking
    /// pool, each of its steps within `conn_transport::sharing::CLAIM_TIMEOUT`.
    pub async fn recv_connection<D: Codec + Clone + Send + 'static>(
        &mut self,
        codec: D,
    ) -> Result<Connection<D>> {
        let message = self.recv_bytes().await?;
        let handed = conn_transport::sharing::wire::parse_connection(&message)?;
        let peer = self.stream().peer_pid();
        let blocking = tokio::task::spawn_blocking(move || {
            let stream = conn_transport::sharing::take_connection(
                &handed,
                peer,
                Some(conn_transport::sharing::CLAIM_TIMEOUT),
            )?;
            conn_transport::Connection::from_stream(stream, codec)
                .with_directions(handed.readable, handed.writable)
        })
        .await
        .map_err(|e| Error::Io(io::Error::other(e)))??;
        Connection::from_blocking(blocking).map_err(Error::from)
    }
}

/// Handle passing on Windows, wire-compatible with CPython's `multiprocessing.reduction`: a
/// pickled `DupHandle`, the handle duplicated into the receiver's process.
#[cfg(windows)]
impl<C: Codec> Connection<C> {
    /// Sends one OS handle to the process at the other end of this named pipe (CPython's
    /// `reduction.send_handle`); over TCP, use [`send_handle_to`](Self::send_handle_to).
    pub async fn send_handle(&mut self, handle: Handle<'_>) -> Result<()> {
        let pid = conn_transport::sharing::handle_destination(self.stream().peer_pid())?;
        self.send_handle_to(handle, pid).await
    }

    /// Sends one OS handle to process `pid` (CPython's `reduction.send_handle(conn, handle,
    /// pid)`).
    pub async fn send_handle_to(&mut self, handle: Handle<'_>, pid: u32) -> Result<()> {
        let pickle = conn_transport::sharing::send_handle_pickle(handle, pid)?;
        self.send_bytes(&pickle).await
    }

    /// Receives one OS handle sent as CPython's `reduction.send_handle` sends it (a pickled
    /// `DupHandle`); see the blocking `recv_handle`.
    pub async fn recv_handle(&mut self) -> Result<OwnedHandle> {
        let message = self.recv_bytes().await?;
        let peer = self.stream().peer_pid();
        conn_transport::sharing::handle_from_pickle(&message, peer)
    }
}

/// Descriptor passing, wire-compatible with CPython's `multiprocessing.reduction` (Unix
/// sockets): a one-byte message (the count, mod 256) carrying the descriptors; on macOS the
/// receiver answers `b"A"` and the sender waits for it, as CPython does there.
#[cfg(unix)]
impl<C: Codec> Connection<C> {
    /// Sends file descriptors (CPython's `reduction.sendfds`); see the blocking
    /// `send_handles`. Cancel-safe: the one byte goes whole or not at all.
    pub async fn send_handles(&mut self, handles: &[Handle<'_>]) -> Result<()> {
        if self.tx.broken {
            return Err(Error::HandOver {
                read_ahead: 0,
                cut_off: true,
            });
        }
        let count = [(handles.len() % 256) as u8];
        match self.tx.io.send_handles(&count, handles).await {
            Ok(1) => {}
            Ok(_) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
            Err(e) => return Err(Error::from_io(e, Operation::Write)),
        }
        if HANDLES_ACKNOWLEDGED {
            let mut ack = [0u8; 1];
            let n = self
                .tx
                .io
                .read(&mut ack)
                .await
                .map_err(|e| Error::from_io(e, Operation::Read))?;
            acknowledgement(n, ack[0])?;
        }
        Ok(())
    }

    /// Sends one file descriptor (CPython's `reduction.send_handle`).
    pub async fn send_handle(&mut self, handle: Handle<'_>) -> Result<()> {
        self.send_handles(&[handle]).await
    }

    /// Receives at most `max` file descriptors sent with `send_handles` or CPython's
    /// `sendfds` / `send_handle`, in step with the messages around them: descriptors that came
    /// with bytes read ahead are kept by the stream (at most its unclaimed limit) and claimed
    /// here. A plain byte where descriptors were expected, or more than `max`, is
    /// [`Error::HandleTransfer`]; descriptors closed on arrival over the limit are
    /// [`Error::HandlesDropped`]. Cancel-safe.
    pub async fn recv_handles(&mut self, max: usize) -> Result<Vec<OwnedHandle>> {
        dropped_handles(self.rx.io.stream())?;
        let (count, handles) = match self.rx.decoder.take_raw_byte() {
            Some(count) => (
                count,
                self.rx
                    .io
                    .stream()
                    .take_received_handles()
                    .unwrap_or_default(),
            ),
            None if self.rx.at_eof => return Err(Error::Eof),
            None => {
                let mut one = [0u8; 1];
                let n = self
                    .rx
                    .io
                    .read(&mut one)
                    .await
                    .map_err(|e| Error::from_io(e, Operation::Read))?;
                let handles = self
                    .rx
                    .io
                    .stream()
                    .take_received_handles()
                    .unwrap_or_default();
                if n == 0 && handles.is_empty() {
                    self.rx.at_eof = true;
                    return Err(Error::Eof);
                }
                dropped_handles(self.rx.io.stream())?;
                (one[0], handles)
            }
        };
        if HANDLES_ACKNOWLEDGED {
            let ack = [IoSlice::new(b"A")];
            self.tx
                .io
                .write_vectored(&ack)
                .await
                .map_err(|e| Error::from_io(e, Operation::Write))?;
        }
        claimed_handles(count, handles, max)
    }

    /// Receives one file descriptor (CPython's `reduction.recv_handle`).
    pub async fn recv_handle(&mut self) -> Result<OwnedHandle> {
        single_handle(self.recv_handles(1).await?)
    }

    /// Sets how many descriptors that arrive unasked with bytes read ahead are kept for a
    /// later [`recv_handles`](Self::recv_handles) (default 64); beyond it they are closed on
    /// arrival and reported.
    pub fn set_max_unclaimed_handles(&mut self, max: usize) {
        self.rx.io.stream().set_max_unclaimed_handles(max);
    }
}

impl Connection<Pickle> {
    /// Sends a Python value as a pickle.
    pub async fn send_value(&mut self, value: &PyValue) -> Result<()> {
        self.send(value).await
    }

    /// Receives a pickle as a Python value (nothing runs, nothing is lost).
    pub async fn recv_value(&mut self) -> Result<PyValue> {
        self.recv().await
    }
}

impl<C: Codec> Sender<C> {
    /// Sends a value through the codec; see [`Connection::send`].
    pub async fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let mut encoded = std::mem::take(&mut self.encoded);
        encoded.clear();
        let result = match self.codec.encode_into(value, &mut encoded) {
            Ok(()) => self.write_frames(&[&encoded]).await,
            Err(e) => Err(Error::Codec(e)),
        };
        if encoded.capacity() <= KEEP_SEND_BUFFER {
            self.encoded = encoded;
        }
        result
    }

    /// Sends one message of raw bytes; see [`Connection::send_bytes`].
    pub async fn send_bytes(&mut self, buf: &[u8]) -> Result<()> {
        self.write_frames(&[buf]).await
    }

    /// Whether a send was cut off part way (see [`Connection::is_broken`]).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Writes frames, each header with its payload, in vectored writes. The connection is
    /// marked broken from the first byte until the last: a future dropped in between leaves it
    /// so.
    async fn write_frames(&mut self, payloads: &[&[u8]]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        if self.broken {
            return Err(Error::HandOver {
                read_ahead: 0,
                cut_off: true,
            });
        }
        #[cfg(windows)]
        {
            // Whole writes that keep their bytes (see `io/windows.rs`); `broken` is set once
            // the first write is under way, so a dropped future leaves it set, and a send that
            // completes clears it.
            self.io
                .write_frames(payloads, &mut self.broken)
                .await
                .map_err(|e| Error::from_io(e, Operation::Write))?;
            self.broken = false;
            Ok(())
        }
        #[cfg(unix)]
        self.write_frames_vectored(payloads).await
    }

    /// Writes frames as vectored writes of headers and payloads, no copy.
    #[cfg(unix)]
    async fn write_frames_vectored(&mut self, payloads: &[&[u8]]) -> Result<()> {
        // One message, the usual case: header and payload from the stack, no allocation.
        if let [payload] = payloads {
            let header = Header::new(payload.len() as u64);
            let mut slices = [IoSlice::new(header.as_bytes()), IoSlice::new(payload)];
            return self.write_slices(&mut slices).await;
        }
        let headers: Vec<Header> = payloads
            .iter()
            .map(|p| Header::new(p.len() as u64))
            .collect();
        let mut slices: Vec<IoSlice<'_>> = headers
            .iter()
            .zip(payloads)
            .flat_map(|(h, p)| [IoSlice::new(h.as_bytes()), IoSlice::new(p)])
            .collect();
        self.write_slices(&mut slices).await
    }

    /// Writes every byte of `bufs`, marking the connection broken from the first byte to the
    /// last (a future dropped in between leaves it so).
    #[cfg(unix)]
    async fn write_slices(&mut self, mut bufs: &mut [IoSlice<'_>]) -> Result<()> {
        let mut started = false;
        while !bufs.is_empty() {
            let n = match self.io.write_vectored(bufs).await {
                Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                other => other,
            };
            match n {
                Ok(n) => {
                    if !started {
                        started = true;
                        self.broken = true;
                    }
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) => return Err(Error::from_io(e, Operation::Write)),
            }
        }
        self.broken = false;
        Ok(())
    }
}

impl<C: Codec> Receiver<C> {
    /// Receives a value through the codec; see [`Connection::recv`].
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        self.frame_ready(None).await?;
        let frame = self
            .decoder
            .next_frame_ref(None)
            .map_err(|e| Error::from_frame(e, Operation::Read))?
            .unwrap_or_default();
        let value = self.codec.decode(frame).map_err(Error::Codec);
        self.decoder.release_if_idle();
        value
    }

    /// Receives one message's bytes; see [`Connection::recv_bytes`].
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        self.take_frame(None).await
    }

    /// Receives one message's bytes, refusing one longer than `maxlength`; see
    /// [`Connection::recv_bytes_max`].
    pub async fn recv_bytes_max(&mut self, maxlength: usize) -> Result<Vec<u8>> {
        self.take_frame(Some(maxlength as u64)).await
    }

    /// Receives one message into `buf`; see [`Connection::recv_bytes_into`].
    pub async fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.frame_ready(None).await?;
        let n = self
            .decoder
            .next_frame_into(buf)
            .map_err(|e| Error::from_frame(e, Operation::Read))?;
        Ok(n.unwrap_or_default())
    }

    /// Waits until a receive would not wait; see [`Connection::readable`].
    pub async fn readable(&mut self) -> Result<()> {
        match self.frame_ready(None).await {
            // The receive reports it.
            Err(_) | Ok(()) => Ok(()),
        }
    }

    async fn take_frame(&mut self, maxlength: Option<u64>) -> Result<Vec<u8>> {
        self.frame_ready(maxlength).await?;
        let frame = self
            .decoder
            .next_frame_ref(maxlength)
            .map_err(|e| Error::from_frame(e, Operation::Read))?
            .unwrap_or_default()
            .to_vec();
        self.decoder.release_if_idle();
        Ok(frame)
    }

    /// Reads until the next frame is whole, or says why it cannot be (end of file inside or
    /// between frames, a limit, an I/O error). Cancel-safe: every byte read is in the decoder
    /// before the next await.
    async fn frame_ready(&mut self, maxlength: Option<u64>) -> Result<()> {
        if !self.readable {
            return Err(Error::WriteOnly);
        }
        loop {
            match self.decoder.need(maxlength) {
                Ok(Need::Nothing) => return Ok(()),
                // Taking the frame reports it (and puts the stream out of step).
                Err(_) => {
                    return self
                        .decoder
                        .next_frame_ref(maxlength)
                        .map(|_| ())
                        .map_err(|e| Error::from_frame(e, Operation::Read));
                }
                Ok(Need::Header { .. } | Need::Body { .. }) => {}
            }
            if self.at_eof {
                return Err(match self.decoder.finish() {
                    Ok(()) => Error::Eof,
                    Err(e) => Error::from_frame(e, Operation::Read),
                });
            }
            let spare = self.decoder.spare(true);
            let got = if self.io.kind().keeps_messages() {
                self.io.read_message(spare).await
            } else {
                self.io
                    .read(spare)
                    .await
                    .map(|len| MessageRead { len, begins: None })
            }
            .map_err(|e| Error::from_io(e, Operation::Read))?;
            if let Some(total) = got.begins {
                self.decoder.begin_message(total);
            }
            self.decoder.commit(got.len);
            // A zero-length message (`begins: Some(0)`) is a message, not the end.
            if got.len == 0 && got.begins.is_none() {
                self.at_eof = true;
            }
        }
    }
}

impl<C> std::fmt::Debug for Connection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("kind", &self.tx.io.stream().kind())
            .field("buffered", &self.rx.decoder.buffered())
            .field("broken", &self.tx.broken)
            .finish_non_exhaustive()
    }
}

impl<C> std::fmt::Debug for Sender<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<C> std::fmt::Debug for Receiver<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("buffered", &self.decoder.buffered())
            .finish_non_exhaustive()
    }
}
