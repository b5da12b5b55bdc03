//! For the tests and the fuzzer: whatever serde's data model sees of a pickle, recorded, and
//! the machine's answer for it, to check the streaming path against.

use serde::Deserialize;
use serde::de::{self, Visitor};

use crate::limits::Limits;

/// Whatever serde's data model sees, recorded.
#[derive(Debug, PartialEq)]
pub(crate) enum Shape {
    Unit,
    Bool(bool),
    Int(i128),
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Seq(Vec<Self>),
    Map(Vec<(Self, Self)>),
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("anything")
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::Unit)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Shape, E> {
                Ok(Shape::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Shape, E> {
                Ok(Shape::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Shape, E> {
                Ok(Shape::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Shape, E> {
                Ok(Shape::Int(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Shape, E> {
                Ok(Shape::Float(v.to_bits()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Shape, E> {
                Ok(Shape::Str(v.into()))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Shape, E> {
                Ok(Shape::Bytes(v.into()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Shape, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Shape::Seq(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Shape, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_entry()? {
                    v.push(x);
                }
                Ok(Shape::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// What the arena machine alone makes of `bytes`.
pub(crate) fn machine<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    limits: &Limits,
) -> Result<T, crate::Error> {
    let arena = crate::decode::decode(bytes, limits)?;
    let walk = crate::de::Walk::new(&arena, limits);
    T::deserialize(crate::de::De {
        walk: &walk,
        slot: arena.root,
        root: true,
    })
}

/// Wherever the stream answers for a few Rust shapes, the machine answers the same (the fuzz
/// target's check, and the unit tests' over every input the fuzzer kept).
#[cfg_attr(
    not(fuzzing),
    allow(unreachable_pub, reason = "public only to the fuzz target")
)]
pub fn stream_agrees_with_machine(bytes: &[u8], limits: &Limits) {
    fn check<T: for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
        bytes: &[u8],
        limits: &Limits,
    ) {
        if let Ok(fast) = crate::stream::from_slice::<T>(bytes, limits) {
            // Compared as printed: `Debug` tells every float apart (shortest round-trip form)
            // and, unlike `==`, says a NaN equals a NaN.
            assert_eq!(
                format!("{:?}", Ok::<_, crate::Error>(fast)),
                format!("{:?}", machine::<T>(bytes, limits))
            );
        }
    }
    check::<Shape>(bytes, limits);
    check::<Vec<Option<f64>>>(bytes, limits);
    check::<Vec<Vec<f64>>>(bytes, limits);
    check::<std::collections::BTreeMap<String, i64>>(bytes, limits);
    check::<(i64, String, Vec<u8>)>(bytes, limits);
    check::<Vec<(i64, String, f64, Vec<i64>)>>(bytes, limits);
    check::<(Option<i64>, bool, i64, i64, String)>(bytes, limits);
}

/// Wherever the direct path to a [`Value`](crate::Value) answers, the machine answers the same
/// value with the same parts shared (compared as printed, and as written back, where sharing
/// shows as memo references); the fuzz target's check, and the unit tests'.
#[cfg_attr(
    not(fuzzing),
    allow(unreachable_pub, reason = "public only to the fuzz target")
)]
pub fn direct_agrees_with_machine(bytes: &[u8], limits: &Limits) -> bool {
    let Some(fast) = crate::decode::direct::decode(bytes, limits) else {
        return false;
    };
    let slow = crate::decode::decode(bytes, limits).map(|arena| crate::decode::to_value(&arena));
    let slow = match slow {
        Ok(v) => v,
        Err(e) => panic!("the direct path took what the machine refuses ({e})"),
    };
    assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
    for proto in [crate::Protocol::V2, crate::Protocol::V4] {
        assert_eq!(
            crate::value_to_vec(&fast, proto).ok(),
            crate::value_to_vec(&slow, proto).ok()
        );
    }
    true
}
