//! The arena: the nodes a pickle decodes to, and the walk that checks them against the limits.

use std::sync::Arc;

use crate::error::{Error, Limit};
use crate::int::BigInt;
use crate::limits::Limits;
use crate::value::{Complex, Date, Global, ObjectKind, TimeDelta, TimeZone};

/// One stack entry: a scalar inline, text borrowed from the input, or a node.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Valid UTF-8 at `input[start..start + len]`.
    Str(u32, u32),
    /// `bytes` at `input[start..start + len]`.
    Bytes(u32, u32),
    Node(u32),
}

/// Bytes of a node: borrowed from the input or owned.
#[derive(Debug)]
pub(crate) enum Src {
    Input(usize, usize),
    Owned(Vec<u8>),
}

impl Src {
    pub(crate) fn get<'a>(&'a self, input: &'a [u8]) -> &'a [u8] {
        match self {
            Self::Input(start, end) => &input[*start..*end],
            Self::Owned(v) => v,
        }
    }
    fn len(&self) -> usize {
        match self {
            Self::Input(start, end) => end - start,
            Self::Owned(v) => v.len(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct TimeParts {
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
    pub(crate) microsecond: u32,
    pub(crate) fold: bool,
    pub(crate) tz: Option<Slot>,
}

#[derive(Debug)]
pub(crate) struct ObjNode {
    pub(crate) kind: ObjectKind,
    pub(crate) callable: Slot,
    pub(crate) args: Slot,
    pub(crate) kwargs: Option<Slot>,
    pub(crate) state: Option<Slot>,
    pub(crate) list_items: Vec<Slot>,
    pub(crate) dict_items: Vec<(Slot, Slot)>,
}

#[derive(Debug)]
pub(crate) enum Node {
    /// UTF-8 text.
    Str(Src),
    Bytes(Src),
    ByteArray(Vec<u8>),
    LegacyStr(Src),
    BigInt(BigInt),
    List(Vec<Slot>),
    Tuple(Vec<Slot>),
    Dict(Vec<(Slot, Slot)>),
    OrderedDict(Vec<(Slot, Slot)>),
    Set(Vec<Slot>),
    FrozenSet(Vec<Slot>),
    Complex(Complex),
    Date(Date),
    Time(TimeParts),
    DateTime(Date, TimeParts),
    TimeDelta(TimeDelta),
    TimeZone(Arc<TimeZone>),
    Decimal(Arc<str>),
    Uuid([u8; 16]),
    Global(Arc<Global>),
    Object(Box<ObjNode>),
}

impl Node {
    /// The `i`-th nested slot, in a fixed order.
    pub(crate) fn child(&self, i: usize) -> Option<Slot> {
        match self {
            Self::List(v) | Self::Tuple(v) | Self::Set(v) | Self::FrozenSet(v) => v.get(i).copied(),
            Self::Dict(v) | Self::OrderedDict(v) => v
                .get(i / 2)
                .map(|(k, x)| if i.is_multiple_of(2) { *k } else { *x }),
            Self::Time(t) | Self::DateTime(_, t) => (i == 0).then_some(t.tz).flatten(),
            Self::Object(o) => {
                let fixed = [Some(o.callable), Some(o.args), o.kwargs, o.state];
                let present = fixed.iter().flatten().count();
                if i < present {
                    return fixed.iter().flatten().nth(i).copied();
                }
                let j = i - present;
                if j < o.list_items.len() {
                    return Some(o.list_items[j]);
                }
                let j = j - o.list_items.len();
                o.dict_items
                    .get(j / 2)
                    .map(|(k, x)| if j.is_multiple_of(2) { *k } else { *x })
            }
            _ => None,
        }
    }

    /// Payload bytes, for the expansion estimate.
    fn payload(&self) -> usize {
        match self {
            Self::Str(s) | Self::Bytes(s) | Self::LegacyStr(s) => s.len(),
            Self::ByteArray(v) => v.len(),
            Self::BigInt(b) => b.to_signed_le_bytes().len(),
            _ => 0,
        }
    }
}

/// A decoded pickle: its nodes, its root, and the input the nodes borrow from.
pub(crate) struct Arena<'a> {
    pub(crate) input: &'a [u8],
    pub(crate) nodes: Vec<Node>,
    pub(crate) root: Slot,
    /// Reachable nodes, children before parents (filled by `analyze`).
    pub(crate) order: Vec<u32>,
    /// Expanded size of the root (filled by `analyze`).
    pub(crate) expanded: u64,
}

impl<'a> Arena<'a> {
    pub(crate) fn str_of(&self, start: u32, len: u32) -> &'a str {
        let bytes = &self.input[start as usize..start as usize + len as usize];
        // Validated when the slot was made.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    pub(crate) fn bytes_of(&self, start: u32, len: u32) -> &'a [u8] {
        &self.input[start as usize..start as usize + len as usize]
    }

    pub(crate) fn node(&self, slot: Slot) -> Option<&Node> {
        node_of(&self.nodes, slot)
    }

    pub(crate) fn node_str<'s>(&'s self, src: &'s Src) -> &'s str {
        std::str::from_utf8(src.get(self.input)).unwrap_or_default()
    }
}

/// The node a slot names, if it names one.
pub(crate) fn node_of(nodes: &[Node], slot: Slot) -> Option<&Node> {
    match slot {
        Slot::Node(i) => nodes.get(i as usize),
        _ => None,
    }
}

/// Walks the nodes reachable from the root without recursion: refuses cycles and nesting over
/// the limit, records a children-first order and the expanded size.
pub(super) fn analyze(
    arena: &mut Arena<'_>,
    limits: &Limits,
    text_allowance: u64,
) -> Result<(), Error> {
    const UNSEEN: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let Slot::Node(root) = arena.root else {
        arena.expanded = 1;
        return Ok(());
    };
    // The text the value will hold, each node once: what the input holds, what the machine
    // decoded or paid to copy, and nothing more. Inline text duplicated by any other path (a
    // slot copied without being paid for) shows up here, before a byte of the value is built.
    let mut text = 0u64;
    let n = arena.nodes.len();
    let mut state = vec![UNSEEN; n];
    let mut depth = vec![0u32; n];
    let mut size = vec![0u64; n];
    // (node, next child index)
    let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
    state[root as usize] = OPEN;
    while let Some(&mut (id, ref mut cursor)) = stack.last_mut() {
        let node = &arena.nodes[id as usize];
        match node.child(*cursor) {
            Some(Slot::Node(c)) => {
                *cursor += 1;
                match state[c as usize] {
                    UNSEEN => {
                        if stack.len() >= limits.max_depth as usize {
                            return Err(Error::LimitExceeded {
                                limit: Limit::Depth,
                                max: limits.max_depth.into(),
                            });
                        }
                        state[c as usize] = OPEN;
                        stack.push((c, 0));
                    }
                    OPEN => return Err(Error::Recursive),
                    _ => {}
                }
            }
            Some(_) => *cursor += 1,
            None => {
                // All children done: fold them in.
                let mut d = 0u32;
                let mut s = 1u64 + (node.payload() as u64 >> 4);
                text = text.saturating_add(node.payload() as u64);
                let mut i = 0;
                while let Some(child) = node.child(i) {
                    i += 1;
                    match child {
                        Slot::Node(c) => {
                            d = d.max(depth[c as usize]);
                            s = s.saturating_add(size[c as usize]);
                        }
                        Slot::Str(_, l) | Slot::Bytes(_, l) => {
                            s = s.saturating_add(1 + (u64::from(l) >> 4));
                            text = text.saturating_add(u64::from(l));
                        }
                        _ => s = s.saturating_add(1),
                    }
                }
                if text > text_allowance {
                    return Err(Error::LimitExceeded {
                        limit: Limit::Copies,
                        max: text_allowance,
                    });
                }
                depth[id as usize] = d + 1;
                size[id as usize] = s;
                state[id as usize] = DONE;
                arena.order.push(id);
                stack.pop();
            }
        }
    }
    arena.expanded = size[root as usize];
    if depth[root as usize] > limits.max_depth {
        return Err(Error::LimitExceeded {
            limit: Limit::Depth,
            max: limits.max_depth.into(),
        });
    }
    Ok(())
}
