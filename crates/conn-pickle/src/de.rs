//! serde `Deserializer` over a decoded pickle: reads the machine's arena directly into Rust
//! types (text borrowed from the input where it can be), with no `Value` tree in between.
//! [`Value`] fields are handed over whole (see `serde_impl`), so they lose nothing.

use std::cell::RefCell;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::decode::{Arena, Node, Slot, slot_value};
use crate::error::{Error, Limit};
use crate::limits::Limits;
use crate::repr::uuid_text;
use crate::serde_impl::{VALUE_TOKEN, hand_over};
use crate::value::Value;

/// What a deserializer walk shares: the arena and, once a `Value` was asked for, every node
/// built as a value (so two `Value` fields cost one conversion).
pub(crate) struct Walk<'a, 'de> {
    pub(crate) arena: &'a Arena<'de>,
    pub(crate) limits: &'a Limits,
    built: RefCell<Option<std::rc::Rc<Vec<Option<Value>>>>>,
}

impl<'a, 'de> Walk<'a, 'de> {
    pub(crate) fn new(arena: &'a Arena<'de>, limits: &'a Limits) -> Self {
        Self {
            arena,
            limits,
            built: RefCell::new(None),
        }
    }

    fn value_of(&self, slot: Slot) -> Value {
        if let Slot::Node(id) = slot {
            let built = self
                .built
                .borrow_mut()
                .get_or_insert_with(|| std::rc::Rc::new(crate::decode::all_values(self.arena)))
                .clone();
            return built
                .get(id as usize)
                .cloned()
                .flatten()
                .unwrap_or(Value::None);
        }
        slot_value(self.arena, slot, &[])
    }
}

/// Deserializes one slot.
pub(crate) struct De<'w, 'a, 'de> {
    pub(crate) walk: &'w Walk<'a, 'de>,
    pub(crate) slot: Slot,
    pub(crate) root: bool,
}

impl<'w, 'a, 'de> De<'w, 'a, 'de> {
    fn at(&self, slot: Slot) -> Self {
        Self {
            walk: self.walk,
            slot,
            root: false,
        }
    }

    fn node(&self) -> Option<&'a Node> {
        crate::decode::node_of(&self.walk.arena.nodes, self.slot)
    }

    /// Typed decoding copies shared parts once per reference: bound the total first.
    fn check_expansion(&self) -> Result<(), Error> {
        let max = self.walk.limits.expanded_for(self.walk.arena.input.len());
        if self.root && self.walk.arena.expanded > max {
            return Err(Error::LimitExceeded {
                limit: Limit::Expanded,
                max,
            });
        }
        Ok(())
    }

    fn unsupported(&self, what: String) -> Error {
        Error::Custom(format!(
            "a Python {what} has no Rust shape here; decode it as conn_pickle::Value"
        ))
    }
}

struct Seq<'w, 'a, 'de> {
    walk: &'w Walk<'a, 'de>,
    items: std::slice::Iter<'a, Slot>,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, '_, 'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(slot) => seed
                .deserialize(De {
                    walk: self.walk,
                    slot: *slot,
                    root: false,
                })
                .map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'w, 'a, 'de> {
    walk: &'w Walk<'a, 'de>,
    items: std::slice::Iter<'a, (Slot, Slot)>,
    value: Option<Slot>,
}

impl<'de> de::MapAccess<'de> for Map<'_, '_, 'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.items.next() {
            Some((k, v)) => {
                self.value = Some(*v);
                seed.deserialize(De {
                    walk: self.walk,
                    slot: *k,
                    root: false,
                })
                .map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let slot = self
            .value
            .take()
            .ok_or_else(|| Error::Custom("map value asked for before its key".into()))?;
        seed.deserialize(De {
            walk: self.walk,
            slot,
            root: false,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct ByteSeq<'a> {
    bytes: std::slice::Iter<'a, u8>,
}

impl<'de> de::SeqAccess<'de> for ByteSeq<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.bytes.next() {
            Some(b) => seed.deserialize((*b).into_deserializer()).map(Some),
            None => Ok(None),
        }
    }
}

struct Enum<'w, 'a, 'de> {
    de: De<'w, 'a, 'de>,
    variant: Slot,
    payload: Option<Slot>,
}

impl<'w, 'a, 'de> de::EnumAccess<'de> for Enum<'w, 'a, 'de> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let v = seed.deserialize(self.de.at(self.variant))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_, '_, 'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        match self.payload {
            None | Some(Slot::None) => Ok(()),
            Some(_) => Err(Error::Custom("expected a unit variant".into())),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        let slot = self
            .payload
            .ok_or_else(|| Error::Custom("expected a newtype variant".into()))?;
        seed.deserialize(self.de.at(slot))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        let slot = self
            .payload
            .ok_or_else(|| Error::Custom("expected a tuple variant".into()))?;
        de::Deserializer::deserialize_seq(self.de.at(slot), visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let slot = self
            .payload
            .ok_or_else(|| Error::Custom("expected a struct variant".into()))?;
        de::Deserializer::deserialize_map(self.de.at(slot), visitor)
    }
}

impl<'de> de::Deserializer<'de> for De<'_, '_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.check_expansion()?;
        let arena = self.walk.arena;
        match self.slot {
            Slot::None => return visitor.visit_unit(),
            Slot::Bool(b) => return visitor.visit_bool(b),
            Slot::Int(i) => return visitor.visit_i64(i),
            Slot::Float(f) => return visitor.visit_f64(f),
            Slot::Str(s, l) => return visitor.visit_borrowed_str(arena.str_of(s, l)),
            Slot::Bytes(s, l) => return visitor.visit_borrowed_bytes(arena.bytes_of(s, l)),
            Slot::Node(_) => {}
        }
        let Some(node) = self.node() else {
            return visitor.visit_unit();
        };
        let walk = self.walk;
        match node {
            Node::Str(src) => match src {
                crate::decode::Src::Input(s, e) => visitor.visit_borrowed_str(
                    std::str::from_utf8(&arena.input[*s..*e]).unwrap_or_default(),
                ),
                crate::decode::Src::Owned(_) => visitor.visit_str(arena.node_str(src)),
            },
            Node::Bytes(src) => match src {
                crate::decode::Src::Input(s, e) => {
                    visitor.visit_borrowed_bytes(&arena.input[*s..*e])
                }
                crate::decode::Src::Owned(b) => visitor.visit_bytes(b),
            },
            Node::ByteArray(b) => visitor.visit_bytes(b),
            Node::LegacyStr(src) => {
                let b = src.get(arena.input);
                match std::str::from_utf8(b) {
                    Ok(s) => visitor.visit_str(s),
                    Err(_) => visitor.visit_bytes(b),
                }
            }
            Node::BigInt(b) => {
                if let Some(v) = b.to_u128() {
                    match u64::try_from(v) {
                        Ok(v) => visitor.visit_u64(v),
                        Err(_) => visitor.visit_u128(v),
                    }
                } else if let Some(v) = b.to_i128() {
                    visitor.visit_i128(v)
                } else {
                    Err(Error::Custom(format!(
                        "int of {} bits does not fit in 128 bits",
                        b.bit_length()
                    )))
                }
            }
            Node::List(items) | Node::Tuple(items) | Node::Set(items) | Node::FrozenSet(items) => {
                let mut seq = Seq {
                    walk,
                    items: items.iter(),
                };
                let v = visitor.visit_seq(&mut seq)?;
                left_over(seq.items.len(), items.len())?;
                Ok(v)
            }
            Node::Dict(items) | Node::OrderedDict(items) => {
                let mut map = Map {
                    walk,
                    items: items.iter(),
                    value: None,
                };
                let v = visitor.visit_map(&mut map)?;
                left_over(map.items.len(), items.len())?;
                Ok(v)
            }
            Node::Complex(c) => visitor.visit_seq(de::value::SeqDeserializer::<_, Error>::new(
                [c.re, c.im].into_iter(),
            )),
            Node::Date(_) | Node::Time(_) | Node::DateTime(..) | Node::TimeZone(_) => {
                let text = iso_text(&walk.value_of(self.slot));
                visitor.visit_string(text)
            }
            Node::TimeDelta(td) => visitor.visit_f64(td.total_microseconds() as f64 / 1e6),
            Node::Decimal(d) => visitor.visit_str(d),
            Node::Uuid(u) => visitor.visit_string(uuid_text(u)),
            Node::Global(g) => Err(self.unsupported(format!("global {}.{}", g.module(), g.name()))),
            Node::Object(_) => {
                Err(self.unsupported(format!("{} object", walk.value_of(self.slot).type_name())))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.slot {
            Slot::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == VALUE_TOKEN {
            hand_over(self.walk.value_of(self.slot));
            return visitor.visit_str(VALUE_TOKEN);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let bytes = match (self.slot, self.node()) {
            (Slot::Bytes(s, l), _) => Some(self.walk.arena.bytes_of(s, l)),
            (_, Some(Node::Bytes(src) | Node::LegacyStr(src))) => {
                Some(src.get(self.walk.arena.input))
            }
            (_, Some(Node::ByteArray(b))) => Some(b.as_slice()),
            _ => None,
        };
        match bytes {
            Some(b) => visitor.visit_seq(ByteSeq { bytes: b.iter() }),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // An object rebuilt from a dict state (a dataclass, a plain class instance) reads as
        // that dict.
        if let Some(Node::Object(o)) = self.node() {
            if let Some(state) = o.state {
                if matches!(self.walk.arena.node(state), Some(Node::Dict(_))) {
                    self.check_expansion()?;
                    return self.at(state).deserialize_any(visitor);
                }
            }
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.check_expansion()?;
        match self.node() {
            Some(Node::Dict(items)) if items.len() == 1 => {
                let (k, v) = items[0];
                visitor.visit_enum(Enum {
                    de: self.at(k),
                    variant: k,
                    payload: Some(v),
                })
            }
            _ => {
                let slot = self.slot;
                visitor.visit_enum(Enum {
                    de: self.at(slot),
                    variant: slot,
                    payload: None,
                })
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct identifier
    }
}

/// A Rust type that took fewer items than the container holds (a 3-item list into a pair):
/// an error, never a silent cut.
fn left_over(remaining: usize, len: usize) -> Result<(), Error> {
    if remaining == 0 {
        return Ok(());
    }
    Err(Error::Custom(format!(
        "invalid length {len}, expected {} items",
        len - remaining
    )))
}

/// `isoformat()` text of a date, time or datetime; `str()` of a timezone.
fn iso_text(v: &Value) -> String {
    fn time(t: &crate::value::Time) -> String {
        let mut s = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
        if t.microsecond() != 0 {
            s.push_str(&format!(".{:06}", t.microsecond()));
        }
        if let Some(Value::TimeZone(tz)) = t.tzinfo() {
            s.push_str(&offset_text(tz.offset().total_microseconds()));
        }
        s
    }
    match v {
        Value::Date(d) => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        Value::Time(t) => time(t),
        Value::DateTime(dt) => {
            let d = dt.date();
            format!(
                "{:04}-{:02}-{:02}T{}",
                d.year(),
                d.month(),
                d.day(),
                time(dt.time())
            )
        }
        Value::TimeZone(tz) => match tz.name() {
            Some(name) => name.to_owned(),
            None if tz.offset().total_microseconds() == 0 => "UTC".into(),
            None => format!("UTC{}", offset_text(tz.offset().total_microseconds())),
        },
        other => other.to_string(),
    }
}

fn offset_text(us: i128) -> String {
    let sign = if us < 0 { '-' } else { '+' };
    let us = us.unsigned_abs();
    let (h, rest) = (us / 3_600_000_000, us % 3_600_000_000);
    let (m, rest) = (rest / 60_000_000, rest % 60_000_000);
    let (s, micro) = (rest / 1_000_000, rest % 1_000_000);
    let mut out = format!("{sign}{h:02}:{m:02}");
    if s != 0 || micro != 0 {
        out.push_str(&format!(":{s:02}"));
    }
    if micro != 0 {
        out.push_str(&format!(".{micro:06}"));
    }
    out
}
