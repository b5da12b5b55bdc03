//! Blocking helpers over `std::io::Read` / `Write`: one vectored write per frame, and a buffered
//! reader that puts large bodies straight into their destination.

use std::borrow::Cow;
use std::io::{self, IoSlice, Read, Write};

use crate::decoder::{Decoder, Need, READ_BUFFER};
use crate::header::Header;
use crate::{FrameError, Unit};

/// Writes one frame: header and payload leave in one vectored write (one syscall in the usual
/// case, whatever the size: no copy, and no Nagle stall between header and body).
///
/// Retries on `Interrupted`; a writer that accepts nothing gives `WriteZero`.
pub fn write_frame<W: Write + ?Sized>(writer: &mut W, payload: &[u8]) -> io::Result<()> {
    let header = Header::new(payload.len() as u64);
    let mut slices = [IoSlice::new(header.as_bytes()), IoSlice::new(payload)];
    write_all_vectored(writer, &mut slices)
}

/// Writes several frames in one vectored write (one syscall in the usual case).
pub fn write_frames<W: Write + ?Sized>(writer: &mut W, payloads: &[&[u8]]) -> io::Result<()> {
    with_frame_slices(payloads, |slices| write_all_vectored(writer, slices))
}

/// Hands `write` the frames of `payloads` as one list of slices, header then payload for each,
/// for a writer of its own (a non-blocking or timed one).
pub fn with_frame_slices<T>(payloads: &[&[u8]], write: impl FnOnce(&mut [IoSlice<'_>]) -> T) -> T {
    let headers: Vec<Header> = payloads
        .iter()
        .map(|p| Header::new(p.len() as u64))
        .collect();
    let mut slices: Vec<IoSlice<'_>> = headers
        .iter()
        .zip(payloads)
        .flat_map(|(h, p)| [IoSlice::new(h.as_bytes()), IoSlice::new(p)])
        .collect();
    write(&mut slices)
}

/// `write_all` for slices, retrying `Interrupted`; a writer that accepts nothing is `WriteZero`.
fn write_all_vectored<W: Write + ?Sized>(
    writer: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !bufs.is_empty() {
        match writer.write_vectored(bufs) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole frame",
                ));
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How a shell appends up to `n` body bytes straight to a message's vector (stopping early only
/// at EOF, retrying interruptions). The default is `Read::take(n).read_to_end`; a transport that
/// can read into a vector's spare capacity without zeroing it passes its own.
pub type AppendFn<R> = fn(&mut R, &mut Vec<u8>, u64) -> io::Result<usize>;

fn default_append<R: Read>(r: &mut R, v: &mut Vec<u8>, n: u64) -> io::Result<usize> {
    r.by_ref().take(n).read_to_end(v)
}

/// What one read from a transport that keeps message boundaries brought (see
/// [`FrameReader::set_messages`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRead {
    /// Bytes read into the buffer given (all of one message).
    pub len: usize,
    /// `Some(total)` if these bytes begin a message of `total` bytes (a zero-length message is
    /// `len: 0, begins: Some(0)`); `None` if they continue the current one. `len: 0` with
    /// `begins: None` is end of file.
    pub begins: Option<u64>,
}

/// How a shell reads from a transport that keeps message boundaries: into the buffer given,
/// never past the end of the current message.
pub type MessageFn<R> = fn(&mut R, &mut [u8]) -> io::Result<MessageRead>;

/// A buffered frame reader over any `Read`: the blocking shell of [`Decoder`].
///
/// Small frames are served from the decoder's buffer (which grows with what arrives, from
/// 8 KiB to 64 KiB, CPython 3.14's `BUFSIZE`, and is freed when drained),
/// and typed receives can decode them in place ([`read_frame_ref`](Self::read_frame_ref)); the
/// body of a large frame is read directly into its destination. A claimed length never
/// allocates by itself. If an error leaves the stream inside a frame (an I/O error, a truncated
/// or oversize frame), later reads fail with [`FrameError::Desynchronized`].
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    core: Decoder,
    append: AppendFn<R>,
    /// Set for a transport that keeps message boundaries: how to read from it.
    messages: Option<MessageFn<R>>,
}

impl<R: Read> FrameReader<R> {
    /// A reader with no message size limit (as CPython).
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            core: Decoder::new(),
            append: default_append::<R>,
            messages: None,
        }
    }

    /// Reads a transport that keeps message boundaries and sends no headers (a Windows
    /// message-mode pipe) through `read`, which says where each message begins and how long it
    /// is ([`Decoder::begin_message`]). The large-body path still reads through `Read`, which
    /// must then not read past the current message.
    pub fn set_messages(&mut self, read: MessageFn<R>) {
        self.messages = Some(read);
    }

    /// One read into the buffer through a message reader of the shell's choosing (a
    /// non-blocking one), for a transport set up with [`set_messages`](Self::set_messages).
    pub fn fill_message_once_with(
        &mut self,
        body_room: bool,
        read: impl FnOnce(&mut R, &mut [u8]) -> io::Result<MessageRead>,
    ) -> io::Result<MessageRead> {
        let got = read(&mut self.inner, self.core.spare(body_room))?;
        if let Some(total) = got.begins {
            self.core.begin_message(total);
        }
        self.core.commit(got.len);
        Ok(got)
    }

    /// Uses `append` to read large bodies straight into their vector (see [`AppendFn`]).
    pub fn set_append(&mut self, append: AppendFn<R>) {
        self.append = append;
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying reader, mutably. Reading from it directly loses the buffered bytes' place.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The decoder (buffered bytes, limits, state): [`Decoder::need`],
    /// [`Decoder::has_frame`], [`Decoder::buffered`] say where the stream is.
    pub fn decoder(&self) -> &Decoder {
        &self.core
    }

    /// The decoder, mutably: its limit ([`Decoder::set_max_message`]), a raw byte sent
    /// between frames ([`Decoder::take_raw_byte`]), [`Decoder::release_if_idle`] after a
    /// borrowed frame.
    pub fn decoder_mut(&mut self) -> &mut Decoder {
        &mut self.core
    }

    /// Reads once from the underlying reader into the buffer: the bytes read, 0 at EOF. For a
    /// non-blocking shell, call it only when a read will not block (the handle is readable);
    /// `body_room` lets a frame's body accumulate beyond [`READ_BUFFER`]. Byte transports
    /// only: a message transport is filled with
    /// [`fill_message_once_with`](Self::fill_message_once_with), which tells a zero-length
    /// message from the end.
    pub fn fill_once(&mut self, body_room: bool) -> io::Result<usize> {
        loop {
            match self.fill_once_with(body_room, |r, buf| r.read(buf)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// One read into the buffer by `read` (a non-blocking read of the shell's choosing); the
    /// bytes it reports are kept.
    pub fn fill_once_with(
        &mut self,
        body_room: bool,
        read: impl FnOnce(&mut R, &mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let n = read(&mut self.inner, self.core.spare(body_room))?;
        self.core.commit(n);
        Ok(n)
    }

    /// Reads one message (CPython's `recv_bytes()`), refusing it unread if it is longer than
    /// `maxlength` or the reader's maximum.
    pub fn read_frame(&mut self, maxlength: Option<u64>) -> Result<Vec<u8>, FrameError> {
        let frame = self.read_frame_ref(maxlength)?.into_owned();
        self.core.release_if_idle();
        Ok(frame)
    }

    /// Reads one message, borrowed from the buffer when it fits there (a typed receive decodes
    /// it in place), owned when its body was read straight into a vector. Call
    /// [`Decoder::release_if_idle`] when done with it.
    pub fn read_frame_ref(&mut self, maxlength: Option<u64>) -> Result<Cow<'_, [u8]>, FrameError> {
        if self.wait_frame(maxlength)? {
            return Ok(Cow::Owned(self.read_large(maxlength)?));
        }
        Ok(Cow::Borrowed(
            self.core.next_frame_ref(maxlength)?.unwrap_or_default(),
        ))
    }

    /// Reads one message into `dst` and returns its length (CPython's `recv_bytes_into()`). If it
    /// does not fit, the whole message is read and returned in [`FrameError::BufferTooShort`];
    /// the stream stays in step.
    pub fn read_frame_into(&mut self, dst: &mut [u8]) -> Result<usize, FrameError> {
        let large = self.wait_frame(None)?;
        let Need::Body { len, .. } = self.core.need_or_poison(None)? else {
            // Whole and buffered.
            return Ok(self.core.next_frame_into(dst)?.unwrap_or_default());
        };
        debug_assert!(large);
        match usize::try_from(len) {
            Ok(n) if n <= dst.len() => {
                let (_, start) = self.core.take_body_start(None)?;
                dst[..start.len()].copy_from_slice(&start);
                self.read_exact_body(&mut dst[start.len()..n], start.len() as u64, len)?;
                self.core.finish_body();
                Ok(n)
            }
            _ => Err(FrameError::BufferTooShort {
                message: self.read_large(None)?,
            }),
        }
    }

    /// Consumes the reader, returning the underlying one and the bytes it had buffered.
    pub fn into_parts(self) -> (R, Vec<u8>) {
        let rest = self.core.buffered_bytes().to_vec();
        (self.inner, rest)
    }

    /// Reads until the frame at the front is whole (false) or is a large frame whose body
    /// should go straight to its destination (true). Limits are checked as soon as the header
    /// is complete.
    fn wait_frame(&mut self, maxlength: Option<u64>) -> Result<bool, FrameError> {
        loop {
            match self.core.need_or_poison(maxlength)? {
                Need::Nothing => return Ok(false),
                Need::Body { len, have } if len - have as u64 > READ_BUFFER as u64 => {
                    return Ok(true);
                }
                Need::Header { .. } | Need::Body { .. } => self.fill()?,
            }
        }
    }

    /// One read into the buffer; EOF is [`FrameError::Eof`] between frames, otherwise the
    /// truncation the decoder describes. Errors inside a frame poison the stream.
    fn fill(&mut self) -> Result<(), FrameError> {
        let filled = match self.messages {
            None => self.fill_once(false),
            Some(read) => loop {
                match self.fill_message_once_with(false, read) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // A message began, even an empty one: progress, not the end.
                    Ok(got) => break Ok(got.len + usize::from(got.begins.is_some())),
                    Err(e) => break Err(e),
                }
            },
        };
        match filled {
            Ok(0) if self.core.between_frames() => Err(FrameError::Eof),
            Ok(0) => {
                self.core.poison();
                Err(self.core_finish_error())
            }
            Ok(_) => Ok(()),
            Err(e) => {
                if self.core.buffered() > 0 {
                    self.core.poison();
                }
                Err(e.into())
            }
        }
    }

    fn core_finish_error(&self) -> FrameError {
        // The decoder is poisoned by now; `finish` classifies from its bytes all the same.
        self.core
            .finish()
            .err()
            .unwrap_or(FrameError::Desynchronized)
    }

    /// The rest of a large frame's body, straight into a vector that grows with what arrives.
    fn read_large(&mut self, maxlength: Option<u64>) -> Result<Vec<u8>, FrameError> {
        let (len, mut body) = self.core.take_body_start(maxlength)?;
        let total = usize::try_from(len).map_err(|_| FrameError::OutOfMemory { len })?;
        let have = body.len();
        // Room for what has arrived plus one read's worth; read_to_end grows it as bytes come.
        body.try_reserve(READ_BUFFER.min(total - have))
            .map_err(|_| FrameError::OutOfMemory { len })?;
        // `read_to_end` retries interruptions itself; what it read before an error stays in
        // `body`, but the stream is out of step either way (the decoder stays poisoned).
        (self.append)(&mut self.inner, &mut body, (total - have) as u64)?;
        if body.len() < total {
            return Err(FrameError::Truncated {
                unit: Unit::Body,
                expected: len,
                received: body.len() as u64,
            });
        }
        self.core.finish_body();
        Ok(body)
    }

    /// Fills `dst` straight from the reader; `done` of `total` body bytes came before it.
    fn read_exact_body(&mut self, dst: &mut [u8], done: u64, total: u64) -> Result<(), FrameError> {
        let mut at = 0;
        while at < dst.len() {
            match self.inner.read(&mut dst[at..]) {
                Ok(0) => {
                    return Err(FrameError::Truncated {
                        unit: Unit::Body,
                        expected: total,
                        received: done + at as u64,
                    });
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;
    use crate::encode_frame_into;

    /// A reader that hands out at most `chunk` bytes per call and can fail part-way.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
        reads: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.reads.is_multiple_of(3) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.chunk).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn wire(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_frame_into(p, &mut out);
        }
        out
    }

    /// A writer that takes at most 3 bytes per call and is sometimes interrupted.
    struct Slow(Vec<u8>, usize);
    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1 += 1;
            if self.1.is_multiple_of(4) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_frame_survives_short_and_interrupted_writes() {
        let mut w = Slow(Vec::new(), 0);
        write_frame(&mut w, b"hello world").unwrap();
        write_frame(&mut w, b"").unwrap();
        assert_eq!(w.0, wire(&[b"hello world", b""]));
    }

    #[test]
    fn write_frame_is_one_vectored_write_when_the_writer_takes_it() {
        struct Count(usize, Vec<u8>);
        impl Write for Count {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0 += 1;
                self.1.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                self.0 += 1;
                let mut n = 0;
                for b in bufs {
                    self.1.extend_from_slice(b);
                    n += b.len();
                }
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = Count(0, Vec::new());
        write_frame(&mut w, &[7u8; 100_000]).unwrap();
        assert_eq!(w.0, 1);
        assert_eq!(w.1.len(), 100_004);
    }

    #[test]
    fn write_frames_puts_every_frame_on_the_wire_in_order() {
        let mut w = Slow(Vec::new(), 0);
        write_frames(&mut w, &[b"one", b"", b"three"]).unwrap();
        assert_eq!(w.0, wire(&[b"one", b"", b"three"]));
    }

    #[test]
    fn reads_frames_of_every_size_through_a_trickle() {
        let big = vec![0xabu8; 3 * READ_BUFFER + 17];
        let data = wire(&[b"", b"a", &big, b"tail"]);
        for chunk in [1, 7, 4096, 1 << 20] {
            let mut r = FrameReader::new(Trickle {
                data: data.clone(),
                at: 0,
                chunk,
                reads: 0,
            });
            assert_eq!(r.read_frame(None).unwrap(), b"");
            assert_eq!(r.read_frame(None).unwrap(), b"a");
            assert_eq!(r.read_frame(None).unwrap(), big);
            assert_eq!(r.read_frame(None).unwrap(), b"tail");
            assert!(matches!(r.read_frame(None), Err(FrameError::Eof)));
        }
    }

    /// A reader with everything already there that records the room each read was given.
    struct Recording {
        data: Vec<u8>,
        at: usize,
        asks: Vec<usize>,
    }

    impl Read for Recording {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.asks.push(buf.len());
            let n = buf.len().min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn a_body_past_the_read_buffer_is_never_read_a_byte_at_a_time() {
        // 70,000 bytes already waiting: before, a full 64 KiB buffer grew one byte per read
        // (4,472 reads). Every read of a frame still owed bytes asks for at least MIN_ROOM
        // or what is owed, whichever is smaller.
        for size in [
            70_000usize,
            READ_BUFFER,
            READ_BUFFER + 1,
            3 * READ_BUFFER / 2,
        ] {
            let payload = vec![0x5au8; size];
            let data = wire(&[&payload, b"next"]);
            for body_room in [false, true] {
                let mut r = FrameReader::new(Recording {
                    data: data.clone(),
                    at: 0,
                    asks: Vec::new(),
                });
                while !r.decoder().has_frame() {
                    assert!(r.fill_once(body_room).unwrap() > 0);
                }
                assert_eq!(r.read_frame(None).unwrap(), payload);
                let asks = &r.get_ref().asks;
                assert!(asks.len() <= 8, "{size} {body_room}: {} reads", asks.len());
                assert!(
                    asks.iter().all(|&a| a >= crate::tuning::MIN_ROOM),
                    "{size} {body_room}: {asks:?}"
                );
            }
        }
    }

    #[test]
    fn the_largest_header_with_no_limit_never_overflows() {
        // `ff`x12: the -1 marker and a length of 2^64 - 1, then more bytes than the buffer
        // holds, with no message limit, through the non-blocking shell's growing reads (a
        // debug build panicked adding the header's length).
        let mut data = vec![0xffu8; 12];
        data.extend(vec![7u8; 3 * READ_BUFFER]);
        for body_room in [false, true] {
            let mut r = FrameReader::new(Cursor::new(data.clone()));
            let mut total = 0;
            for _ in 0..64 {
                match r.fill_once(body_room) {
                    Ok(0) => break,
                    Ok(n) => total += n,
                    Err(e) => panic!("{e}"),
                }
                assert!(!r.decoder().has_frame());
            }
            assert_eq!(total, data.len());
            assert!(r.decoder().capacity() <= 2 * data.len() + READ_BUFFER);
            assert!(matches!(
                r.read_frame(None),
                Err(FrameError::Truncated {
                    unit: Unit::Body,
                    expected: u64::MAX,
                    ..
                })
            ));
        }
    }

    #[test]
    fn eof_matrix() {
        let read = |bytes: &[u8]| FrameReader::new(Cursor::new(bytes.to_vec())).read_frame(None);
        assert!(matches!(read(&[]), Err(FrameError::Eof)));
        assert!(matches!(
            read(&[0, 0]),
            Err(FrameError::Truncated {
                unit: Unit::Header,
                expected: 4,
                received: 2
            })
        ));
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::Truncated {
                unit: Unit::ExtendedLength,
                expected: 8,
                received: 0
            })
        ));
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xff, 0, 0]),
            Err(FrameError::Truncated {
                unit: Unit::ExtendedLength,
                expected: 8,
                received: 2
            })
        ));
        assert!(matches!(
            read(&[0, 0, 0, 5]),
            Err(FrameError::Truncated {
                unit: Unit::Body,
                expected: 5,
                received: 0
            })
        ));
        assert!(matches!(
            read(&[0, 0, 0, 5, 1, 2]),
            Err(FrameError::Truncated {
                unit: Unit::Body,
                expected: 5,
                received: 2
            })
        ));
        let big_header = (3 * READ_BUFFER as u32).to_be_bytes();
        let mut data = big_header.to_vec();
        data.extend(vec![1u8; 2 * READ_BUFFER + 5]);
        assert!(matches!(
            read(&data),
            Err(FrameError::Truncated { unit: Unit::Body, received, .. }) if received == 2 * READ_BUFFER as u64 + 5
        ));
    }

    #[test]
    fn a_claim_of_2_pow_63_bytes_costs_kilobytes() {
        let mut data = vec![0xff, 0xff, 0xff, 0xff];
        data.extend_from_slice(&(1u64 << 63).to_be_bytes());
        data.extend_from_slice(b"0123456789");
        let mut r = FrameReader::new(Cursor::new(data));
        // On 64-bit targets the length fits usize, so this exercises growth, not refusal.
        let err = r.read_frame(None).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::Truncated {
                    unit: Unit::Body,
                    received: 10,
                    ..
                } | FrameError::OutOfMemory { .. }
            ),
            "{err:?}"
        );
        assert!(matches!(
            r.read_frame(None),
            Err(FrameError::Desynchronized)
        ));
    }

    #[test]
    fn maxlength_refuses_without_reading_the_body() {
        let data = wire(&[b"12345", b"next"]);
        let mut r = FrameReader::new(Cursor::new(data.clone()));
        assert!(matches!(
            r.read_frame(Some(4)),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        ));
        assert!(r.decoder().is_poisoned());
        assert!(matches!(
            r.read_frame(None),
            Err(FrameError::Desynchronized)
        ));
        // Exactly maxlength is accepted.
        let mut r = FrameReader::new(Cursor::new(data.clone()));
        assert_eq!(r.read_frame(Some(5)).unwrap(), b"12345");
        // The reader's own maximum applies too.
        let mut r = FrameReader::new(Cursor::new(data));
        r.decoder_mut().set_max_message(3);
        assert!(matches!(
            r.read_frame(Some(100)),
            Err(FrameError::TooLarge { len: 5, max: 3 })
        ));
    }

    #[test]
    fn read_into_fits_or_returns_the_whole_message() {
        let data = wire(&[b"hello world", b"", b"ok"]);
        let mut r = FrameReader::new(Cursor::new(data));
        let mut buf = [0u8; 5];
        match r.read_frame_into(&mut buf) {
            Err(FrameError::BufferTooShort { message }) => assert_eq!(message, b"hello world"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.read_frame_into(&mut buf[5..]).unwrap(),
            0,
            "empty into empty"
        );
        assert_eq!(
            r.read_frame_into(&mut buf).unwrap(),
            2,
            "stream still in step"
        );
        assert_eq!(&buf[..2], b"ok");
    }

    #[test]
    fn large_bodies_go_straight_into_the_destination() {
        let big = vec![3u8; 4 * READ_BUFFER];
        let data = wire(&[&big]);
        let mut r = FrameReader::new(Trickle {
            data,
            at: 0,
            chunk: usize::MAX,
            reads: 1,
        });
        let mut dst = vec![0u8; 5 * READ_BUFFER];
        assert_eq!(r.read_frame_into(&mut dst).unwrap(), big.len());
        assert_eq!(&dst[..big.len()], &big[..]);
        // One header fill, then few direct reads: not one read per 64 KiB buffer.
        assert!(r.get_ref().reads <= 6, "{} reads", r.get_ref().reads);
    }

    #[test]
    fn buffered_frames_are_visible() {
        let data = wire(&[b"a", b"bc"]);
        let mut r = FrameReader::new(Cursor::new(data));
        assert!(!r.decoder().has_frame());
        assert_eq!(r.read_frame(None).unwrap(), b"a");
        assert!(
            r.decoder().has_frame(),
            "the first read buffered the second frame"
        );
        assert_eq!(r.read_frame(None).unwrap(), b"bc");
        assert!(!r.decoder().has_frame());
    }

    #[test]
    fn negative_header_is_an_error_not_an_empty_message() {
        let mut data = (-5i32).to_be_bytes().to_vec();
        data.extend_from_slice(&wire(&[b"x"]));
        let mut r = FrameReader::new(Cursor::new(data));
        assert!(matches!(
            r.read_frame(None),
            Err(FrameError::NegativeLength { header: -5 })
        ));
    }

    proptest! {
        #[test]
        fn trickled_frames_round_trip(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 0..6),
            chunk in 1usize..3000,
        ) {
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let mut r = FrameReader::new(Trickle { data: wire(&refs), at: 0, chunk, reads: 0 });
            for p in &payloads {
                prop_assert_eq!(&r.read_frame(None).unwrap(), p);
            }
            prop_assert!(matches!(r.read_frame(None), Err(FrameError::Eof)));
        }
    }

    /// A transport that keeps message boundaries (a Windows message-mode pipe, in memory):
    /// reads never cross a message's end and hand out at most `chunk` bytes; `cut` ends the
    /// transport after that many bytes of the last message.
    struct Pipe {
        messages: Vec<Vec<u8>>,
        next: usize,
        at: usize,
        chunk: usize,
        cut: Option<usize>,
    }

    impl Pipe {
        fn new(messages: &[&[u8]], chunk: usize) -> Self {
            Self {
                messages: messages.iter().map(|m| m.to_vec()).collect(),
                next: 0,
                at: 0,
                chunk,
                cut: None,
            }
        }

        fn read_part(&mut self, buf: &mut [u8]) -> io::Result<MessageRead> {
            let begins = self.at == 0;
            let Some(m) = self.messages.get(self.next) else {
                return Ok(MessageRead {
                    len: 0,
                    begins: None,
                });
            };
            let last = self.next + 1 == self.messages.len();
            let end = match self.cut {
                Some(cut) if last => cut.min(m.len()),
                _ => m.len(),
            };
            let n = buf.len().min(self.chunk).min(end - self.at);
            if n == 0 && !begins {
                return Ok(MessageRead {
                    len: 0,
                    begins: None,
                });
            }
            buf[..n].copy_from_slice(&m[self.at..self.at + n]);
            let total = m.len() as u64;
            self.at += n;
            if self.at == m.len() {
                self.next += 1;
                self.at = 0;
            }
            Ok(MessageRead {
                len: n,
                begins: begins.then_some(total),
            })
        }
    }

    impl Read for Pipe {
        /// The large-body path: the rest of the current message only.
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(self.at > 0, "a body read at a message boundary");
            Ok(self.read_part(buf)?.len)
        }
    }

    fn pipe_reader(messages: &[&[u8]], chunk: usize) -> FrameReader<Pipe> {
        let mut r = FrameReader::new(Pipe::new(messages, chunk));
        r.set_messages(Pipe::read_part);
        r
    }

    #[test]
    fn message_transports_need_no_headers() {
        let big = vec![7u8; 3 * READ_BUFFER + 5];
        let messages: [&[u8]; 5] = [b"hello", b"", &big, b"\x00\x00\x00\x05", b""];
        for chunk in [1, 3, 4096, usize::MAX] {
            let mut r = pipe_reader(&messages, chunk);
            for m in messages {
                assert_eq!(r.read_frame(None).unwrap(), m, "chunk {chunk}");
            }
            assert!(matches!(r.read_frame(None), Err(FrameError::Eof)));
        }
        let mut r = pipe_reader(&messages, 1000);
        let mut dst = vec![0; big.len()];
        assert_eq!(r.read_frame_into(&mut dst).unwrap(), 5);
        assert_eq!(r.read_frame_into(&mut dst).unwrap(), 0);
        assert_eq!(r.read_frame_into(&mut dst).unwrap(), big.len());
        assert_eq!(dst, big);
        let mut small = [0; 2];
        assert!(matches!(
            r.read_frame_into(&mut small),
            Err(FrameError::BufferTooShort { message }) if message == messages[3]
        ));
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_its_length() {
        let long = vec![1u8; 300];
        let mut r = pipe_reader(&[&long, b"next"], 16);
        r.decoder_mut().set_max_message(256);
        assert!(matches!(
            r.read_frame(None),
            Err(FrameError::TooLarge { len: 300, max: 256 })
        ));
        let mut r = pipe_reader(&[&long], 16);
        assert!(matches!(
            r.read_frame(Some(299)),
            Err(FrameError::TooLarge { len: 300, max: 299 })
        ));
    }

    #[test]
    fn a_pipe_that_closes_mid_message_is_a_truncated_body() {
        for (len, cut) in [(10, 4), (3 * READ_BUFFER, READ_BUFFER + 7)] {
            let message = vec![2u8; len];
            let mut pipe = Pipe::new(&[b"whole", &message], 4096);
            pipe.cut = Some(cut);
            let mut r = FrameReader::new(pipe);
            r.set_messages(Pipe::read_part);
            assert_eq!(r.read_frame(None).unwrap(), b"whole");
            match r.read_frame(None) {
                Err(FrameError::Truncated {
                    unit: Unit::Body,
                    expected,
                    received,
                }) => {
                    assert_eq!(expected, len as u64);
                    assert_eq!(received, cut as u64);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
