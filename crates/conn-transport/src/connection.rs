//! `Connection`: a transport, CPython's framing and a codec. `Sender` and `Receiver` are its two
//! halves, which `split` hands to different threads.

use std::borrow::Cow;
use std::io::{self, IoSlice, Read};
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::os::{Stream, StreamKind};
use crate::{Handle, OwnedHandle, deadline_after, time_left};
use conn_framing::{
    Codec, FrameError, FrameReader, MessageRead, Need, with_frame_slices, write_frame, write_frames,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::messages::MessageCursor;
use crate::transfer::{claimed_handles, dropped_handles};
use crate::{DefaultCodec, Error, Operation, Pickle, PyValue, Result};

/// An encode buffer larger than this is not kept between sends.
const KEEP_SEND_BUFFER: usize = 1 << 20;

/// The receiving side's view of the stream (shared by the two halves of a split connection):
/// its bytes as they come, or, for a message-mode pipe, its messages, each read with its length
/// for the framing core (see [`MessageCursor`]).
#[derive(Debug)]
struct Shared {
    stream: Arc<Stream>,
    messages: Option<Box<MessageCursor>>,
}

impl Shared {
    fn new(stream: Arc<Stream>) -> Self {
        let messages = stream
            .kind()
            .keeps_messages()
            .then(Box::<MessageCursor>::default);
        Self { stream, messages }
    }

    /// One read that never blocks: `WouldBlock` if nothing has arrived, 0 at EOF.
    fn read_nonblocking(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read_nonblocking(buf)
    }

    /// One message read that never blocks (see [`MessageCursor::read`]).
    fn read_message_nonblocking(&mut self, buf: &mut [u8]) -> io::Result<MessageRead> {
        match &mut self.messages {
            Some(m) => m.read(&self.stream, buf, Some(Duration::ZERO)),
            None => Err(crate::common::not_a_message_pipe()),
        }
    }

    /// One message read, waiting as long as it takes (the framing core's blocking path).
    fn read_message(r: &mut Self, buf: &mut [u8]) -> io::Result<MessageRead> {
        match &mut r.messages {
            Some(m) => m.read(&r.stream, buf, None),
            None => Err(crate::common::not_a_message_pipe()),
        }
    }

    /// Whether a read would not block, waiting at most `timeout`.
    fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.stream.wait_readable(timeout)
    }
}

impl Read for Shared {
    /// Bytes of the stream, or of the current pipe message only (a large body's rest).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.messages {
            None => (&*self.stream).read(buf),
            Some(m) => m.read_body(&self.stream, buf, None),
        }
    }
}

/// Reads a large body straight into its vector without zeroing it first (bytes streams), or
/// through the message cursor in pieces.
fn append_from_stream(r: &mut Shared, v: &mut Vec<u8>, n: u64) -> io::Result<usize> {
    if r.messages.is_none() {
        return r.stream.read_append(v, n);
    }
    let start = v.len();
    while ((v.len() - start) as u64) < n {
        let want = (n - (v.len() - start) as u64).min(APPEND_STEP as u64) as usize;
        let at = v.len();
        v.resize(at + want, 0);
        match r.read(&mut v[at..]) {
            Ok(0) => {
                v.truncate(at);
                break;
            }
            Ok(got) => v.truncate(at + got),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => v.truncate(at),
            Err(e) => {
                v.truncate(at);
                return Err(e);
            }
        }
    }
    Ok(v.len() - start)
}

/// How much one piece of a large message body grows the buffer by (message-mode pipes).
const APPEND_STEP: usize = 1 << 20;

/// The sending half of a connection: `send` and `send_bytes`.
pub struct Sender<C = DefaultCodec> {
    stream: Arc<Stream>,
    codec: C,
    out: Vec<u8>,
    write_timeout: Option<Duration>,
    /// A timed-out write left part of a frame on the wire: the peer is out of step.
    broken: bool,
}

/// The receiving half of a connection: `recv`, `recv_bytes*`, `try_recv*` and `poll`.
pub struct Receiver<C = DefaultCodec> {
    inbound: Inbound,
    codec: C,
}

/// The receiving shell around the framing core: blocking, timed and non-blocking reads.
#[derive(Debug)]
struct Inbound {
    reader: FrameReader<Shared>,
    read_timeout: Option<Duration>,
    /// The handle reported end of file while reading ahead (the next receive reports it).
    at_eof: bool,
    /// An error met while reading ahead, for the next receive to report.
    pending: Option<io::Error>,
}

impl<C: Codec> Sender<C> {
    /// Sends file descriptors to the peer (CPython's `multiprocessing.reduction.sendfds(sock,
    /// fds)`; `send_handle(conn, handle, pid)` for one): one byte, their number modulo 256,
    /// with the descriptors attached (`SCM_RIGHTS`), in one `sendmsg`, between messages. The
    /// peer gets its own copies; ours stay open. Unix sockets only (others: `Unsupported`); 1 to
    /// 253 descriptors. A CPython peer receives them with `recvfds` / `recv_handle`, a Rust one
    /// with [`Receiver::recv_handles`].
    ///
    /// On macOS, as CPython there, the peer acknowledges each transfer with the byte `b"A"` and
    /// this waits for it (within the write timeout); see
    /// [`HANDLES_ACKNOWLEDGED`](crate::os::HANDLES_ACKNOWLEDGED).
    pub fn send_handles(&mut self, handles: &[Handle<'_>]) -> Result<()> {
        self.send_handles_acknowledged(handles, crate::os::HANDLES_ACKNOWLEDGED)
    }

    fn send_handles_acknowledged(
        &mut self,
        handles: &[Handle<'_>],
        acknowledged: bool,
    ) -> Result<()> {
        self.check_in_step()?;
        // One byte: it goes whole or not at all, so waiting for room is all the write timeout
        // has to bound.
        if let Some(timeout) = self.write_timeout {
            if !self.stream.wait_writable(Some(timeout))? {
                return Err(Error::Timeout {
                    operation: Operation::Write,
                });
            }
        }
        let count = [(handles.len() % 256) as u8];
        loop {
            match self.stream.send_handles(&count, handles) {
                Ok(1) => break,
                Ok(_) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::from_io(e, Operation::Write)),
            }
        }
        if acknowledged {
            self.wait_for_acknowledgement()?;
        }
        Ok(())
    }

    /// Reads the peer's `b"A"` for a transfer (CPython's `sock.recv(1) != b'A'` check on
    /// macOS), straight from the socket, within the write timeout.
    fn wait_for_acknowledgement(&mut self) -> Result<()> {
        if let Some(timeout) = self.write_timeout {
            if !self.stream.wait_readable(Some(timeout))? {
                return Err(Error::Timeout {
                    operation: Operation::Read,
                });
            }
        }
        let mut ack = [0u8; 1];
        let n = loop {
            match (&*self.stream).read(&mut ack) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other.map_err(|e| Error::from_io(e, Operation::Read))?,
            }
        };
        crate::transfer::acknowledgement(n, ack[0])
    }

    /// Sends one OS handle (CPython's `reduction.send_handle`). On Unix, one descriptor as
    /// [`send_handles`](Self::send_handles) sends it. On Windows, as CPython there: the handle
    /// is duplicated into the peer's process and a pickled `reduction.DupHandle` naming it is
    /// sent, which the peer's `recv_handle` takes; the peer's process is the one at the other
    /// end of this connection's named pipe (over TCP it is not known: use
    /// [`send_handle_to`](Self::send_handle_to)). Only an OS handle or socket, not one of this
    /// crate's streams, can go this way on Windows.
    pub fn send_handle(&mut self, handle: Handle<'_>) -> Result<()> {
        #[cfg(windows)]
        let sent = crate::sharing::handle_destination(self.stream.peer_pid())
            .and_then(|pid| self.send_handle_to(handle, pid));
        #[cfg(unix)]
        let sent = self.send_handles(&[handle]);
        sent
    }

    /// Sends one OS handle to process `pid` (CPython's `send_handle(conn, handle,
    /// destination_pid)`). On Unix the pid is not used, as in CPython: this is
    /// [`send_handle`](Self::send_handle). On Windows the handle is duplicated into process
    /// `pid` (which must then receive it: a handle duplicated into a process that never takes
    /// it stays open there, as in CPython).
    pub fn send_handle_to(&mut self, handle: Handle<'_>, pid: u32) -> Result<()> {
        #[cfg(windows)]
        let sent = {
            let pickle = crate::sharing::send_handle_pickle(handle, pid)?;
            self.send_bytes(&pickle)
        };
        #[cfg(unix)]
        let sent = {
            let _ = pid;
            self.send_handles(&[handle])
        };
        sent
    }

    /// Refuses to write after a send cut off part way left the peer out of step.
    fn check_in_step(&self) -> Result<()> {
        if self.broken {
            Err(Error::Framing(FrameError::Desynchronized))
        } else {
            Ok(())
        }
    }

    /// Sends `value` encoded by the codec (CPython's `send(obj)`). An encoding error sends
    /// nothing.
    pub fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.out.clear();
        self.codec.encode_into(value, &mut self.out)?;
        self.send_encoded()
    }

    /// Sends what was encoded into `self.out`, then drops a large encode buffer.
    fn send_encoded(&mut self) -> Result<()> {
        let out = std::mem::take(&mut self.out);
        let sent = self.write_messages(&[&out]);
        self.out = out;
        if self.out.capacity() > KEEP_SEND_BUFFER {
            self.out = Vec::new();
        }
        sent
    }

    /// Sends one message (CPython's `send_bytes(buf)`; slice `buf` for `offset`/`size`).
    /// Header and payload leave in one write.
    pub fn send_bytes(&mut self, buf: &[u8]) -> Result<()> {
        self.write_messages(&[buf])
    }

    /// Sets how long a send may wait for room in the OS buffer (`None`, the default: as long
    /// as it takes, as CPython). A send that times out part-way has put part of a frame on the
    /// wire: the connection can no longer send ([`Error::Framing`] afterwards).
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.write_timeout = timeout;
    }

    /// Writes whole frames: blocking, or under the write timeout with non-blocking writes.
    fn write_messages(&mut self, payloads: &[&[u8]]) -> Result<()> {
        self.check_in_step()?;
        if self.stream.kind().keeps_messages() {
            return self.write_pipe_messages(payloads);
        }
        let Some(deadline) = deadline_after(self.write_timeout) else {
            let written = match payloads {
                [one] => write_frame(&mut &*self.stream, one),
                many => write_frames(&mut &*self.stream, many),
            };
            return written.map_err(|e| Error::from_io(e, Operation::Write));
        };
        let stream = &*self.stream;
        let broken = &mut self.broken;
        with_frame_slices(payloads, |slices| {
            write_until(stream, slices, deadline, broken)
        })
    }
}

impl<C> Sender<C> {
    /// A message-mode pipe: each payload is one pipe message with no header, as CPython's
    /// `PipeConnection` sends it; all of them within the write timeout. A write cut off by the
    /// timeout may have reached the peer in part: the connection can no longer send.
    fn write_pipe_messages(&mut self, payloads: &[&[u8]]) -> Result<()> {
        let deadline = deadline_after(self.write_timeout);
        for payload in payloads {
            let left = time_left(deadline);
            if left.is_some_and(|l| l.is_zero()) {
                return Err(Error::Timeout {
                    operation: Operation::Write,
                });
            }
            if let Err(e) = self.stream.write_message(payload, left) {
                self.broken = e.kind() == io::ErrorKind::TimedOut;
                return Err(Error::from_io(e, Operation::Write));
            }
        }
        Ok(())
    }
}

/// Writes `bufs` whole before `deadline`, with non-blocking writes: what fits now, waiting for
/// room only when nothing does. Sets `broken` if it fails after part of them went out.
fn write_until(
    stream: &Stream,
    mut bufs: &mut [IoSlice<'_>],
    deadline: Instant,
    broken: &mut bool,
) -> Result<()> {
    let total: usize = bufs.iter().map(|s| s.len()).sum();
    let mut sent = 0;
    while !bufs.is_empty() {
        let step = match stream.write_vectored_nonblocking(bufs) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = time_left(Some(deadline)).unwrap_or_default();
                if !left.is_zero() && stream.wait_writable(Some(left)).map_err(Error::Io)? {
                    continue;
                }
                Err(io::ErrorKind::TimedOut.into())
            }
            other => other,
        };
        match step {
            Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                sent += n;
                IoSlice::advance_slices(&mut bufs, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                *broken = sent > 0 && sent < total;
                return Err(Error::from_io(e, Operation::Write));
            }
        }
    }
    Ok(())
}

impl Inbound {
    /// Reads what has arrived without waiting, and says whether a receive would now return
    /// without waiting: a whole message (or a limit error) buffered, end of file, or an error.
    fn pump(&mut self) -> Result<bool> {
        self.read_ahead(None, Some(Instant::now()))
    }

    /// Makes sure the next frame can be read without waiting past the read timeout.
    fn ready_to_read(&mut self, maxlength: Option<u64>) -> Result<()> {
        let Some(timeout) = self.read_timeout else {
            return Ok(());
        };
        if self.read_ahead(maxlength, deadline_after(Some(timeout)))? {
            Ok(())
        } else {
            Err(Error::Timeout {
                operation: Operation::Read,
            })
        }
    }

    /// Reads into the buffer until the next frame is whole (or an error or EOF is ready to
    /// report), waiting until `deadline` at most (`None`: no limit). False if time ran out.
    fn read_ahead(&mut self, maxlength: Option<u64>, deadline: Option<Instant>) -> Result<bool> {
        loop {
            if self.pending.is_some() || self.at_eof {
                return Ok(true);
            }
            // Peek: an error (a message over `maxlength`) is for the read that follows to
            // report; asking must not turn it into "out of step".
            match self.reader.decoder().need(maxlength) {
                Ok(Need::Nothing) | Err(_) => return Ok(true),
                Ok(_) => {}
            }
            // Read what is there without waiting; wait only when nothing is. A read that did
            // not fill the room it had emptied the handle: the frame is still partial, so wait
            // for more without asking the OS again (`poll(2)` is level-triggered: an end of file
            // behind the bytes makes it return at once). Not waiting, ask once more.
            let mut room = 0;
            // Whether the handle looks drained, and whether the OS said so (`WouldBlock`)
            // rather than a short read suggesting it.
            let filled = if self.reader.get_ref().messages.is_some() {
                self.reader
                    .fill_message_once_with(true, |r, buf| {
                        room = buf.len();
                        r.read_message_nonblocking(buf)
                    })
                    // A message begun, even an empty one, is progress, not the end.
                    .map(|got| got.len + usize::from(got.begins.is_some()))
            } else {
                self.reader.fill_once_with(true, |r, buf| {
                    room = buf.len();
                    r.read_nonblocking(buf)
                })
            };
            let (drained, reported) = match filled {
                Ok(0) => {
                    self.at_eof = true;
                    (false, false)
                }
                Ok(n) => {
                    let short = n < room
                        && matches!(
                            self.reader.decoder().need(maxlength),
                            Ok(Need::Header { .. } | Need::Body { .. })
                        );
                    (short, false)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => (false, false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => (true, true),
                Err(e) => {
                    self.pending = Some(e);
                    (false, false)
                }
            };
            if drained {
                let left = time_left(deadline);
                if left.is_some_and(|l| l.is_zero()) {
                    // Not waiting: say "not yet" only once the OS has said `WouldBlock`. A
                    // short read may have left an end of file behind it, and an edge-triggered
                    // poller (the listener's, a `WaitSet`) reports no new edge for it: the
                    // close would go unnoticed until a deadline.
                    if !reported && self.reader.get_ref().messages.is_none() {
                        continue;
                    }
                    return Ok(false);
                }
                if !self.reader.get_ref().wait_readable(left)? {
                    return Ok(false);
                }
            }
        }
    }

    /// Hands the next frame to `take` (borrowed from the buffer when it is whole there), then
    /// frees the buffer if that emptied it.
    fn with_frame<T>(
        &mut self,
        maxlength: Option<u64>,
        take: impl FnOnce(Cow<'_, [u8]>) -> T,
    ) -> Result<T> {
        if let Some(e) = self.pending.take() {
            return Err(Error::from_io(e, Operation::Read));
        }
        self.ready_to_read(maxlength)?;
        let taken = take(self.reader.read_frame_ref(maxlength)?);
        self.reader.decoder_mut().release_if_idle();
        Ok(taken)
    }
}

impl<C: Codec> Receiver<C> {
    fn new(stream: Arc<Stream>, codec: C) -> Self {
        let keeps_messages = stream.kind().keeps_messages();
        let mut reader = FrameReader::new(Shared::new(stream));
        reader.set_append(append_from_stream);
        if keeps_messages {
            reader.set_messages(Shared::read_message);
        }
        Self {
            inbound: Inbound {
                reader,
                read_timeout: None,
                at_eof: false,
                pending: None,
            },
            codec,
        }
    }

    /// Receives file descriptors sent with [`Sender::send_handles`] or CPython's
    /// `multiprocessing.reduction.sendfds` / `send_handle` (CPython's `recvfds(sock, size)`,
    /// `recv_handle(conn)`): at most `max`, owned by the caller. Call it where the peer sends
    /// them, between messages. Unix sockets only. Descriptors that arrived while a message was
    /// read ahead were kept for this call, not lost; ones nobody asks for are closed with the
    /// connection. A plain byte where handles were expected, a count that does not match, or
    /// more than `max` is [`Error::HandleTransfer`], and whatever arrived is closed.
    ///
    /// Descriptors that arrived unasked and were closed (over the connection's limit, or a
    /// transfer the kernel truncated) are reported here first, as [`Error::HandlesDropped`].
    /// On macOS each transfer is acknowledged with `b"A"`, as CPython does there.
    pub fn recv_handles(&mut self, max: usize) -> Result<Vec<OwnedHandle>> {
        self.recv_handles_acknowledged(max, crate::os::HANDLES_ACKNOWLEDGED)
    }

    fn recv_handles_acknowledged(
        &mut self,
        max: usize,
        acknowledged: bool,
    ) -> Result<Vec<OwnedHandle>> {
        if let Some(e) = self.inbound.pending.take() {
            return Err(Error::from_io(e, Operation::Read));
        }
        let stream = Arc::clone(&self.inbound.reader.get_ref().stream);
        dropped_handles(&stream)?;
        let (count, handles) = match self.inbound.reader.decoder_mut().take_raw_byte() {
            Some(count) => (count, stream.take_received_handles().unwrap_or_default()),
            None if self.inbound.at_eof => return Err(Error::Eof),
            None => {
                if let Some(timeout) = self.inbound.read_timeout {
                    if !stream.wait_readable(Some(timeout))? {
                        return Err(Error::Timeout {
                            operation: Operation::Read,
                        });
                    }
                }
                let mut one = [0u8; 1];
                let (n, handles) = loop {
                    match stream.recv_handles(&mut one) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        other => break other.map_err(|e| Error::from_io(e, Operation::Read))?,
                    }
                };
                if n == 0 && handles.is_empty() {
                    self.inbound.at_eof = true;
                    return Err(Error::Eof);
                }
                dropped_handles(&stream)?;
                (one[0], handles)
            }
        };
        if acknowledged {
            // CPython's receiver on macOS acknowledges whatever arrived, before checking it.
            let mut ack: &Stream = &stream;
            io::Write::write_all(&mut ack, b"A")
                .map_err(|e| Error::from_io(e, Operation::Write))?;
        }
        claimed_handles(count, handles, max)
    }

    /// Receives one OS handle (CPython's `multiprocessing.reduction.recv_handle(conn)`). On
    /// Unix, one descriptor (see [`recv_handles`](Self::recv_handles)). On Windows, a pickled
    /// `reduction.DupHandle`: a handle it names in this process is adopted (the sender
    /// duplicated it here, as CPython's `send_handle` does: the peer is trusted with it); one in
    /// another process is taken out of it, and over a named pipe only out of the peer's. A
    /// message that is not a `DupHandle` is [`Error::NotHandedOver`].
    pub fn recv_handle(&mut self) -> Result<OwnedHandle> {
        #[cfg(windows)]
        let handle = {
            let message = self.recv_bytes()?;
            let peer = self.inbound.reader.get_ref().stream.peer_pid();
            crate::sharing::handle_from_pickle(&message, peer)
        };
        #[cfg(unix)]
        let handle = crate::transfer::single_handle(self.recv_handles(1)?);
        handle
    }

    /// Receives one message and decodes it with the codec (CPython's `recv()`), straight from
    /// the receive buffer when the message is there whole. A message that does not decode is
    /// consumed; the connection stays usable.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        let codec = &self.codec;
        Ok(self.inbound.with_frame(None, |m| codec.decode(&m))??)
    }

    /// Receives one message (CPython's `recv_bytes()`), up to the connection's maximum message
    /// size (unlimited by default).
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        self.inbound.with_frame(None, |m| m.into_owned())
    }

    /// Receives one message of at most `maxlength` bytes (CPython's `recv_bytes(maxlength)`);
    /// a longer one is [`Error::BadMessageLength`], its body left unread.
    pub fn recv_bytes_max(&mut self, maxlength: usize) -> Result<Vec<u8>> {
        self.inbound
            .with_frame(Some(maxlength as u64), |m| m.into_owned())
    }

    /// Receives one message into `buf` and returns its length (CPython's `recv_bytes_into`; pass
    /// `&mut buf[offset..]` for an offset). A message longer than `buf` is
    /// [`Error::BufferTooShort`] holding the whole message; the connection stays usable.
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.inbound.ready_to_read(None)?;
        Ok(self.inbound.reader.read_frame_into(buf)?)
    }

    /// Receives one message if a whole one has arrived, without waiting: `Ok(None)` if not yet.
    /// What has arrived of a message is kept for the next call; a peer holding half a frame
    /// never blocks it. End of file and errors are reported as by [`recv_bytes`](Self::recv_bytes).
    pub fn try_recv_bytes(&mut self) -> Result<Option<Vec<u8>>> {
        if self.inbound.pump()? {
            self.recv_bytes().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Receives and decodes one value if a whole message has arrived, without waiting; see
    /// [`try_recv_bytes`](Self::try_recv_bytes).
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        if self.inbound.pump()? {
            self.recv().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Sets how long a receive may wait (`None`, the default: as long as it takes, as CPython);
    /// [`Error::Timeout`] then. The whole call is bounded, however the message trickles in, and
    /// what has arrived of a message is kept for the next receive.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.inbound.read_timeout = timeout;
    }

    /// Whether there is something to receive (CPython's `poll(timeout)`): a whole message
    /// already buffered, or bytes, EOF or an error waiting on the handle. Waits at most `timeout`:
    /// `Some(Duration::ZERO)` (CPython's default `0`, and what a negative timeout means there)
    /// just looks; `None` waits with no limit. True does not promise a whole message: if only part
    /// has arrived, `recv` waits for the rest.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.inbound.reader.decoder().has_frame() {
            return Ok(true);
        }
        Ok(self.inbound.reader.get_ref().wait_readable(timeout)?)
    }

    /// Sets the longest message accepted by `recv` / `recv_bytes` (default: unlimited, as
    /// CPython). Memory grows with bytes received, never with a claimed length, either way.
    pub fn set_max_message(&mut self, max: u64) {
        self.inbound.reader.decoder_mut().set_max_message(max);
    }

    /// Whether a receive would return without touching the handle: a whole message (or an
    /// error) buffered, or an end of file or error met while reading ahead.
    pub(crate) fn has_buffered_frame(&self) -> bool {
        let i = &self.inbound;
        i.at_eof || i.pending.is_some() || i.reader.decoder().has_frame()
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
        let codec = &self.codec;
        Ok(self
            .inbound
            .with_frame(None, |m| codec.decode_value(&m))??)
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
/// Python peers; `Postcard` for Rust peers); `send_bytes` / `recv_bytes` carry
/// raw messages. The frames are CPython's, so either end may be Python.
///
/// Checks run in CPython's order: closed ([`Error::Closed`]), then direction
/// ([`Error::ReadOnly`] / [`Error::WriteOnly`]), then arguments, then I/O. Dropping a connection
/// closes it without blocking; [`close`](Self::close) reports the OS's error. To send from one
/// thread while another receives, [`split`](Self::split) it.
///
/// `Debug` shows the kind of stream, its handle, the flags and how many bytes are buffered,
/// never the bytes.
pub struct Connection<C = DefaultCodec> {
    halves: (Sender<C>, Receiver<C>),
    /// CPython's `closed` without closing the handle: set where CPython closes a connection it
    /// cannot use any more (an oversize message on a read-only end); the handle itself closes
    /// when the connection is dropped or [`close`](Self::close)d.
    closed: bool,
    readable: bool,
    writable: bool,
}

impl<C: Codec + Clone> Connection<C> {
    /// Wraps a connected stream (CPython's `Connection(handle)`). A pipe's read end is
    /// read-only, its write end write-only; sockets are both.
    pub fn from_stream(stream: Stream, codec: C) -> Self {
        Self::from_shared(Arc::new(stream), codec)
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.halves.1.codec
    }

    /// The longest message accepted (see [`set_max_message`](Self::set_max_message)).
    pub fn max_message(&self) -> u64 {
        self.halves.1.inbound.reader.decoder().max_message()
    }

    fn from_shared(stream: Arc<Stream>, codec: C) -> Self {
        let (readable, writable) = match stream.kind() {
            StreamKind::PipeReader | StreamKind::UnixReader | StreamKind::MessagePipeReader => {
                (true, false)
            }
            StreamKind::PipeWriter | StreamKind::UnixWriter | StreamKind::MessagePipeWriter => {
                (false, true)
            }
            // Sockets, and any later kind, both ways.
            _ => (true, true),
        };
        let sender = Sender {
            stream: Arc::clone(&stream),
            codec: codec.clone(),
            out: Vec::new(),
            write_timeout: None,
            broken: false,
        };
        let receiver = Receiver::new(stream, codec);
        Self {
            halves: (sender, receiver),
            closed: false,
            readable,
            writable,
        }
    }
}

impl<C: Codec> Connection<C> {
    /// Whether the connection can no longer be used (CPython's `closed`): after an oversize
    /// message on a read-only end, as in CPython. (Closing consumes the connection, so a
    /// connection closed by [`close`](Self::close) cannot be asked.)
    pub fn closed(&self) -> bool {
        self.closed
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
            _ if self.closed => Err(Error::Closed),
            _ if !self.writable => Err(Error::ReadOnly),
            (tx, _) => Ok(tx),
        }
    }

    fn receiver(&mut self) -> Result<&mut Receiver<C>> {
        match &mut self.halves {
            _ if self.closed => Err(Error::Closed),
            _ if !self.readable => Err(Error::WriteOnly),
            (_, rx) => Ok(rx),
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
                self.closed = true;
            }
        }
        result
    }

    /// Receives one message into `buf` (CPython's `recv_bytes_into`); see
    /// [`Receiver::recv_bytes_into`].
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.receiver()?.recv_bytes_into(buf)
    }

    /// Sends file descriptors (CPython's `reduction.sendfds`); see [`Sender::send_handles`].
    pub fn send_handles(&mut self, handles: &[Handle<'_>]) -> Result<()> {
        self.sender()?.send_handles(handles)
    }

    /// Sends one OS handle (CPython's `reduction.send_handle`); see [`Sender::send_handle`].
    pub fn send_handle(&mut self, handle: Handle<'_>) -> Result<()> {
        self.sender()?.send_handle(handle)
    }

    /// Sends one OS handle to process `pid` (CPython's `reduction.send_handle(conn, handle,
    /// pid)`); see [`Sender::send_handle_to`].
    pub fn send_handle_to(&mut self, handle: Handle<'_>, pid: u32) -> Result<()> {
        self.sender()?.send_handle_to(handle, pid)
    }

    /// The process at the other end of this connection's named pipe (Windows), for checking
    /// where a handed handle may be taken from.
    fn peer_pid(&self) -> Option<u32> {
        self.halves.0.stream.peer_pid()
    }

    /// Receives file descriptors (CPython's `reduction.recvfds`); see
    /// [`Receiver::recv_handles`].
    pub fn recv_handles(&mut self, max: usize) -> Result<Vec<OwnedHandle>> {
        self.receiver()?.recv_handles(max)
    }

    /// Receives one file descriptor (CPython's `reduction.recv_handle`); see
    /// [`Receiver::recv_handle`].
    pub fn recv_handle(&mut self) -> Result<OwnedHandle> {
        self.receiver()?.recv_handle()
    }

    /// Hands `conn` to the peer as CPython's `send(conn)` does: the peer, Python or Rust,
    /// rebuilds it with its directions (CPython's `recv()`, or
    /// [`recv_connection`](Self::recv_connection)), and `conn` is closed here once handed over.
    /// On the wire: the pickle CPython writes for a connection (`rebuild_connection` of a
    /// `resource_sharer.DupFd` on Unix, a `DupSocket` for a Windows socket,
    /// `rebuild_pipe_connection` of a `reduction.DupHandle` for a Windows pipe end). On Unix
    /// and for Windows sockets the handle waits in this process's resource sharer until the
    /// peer claims it, proving the process key: see [`sharing`](crate::sharing), and set the
    /// key with [`sharing::set_authkey`](crate::sharing::set_authkey) (for a Python peer, its
    /// `current_process().authkey`). `conn` must be between messages
    /// ([`Connection::into_owned_handle`]).
    pub fn send_connection<D: Codec + Clone>(&mut self, conn: Connection<D>) -> Result<()> {
        // Refused before `conn` is given up, as a send on this connection would be.
        self.sender()?;
        let (readable, writable) = (conn.readable, conn.writable);
        let handle = conn.into_owned_handle()?;
        crate::sharing::hand_over(self, handle, readable, writable)
    }

    /// Receives a connection handed over as CPython hands one (a Python peer's
    /// `send(conn)`, or [`send_connection`](Self::send_connection)), with its directions,
    /// speaking `codec`. Where the pickle says the handle waits in a resource sharer, this
    /// connects to it (a Unix socket, or a named pipe on Windows; never TCP) and proves this
    /// process's key ([`sharing::authkey`](crate::sharing::authkey)); each step waits at most
    /// this connection's read timeout. A message that is not a handed connection is
    /// [`Error::NotHandedOver`]; one claimed already is [`Error::NotShared`].
    pub fn recv_connection<D: Codec + Clone>(&mut self, codec: D) -> Result<Connection<D>> {
        let message = self.recv_bytes()?;
        let handed = crate::sharing::wire::parse_connection(&message)?;
        let timeout = self.halves.1.inbound.read_timeout;
        let stream = crate::sharing::take_connection(&handed, self.peer_pid(), timeout)?;
        Connection::from_stream(stream, codec).with_directions(handed.readable, handed.writable)
    }

    /// Whether there is something to receive, waiting at most `timeout` (CPython's `poll`); see
    /// [`Receiver::poll`].
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        match &self.halves {
            _ if self.closed => Err(Error::Closed),
            _ if !self.readable => Err(Error::WriteOnly),
            (_, rx) => rx.poll(timeout),
        }
    }

    /// Receives one message if a whole one has arrived, without waiting (`Ok(None)` if not
    /// yet); see [`Receiver::try_recv_bytes`].
    pub fn try_recv_bytes(&mut self) -> Result<Option<Vec<u8>>> {
        self.receiver()?.try_recv_bytes()
    }

    /// Receives one value if a whole message has arrived, without waiting; see
    /// [`Receiver::try_recv`].
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        self.receiver()?.try_recv()
    }

    /// Sets how long each receive may wait (`None`, the default: no limit, as CPython); see
    /// [`Receiver::set_read_timeout`].
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.halves.1.set_read_timeout(timeout);
    }

    /// Whether a receive would return without touching the handle (see the receiver's).
    pub(crate) fn has_buffered_frame(&self) -> bool {
        self.halves.1.has_buffered_frame()
    }

    /// Sets how long each send may wait for room (`None`, the default: no limit, as CPython);
    /// see [`Sender::set_write_timeout`].
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.halves.0.set_write_timeout(timeout);
    }

    /// Sets how many file descriptors that arrive unasked, with bytes read ahead, this
    /// connection keeps for a later [`recv_handles`](Self::recv_handles) (default
    /// [`DEFAULT_MAX_UNCLAIMED_HANDLES`](crate::DEFAULT_MAX_UNCLAIMED_HANDLES)). A
    /// transfer that would go over it is closed on arrival and reported by the next
    /// `recv_handles` ([`Error::HandlesDropped`]); no message byte is lost and other
    /// connections are unaffected. 0 takes none in at all: the kernel closes them before they
    /// reach this process (what listeners and clients set while authenticating). Unix only;
    /// elsewhere a no-op.
    pub fn set_max_unclaimed_handles(&mut self, max: usize) {
        self.halves.0.stream.set_max_unclaimed_handles(max);
    }

    /// The limit set by [`set_max_unclaimed_handles`](Self::set_max_unclaimed_handles).
    pub fn max_unclaimed_handles(&self) -> usize {
        self.halves.0.stream.max_unclaimed_handles()
    }

    /// Sets the longest message `recv` / `recv_bytes` accept (default: unlimited, as CPython).
    pub fn set_max_message(&mut self, max: u64) {
        self.halves.1.set_max_message(max);
    }

    /// The OS handle (CPython's `fileno()`); [`Error::Closed`] once [`closed`](Self::closed).
    /// On Unix, `AsFd` gives the fd as well.
    pub fn fileno(&self) -> Result<Handle<'_>> {
        if self.closed {
            return Err(Error::Closed);
        }
        Ok(self.halves.0.stream.handle())
    }

    /// The handle, closed or not (for registering a connection being set up).
    pub(crate) fn wait_handle_unchecked(&self) -> Handle<'_> {
        self.halves.0.stream.handle()
    }
}

impl<C: Codec + Clone> Connection<C> {
    /// Adopts an owned OS handle: a stream socket or a pipe end inherited from a parent,
    /// received from another process, or made by another library (CPython's
    /// `Connection(handle)`). A pipe's read end is read-only, its write end write-only. The
    /// handle is made blocking and close-on-exec. On Unix, `Connection::try_from(OwnedFd)` does
    /// the same with the default codec.
    pub fn from_owned_handle(handle: OwnedHandle, codec: C) -> Result<Self> {
        Ok(Self::from_stream(Stream::try_from(handle)?, codec))
    }

    /// Narrows the directions the connection may be used in, as CPython's
    /// `Connection(handle, readable, writable)` does: for an adopted socket that is one end of
    /// a one-way pair (a socket's fd does not say which way it is used), or to make an end
    /// read-only on purpose. A direction the stream cannot take (writing to a pipe's read end)
    /// is not added. Both false is CPython's `ValueError`, here `InvalidInput`.
    pub fn with_directions(mut self, readable: bool, writable: bool) -> Result<Self> {
        self.narrow_directions(readable, writable)?;
        Ok(self)
    }

    /// [`with_directions`](Self::with_directions) in place: both false is `InvalidInput` and
    /// changes nothing.
    pub fn narrow_directions(&mut self, readable: bool, writable: bool) -> Result<()> {
        if !readable && !writable {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "at least one of readable and writable must be true",
            )));
        }
        self.readable &= readable;
        self.writable &= writable;
        Ok(())
    }

    /// Gives up the OS handle, to hand it to another process (a child's inherited fd, say) or
    /// library. Refused, with the connection given back unchanged, when that would lose data:
    /// bytes already read ahead of the messages received so far, or a send cut off part way
    /// by its timeout ([`Error::HandOver`]); and on a connection CPython would have closed
    /// ([`Error::Closed`]). On Unix, `OwnedFd::try_from(connection)` does the same.
    pub fn into_owned_handle(self) -> std::result::Result<OwnedHandle, IntoHandleError<C>> {
        self.into_stream().map(OwnedHandle::from)
    }

    /// Gives up the stream itself (to another shell, such as an async runtime's), refused as
    /// [`into_owned_handle`](Self::into_owned_handle) is when that would lose data.
    pub fn into_stream(self) -> std::result::Result<Stream, IntoHandleError<C>> {
        let inbound = &self.halves.1.inbound;
        let mut read_ahead = inbound.reader.decoder().buffered();
        // A pipe message begun (even an empty one not yet received): its rest would reach the
        // new owner without its start.
        if !inbound.reader.decoder().between_frames()
            || inbound
                .reader
                .get_ref()
                .messages
                .as_ref()
                .is_some_and(|m| m.in_message())
        {
            read_ahead = read_ahead.max(1);
        }
        if let Some(n) = inbound.reader.get_ref().stream.read_ahead() {
            read_ahead += n.max(1);
        }
        let cut_off = self.halves.0.broken;
        let refuse = |connection, error| {
            Err(IntoHandleError {
                connection: Box::new(connection),
                error,
            })
        };
        if self.closed {
            return refuse(self, Error::Closed);
        }
        if read_ahead > 0 || cut_off {
            return refuse(
                self,
                Error::HandOver {
                    read_ahead,
                    cut_off,
                },
            );
        }
        let (tx, rx) = self.halves;
        drop(rx);
        match Arc::try_unwrap(tx.stream) {
            Ok(stream) => Ok(stream),
            // Unreachable: the receiver, the only other owner, was dropped above and the halves
            // are private. The connection comes back whole all the same.
            Err(shared) => Err(IntoHandleError {
                connection: Box::new(Self::from_shared(shared, tx.codec)),
                error: Error::Io(io::Error::other("the stream is shared")),
            }),
        }
    }
}

impl<C: Codec> Connection<C> {
    /// Closes the connection (CPython's `close()`), returning the OS's error if closing failed.
    /// Unread buffered messages are discarded. Dropping a connection closes it too, without
    /// the error.
    pub fn close(self) -> Result<()> {
        let (tx, rx) = self.halves;
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
    pub fn split(self) -> Result<(Sender<C>, Receiver<C>)> {
        match self.halves {
            _ if self.closed => Err(Error::Closed),
            _ if !self.readable => Err(Error::WriteOnly),
            _ if !self.writable => Err(Error::ReadOnly),
            halves => Ok(halves),
        }
    }

    /// Whether a whole message is already buffered in user space (so a receive will not block).
    pub fn has_buffered_message(&self) -> bool {
        !self.closed && self.halves.1.has_buffered_frame()
    }

    /// Sets `TCP_NODELAY` (TCP only; other transports ignore it). Off by default, as in
    /// CPython: each message already leaves in one write, and Nagle's algorithm only delays a
    /// small message sent right after another unacknowledged one (write, write, read). Turn it on
    /// for such patterns.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        Ok(self.halves.0.stream.set_nodelay(nodelay)?)
    }

    /// Sends each message (none is fine), all in one write when there are several.
    /// Whether the transport keeps message boundaries (a Windows named pipe).
    pub(crate) fn keeps_messages(&self) -> bool {
        self.halves.0.stream.kind().keeps_messages()
    }

    pub(crate) fn send_all(&mut self, messages: &[Vec<u8>]) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        self.sender()?.write_messages(&slices)
    }

    /// Runs the handshake `f` under one deadline for the whole of it (each read and write waits
    /// only for the time left, so a peer dripping bytes cannot stretch it), with Nagle off: a
    /// server answering a pipelined client writes its verdict and its response back to back,
    /// which Nagle and delayed ACKs would stall for 40 ms. Settings are restored afterwards.
    pub(crate) fn handshake<T>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(&mut Timed<'_, C>) -> Result<T>,
    ) -> Result<T> {
        let is_socket = matches!(
            self.halves.0.stream.kind(),
            StreamKind::Tcp | StreamKind::Unix
        );
        if is_socket {
            self.set_nodelay(true)?;
        }
        // Until the peer has authenticated, it cannot make us hold a descriptor.
        let unclaimed = self.halves.0.stream.max_unclaimed_handles();
        self.halves.0.stream.set_max_unclaimed_handles(0);
        let result = f(&mut Timed {
            conn: self,
            deadline: deadline_after(timeout),
        });
        self.halves.0.stream.set_max_unclaimed_handles(unclaimed);
        self.set_read_timeout(None);
        self.set_write_timeout(None);
        if is_socket && result.is_ok() {
            self.set_nodelay(false)?;
        }
        result
    }
}

/// A connection carrying a handshake under one deadline.
pub(crate) struct Timed<'a, C: Codec> {
    conn: &'a mut Connection<C>,
    deadline: Option<Instant>,
}

impl<C: Codec> Timed<'_, C> {
    /// Sets both timeouts to the time left; none left is a timeout now.
    fn arm(&mut self) -> Result<()> {
        let left = time_left(self.deadline);
        if left.is_some_and(|l| l.is_zero()) {
            return Err(Error::Timeout {
                operation: Operation::Handshake,
            });
        }
        self.conn.set_read_timeout(left);
        self.conn.set_write_timeout(left);
        Ok(())
    }
}

impl<C: Codec> conn_auth::Channel for Timed<'_, C> {
    type Error = Error;

    fn send_message(&mut self, message: &[u8]) -> Result<()> {
        self.arm()?;
        self.conn.send_bytes(message)
    }

    fn recv_message(&mut self, max_len: usize) -> Result<Vec<u8>> {
        self.arm()?;
        self.conn.recv_bytes_max(max_len)
    }

    fn send_messages(&mut self, messages: &[&[u8]]) -> Result<()> {
        self.arm()?;
        self.conn.sender()?.write_messages(messages)
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
        self.sender()?.write_messages(messages)
    }
}

/// The error of [`Connection::into_owned_handle`]: why the handle was not given up, and the
/// connection, given back unchanged.
pub struct IntoHandleError<C = DefaultCodec> {
    /// Boxed: a `Result` carrying a whole connection back would be hundreds of bytes.
    connection: Box<Connection<C>>,
    error: Error,
}

impl<C> IntoHandleError<C> {
    /// The connection, given back, and why it could not be handed over (for other shells'
    /// conversions, such as conn-tokio's).
    pub fn new(connection: Connection<C>, error: Error) -> Self {
        Self {
            connection: Box::new(connection),
            error,
        }
    }

    /// Why the handle was not given up ([`Error::HandOver`] or [`Error::Closed`]).
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The connection, given back unchanged.
    pub fn into_connection(self) -> Connection<C> {
        *self.connection
    }

    /// The connection and the reason.
    pub fn into_parts(self) -> (Connection<C>, Error) {
        (*self.connection, self.error)
    }
}

impl<C> std::fmt::Debug for IntoHandleError<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntoHandleError")
            .field("error", &self.error)
            .field("connection", &self.connection)
            .finish()
    }
}

impl<C> std::fmt::Display for IntoHandleError<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<C> std::error::Error for IntoHandleError<C> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl<C> From<IntoHandleError<C>> for Error {
    /// Drops the connection, keeps the reason.
    fn from(e: IntoHandleError<C>) -> Self {
        e.error
    }
}

#[cfg(unix)]
impl<C: Codec + Clone + Default> TryFrom<OwnedFd> for Connection<C> {
    type Error = Error;

    /// Adopts an fd with the codec's default settings; see [`Connection::from_owned_handle`].
    fn try_from(fd: OwnedFd) -> Result<Self> {
        Self::from_owned_handle(OwnedHandle::from(fd), C::default())
    }
}

#[cfg(unix)]
impl<C: Codec + Clone> TryFrom<Connection<C>> for OwnedFd {
    type Error = IntoHandleError<C>;

    /// Gives up the fd; see [`Connection::into_owned_handle`].
    fn try_from(connection: Connection<C>) -> std::result::Result<Self, IntoHandleError<C>> {
        connection.into_owned_handle().map(Self::from)
    }
}

impl<C> std::fmt::Debug for Sender<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("stream", &self.stream.kind())
            .field("handle", &self.stream.handle())
            .field("write_timeout", &self.write_timeout)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<C> std::fmt::Debug for Receiver<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stream = &self.inbound.reader.get_ref().stream;
        f.debug_struct("Receiver")
            .field("stream", &stream.kind())
            .field("handle", &stream.handle())
            .field("buffered", &self.inbound.reader.decoder().buffered())
            .field("read_timeout", &self.inbound.read_timeout)
            .finish_non_exhaustive()
    }
}

impl<C> std::fmt::Debug for Connection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (tx, rx) = &self.halves;
        f.debug_struct("Connection")
            .field("stream", &tx.stream.kind())
            .field("handle", &tx.stream.handle())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .field("closed", &self.closed)
            .field("buffered", &rx.inbound.reader.decoder().buffered())
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
impl<C> AsFd for Connection<C> {
    /// The OS handle (valid for the connection's whole life).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.halves.0.stream.as_fd()
    }
}

#[cfg(unix)]
impl<C> AsRawFd for Connection<C> {
    fn as_raw_fd(&self) -> RawFd {
        self.halves.0.stream.as_raw_fd()
    }
}

#[cfg(windows)]
impl<C> std::os::windows::io::AsRawHandle for Connection<C> {
    /// The pipe handle, or the socket as a handle value: CPython's `fileno()` on Windows.
    fn as_raw_handle(&self) -> std::os::windows::io::RawHandle {
        std::os::windows::io::AsRawHandle::as_raw_handle(&*self.halves.0.stream)
    }
}

#[cfg(unix)]
impl<C> AsFd for Sender<C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

#[cfg(unix)]
impl<C> AsFd for Receiver<C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inbound.reader.get_ref().stream.as_fd()
    }
}

impl<C: Codec> crate::Waitable for Connection<C> {
    fn wait_handle(&self) -> Result<Handle<'_>> {
        self.fileno()
    }

    fn has_buffered(&self) -> bool {
        self.has_buffered_message()
    }

    fn pump(&mut self) -> Result<bool> {
        if self.closed || !self.readable {
            // Let the caller's receive report it.
            return Ok(true);
        }
        self.halves.1.inbound.pump()
    }
}

impl<C: Codec> crate::Waitable for Receiver<C> {
    fn wait_handle(&self) -> Result<Handle<'_>> {
        Ok(self.inbound.reader.get_ref().stream.handle())
    }

    fn has_buffered(&self) -> bool {
        self.has_buffered_frame()
    }

    fn pump(&mut self) -> Result<bool> {
        self.inbound.pump()
    }
}

/// The macOS acknowledgement of descriptor transfers (CPython's `ACKNOWLEDGE` in
/// `multiprocessing.reduction`), run on every Unix: the OS only picks whether it is on.
#[cfg(all(test, unix))]
mod acknowledgement {

    use std::io::Read;
    use std::os::fd::AsFd;
    use std::time::Duration;

    use crate::Handle;
    use crate::os::Stream;

    use crate::{Connection, Pickle};

    #[test]
    fn an_acknowledged_transfer_waits_for_and_sends_the_byte() {
        let (a, b) = crate::pipe().unwrap();
        let (mut a, mut b) = (a, b);
        let file = std::fs::File::open("/proc/self/stat")
            .or_else(|_| std::fs::File::open("/dev/null"))
            .unwrap();
        let fd = file.as_fd().try_clone_to_owned().unwrap();
        let sender = std::thread::spawn(move || {
            a.set_write_timeout(Some(Duration::from_secs(5)));
            a.halves
                .0
                .send_handles_acknowledged(&[Handle::from(fd.as_fd())], true)
                .unwrap();
            a
        });
        b.set_read_timeout(Some(Duration::from_secs(5)));
        let got = b.halves.1.recv_handles_acknowledged(1, true).unwrap();
        assert_eq!(got.len(), 1);
        sender.join().unwrap();
    }

    #[test]
    fn the_receiver_answers_a_and_the_sender_refuses_anything_else() {
        // What the receiver writes, seen raw: one `A` after the transfer.
        let (raw, ours) = Stream::pair().unwrap();
        let mut b = Connection::from_stream(ours, Pickle::new());
        let file = std::fs::File::open("/dev/null").unwrap();
        raw.send_handles(&[1], &[Handle::from(file.as_fd())])
            .unwrap();
        b.halves.1.recv_handles_acknowledged(1, true).unwrap();
        let mut ack = [0u8; 1];
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (&raw).read_exact(&mut ack).unwrap();
        assert_eq!(&ack, b"A");
        // A sender waiting for `A` that gets another byte reports it.
        let (raw, ours) = Stream::pair().unwrap();
        let mut a = Connection::from_stream(ours, Pickle::new());
        std::io::Write::write_all(&mut &raw, b"N").unwrap();
        let err = a
            .halves
            .0
            .send_handles_acknowledged(&[Handle::from(file.as_fd())], true)
            .unwrap_err();
        assert!(err.to_string().contains("acknowledgement"), "{err}");
        // Without acknowledgement (Linux, as CPython there), nothing is written back.
        let (raw, ours) = Stream::pair().unwrap();
        let mut b = Connection::from_stream(ours, Pickle::new());
        raw.send_handles(&[1], &[Handle::from(file.as_fd())])
            .unwrap();
        b.halves.1.recv_handles_acknowledged(1, false).unwrap();
        raw.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert!((&raw).read(&mut ack).is_err(), "no byte");
    }
}
