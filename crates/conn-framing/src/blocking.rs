//! Blocking helpers over `std::io::Read` / `Write`: one vectored write per frame, and a buffered
//! reader that puts large bodies straight into their destination.

use std::io::{self, IoSlice, Read, Write};

use crate::decoder::UNLIMITED;
use crate::header::{Header, HeaderStatus, SHORT_HEADER_LEN, decode_header};
use crate::{FrameError, Unit};

/// Size of [`FrameReader`]'s buffer, and the first allocation for a message body; bodies larger
/// than this grow as their bytes arrive (CPython 3.14's `BUFSIZE`).
pub const BUFFER_SIZE: usize = 64 * 1024;

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
    let headers: Vec<Header> = payloads
        .iter()
        .map(|p| Header::new(p.len() as u64))
        .collect();
    let mut slices: Vec<IoSlice<'_>> = headers
        .iter()
        .zip(payloads)
        .flat_map(|(h, p)| [IoSlice::new(h.as_bytes()), IoSlice::new(p)])
        .collect();
    write_all_vectored(writer, &mut slices)
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

/// A buffered frame reader over any `Read`.
///
/// Small frames are served from one 64 KiB buffer; the body of a large frame is read directly
/// into its destination. A claimed length never allocates more than [`BUFFER_SIZE`] before the
/// bytes arrive. If an error leaves the stream inside a frame (an I/O error, a truncated or
/// oversize frame), later reads fail with [`FrameError::Desynchronized`].
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    max_message: u64,
    poisoned: bool,
}

impl<R: Read> FrameReader<R> {
    /// A reader with no message size limit (as CPython).
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; BUFFER_SIZE].into_boxed_slice(),
            pos: 0,
            filled: 0,
            max_message: UNLIMITED,
            poisoned: false,
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

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying reader, mutably. Reading from it directly loses the buffered bytes' place.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes received but not yet returned.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.filled]
    }

    /// Whether a whole frame (or an error to report) is already buffered, so the next read
    /// returns without touching the underlying reader.
    pub fn has_buffered_frame(&self) -> bool {
        if self.poisoned {
            return true;
        }
        let rest = self.buffered();
        match decode_header(rest) {
            Ok(HeaderStatus::Incomplete { .. }) => false,
            Ok(HeaderStatus::Complete {
                header_len,
                payload_len,
            }) => payload_len > self.max_message || (rest.len() - header_len) as u64 >= payload_len,
            Err(_) => true,
        }
    }

    /// Whether an earlier error left the stream inside a frame.
    pub fn is_desynchronized(&self) -> bool {
        self.poisoned
    }

    /// Reads one message (CPython's `recv_bytes()`), refusing it unread if it is longer than
    /// `maxlength` or the reader's maximum.
    pub fn read_frame(&mut self, maxlength: Option<u64>) -> Result<Vec<u8>, FrameError> {
        self.guard(|this| {
            let len = this.read_header(maxlength)?;
            this.read_body_vec(len)
        })
    }

    /// Reads one message into `dst` and returns its length (CPython's `recv_bytes_into()`). If it
    /// does not fit, the whole message is read and returned in [`FrameError::BufferTooShort`];
    /// the stream stays in step.
    pub fn read_frame_into(&mut self, dst: &mut [u8]) -> Result<usize, FrameError> {
        self.guard(|this| {
            let len = this.read_header(None)?;
            match usize::try_from(len) {
                Ok(n) if n <= dst.len() => {
                    this.read_body(&mut dst[..n], 0, len)?;
                    Ok(n)
                }
                _ => Err(FrameError::BufferTooShort {
                    message: this.read_body_vec(len)?,
                }),
            }
        })
    }

    /// Consumes the reader, returning the underlying one and the bytes it had buffered.
    pub fn into_parts(self) -> (R, Vec<u8>) {
        let rest = self.buffered().to_vec();
        (self.inner, rest)
    }

    fn guard<T>(
        &mut self,
        op: impl FnOnce(&mut Self) -> Result<T, FrameError>,
    ) -> Result<T, FrameError> {
        if self.poisoned {
            return Err(FrameError::Desynchronized);
        }
        let result = op(self);
        if let Err(e) = &result {
            // Only a clean EOF and a whole-message BufferTooShort leave the stream in step.
            if !matches!(e, FrameError::Eof | FrameError::BufferTooShort { .. }) {
                self.poisoned = true;
            }
        }
        result
    }

    /// Reads a header and checks the limits; returns the payload length.
    fn read_header(&mut self, maxlength: Option<u64>) -> Result<u64, FrameError> {
        let max = maxlength.map_or(self.max_message, |m| m.min(self.max_message));
        self.fill_to(SHORT_HEADER_LEN, Unit::Header, 0)?;
        let len = match decode_header(self.buffered())? {
            HeaderStatus::Complete {
                header_len,
                payload_len,
            } => {
                self.pos += header_len;
                payload_len
            }
            HeaderStatus::Incomplete { needed } => {
                self.pos += SHORT_HEADER_LEN;
                self.fill_to(needed - SHORT_HEADER_LEN, Unit::ExtendedLength, 0)?;
                let mut be = [0u8; 8];
                be.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
                self.pos += 8;
                u64::from_be_bytes(be)
            }
        };
        if len > max {
            return Err(FrameError::TooLarge { len, max });
        }
        Ok(len)
    }

    /// Makes at least `n` (≤ buffer size) unread bytes available. An EOF is `Eof` if nothing of
    /// this unit had arrived (and `already` is 0), otherwise `Truncated`.
    fn fill_to(&mut self, n: usize, unit: Unit, already: u64) -> Result<(), FrameError> {
        if self.filled - self.pos >= n {
            return Ok(());
        }
        if self.buf.len() - self.pos < n {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
        }
        while self.filled - self.pos < n {
            match self.inner.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    let received = (self.filled - self.pos) as u64 + already;
                    return Err(if received == 0 && unit == Unit::Header {
                        FrameError::Eof
                    } else {
                        FrameError::Truncated {
                            unit,
                            expected: n as u64 + already,
                            received,
                        }
                    });
                }
                Ok(read) => self.filled += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Fills `dst` with body bytes; `done` of `total` body bytes came before `dst`.
    fn read_body(&mut self, dst: &mut [u8], done: u64, total: u64) -> Result<(), FrameError> {
        let from_buf = dst.len().min(self.filled - self.pos);
        dst[..from_buf].copy_from_slice(&self.buf[self.pos..self.pos + from_buf]);
        self.pos += from_buf;
        let mut at = from_buf;
        while at < dst.len() {
            let want = dst.len() - at;
            if want >= self.buf.len() {
                // Large remainder: straight into the destination.
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
            } else {
                self.pos = 0;
                self.filled = 0;
                self.fill_to(1, Unit::Body, done + at as u64)
                    .map_err(|e| match e {
                        FrameError::Truncated { .. } => FrameError::Truncated {
                            unit: Unit::Body,
                            expected: total,
                            received: done + at as u64,
                        },
                        other => other,
                    })?;
                let n = want.min(self.filled);
                dst[at..at + n].copy_from_slice(&self.buf[..n]);
                self.pos = n;
                at += n;
            }
        }
        Ok(())
    }

    /// Reads a body of `len` bytes into a new vector that grows (doubling from
    /// [`BUFFER_SIZE`]) as bytes arrive, so memory follows what the peer sends, not what it claims.
    fn read_body_vec(&mut self, len: u64) -> Result<Vec<u8>, FrameError> {
        let oom = || FrameError::OutOfMemory { len };
        let total = usize::try_from(len).map_err(|_| oom())?;
        let mut out = Vec::new();
        let mut filled = 0;
        while filled < total {
            let target = total.min(filled.saturating_mul(2).max(BUFFER_SIZE));
            out.try_reserve_exact(target - out.len())
                .map_err(|_| oom())?;
            out.resize(target, 0);
            self.read_body(&mut out[filled..target], filled as u64, len)?;
            filled = target;
        }
        Ok(out)
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
        let big = vec![0xabu8; 3 * BUFFER_SIZE + 17];
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
        let big_header = (3 * BUFFER_SIZE as u32).to_be_bytes();
        let mut data = big_header.to_vec();
        data.extend(vec![1u8; 2 * BUFFER_SIZE + 5]);
        assert!(matches!(
            read(&data),
            Err(FrameError::Truncated { unit: Unit::Body, received, .. }) if received == 2 * BUFFER_SIZE as u64 + 5
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
        assert!(r.is_desynchronized());
        assert!(matches!(
            r.read_frame(None),
            Err(FrameError::Desynchronized)
        ));
        // Exactly maxlength is accepted.
        let mut r = FrameReader::new(Cursor::new(data.clone()));
        assert_eq!(r.read_frame(Some(5)).unwrap(), b"12345");
        // The reader's own maximum applies too.
        let mut r = FrameReader::new(Cursor::new(data));
        r.set_max_message(3);
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
        let big = vec![3u8; 4 * BUFFER_SIZE];
        let data = wire(&[&big]);
        let mut r = FrameReader::new(Trickle {
            data,
            at: 0,
            chunk: usize::MAX,
            reads: 1,
        });
        let mut dst = vec![0u8; 5 * BUFFER_SIZE];
        assert_eq!(r.read_frame_into(&mut dst).unwrap(), big.len());
        assert_eq!(&dst[..big.len()], &big[..]);
        // One header fill, then few direct reads: not one read per 64 KiB buffer.
        assert!(r.get_ref().reads <= 6, "{} reads", r.get_ref().reads);
    }

    #[test]
    fn buffered_frames_are_visible() {
        let data = wire(&[b"a", b"bc"]);
        let mut r = FrameReader::new(Cursor::new(data));
        assert!(!r.has_buffered_frame());
        assert_eq!(r.read_frame(None).unwrap(), b"a");
        assert!(
            r.has_buffered_frame(),
            "the first read buffered the second frame"
        );
        assert_eq!(r.read_frame(None).unwrap(), b"bc");
        assert!(!r.has_buffered_frame());
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
}
