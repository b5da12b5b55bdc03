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
        postcard::from_bytes(bytes).map_err(|e| CodecError::new(Self::NAME, CodecOp::Decode, e))
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
    fn wrong_or_short_input_is_an_error() {
        let bytes = Postcard.encode(&(1u8, "abc")).unwrap();
        assert!(Postcard.decode::<Sample>(&bytes[..2]).is_err());
        assert_eq!(
            Postcard.decode::<(u8, String)>(&[]).unwrap_err().op(),
            CodecOp::Decode
        );
    }
}
