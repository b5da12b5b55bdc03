#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod de;
mod decode;
mod encode;
mod error;
mod int;
mod limits;
mod opcodes;
mod repr;
mod scratch;
mod ser;
mod serde_impl;
#[cfg(any(test, fuzzing))]
mod shape;
mod stream;
mod value;

use serde::{Deserialize, Serialize};

pub use encode::Protocol;
pub use error::{Error, Limit};
pub use int::{BigInt, MAX_DECIMAL_DIGITS};
pub use limits::{EXPANSION_FLOOR, EXPANSION_PER_BYTE, Limits};
pub use repr::{escape_text, float_repr, is_printable_text, str_repr};
#[cfg(fuzzing)]
#[doc(hidden)]
pub use shape::{direct_agrees_with_machine, stream_agrees_with_machine};
pub use value::{
    Complex, Date, DateTime, Global, Nested, Object, ObjectKind, Shared, Time, TimeDelta, TimeZone,
    Value,
};

/// Decodes one whole pickle (protocols 0–5) into a [`Value`], with the default [`Limits`].
/// Nothing runs; shared parts stay shared.
pub fn value_from_slice(bytes: &[u8]) -> Result<Value, Error> {
    value_from_slice_with(bytes, &Limits::default())
}

/// [`value_from_slice`] with explicit limits.
pub fn value_from_slice_with(bytes: &[u8], limits: &Limits) -> Result<Value, Error> {
    // Plain data goes straight to a value; anything else (or any error, so that it is reported
    // the one way) goes to the machine.
    if let Some(value) = decode::direct::decode(bytes, limits) {
        return Ok(value);
    }
    let arena = decode::decode(bytes, limits)?;
    Ok(decode::to_value(&arena))
}

/// Decodes one whole pickle straight into `T` through serde, with the default [`Limits`]
/// (the type table in the crate docs says which Python values fit which Rust shapes).
pub fn from_slice<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
    from_slice_with(bytes, &Limits::default())
}

/// [`from_slice`] with explicit limits.
pub fn from_slice_with<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    limits: &Limits,
) -> Result<T, Error> {
    // Most typed messages stream straight into `T`; anything else (or any error, so that it is
    // reported the one way) goes to the machine.
    if let Ok(value) = stream::from_slice(bytes, limits) {
        return Ok(value);
    }
    let arena = decode::decode(bytes, limits)?;
    let walk = de::Walk::new(&arena, limits);
    T::deserialize(de::De {
        walk: &walk,
        slot: arena.root,
        root: true,
    })
}

/// Appends the pickle of `value` (header to `STOP`) in protocol `proto` to `out`; on error
/// `out` is left as it was.
pub fn to_writer<T: Serialize + ?Sized>(
    value: &T,
    proto: Protocol,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let start = out.len();
    let mut w = encode::Out::new(out, proto);
    let result = value.serialize(&mut ser::Ser { out: &mut w });
    match result {
        Ok(()) => {
            w.finish();
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(*e.0)
        }
    }
}

/// The pickle of `value` in protocol `proto`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T, proto: Protocol) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    to_writer(value, proto, &mut out)?;
    Ok(out)
}

/// Appends the pickle of a [`Value`] to `out`: exactly what it holds, each shared part written
/// once and fetched from the memo afterwards. Iterative; on error `out` is left as it was.
pub fn value_to_writer(value: &Value, proto: Protocol, out: &mut Vec<u8>) -> Result<(), Error> {
    encode::encode_value(value, proto, out)
}

/// The pickle of a [`Value`] laid out as CPython's pickler writes it: every str, container,
/// global and object memoized, and from protocol 4 one `FRAME`. For a value whose parts each
/// appear once and whose pickle is under 64 KiB, these are the bytes CPython writes for the
/// same object; where CPython's output must be matched byte for byte (conn's pickled
/// connections and handles). Larger or shared values read back the same but may differ in
/// framing or memo references.
pub fn value_to_vec_like_cpython(value: &Value, proto: Protocol) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    encode::encode_value_like_cpython(value, proto, &mut out)?;
    Ok(out)
}

/// The pickle of a [`Value`].
pub fn value_to_vec(value: &Value, proto: Protocol) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    value_to_writer(value, proto, &mut out)?;
    Ok(out)
}
