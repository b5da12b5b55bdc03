//! `Serialize` / `Deserialize` for [`Value`]. With this crate's own serializer and
//! deserializer a `Value` crosses whole (handed over through a thread-local, no recursion, no
//! loss: big ints, datetimes and inert objects stay what they are); with any other serde
//! format it takes the plain shapes listed on [`Value`]'s impls.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::int::BigInt;
use crate::value::Value;

/// The newtype name by which `Value` announces itself to this crate's serde implementations.
pub(crate) const VALUE_TOKEN: &str = "$conn_pickle::Value";

thread_local! {
    static HANDOFF: RefCell<Option<Value>> = const { RefCell::new(None) };
}

pub(crate) fn hand_over(v: Value) {
    HANDOFF.with(|h| *h.borrow_mut() = Some(v));
}

pub(crate) fn take_handed() -> Option<Value> {
    HANDOFF.with(|h| h.borrow_mut().take())
}

impl Serialize for Value {
    /// Into a pickle (this crate's serializer): exactly, sharing kept. Into another format:
    /// `None` → unit, numbers and text as themselves, ints beyond 128 bits and stdlib types as
    /// their Python text, containers as sequences and maps, globals and objects as their repr.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        hand_over(self.clone());
        serializer.serialize_newtype_struct(VALUE_TOKEN, &Plain(self))
    }
}

struct Plain<'a>(&'a Value);

impl Serialize for Plain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Another serializer: the hand-over was not taken.
        drop(take_handed());
        match self.0 {
            Value::None => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::BigInt(b) => match b.to_i128() {
                Some(v) => s.serialize_i128(v),
                None => s.collect_str(b),
            },
            Value::Float(f) => s.serialize_f64(*f),
            Value::Complex(c) => (c.re, c.im).serialize(s),
            Value::Str(t) | Value::Decimal(t) => s.serialize_str(t),
            Value::Bytes(b) | Value::ByteArray(b) | Value::LegacyStr(b) => s.serialize_bytes(b),
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Dict(items) | Value::OrderedDict(items) => {
                let mut map = s.serialize_map(Some(items.len()))?;
                for (k, v) in items.iter() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::TimeDelta(td) => s.serialize_f64(td.total_microseconds() as f64 / 1e6),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    /// From a pickle (this crate's deserializer): exactly, sharing kept. From another format:
    /// the value built from its plain shape (unit → `None`, sequences → `list`, maps → `dict`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(VALUE_TOKEN, ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any Python value")
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.visit_u128(v.into())
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Value::Int(v),
            Err(_) => Value::BigInt(BigInt::from_u128(v)),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        if v == VALUE_TOKEN {
            if let Some(value) = take_handed() {
                return Ok(value);
            }
        }
        Ok(Value::Str(v.into()))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.into()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::list(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(entry) = map.next_entry()? {
            items.push(entry);
        }
        Ok(Value::dict(items))
    }
}
