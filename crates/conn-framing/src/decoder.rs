//! `Decoder`: the framing state machine. Feed it bytes as they arrive (or let a reader fill its
//! buffer in place); take whole frames out. It is the one implementation of the frame format's
//! reading side: [`FrameReader`](crate::FrameReader) and conn's connections are shells that do
//! the I/O around it.

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::header::{HeaderStatus, decode_header};
use crate::{FrameError, Unit};

/// No limit on message size: CPython has none. Memory still grows only with bytes received.
pub const UNLIMITED: u64 = u64::MAX;

/// The decoder's buffer when it first holds anything (a read of this size takes a 4 KiB message
/// and its header in one call).
pub const INITIAL_BUFFER: usize = 8 * 1024;

/// The largest the buffer grows for reads between frames (CPython 3.14's `BUFSIZE`); a frame's
/// body accumulated in the buffer ([`Decoder::spare`] with `body_room`) may grow it further, with
/// what arrives.
pub const READ_BUFFER: usize = 64 * 1024;

/// The least room a read into a full buffer is given (while a frame is owed more bytes, a read
/// asks for what it still needs, up to [`READ_BUFFER`], and never for less than this).
pub const MIN_ROOM: usize = 4 * 1024;

/// How many [`INITIAL_BUFFER`]-sized read buffers a thread keeps for reuse (32 KiB a thread).
const POOLED_BUFFERS: usize = 4;

thread_local! {
    /// Read buffers given back by decoders that went idle on this thread
    /// ([`Decoder::release_if_idle`]), for the next decoder that needs one: a connection that
    /// receives one message at a time reuses a buffer instead of allocating and zero-filling a
    /// fresh one per message, and an idle connection still holds none. Stale bytes in them are
    /// never read: a decoder reads only what it was given after `spare`.
    static SPARE_BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A pooled read buffer of [`INITIAL_BUFFER`] bytes, if this thread has one.
fn pooled_buffer() -> Option<Vec<u8>> {
    SPARE_BUFFERS
        .try_with(|pool| pool.borrow_mut().pop())
        .ok()
        .flatten()
}

/// Keeps `buf` for reuse if it is a standard read buffer and the pool has room.
fn pool_buffer(buf: Vec<u8>) {
    if buf.len() == INITIAL_BUFFER {
        let _ = SPARE_BUFFERS.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOLED_BUFFERS {
                pool.push(buf);
            }
        });
    }
}

impl Drop for Decoder {
    /// A standard read buffer goes back to this thread's pool (see `SPARE_BUFFERS`).
    fn drop(&mut self) {
        pool_buffer(std::mem::take(&mut self.buf));
    }
}

/// What the decoder needs before it can hand out the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// A whole frame is buffered: take it.
    Nothing,
    /// More header bytes (`have` of the header are buffered).
    Header {
        /// Header bytes buffered.
        have: usize,
    },
    /// More body bytes: the frame is `len` bytes, `have` of them buffered.
    Body {
        /// The payload length the header gives (within the limits).
        len: u64,
        /// Payload bytes buffered.
        have: usize,
    },
}

/// An incremental decoder: [`feed`](Self::feed) bytes in any chunking (or read into
/// [`spare`](Self::spare) and [`commit`](Self::commit)), then call
/// [`next_frame`](Self::next_frame) until it returns `Ok(None)` ("need more").
///
/// Memory grows with the bytes fed, never with what a header claims. A header over the
/// configured maximum is refused as soon as it is complete, before its body arrives; after any
/// error the decoder answers [`FrameError::Desynchronized`]. A decoder that has handed out
/// everything it held frees its buffer (unless the peer is streaming: the last read filled it),
/// so an idle connection holds no buffer.
///
/// `Debug` shows sizes and state, never the bytes (they are a peer's messages).
pub struct Decoder {
    /// Initialized storage: `[start..end]` are bytes received and not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_message: u64,
    poisoned: bool,
    /// The last read filled all the room it was given: keep the buffer when drained.
    streaming: bool,
    /// `None`: frames carry CPython's header. `Some`: the transport keeps message boundaries
    /// (a Windows message-mode pipe) and the shell said where each message begins and how long
    /// it is ([`Decoder::begin_message`]): the lengths of the messages begun and not yet taken.
    messages: Option<VecDeque<u64>>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &(self.end - self.start))
            .field("capacity", &self.buf.capacity())
            .field("max_message", &self.max_message)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with no message size limit.
    pub fn new() -> Self {
        Self::with_max_message(UNLIMITED)
    }

    /// A decoder that refuses frames longer than `max_message` bytes.
    pub fn with_max_message(max_message: u64) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_message,
            poisoned: false,
            streaming: false,
            messages: None,
        }
    }

    /// Sets the longest message accepted; longer ones are [`FrameError::TooLarge`].
    pub fn set_max_message(&mut self, max_message: u64) {
        self.max_message = max_message;
    }

    /// The longest message accepted.
    pub fn max_message(&self) -> u64 {
        self.max_message
    }

    /// For a transport that keeps message boundaries and sends no header (a Windows
    /// message-mode pipe, CPython's `PipeConnection`): the bytes fed or committed from now on
    /// are the body of a message of `len` bytes, after those of the messages begun before. The
    /// length is checked against the limits as a header's would be, before the body is read;
    /// a zero-length message is a message. Once called, the decoder expects no headers.
    pub fn begin_message(&mut self, len: u64) {
        self.messages
            .get_or_insert_with(VecDeque::new)
            .push_back(len);
    }

    /// Whether no frame has begun: nothing buffered, and no message begun (end of file here
    /// is a clean end).
    pub fn between_frames(&self) -> bool {
        self.start == self.end && self.messages.as_ref().is_none_or(VecDeque::is_empty)
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 4096 && self.start * 2 > self.end {
            // Most of the buffer is consumed frames: slide the rest down.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.truncate(self.end);
        self.buf.extend_from_slice(bytes);
        self.end = self.buf.len();
    }

    /// Room to read into, at the end of the buffer: at least one byte, initialized (a reader
    /// fills it, then calls [`commit`](Self::commit) with the count). Consumed bytes are
    /// reclaimed first; when full, the buffer doubles from [`INITIAL_BUFFER`] up to
    /// [`READ_BUFFER`], or, with `body_room`, up to what the frame at the front still needs.
    pub fn spare(&mut self, body_room: bool) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.is_empty() {
            if let Some(buf) = pooled_buffer() {
                self.buf = buf;
            }
        }
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            // The last read filled all the room it had: more is waiting. The buffer doubles
            // (up to one read buffer) instead of giving the next read only what the frames
            // taken freed, which, for messages about half the buffer, is one message a read.
            if self.streaming && self.buf.len() < READ_BUFFER {
                let grown = (self.buf.len() * 2).clamp(INITIAL_BUFFER, READ_BUFFER);
                self.buf.resize(grown, 0);
            }
        }
        if self.end == self.buf.len() {
            // Full: grow by doubling (only ever after the bytes that filled it arrived, so
            // memory follows what was received), and never by less than what the frame at the
            // front still owes, capped at one read buffer and at least `MIN_ROOM`: a frame
            // larger than the buffer is not read a byte at a time. Lengths are a peer's:
            // every sum saturates.
            let (whole, owed) = match self.check(None) {
                Ok(Need::Body { len, have }) => {
                    let whole = (self.header_len() as u64).saturating_add(len);
                    let owed = len.saturating_sub(have as u64);
                    (usize::try_from(whole).unwrap_or(usize::MAX), owed)
                }
                _ => (0, 0),
            };
            let cap = if body_room {
                READ_BUFFER.max(whole)
            } else {
                READ_BUFFER
            };
            let room = usize::try_from(owed)
                .unwrap_or(usize::MAX)
                .clamp(MIN_ROOM, READ_BUFFER);
            let grown = (self.buf.len().saturating_mul(2))
                .max(INITIAL_BUFFER)
                .min(cap)
                .max(self.end.saturating_add(room));
            self.buf.resize(grown, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`spare`](Self::spare).
    pub fn commit(&mut self, n: usize) {
        let room = self.buf.len() - self.end;
        self.streaming = n == room;
        self.end += n.min(room);
    }

    /// Bytes fed but not yet returned in a frame.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The bytes fed but not yet returned.
    pub(crate) fn buffered_bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Bytes of memory the buffer holds (for the fuzz target's bound).
    #[doc(hidden)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// [`need`](Self::need), poisoning the decoder on an error: for the readers that report it.
    pub(crate) fn need_or_poison(&mut self, maxlength: Option<u64>) -> Result<Need, FrameError> {
        let result = self.check(maxlength);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// What is needed before the next frame, checking the header against the limits (and
    /// `maxlength`, CPython's `recv_bytes(maxlength)`). An error here leaves the decoder as it
    /// was: the call that takes the frame reports it and puts the stream out of step.
    pub fn need(&self, maxlength: Option<u64>) -> Result<Need, FrameError> {
        self.check(maxlength)
    }

    /// Takes one byte from the front of the buffered bytes, outside any frame: a byte the peer
    /// sent between frames on purpose, such as the count byte of CPython's file descriptor
    /// transfer (`multiprocessing.reduction.sendfds`). `None` if nothing is buffered or the
    /// stream is out of step.
    pub fn take_raw_byte(&mut self) -> Option<u8> {
        if self.poisoned || self.start == self.end || self.messages.is_some() {
            return None;
        }
        let byte = self.buf[self.start];
        self.start += 1;
        self.release_if_idle();
        Some(byte)
    }

    /// Takes the next whole frame's payload, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let frame = self.next_frame_ref(None)?.map(<[u8]>::to_vec);
        self.release_if_idle();
        Ok(frame)
    }

    /// Takes the next whole frame, borrowed from the buffer (no copy: a typed receive decodes
    /// straight from it), `Ok(None)` if more bytes are needed. Call
    /// [`release_if_idle`](Self::release_if_idle) when done with it.
    pub fn next_frame_ref(&mut self, maxlength: Option<u64>) -> Result<Option<&[u8]>, FrameError> {
        match self.need_or_poison(maxlength)? {
            Need::Nothing => {
                let body = self.start + self.header_len();
                let len = self.frame_len();
                self.start = body + len;
                self.frame_taken();
                Ok(Some(&self.buf[body..body + len]))
            }
            _ => Ok(None),
        }
    }

    /// Copies the next whole frame into `dst` and returns its length (CPython's
    /// `recv_bytes_into`), `Ok(None)` if more bytes are needed. A frame that does not fit is
    /// taken all the same and returned in [`FrameError::BufferTooShort`]: the stream stays in
    /// step. The buffer is released if that emptied it.
    pub fn next_frame_into(&mut self, dst: &mut [u8]) -> Result<Option<usize>, FrameError> {
        let Some(frame) = self.next_frame_ref(None)? else {
            return Ok(None);
        };
        let n = frame.len();
        let result = if n <= dst.len() {
            dst[..n].copy_from_slice(frame);
            Ok(Some(n))
        } else {
            Err(FrameError::BufferTooShort {
                message: frame.to_vec(),
            })
        };
        self.release_if_idle();
        result
    }

    /// Consumes the header of the frame at the front and the body bytes buffered so far,
    /// returning the payload length and those bytes, for a reader that puts the rest of a large
    /// body straight into its destination. The decoder is poisoned until
    /// [`finish_body`](Self::finish_body): if the rest never arrives, the stream is out of step.
    pub(crate) fn take_body_start(
        &mut self,
        maxlength: Option<u64>,
    ) -> Result<(u64, Vec<u8>), FrameError> {
        let len = match self.need_or_poison(maxlength)? {
            Need::Body { len, .. } => len,
            Need::Nothing => self.frame_len() as u64,
            Need::Header { .. } => return Err(FrameError::Desynchronized),
        };
        let body = self.start + self.header_len();
        let have = (self.end - body).min(usize::try_from(len).unwrap_or(usize::MAX));
        let bytes = self.buf[body..body + have].to_vec();
        self.start = body + have;
        self.frame_taken();
        self.poisoned = true;
        self.release_if_idle();
        Ok((len, bytes))
    }

    /// The body begun with [`take_body_start`](Self::take_body_start) was read whole: the
    /// stream is in step again.
    pub(crate) fn finish_body(&mut self) {
        self.poisoned = false;
    }

    /// Marks the stream out of step (an I/O error inside a frame): later calls fail with
    /// [`FrameError::Desynchronized`].
    pub(crate) fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Whether an error left the stream inside a frame.
    #[cfg(test)]
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Frees the buffer if it holds nothing and the peer is not streaming, so an idle
    /// connection costs no buffer.
    pub fn release_if_idle(&mut self) {
        if self.start == self.end && !self.streaming && !self.buf.is_empty() {
            pool_buffer(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }

    /// Whether [`next_frame`](Self::next_frame) would return a frame or an error now, without
    /// waiting for more bytes (a connection is "ready" when this is true).
    pub fn has_frame(&self) -> bool {
        !matches!(
            self.check(None),
            Ok(Need::Header { .. } | Need::Body { .. })
        )
    }

    /// Call when the stream has ended: `Ok(())` if it ended between frames,
    /// [`FrameError::Truncated`] if inside one.
    pub fn finish(&self) -> Result<(), FrameError> {
        let rest = self.buffered_bytes();
        if let Some(lengths) = &self.messages {
            return match lengths.front() {
                None if rest.is_empty() => Ok(()),
                None => Err(FrameError::Desynchronized),
                Some(&len) => Err(FrameError::Truncated {
                    unit: Unit::Body,
                    expected: len,
                    received: rest.len() as u64,
                }),
            };
        }
        if rest.is_empty() {
            return Ok(());
        }
        let truncated = |unit, expected: usize, received: usize| FrameError::Truncated {
            unit,
            expected: expected as u64,
            received: received as u64,
        };
        Err(match decode_header(rest) {
            Ok(HeaderStatus::Incomplete { needed: 4 }) => truncated(Unit::Header, 4, rest.len()),
            Ok(HeaderStatus::Incomplete { needed }) => {
                truncated(Unit::ExtendedLength, needed - 4, rest.len() - 4)
            }
            Ok(HeaderStatus::Complete {
                header_len,
                payload_len,
            }) => FrameError::Truncated {
                unit: Unit::Body,
                expected: payload_len,
                received: (rest.len() - header_len) as u64,
            },
            Err(e) => e,
        })
    }

    /// The frame at the front, once its length is known: its header length (0 for a message
    /// of a message-mode transport) and payload length.
    fn front(&self) -> Result<Option<(usize, u64)>, FrameError> {
        match &self.messages {
            Some(lengths) => match lengths.front() {
                Some(&len) => Ok(Some((0, len))),
                // Bytes before any message began: the shell lost a boundary.
                None if self.start != self.end => Err(FrameError::Desynchronized),
                None => Ok(None),
            },
            None => match decode_header(self.buffered_bytes())? {
                HeaderStatus::Incomplete { .. } => Ok(None),
                HeaderStatus::Complete {
                    header_len,
                    payload_len,
                } => Ok(Some((header_len, payload_len))),
            },
        }
    }

    /// The header length of the frame at the front (only after `check` said it is complete).
    fn header_len(&self) -> usize {
        self.front().ok().flatten().map_or(0, |(h, _)| h)
    }

    /// The payload length of the whole frame at the front (only after `check` said so).
    fn frame_len(&self) -> usize {
        self.front()
            .ok()
            .flatten()
            .map_or(0, |(_, len)| usize::try_from(len).unwrap_or(0))
    }

    /// The frame at the front has been taken out of the buffer (whole, or its body begun).
    fn frame_taken(&mut self) {
        if let Some(lengths) = &mut self.messages {
            lengths.pop_front();
        }
    }

    fn check(&self, maxlength: Option<u64>) -> Result<Need, FrameError> {
        if self.poisoned {
            return Err(FrameError::Desynchronized);
        }
        let rest = self.buffered_bytes();
        let Some((header_len, payload_len)) = self.front()? else {
            return Ok(Need::Header { have: rest.len() });
        };
        let max = maxlength.map_or(self.max_message, |m| m.min(self.max_message));
        if payload_len > max {
            return Err(FrameError::TooLarge {
                len: payload_len,
                max,
            });
        }
        // A length beyond what is buffered is simply "need more": it never sizes an allocation.
        let have = rest.len() - header_len;
        match usize::try_from(payload_len) {
            Ok(len) if have >= len => Ok(Need::Nothing),
            _ => Ok(Need::Body {
                len: payload_len,
                have,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::encode_frame_into;

    fn frames(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut wire = Vec::new();
        for p in payloads {
            encode_frame_into(p, &mut wire);
        }
        wire
    }

    /// A decoder that went idle gives its buffer to the next one on the thread (no allocation,
    /// no zero-fill per message), and the stale bytes in it never reach a frame.
    #[test]
    fn idle_buffers_are_reused_and_their_old_bytes_never_read() {
        let mut first = Decoder::new();
        let wire = frames(&[vec![0xaa; 300]]);
        let room = first.spare(false);
        room[..wire.len()].copy_from_slice(&wire);
        let released = room.as_ptr();
        first.commit(wire.len());
        assert_eq!(first.next_frame_ref(None).unwrap(), Some(&[0xaa; 300][..]));
        first.release_if_idle();
        assert_eq!(first.capacity(), 0, "an idle decoder holds no buffer");

        let mut second = Decoder::new();
        let room = second.spare(false);
        assert_eq!(room.len(), INITIAL_BUFFER);
        assert_eq!(room.as_ptr(), released, "the pooled buffer is reused");
        // Half a header, then the rest and a short body: only the bytes given count.
        let wire = frames(&[vec![1, 2, 3]]);
        room[..2].copy_from_slice(&wire[..2]);
        second.commit(2);
        assert_eq!(second.next_frame().unwrap(), None);
        second.feed(&wire[2..]);
        assert_eq!(second.next_frame().unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(second.next_frame().unwrap(), None);
    }

    /// Reads that fill all the room they are given (a peer streaming 4 KiB messages) double
    /// the buffer up to one read buffer, so later reads take many messages each; reads that
    /// leave room (a peer sending now and then) never grow it.
    #[test]
    fn a_streaming_peer_gets_reads_of_a_read_buffer() {
        let wire = frames(&vec![vec![0x5a; 4096]; 200]);
        for streaming in [true, false] {
            let mut d = Decoder::new();
            let (mut at, mut taken, mut widest) = (0, 0, 0);
            while at < wire.len() {
                let room = d.spare(false);
                widest = widest.max(room.len());
                // A streaming peer fills the room; the other sends a message (4 + 4096 bytes)
                // at a time.
                let n = if streaming {
                    room.len()
                } else {
                    4100.min(room.len())
                };
                let n = n.min(wire.len() - at);
                room[..n].copy_from_slice(&wire[at..at + n]);
                d.commit(n);
                at += n;
                while let Some(frame) = d.next_frame_ref(None).unwrap() {
                    assert_eq!(frame, &[0x5a; 4096][..]);
                    taken += 1;
                }
                d.release_if_idle();
            }
            assert_eq!(taken, 200);
            if streaming {
                assert!(widest >= READ_BUFFER - 4104, "widest read {widest}");
            } else {
                assert!(widest <= INITIAL_BUFFER, "widest read {widest}");
            }
        }
    }

    #[test]
    fn empty_messages_are_frames() {
        let mut d = Decoder::new();
        d.feed(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(d.has_frame());
        assert_eq!(d.next_frame().unwrap(), Some(vec![]));
        assert!(d.has_frame(), "the second empty message is still there");
        assert_eq!(d.next_frame().unwrap(), Some(vec![]));
        assert!(!d.has_frame());
        assert_eq!(d.next_frame().unwrap(), None);
        d.finish().unwrap();
    }

    #[test]
    fn an_idle_decoder_holds_no_buffer_and_a_streaming_one_keeps_it() {
        let mut d = Decoder::new();
        assert_eq!(d.capacity(), 0, "nothing before the first byte");
        // A reader fills part of the room: a request, answered; then idle.
        let wire = frames(&[b"ping".to_vec()]);
        let room = d.spare(false);
        assert_eq!(room.len(), INITIAL_BUFFER);
        room[..wire.len()].copy_from_slice(&wire);
        d.commit(wire.len());
        assert_eq!(d.next_frame_ref(None).unwrap(), Some(&b"ping"[..]));
        d.release_if_idle();
        assert_eq!(d.capacity(), 0, "drained and not streaming: freed");
        // A read that fills all its room (a streaming peer): the buffer stays and grows.
        let room = d.spare(false).len();
        d.commit(room);
        let bigger = d.spare(false).len();
        assert!(bigger >= room, "{bigger} after {room}");
        assert!(d.capacity() <= READ_BUFFER);
    }

    #[test]
    fn a_lying_header_costs_only_what_arrives() {
        let mut d = Decoder::new();
        let mut wire = vec![0xff, 0xff, 0xff, 0xff];
        wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
        wire.extend_from_slice(b"0123456789");
        d.feed(&wire);
        assert_eq!(d.next_frame().unwrap(), None);
        assert!(d.buf.capacity() < 1 << 16, "{}", d.buf.capacity());
        assert!(matches!(
            d.finish(),
            Err(FrameError::Truncated { unit: Unit::Body, expected, received: 10 }) if expected == 1 << 63
        ));
    }

    #[test]
    fn oversize_frames_are_refused_before_their_body() {
        let mut d = Decoder::with_max_message(4);
        d.feed(&[0, 0, 0, 5]);
        assert!(d.has_frame(), "an error is ready to report");
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        ));
        d.feed(b"hello");
        assert!(matches!(d.next_frame(), Err(FrameError::Desynchronized)));
        let mut d = Decoder::with_max_message(5);
        d.feed(&[0, 0, 0, 5, 1, 2, 3, 4, 5]);
        assert_eq!(d.next_frame().unwrap(), Some(vec![1, 2, 3, 4, 5]));
    }

    #[test]
    fn negative_headers_poison_the_decoder() {
        let mut d = Decoder::new();
        d.feed(&(-5i32).to_be_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::NegativeLength { header: -5 })
        ));
        assert!(matches!(d.next_frame(), Err(FrameError::Desynchronized)));
    }

    #[test]
    fn finish_classifies_where_the_stream_ended() {
        let case = |bytes: &[u8]| {
            let mut d = Decoder::new();
            d.feed(bytes);
            d.finish()
        };
        assert!(case(&[]).is_ok());
        assert!(matches!(
            case(&[0, 0]),
            Err(FrameError::Truncated {
                unit: Unit::Header,
                expected: 4,
                received: 2
            })
        ));
        assert!(matches!(
            case(&[0xff, 0xff, 0xff, 0xff, 0, 0]),
            Err(FrameError::Truncated {
                unit: Unit::ExtendedLength,
                expected: 8,
                received: 2
            })
        ));
        assert!(matches!(
            case(&[0, 0, 0, 3, b'a']),
            Err(FrameError::Truncated {
                unit: Unit::Body,
                expected: 3,
                received: 1
            })
        ));
    }

    proptest! {
        #[test]
        fn any_chunking_yields_the_same_frames(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let wire = frames(&payloads);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.push(0);
            points.push(wire.len());
            points.sort_unstable();
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for pair in points.windows(2) {
                d.feed(&wire[pair[0]..pair[1]]);
                while let Some(frame) = d.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert!(d.finish().is_ok());
            prop_assert_eq!(d.buffered(), 0);
        }

        #[test]
        fn byte_at_a_time_matches(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6)) {
            let wire = frames(&payloads);
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for b in &wire {
                d.feed(std::slice::from_ref(b));
                while let Some(frame) = d.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            prop_assert_eq!(got, payloads);
        }
    }

    #[test]
    fn begun_messages_are_frames_without_headers() {
        let mut d = Decoder::with_max_message(8);
        assert!(d.between_frames());
        d.begin_message(0);
        assert!(!d.between_frames());
        d.begin_message(5);
        d.feed(b"he");
        assert_eq!(
            d.next_frame().unwrap(),
            Some(vec![]),
            "a zero-length message"
        );
        assert!(matches!(d.need(None), Ok(Need::Body { len: 5, have: 2 })));
        assert!(matches!(
            d.finish(),
            Err(FrameError::Truncated {
                unit: Unit::Body,
                expected: 5,
                received: 2
            })
        ));
        d.feed(b"llo");
        d.begin_message(9);
        assert_eq!(d.next_frame().unwrap(), Some(b"hello".to_vec()));
        assert!(
            matches!(d.need(None), Err(FrameError::TooLarge { len: 9, max: 8 })),
            "refused from its length, before any of its body"
        );
        assert_eq!(d.take_raw_byte(), None, "no raw bytes between messages");
    }

    #[test]
    fn bytes_outside_any_message_put_the_stream_out_of_step() {
        let mut d = Decoder::new();
        d.begin_message(1);
        d.feed(b"ab");
        assert_eq!(d.next_frame().unwrap(), Some(b"a".to_vec()));
        assert!(matches!(d.next_frame(), Err(FrameError::Desynchronized)));
    }
}
