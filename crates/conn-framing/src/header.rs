//! The frame header of CPython's `Connection`: a 4-byte big-endian signed length, or `-1` and an
//! 8-byte big-endian unsigned length for payloads over `0x7fffffff` (CPython 3.8+).

use crate::FrameError;

/// The longest payload the 4-byte header carries; longer ones use the `-1` marker.
pub const SHORT_MAX: u64 = 0x7fff_ffff;

/// The 4-byte header value announcing an 8-byte length.
pub const LONG_MARKER: i32 = -1;

/// Bytes in a short header.
pub const SHORT_HEADER_LEN: usize = 4;

/// Bytes in a long header (marker and 8-byte length).
pub const LONG_HEADER_LEN: usize = 12;

/// An encoded header, ready to write before its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    bytes: [u8; LONG_HEADER_LEN],
    len: u8,
}

impl Header {
    /// The header for a payload of `payload_len` bytes: 4 bytes up to [`SHORT_MAX`], else the
    /// `-1` marker and the 8-byte length (`ffffffff 0000000080000000` for 2 GiB).
    pub fn new(payload_len: u64) -> Self {
        let mut bytes = [0u8; LONG_HEADER_LEN];
        if payload_len <= SHORT_MAX {
            // SHORT_MAX fits in 31 bits, so the unsigned and signed encodings agree.
            bytes[..4].copy_from_slice(&(payload_len as u32).to_be_bytes());
            Self {
                bytes,
                len: SHORT_HEADER_LEN as u8,
            }
        } else {
            bytes[..4].copy_from_slice(&LONG_MARKER.to_be_bytes());
            bytes[4..].copy_from_slice(&payload_len.to_be_bytes());
            Self {
                bytes,
                len: LONG_HEADER_LEN as u8,
            }
        }
    }

    /// The header's bytes (4 or 12).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What the start of a buffer says about the frame there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderStatus {
    /// The header is not complete: at least this many bytes in all are needed to decode it.
    Incomplete {
        /// Total bytes needed (4, or 12 after a `-1` marker).
        needed: usize,
    },
    /// The header is complete.
    Complete {
        /// Bytes the header took (4 or 12).
        header_len: usize,
        /// The payload length it announces.
        payload_len: u64,
    },
}

/// Decodes the header at the start of `bytes`.
///
/// A `-1` marker followed by a small length is accepted, as CPython accepts it. Any other negative
/// header is [`FrameError::NegativeLength`].
pub fn decode_header(bytes: &[u8]) -> Result<HeaderStatus, FrameError> {
    let Some(short) = bytes.first_chunk::<SHORT_HEADER_LEN>() else {
        return Ok(HeaderStatus::Incomplete {
            needed: SHORT_HEADER_LEN,
        });
    };
    let header = i32::from_be_bytes(*short);
    if header >= 0 {
        return Ok(HeaderStatus::Complete {
            header_len: SHORT_HEADER_LEN,
            payload_len: header as u64,
        });
    }
    if header != LONG_MARKER {
        return Err(FrameError::NegativeLength { header });
    }
    match bytes.get(SHORT_HEADER_LEN..LONG_HEADER_LEN) {
        Some(long) => {
            let mut be = [0u8; 8];
            be.copy_from_slice(long);
            Ok(HeaderStatus::Complete {
                header_len: LONG_HEADER_LEN,
                payload_len: u64::from_be_bytes(be),
            })
        }
        None => Ok(HeaderStatus::Incomplete {
            needed: LONG_HEADER_LEN,
        }),
    }
}

/// Appends one whole frame (header and payload) to `out`.
pub fn encode_frame_into(payload: &[u8], out: &mut Vec<u8>) {
    let header = Header::new(payload.len() as u64);
    out.reserve(header.as_bytes().len() + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn headers_match_cpythons_bytes() {
        // docs/protocol.md §1.1, observed from CPython.
        assert_eq!(hex(Header::new(5).as_bytes()), "00000005");
        assert_eq!(hex(Header::new(0).as_bytes()), "00000000");
        assert_eq!(hex(Header::new(0x7fff_ffff).as_bytes()), "7fffffff");
        assert_eq!(
            hex(Header::new(1 << 31).as_bytes()),
            "ffffffff0000000080000000"
        );
        let mut frame = Vec::new();
        encode_frame_into(b"hello", &mut frame);
        assert_eq!(hex(&frame), "0000000568656c6c6f");
    }

    #[test]
    fn non_canonical_long_header_is_accepted() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3];
        assert_eq!(
            decode_header(&bytes).unwrap(),
            HeaderStatus::Complete {
                header_len: 12,
                payload_len: 3
            }
        );
    }

    #[test]
    fn other_negative_headers_are_refused() {
        for header in [-5i32, -2, i32::MIN] {
            assert!(matches!(
                decode_header(&header.to_be_bytes()),
                Err(FrameError::NegativeLength { header: h }) if h == header
            ));
        }
    }

    #[test]
    fn incomplete_headers_say_what_they_need() {
        assert_eq!(
            decode_header(&[0, 0]).unwrap(),
            HeaderStatus::Incomplete { needed: 4 }
        );
        assert_eq!(
            decode_header(&[0xff; 7]).unwrap(),
            HeaderStatus::Incomplete { needed: 12 }
        );
    }

    proptest! {
        #[test]
        fn every_length_round_trips(len in prop_oneof![0..=SHORT_MAX, SHORT_MAX + 1..=u64::MAX]) {
            let header = Header::new(len);
            let want_len = if len <= SHORT_MAX { 4 } else { 12 };
            prop_assert_eq!(header.as_bytes().len(), want_len);
            prop_assert_eq!(
                decode_header(header.as_bytes()).unwrap(),
                HeaderStatus::Complete { header_len: want_len, payload_len: len }
            );
        }
    }
}
