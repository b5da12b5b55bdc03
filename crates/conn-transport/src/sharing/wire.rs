//! The pickles CPython writes when a connection or a handle goes to another process, written
//! and read here as inert values: no class is imported and nothing runs.
//!
//! - A Unix connection is `multiprocessing.connection.rebuild_connection(df, readable,
//!   writable)`, `df` a `multiprocessing.resource_sharer.DupFd` whose `_id` is
//!   `(sharer_address, key)` (CPython's `reduce_connection`, `resource_sharer.DupFd`).
//! - A Windows socket connection is the same with a `resource_sharer.DupSocket` (same `_id`).
//! - A Windows pipe connection is `rebuild_pipe_connection(dh, readable, writable)`, `dh` a
//!   `multiprocessing.reduction.DupHandle` with `_handle`, `_access` and `_pid`; a Windows
//!   `reduction.send_handle` sends a `DupHandle` alone.
//! - A claim sent to a sharer is the pickled tuple `(key, pid)`; `None` asks it to stop.
//!
//! Objects are written as CPython's default `__reduce_ex__` writes them (`NEWOBJ` with no
//! arguments, then `BUILD` with the instance dict, attributes in CPython's assignment order),
//! at pickle protocol 4, so the bytes are those of CPython 3.8–3.13's `ForkingPickler`.

use std::fmt;

use conn_pickle::{Limits, Object, ObjectKind, Protocol, Value, escape_text};

/// Module and name of `rebuild_connection` and `rebuild_pipe_connection`.
const CONNECTION_MODULE: &str = "multiprocessing.connection";
const SHARER_MODULE: &str = "multiprocessing.resource_sharer";
const REDUCTION_MODULE: &str = "multiprocessing.reduction";

/// The largest pickle read as a handed connection, handle or claim: CPython's are under 300
/// bytes (a sharer address is a short temporary path).
pub const MAX_HANDOVER_PICKLE: usize = 64 * 1024;

/// What a pickled connection or handle holds: where the receiver gets the OS object from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrapped {
    /// `resource_sharer.DupFd` (Unix): claim `key` from the sharer listening at `address`,
    /// which sends the descriptor with `SCM_RIGHTS`.
    SharedFd {
        /// The sharer's address, as CPython's `Listener.address` (a Unix socket path).
        address: String,
        /// The resource's number at that sharer.
        key: u64,
    },
    /// `resource_sharer.DupSocket` (Windows): claim `key` from the sharer at `address`, which
    /// sends the socket's `WSADuplicateSocketW` bytes for the claimer's pid.
    SharedSocket {
        /// The sharer's address (a named pipe).
        address: String,
        /// The resource's number at that sharer.
        key: u64,
    },
    /// `reduction.DupHandle` (Windows): `handle` is already the receiver's when `pid` is the
    /// receiver's own; otherwise it is stolen from process `pid` with `access`.
    Handle {
        /// The handle's value in process `pid`.
        handle: u64,
        /// The access asked for when stealing it (`DuplicateHandle`'s desired access).
        access: u32,
        /// The process holding `handle`.
        pid: u32,
    },
}

/// A connection as a pickle carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandedConnection {
    /// Where its handle comes from.
    pub wrapped: Wrapped,
    /// CPython's `conn.readable`.
    pub readable: bool,
    /// CPython's `conn.writable`.
    pub writable: bool,
}

/// A message that should have been a handed connection, handle or claim, and is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotHandedOver {
    /// What was expected.
    pub expected: &'static str,
    /// What came instead: a Python type name, escaped for printing.
    pub found: String,
}

impl fmt::Display for NotHandedOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, got {}", self.expected, self.found)
    }
}

/// The pickle of a connection handed over with `wrapped` (CPython's `ForkingPickler.dumps` of
/// a `Connection` / `PipeConnection`).
pub fn connection_pickle(wrapped: &Wrapped, readable: bool, writable: bool) -> Vec<u8> {
    let rebuild = match wrapped {
        Wrapped::Handle { .. } => "rebuild_pipe_connection",
        _ => "rebuild_connection",
    };
    let value = Value::object(Object::reduce(
        Value::global(CONNECTION_MODULE, rebuild),
        Value::tuple(vec![
            wrapped_value(wrapped),
            Value::Bool(readable),
            Value::Bool(writable),
        ]),
    ));
    encode(&value)
}

/// The pickle of a `DupHandle` alone (CPython's Windows `reduction.send_handle`).
pub fn handle_pickle(handle: u64, access: u32, pid: u32) -> Vec<u8> {
    encode(&wrapped_value(&Wrapped::Handle {
        handle,
        access,
        pid,
    }))
}

/// The pickle a claimer sends a sharer: `(key, pid)`.
pub fn claim_pickle(key: u64, pid: u32) -> Vec<u8> {
    encode(&Value::tuple(vec![int(key), Value::Int(i64::from(pid))]))
}

/// Reads a handed connection.
pub fn parse_connection(bytes: &[u8]) -> Result<HandedConnection, NotHandedOver> {
    const EXPECTED: &str = "a pickled connection (multiprocessing.connection.rebuild_connection)";
    let value = decode(bytes, EXPECTED)?;
    let refuse = |found: &Value| not_handed(EXPECTED, found);
    let object = value.as_object().ok_or_else(|| refuse(&value))?;
    let class = object.class().ok_or_else(|| refuse(&value))?;
    let pipe = match (class.module(), class.name()) {
        (CONNECTION_MODULE, "rebuild_connection") => false,
        (CONNECTION_MODULE, "rebuild_pipe_connection") => true,
        _ => return Err(refuse(&value)),
    };
    let [inner, readable, writable] = object.args_slice() else {
        return Err(refuse(&value));
    };
    if object.kind() != ObjectKind::Reduce || !plain(object) {
        return Err(refuse(&value));
    }
    let (Some(readable), Some(writable)) = (readable.as_bool(), writable.as_bool()) else {
        return Err(refuse(&value));
    };
    let wrapped = parse_wrapped(inner)?;
    // CPython pairs each rebuild function with one wrapper.
    if pipe != matches!(wrapped, Wrapped::Handle { .. }) {
        return Err(refuse(inner));
    }
    Ok(HandedConnection {
        wrapped,
        readable,
        writable,
    })
}

/// Reads a `DupHandle` sent alone (Windows `send_handle`): `(handle, access, pid)`.
pub fn parse_handle(bytes: &[u8]) -> Result<(u64, u32, u32), NotHandedOver> {
    const EXPECTED: &str = "a pickled handle (multiprocessing.reduction.DupHandle)";
    let value = decode(bytes, EXPECTED)?;
    match parse_wrapped(&value) {
        Ok(Wrapped::Handle {
            handle,
            access,
            pid,
        }) => Ok((handle, access, pid)),
        _ => Err(not_handed(EXPECTED, &value)),
    }
}

/// Reads a claim: `Some((key, pid))`, or `None` for CPython's stop request (`None`).
pub fn parse_claim(bytes: &[u8]) -> Result<Option<(u64, u32)>, NotHandedOver> {
    const EXPECTED: &str = "a resource claim (key, pid)";
    let value = decode(bytes, EXPECTED)?;
    if value.is_none() {
        return Ok(None);
    }
    let claim = match value.as_items() {
        Some([key, pid]) if matches!(value, Value::Tuple(_)) => {
            as_u64(key).zip(pid.as_i64().and_then(|p| u32::try_from(p).ok()))
        }
        _ => None,
    };
    claim.map(Some).ok_or_else(|| not_handed(EXPECTED, &value))
}

/// The wrapper object inside a handed connection.
fn parse_wrapped(value: &Value) -> Result<Wrapped, NotHandedOver> {
    const EXPECTED: &str =
        "resource_sharer.DupFd, resource_sharer.DupSocket or reduction.DupHandle";
    let refuse = || not_handed(EXPECTED, value);
    let object = value.as_object().ok_or_else(refuse)?;
    let class = object.class().ok_or_else(refuse)?;
    if object.kind() != ObjectKind::New || !object.args_slice().is_empty() || !plain(object) {
        return Err(refuse());
    }
    if !matches!(object.args(), Value::Tuple(_)) {
        return Err(refuse());
    }
    let state = object.state().ok_or_else(refuse)?;
    let Value::Dict(entries) = state else {
        return Err(refuse());
    };
    let attribute = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
    };
    let expect_keys = |n: usize| entries.len() == n;
    match (class.module(), class.name()) {
        (SHARER_MODULE, name @ ("DupFd" | "DupSocket")) if expect_keys(1) => {
            let id = attribute("_id")
                .and_then(Value::as_items)
                .ok_or_else(refuse)?;
            let [address, key] = id else {
                return Err(refuse());
            };
            let address = address.as_str().ok_or_else(refuse)?.to_owned();
            let key = as_u64(key).ok_or_else(refuse)?;
            Ok(if name == "DupFd" {
                Wrapped::SharedFd { address, key }
            } else {
                Wrapped::SharedSocket { address, key }
            })
        }
        (REDUCTION_MODULE, "DupHandle") if expect_keys(3) => {
            let number = |name: &str| attribute(name).and_then(Value::as_i64);
            let handle = attribute("_handle").and_then(as_u64);
            let access = number("_access").and_then(|a| u32::try_from(a).ok());
            let pid = number("_pid").and_then(|p| u32::try_from(p).ok());
            match (handle, access, pid) {
                (Some(handle), Some(access), Some(pid)) => Ok(Wrapped::Handle {
                    handle,
                    access,
                    pid,
                }),
                _ => Err(refuse()),
            }
        }
        _ => Err(refuse()),
    }
}

/// An object with nothing applied after construction but its state.
fn plain(object: &Object) -> bool {
    object.kwargs().is_none() && object.list_items().is_empty() && object.dict_items().is_empty()
}

fn wrapped_value(wrapped: &Wrapped) -> Value {
    let (module, name, attributes) = match wrapped {
        Wrapped::SharedFd { address, key } | Wrapped::SharedSocket { address, key } => (
            SHARER_MODULE,
            if matches!(wrapped, Wrapped::SharedFd { .. }) {
                "DupFd"
            } else {
                "DupSocket"
            },
            vec![(
                Value::str("_id"),
                Value::tuple(vec![Value::str(address), int(*key)]),
            )],
        ),
        Wrapped::Handle {
            handle,
            access,
            pid,
        } => (
            REDUCTION_MODULE,
            "DupHandle",
            vec![
                (Value::str("_handle"), int(*handle)),
                (Value::str("_access"), Value::Int(i64::from(*access))),
                (Value::str("_pid"), Value::Int(i64::from(*pid))),
            ],
        ),
    };
    Value::object(
        Object::new_obj(Value::global(module, name), Value::tuple(Vec::new()))
            .with_state(Some(Value::dict(attributes))),
    )
}

/// A Python int in `u64`'s range.
fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BigInt(n) => n.to_u128().and_then(|n| u64::try_from(n).ok()),
        _ => None,
    }
}

/// `n` as a Python int.
fn int(n: u64) -> Value {
    match i64::try_from(n) {
        Ok(n) => Value::Int(n),
        Err(_) => Value::BigInt(conn_pickle::BigInt::from_u128(u128::from(n))),
    }
}

fn encode(value: &Value) -> Vec<u8> {
    // Only values built above reach here: ints, strs, bools, tuples, dicts and objects of
    // globals, which protocol 4 always encodes.
    conn_pickle::value_to_vec_like_cpython(value, Protocol::V4).unwrap_or_default()
}

fn decode(bytes: &[u8], expected: &'static str) -> Result<Value, NotHandedOver> {
    if bytes.len() > MAX_HANDOVER_PICKLE {
        return Err(NotHandedOver {
            expected,
            found: format!("a {}-byte message", bytes.len()),
        });
    }
    let mut limits = Limits::default();
    limits.max_depth = 8;
    conn_pickle::value_from_slice_with(bytes, &limits).map_err(|e| NotHandedOver {
        expected,
        found: format!("a message that is not a pickle this reads ({e})"),
    })
}

fn not_handed(expected: &'static str, found: &Value) -> NotHandedOver {
    NotHandedOver {
        expected,
        found: format!("a {}", escape_text(&found.type_name())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use proptest::prelude::*;

    use super::*;

    fn wrapped() -> impl Strategy<Value = Wrapped> {
        prop_oneof![
            ("[^\\x00]{1,300}", any::<u64>())
                .prop_map(|(address, key)| Wrapped::SharedFd { address, key }),
            ("\\PC{1,300}", any::<u64>())
                .prop_map(|(address, key)| Wrapped::SharedSocket { address, key }),
            (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(handle, access, pid)| {
                Wrapped::Handle {
                    handle,
                    access,
                    pid,
                }
            }),
        ]
    }

    proptest! {
        /// What is written reads back as itself.
        #[test]
        fn connections_round_trip(w in wrapped(), r: bool, wr: bool) {
            let bytes = connection_pickle(&w, r, wr);
            let back = parse_connection(&bytes).unwrap();
            prop_assert_eq!(back, HandedConnection { wrapped: w, readable: r, writable: wr });
        }

        /// Claims and handles too.
        #[test]
        fn claims_and_handles_round_trip(key: u64, pid: u32, handle: u64, access: u32) {
            prop_assert_eq!(parse_claim(&claim_pickle(key, pid)).unwrap(), Some((key, pid)));
            prop_assert_eq!(parse_handle(&handle_pickle(handle, access, pid)).unwrap(), (handle, access, pid));
        }

        /// Any bytes, and any damage to a real pickle, give a value or a typed refusal, never
        /// a panic; a refusal names what came in printable text.
        #[test]
        fn damaged_pickles_are_refused(w in wrapped(), r: bool, at: usize, byte: u8, cut: usize, junk: Vec<u8>) {
            let mut bytes = connection_pickle(&w, r, true);
            let at = at % bytes.len();
            bytes[at] = byte;
            bytes.truncate(cut % (bytes.len() + 1));
            for input in [&bytes[..], &junk[..]] {
                if let Err(e) = parse_connection(input) {
                    prop_assert!(conn_pickle::is_printable_text(&e.to_string()));
                }
                let _ = parse_handle(input);
                let _ = parse_claim(input);
            }
        }
    }

    #[test]
    fn wrong_shapes_are_refused() {
        // A claim where a connection is expected, and the reverse; a pipe connection around a
        // DupFd (CPython never pairs them).
        assert!(parse_connection(&claim_pickle(1, 2)).is_err());
        let fd = Wrapped::SharedFd {
            address: "/tmp/x".into(),
            key: 1,
        };
        assert!(parse_claim(&connection_pickle(&fd, true, true)).is_err());
        let mut mixed = connection_pickle(&fd, true, true);
        let at = mixed
            .windows(b"rebuild_connection".len())
            .position(|w| w == b"rebuild_connection")
            .unwrap();
        mixed.splice(at..at + 18, b"rebuild_pipe_connection".iter().copied());
        mixed[at - 1] = 23;
        mixed[3] += 5;
        let refused = parse_connection(&mixed).unwrap_err();
        assert!(refused.to_string().contains("DupFd"), "{refused}");
        // What CPython writes while spawning a child (`popen_spawn_posix._DupFd`: an fd number
        // meant for that child alone) is not a hand-over between processes: refused.
        let spawning = Value::object(Object::reduce(
            Value::global(CONNECTION_MODULE, "rebuild_connection"),
            Value::tuple(vec![
                Value::object(
                    Object::new_obj(
                        Value::global("multiprocessing.popen_spawn_posix", "_DupFd"),
                        Value::tuple(Vec::new()),
                    )
                    .with_state(Some(Value::dict(vec![(Value::str("fd"), Value::Int(5))]))),
                ),
                Value::Bool(true),
                Value::Bool(true),
            ]),
        ));
        let refused = parse_connection(&encode(&spawning)).unwrap_err();
        assert!(refused.to_string().contains("_DupFd"), "{refused}");
        // Over the size bound: refused before decoding.
        assert!(parse_connection(&vec![0u8; MAX_HANDOVER_PICKLE + 1]).is_err());
    }
}
