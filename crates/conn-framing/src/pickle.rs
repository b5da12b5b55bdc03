//! `Pickle`: Python objects on the wire, through `conn-pickle`, to talk to CPython's
//! `send(obj)` / `recv()`. A thin adapter: the codec is conn-pickle's.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use conn_pickle::{Limits, Protocol as PickleProtocol, Value};

use crate::{Codec, CodecError, CodecOp};

/// The codec for Python peers: values are pickles, as CPython's `Connection.send` / `recv` use.
///
/// Reading accepts protocols 0–5 (whatever CPython 2.7–3.14 sends) and never runs code: classes
/// and other objects arrive inert ([`Value::Object`], [`Value::Global`]), with all their data.
/// Writing uses protocol 4 by default ([`Pickle::protocol`]): CPython 3.8–3.13's own default,
/// readable by Python 3.4 and later; [`PickleProtocol::V2`] for Python 2.7 peers.
///
/// Typed values go through serde (the table of Rust shapes and the Python types they become is
/// in `conn-pickle`'s docs); [`Value`] carries anything, big ints, datetimes and shared
/// structures included. Decoding is bounded by [`Limits`]; a message over a limit is a
/// [`CodecError`] and the connection stays usable.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pickle {
    protocol: PickleProtocol,
    limits: Limits,
}

impl Pickle {
    /// A codec writing protocol 4 (`pickle.dumps(obj, 4)`, what `send()` writes in CPython 3.8+) with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the protocol written; use [`PickleProtocol::V2`] for Python 2.7 peers.
    pub fn protocol(mut self, protocol: PickleProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets the decoding limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Decodes a message into a dynamic Python value; the same as `decode::<Value>`.
    pub fn decode_value(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        conn_pickle::value_from_slice_with(bytes, &self.limits)
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Decode, e))
    }

    /// Appends the pickle of a dynamic Python value to `out`; shared parts are written once.
    pub fn encode_value(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
        conn_pickle::value_to_writer(value, self.protocol, out)
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Encode, e))
    }
}

impl Codec for Pickle {
    const NAME: &'static str = "pickle";

    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        conn_pickle::to_writer(value, self.protocol, out)
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Encode, e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        conn_pickle::from_slice_with(bytes, &self.limits)
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Decode, e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn reads_cpythons_protocol_4_int() {
        // `pickle.dumps(1)` on CPython 3.8–3.13 (docs/protocol.md §1.1).
        let one: i64 = Pickle::new()
            .decode(&[0x80, 0x04, 0x4b, 0x01, 0x2e])
            .unwrap();
        assert_eq!(one, 1);
    }

    #[test]
    fn a_class_reference_is_inert_and_kept() {
        // `pickle.dumps([2.25, None, 'junk', float], 4)` from CPython 3.11.
        let bytes: &[u8] = b"\x80\x04\x95+\x00\x00\x00\x00\x00\x00\x00]\x94(G@\x02\x00\x00\x00\x00\x00\x00N\x8c\x04junk\x94\x8c\x08builtins\x94\x8c\x05float\x94\x93\x94e.";
        let value: Value = Pickle::new().decode(bytes).unwrap();
        assert_eq!(value.to_string(), "[2.25, None, 'junk', <class 'float'>]");
        let typed: Result<(f64, Option<()>, String, f64), _> = Pickle::new().decode(bytes);
        let err = typed.unwrap_err();
        assert_eq!(err.op(), CodecOp::Decode);
        assert_eq!(err.codec(), "pickle");
    }

    #[test]
    fn round_trips_and_protocol_byte() {
        let mut map = BTreeMap::new();
        map.insert("k".to_string(), vec![1i64, 2, 3]);
        for (codec, proto) in [
            (Pickle::new(), 4u8),
            (Pickle::new().protocol(PickleProtocol::V2), 2),
            (Pickle::new().protocol(PickleProtocol::V5), 5),
        ] {
            let bytes = codec.encode(&map).unwrap();
            assert_eq!(&bytes[..2], &[0x80, proto]);
            let back: BTreeMap<String, Vec<i64>> = codec.decode(&bytes).unwrap();
            assert_eq!(back, map);
        }
    }

    #[test]
    fn dynamic_values_keep_big_ints() {
        // `pickle.dumps(2**70, 2)`.
        let bytes = b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40.";
        let value = Pickle::new().decode_value(bytes).unwrap();
        assert_eq!(value.to_string(), "1180591620717411303424");
        assert!(Pickle::new().decode::<i64>(bytes).is_err());
        assert_eq!(
            Pickle::new().decode::<u128>(bytes).unwrap(),
            1_180_591_620_717_411_303_424
        );
        let mut out = Vec::new();
        Pickle::new().encode_value(&value, &mut out).unwrap();
        assert_eq!(Pickle::new().decode_value(&out).unwrap(), value);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let err = Pickle::new()
            .decode::<Value>(b"#CHALLENGE#0123")
            .unwrap_err();
        assert_eq!(err.op(), CodecOp::Decode);
        assert!(Pickle::new().decode::<Value>(b"").is_err());
        assert!(Pickle::new().decode::<Value>(&[0x80, 0x04, 0x95]).is_err());
    }
}
