//! The arena as a [`Value`]: each node built once, shared where the pickle shared it.

use super::{Arena, Node, Slot, TimeParts};
use crate::value::{DateTime, Object, ObjectKind, Shared, Time, Value};

/// Builds the [`Value`] of the root: each node once, shared where the pickle shared it.
pub(crate) fn to_value(arena: &Arena<'_>) -> Value {
    let built = all_values(arena);
    slot_value(arena, arena.root, &built)
}

/// The value of every node reachable from the root, by node id.
pub(crate) fn all_values(arena: &Arena<'_>) -> Vec<Option<Value>> {
    let mut built: Vec<Option<Value>> = Vec::new();
    built.resize_with(arena.nodes.len(), || None);
    for &id in &arena.order {
        let v = node_value(arena, &arena.nodes[id as usize], &built);
        built[id as usize] = Some(v);
    }
    built
}

pub(crate) fn slot_value(arena: &Arena<'_>, slot: Slot, built: &[Option<Value>]) -> Value {
    match slot {
        Slot::None => Value::None,
        Slot::Bool(b) => Value::Bool(b),
        Slot::Int(i) => Value::Int(i),
        Slot::Float(f) => Value::Float(f),
        Slot::Str(s, l) => Value::Str(arena.str_of(s, l).into()),
        Slot::Bytes(s, l) => Value::Bytes(arena.bytes_of(s, l).into()),
        Slot::Node(i) => built[i as usize].clone().unwrap_or(Value::None),
    }
}

fn node_value(arena: &Arena<'_>, node: &Node, built: &[Option<Value>]) -> Value {
    let v = |s: Slot| slot_value(arena, s, built);
    let seq = |items: &[Slot]| Shared::new(items.iter().map(|s| v(*s)).collect::<Vec<_>>());
    let map = |items: &[(Slot, Slot)]| {
        Shared::new(
            items
                .iter()
                .map(|(k, x)| (v(*k), v(*x)))
                .collect::<Vec<_>>(),
        )
    };
    let time = |t: &TimeParts| {
        Time::from_checked(t.hour, t.minute, t.second, t.microsecond)
            .with_fold(t.fold)
            .with_tzinfo(t.tz.map(v))
    };
    match node {
        Node::Str(src) => Value::Str(arena.node_str(src).into()),
        Node::Bytes(src) => Value::Bytes(src.get(arena.input).into()),
        Node::ByteArray(b) => Value::ByteArray(b.as_slice().into()),
        Node::LegacyStr(src) => Value::LegacyStr(src.get(arena.input).into()),
        Node::BigInt(b) => Value::BigInt(b.clone()),
        Node::List(items) => Value::List(seq(items)),
        Node::Tuple(items) => Value::Tuple(seq(items)),
        Node::Set(items) => Value::Set(seq(items)),
        Node::FrozenSet(items) => Value::FrozenSet(seq(items)),
        Node::Dict(items) => Value::Dict(map(items)),
        Node::OrderedDict(items) => Value::OrderedDict(map(items)),
        Node::Complex(c) => Value::Complex(*c),
        Node::Date(d) => Value::Date(*d),
        Node::Time(t) => Value::Time(Shared::new(time(t))),
        Node::DateTime(d, t) => Value::DateTime(Shared::new(DateTime::new(*d, time(t)))),
        Node::TimeDelta(td) => Value::TimeDelta(*td),
        Node::TimeZone(tz) => Value::TimeZone(Shared::new((**tz).clone())),
        Node::Decimal(d) => Value::Decimal(d.clone()),
        Node::Uuid(u) => Value::Uuid(*u),
        Node::Global(g) => Value::Global(Shared::new((**g).clone())),
        Node::Object(o) => {
            let mut obj = match o.kind {
                ObjectKind::New => Object::new_obj(v(o.callable), v(o.args)),
                _ => Object::reduce(v(o.callable), v(o.args)),
            };
            obj = obj
                .with_kwargs(o.kwargs.map(v))
                .with_state(o.state.map(v))
                .with_list_items(o.list_items.iter().map(|s| v(*s)).collect())
                .with_dict_items(o.dict_items.iter().map(|(k, x)| (v(*k), v(*x))).collect());
            Value::Object(Shared::new(obj))
        }
    }
}
