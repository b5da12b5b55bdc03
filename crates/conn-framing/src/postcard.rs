//! `Postcard`: a compact, schema-by-type serde encoding for Rust-to-Rust connections.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Codec, CodecError, CodecOp};

/// The codec for Rust peers: postcard's compact encoding. Both ends must agree on the type;
/// a message that does not decode as the type asked for is a [`CodecError`], never a panic.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

impl Codec for Postcard {
    const NAME: &'static str = "postcard";

    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let taken = std::mem::take(out);
        *out = postcard::to_extend(value, taken)
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Encode, e))?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        // `postcard::from_bytes` ignores bytes left over, so a value of another type can decode
        // "successfully" (3.5f64 as u64 gives 0): the whole message must be the value.
        let (value, rest) = postcard::take_from_bytes(bytes)
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Decode, e))?;
        if !rest.is_empty() {
            return Err(CodecError::new(
                Self::NAME,
                CodecOp::Decode,
                format!(
                    "{} of {} bytes left over: the message holds another type",
                    rest.len(),
                    bytes.len()
                ),
            ));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        floats: Vec<f64>,
        name: String,
        tags: Vec<u8>,
    }

    #[test]
    fn round_trip_appends() {
        let value = Sample {
            floats: vec![1.5, -2.0],
            name: "x".into(),
            tags: vec![1, 2],
        };
        let mut out = vec![9, 9];
        Postcard.encode_into(&value, &mut out).unwrap();
        assert_eq!(&out[..2], &[9, 9]);
        let back: Sample = Postcard.decode(&out[2..]).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn leftover_bytes_are_a_wrong_type() {
        let float = Postcard.encode(&3.5f64).unwrap();
        assert_eq!(
            Postcard.decode::<u64>(&float).unwrap_err().op(),
            CodecOp::Decode
        );
        let pair = Postcard.encode(&(1u8, 2u8)).unwrap();
        assert!(Postcard.decode::<u8>(&pair).is_err());
        assert_eq!(Postcard.decode::<(u8, u8)>(&pair).unwrap(), (1, 2));
    }

    #[test]
    fn wrong_or_short_input_is_an_error() {
        let bytes = Postcard.encode(&(1u8, "abc")).unwrap();
        assert!(Postcard.decode::<Sample>(&bytes[..2]).is_err());
        assert_eq!(
            Postcard.decode::<(u8, String)>(&[]).unwrap_err().op(),
            CodecOp::Decode
        );
    }
}
