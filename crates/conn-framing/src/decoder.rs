//! `Decoder`: a sans-IO frame decoder. Feed it bytes as they arrive; take whole frames out.

use crate::header::{HeaderStatus, decode_header};
use crate::{FrameError, Unit};

/// No limit on message size: CPython has none. Memory still grows only with bytes received.
pub const UNLIMITED: u64 = u64::MAX;

/// An incremental decoder: [`feed`](Self::feed) bytes in any chunking, then call
/// [`next_frame`](Self::next_frame) until it returns `Ok(None)` ("need more").
///
/// Memory grows with the bytes fed, never with what a header claims. A header over the
/// configured maximum is refused as soon as it is complete, before its body arrives; after any
/// error the decoder answers [`FrameError::Desynchronized`].
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    max_message: u64,
    poisoned: bool,
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
            max_message,
            poisoned: false,
        }
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            // Most of the buffer is consumed frames: slide the rest down.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed but not yet returned in a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes the next whole frame's payload, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some((header_len, len)) = self.peek()? else {
            return Ok(None);
        };
        let body = self.start + header_len;
        let end = body + len;
        let payload = self.buf[body..end].to_vec();
        self.start = end;
        Ok(Some(payload))
    }

    /// Whether [`next_frame`](Self::next_frame) would return a frame or an error now, without
    /// waiting for more bytes (a connection is "ready" when this is true).
    pub fn has_frame(&self) -> bool {
        !matches!(self.check(), Ok(None))
    }

    /// Call when the stream has ended: `Ok(())` if it ended between frames,
    /// [`FrameError::Truncated`] if inside one.
    pub fn finish(&self) -> Result<(), FrameError> {
        let rest = &self.buf[self.start..];
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

    /// (header length, payload length) of a complete frame at the front, checking limits.
    fn peek(&mut self) -> Result<Option<(usize, usize)>, FrameError> {
        let result = self.check();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn check(&self) -> Result<Option<(usize, usize)>, FrameError> {
        if self.poisoned {
            return Err(FrameError::Desynchronized);
        }
        let rest = &self.buf[self.start..];
        let (header_len, payload_len) = match decode_header(rest)? {
            HeaderStatus::Incomplete { .. } => return Ok(None),
            HeaderStatus::Complete {
                header_len,
                payload_len,
            } => (header_len, payload_len),
        };
        if payload_len > self.max_message {
            return Err(FrameError::TooLarge {
                len: payload_len,
                max: self.max_message,
            });
        }
        // A length beyond what is buffered is simply "need more": it never sizes an allocation.
        match usize::try_from(payload_len) {
            Ok(len) if rest.len() - header_len >= len => Ok(Some((header_len, len))),
            _ => Ok(None),
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
}
