//! The unpickling machine: opcodes in, an arena of nodes out. No recursion, no code run, no
//! allocation sized by a claimed length. Known callables (`datetime`, `set`, `_codecs.encode`…)
//! are recognized where Python would call them and become native nodes; any other call becomes
//! an inert object node. Both [`Value`](crate::Value) conversion and the serde deserializer
//! read the arena.
//!
//! By role: `arena` (the nodes, and the walk that checks them against the limits), `machine`
//! (the opcode interpreter), `py2` (Python 2 text: quoted strings, raw-unicode-escape, renamed
//! modules), `to_value` (the arena as a [`Value`](crate::Value)). The typed fast path
//! (`stream.rs`) interprets the common opcodes again without an arena, for speed; both read
//! opcode arguments through `opcodes::args`, and the fuzz target checks that they agree.

mod arena;
pub(crate) mod direct;
mod machine;
mod py2;
mod to_value;

pub(crate) use arena::{Arena, Node, ObjNode, Slot, Src, TimeParts, node_of};
pub(crate) use py2::py2_name;
pub(crate) use to_value::{all_values, slot_value, to_value};

use crate::error::Error;
use crate::limits::Limits;

/// Decodes `input` (one whole pickle) into an arena and checks it against `limits`.
pub(crate) fn decode<'a>(input: &'a [u8], limits: &Limits) -> Result<Arena<'a>, Error> {
    // A node or memo entry per 16 input bytes up front (CPython's output of records and
    // datetimes needs about that), capped so a large bytes payload reserves nothing much:
    // growth then copies less, and memory stays a small multiple of the message.
    let reserve = (input.len() / 16).min(1 << 16);
    let mut m = machine::Machine::new(input, limits, reserve);
    let root = m.run()?;
    let text_allowance = 2u64
        .saturating_mul(input.len() as u64)
        .saturating_add(m.owned_text())
        .saturating_add(COPY_FLOOR);
    let mut arena = Arena {
        input,
        nodes: m.into_nodes(),
        root,
        order: Vec::new(),
        expanded: 0,
    };
    arena::analyze(&mut arena, limits, text_allowance)?;
    Ok(arena)
}

/// Copy work a message may cause beyond its own bytes, whatever its opcodes (see
/// [`copy_allowance`]).
pub(crate) const COPY_FLOOR: u64 = 1 << 16;

/// How much copying one message of `len` bytes may make the machine do: a slot or a byte copied
/// out of a value the message already built (`set(l)`, `bytearray(b)`, a memoized name given to
/// `STACK_GLOBAL`) costs one unit. Each copy a real pickler causes has its source written once
/// in the message, so its copies total at most its length; a pickle that references one large
/// value many times to have it copied runs out and is refused
/// ([`Limit::Copies`](crate::Limit::Copies)) instead of costing memory quadratic in its size.
pub(crate) fn copy_allowance(len: usize) -> u64 {
    (len as u64).saturating_add(COPY_FLOOR)
}
