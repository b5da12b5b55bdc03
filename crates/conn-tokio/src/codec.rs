//! `FrameCodec`: CPython's frames as a tokio-util [`Decoder`] / [`Encoder`], for users who build
//! their own `Framed<_, _>` stacks (feature `codec`).

use bytes::{Buf, BufMut, BytesMut};
use conn_framing::{FrameError, Header, HeaderStatus, UNLIMITED, Unit, decode_header};
use tokio_util::codec::{Decoder, Encoder};

/// The most a decode reserves ahead of the bytes that have arrived: a header's claimed length
/// never sizes an allocation by itself.
const RESERVE_STEP: usize = 64 * 1024;

/// CPython's framing (a 4-byte big-endian length, or `-1` and an 8-byte length above 2 GiB)
/// for `tokio_util::codec::Framed`. Decoding refuses a frame longer than the limit as soon as
/// its header is in ([`FrameError::TooLarge`]), and memory grows with the bytes received, not
/// with the lengths claimed. Items are the payloads, without headers.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    max_message: u64,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameCodec {
    /// A codec with no message size limit (as CPython).
    pub fn new() -> Self {
        Self {
            max_message: UNLIMITED,
        }
    }

    /// A codec that refuses frames longer than `max_message` bytes.
    pub fn with_max_message(max_message: u64) -> Self {
        Self { max_message }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let (header_len, len) = match decode_header(src)? {
            HeaderStatus::Incomplete { needed } => {
                src.reserve(needed - src.len());
                return Ok(None);
            }
            HeaderStatus::Complete {
                header_len,
                payload_len,
            } => (header_len, payload_len),
        };
        if len > self.max_message {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_message,
            });
        }
        let have = (src.len() - header_len) as u64;
        if have < len {
            let owed = usize::try_from(len - have).unwrap_or(usize::MAX);
            src.reserve(owed.min(RESERVE_STEP));
            return Ok(None);
        }
        src.advance(header_len);
        // `len <= have`, which fits in memory.
        Ok(Some(src.split_to(len as usize)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => {
                let mut core = conn_framing::Decoder::new();
                core.feed(src);
                src.clear();
                Err(core.finish().err().unwrap_or(FrameError::Truncated {
                    unit: Unit::Body,
                    expected: 0,
                    received: 0,
                }))
            }
        }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), FrameError> {
        let payload = item.as_ref();
        let header = Header::new(payload.len() as u64);
        dst.reserve(header.as_bytes().len() + payload.len());
        dst.put_slice(header.as_bytes());
        dst.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_any_chunking_and_limits_hold() {
        let payloads: [&[u8]; 4] = [b"", b"hello", &[7u8; 100_000], b"\x00\x00\x00\x05"];
        let mut wire = BytesMut::new();
        let mut codec = FrameCodec::new();
        for p in payloads {
            codec.encode(p, &mut wire).unwrap();
        }
        for chunk in [1, 3, 4096, usize::MAX] {
            let mut src = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk.min(wire.len())) {
                src.extend_from_slice(piece);
                while let Some(frame) = codec.decode(&mut src).unwrap() {
                    got.push(frame.to_vec());
                }
            }
            assert_eq!(got, payloads.map(<[u8]>::to_vec), "chunk {chunk}");
            assert!(codec.decode_eof(&mut src).unwrap().is_none());
        }
        let mut src = BytesMut::from(&[0u8, 0, 1, 0, 1][..]);
        assert!(matches!(
            FrameCodec::with_max_message(255).decode(&mut src),
            Err(FrameError::TooLarge { len: 256, max: 255 })
        ));
        // A header claiming 2 GiB reserves a step, not the claim.
        let mut src = BytesMut::from(&[0x7fu8, 0xff, 0xff, 0xff, 1][..]);
        assert!(codec.decode(&mut src).unwrap().is_none());
        assert!(src.capacity() < 1 << 20);
        assert!(matches!(
            codec.decode_eof(&mut src),
            Err(FrameError::Truncated {
                unit: Unit::Body,
                ..
            })
        ));
    }
}
