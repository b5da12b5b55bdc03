//! `Pickle`: Python objects on the wire, through serde-pickle, to talk to CPython's `send(obj)` /
//! `recv()`.

use serde::Serialize;
use serde::de::DeserializeOwned;
pub use serde_pickle::{HashableValue, Value};

use crate::{Codec, CodecError, CodecOp};

/// The pickle protocol [`Pickle`] writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PickleProtocol {
    /// Protocol 2: readable by Python 2.7 and every Python 3.
    V2,
    /// Protocol 3 (default): readable by every Python 3; supports `bytes`.
    #[default]
    V3,
}

/// The codec for Python peers: values are pickles, as CPython's `Connection.send` / `recv` use.
///
/// Reading accepts protocols 0–5, so whatever CPython 2.7–3.14 sends; writing uses protocol 3
/// (or 2, see [`Pickle::protocol`]), which every Python 3 reads. Unpickling here never runs code:
/// only plain data is built.
///
/// Type mapping (Python → Rust when receiving, the reverse when sending):
///
/// | Python | Rust |
/// |---|---|
/// | `None` | `()`, `Option::None`, `Value::None` |
/// | `bool` | `bool` |
/// | `int` | `i64`/`u64` and smaller (out of range is an error); any size: [`Value::Int`] via [`Pickle::decode_value`] |
/// | `float` | `f64`, `f32` |
/// | `str` | `String` |
/// | `bytes` | `serde_bytes::ByteBuf`, [`Value::Bytes`] (a plain `Vec<u8>` is a *list* of ints) |
/// | `list` / `tuple` | `Vec<T>`, tuples, arrays; `Value::List` / `Value::Tuple` |
/// | `dict` | `HashMap`/`BTreeMap`, structs (string keys = field names); `Value::Dict` |
/// | `set` / `frozenset` | `HashSet`/`BTreeSet`; `Value::Set` / `Value::FrozenSet` |
/// | a class, function or other global (`float` the type, not a float) | replaced by `None`: into a [`Value`] it becomes `Value::None`; into a Rust type that cannot be `None` it is a decode error |
/// | a class instance | its state as a dict, without running its code |
///
/// Rust enums follow serde-pickle's representation (`'Variant'` or `{'Variant': payload}`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Pickle {
    protocol: PickleProtocol,
}

impl Pickle {
    /// A codec writing protocol 3.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the protocol written; use [`PickleProtocol::V2`] for Python 2.7 peers.
    pub fn protocol(mut self, protocol: PickleProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    fn ser_options(self) -> serde_pickle::SerOptions {
        match self.protocol {
            PickleProtocol::V2 => serde_pickle::SerOptions::new().proto_v2(),
            PickleProtocol::V3 => serde_pickle::SerOptions::new(),
        }
    }

    fn de_options() -> serde_pickle::DeOptions {
        serde_pickle::DeOptions::new()
            .decode_strings()
            .replace_unresolved_globals()
            .replace_recursive_structures()
    }
}

impl Pickle {
    /// Decodes a message into a dynamic Python value, keeping ints of any size
    /// ([`Value::Int`]). Decoding into [`Value`] through [`Codec::decode`] goes through serde's
    /// data model instead, where ints beyond 64 bits are an error.
    pub fn decode_value(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        serde_pickle::value_from_slice(bytes, Self::de_options())
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Decode, e))
    }

    /// Appends the pickle of a dynamic Python value (lists, tuples, dicts, sets, big ints…) to
    /// `out`: how to send values whose Python type no Rust type spells.
    pub fn encode_value(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_pickle::value_to_writer(out, value, self.ser_options())
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
        // `to_writer` wants a sized value: `&T` is one, and serializes as `T` does.
        serde_pickle::to_writer(out, &value, self.ser_options())
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Encode, e))?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_pickle::from_slice(bytes, Self::de_options())
            .map_err(|e| CodecError::new(Self::NAME, CodecOp::Decode, e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn reads_cpythons_protocol_4_int() {
        // `pickle.dumps(1)` on CPython 3.8–3.13 (PROTOCOL.md §2.1).
        let one: i64 = Pickle::new()
            .decode(&[0x80, 0x04, 0x4b, 0x01, 0x2e])
            .unwrap();
        assert_eq!(one, 1);
    }

    #[test]
    fn a_class_reference_is_inert() {
        // `pickle.dumps([2.25, None, 'junk', float], 4)` from CPython 3.11.
        let bytes: &[u8] = b"\x80\x04\x95+\x00\x00\x00\x00\x00\x00\x00]\x94(G@\x02\x00\x00\x00\x00\x00\x00N\x8c\x04junk\x94\x8c\x08builtins\x94\x8c\x05float\x94\x93\x94e.";
        let value: Value = Pickle::new().decode(bytes).unwrap();
        assert_eq!(
            value,
            Value::List(vec![
                Value::F64(2.25),
                Value::None,
                Value::String("junk".into()),
                Value::None
            ])
        );
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
            (Pickle::new(), 3u8),
            (Pickle::new().protocol(PickleProtocol::V2), 2),
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
        let Value::Int(big) = &value else {
            panic!("{value:?}")
        };
        assert_eq!(big.to_string(), "1180591620717411303424");
        assert!(Pickle::new().decode::<i64>(bytes).is_err());
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
