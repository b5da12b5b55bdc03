//! conn-pickle against real CPython, every interpreter under `~/.pyenv/versions`:
//! - a differential round trip: Python pickles the corpus (every builtin, the stdlib types,
//!   inert objects, shared structures) and random nested values with every protocol it has;
//!   conn decodes each and re-encodes it (protocols 2–5, as far as that Python reads); Python
//!   loads conn's pickle and checks it equals what it sent, types and sharing included;
//! - the serde type table: each Rust shape, pickled by conn, loads in Python as the documented
//!   type and repr.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use conn::pickle::{self, Date, Protocol, Value};
use conn_tests::harness::{self, per_python};
use conn_tests::hex::{hex, unhex};
use conn_tests::python::Python;
use serde::Serialize;
use serde_bytes::ByteBuf;
use std::process::ExitCode;

const STEP: Duration = Duration::from_secs(120);

fn script() -> String {
    format!(
        "{}\n{}",
        include_str!("../../crates/conn-pickle/tests/data/corpus.py"),
        include_str!("../data/pickle_peer.py")
    )
}

struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Peer {
    fn start(py: &Python, args: &[&str]) -> Self {
        let mut child = Command::new(&py.path)
            .arg("-c")
            .arg(script())
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONHASHSEED", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn line(&self, py: &Python) -> String {
        self.lines
            .recv_timeout(STEP)
            .unwrap_or_else(|_| panic!("{py}: no line within {STEP:?}"))
    }

    fn write(&mut self, text: &str) {
        self.stdin
            .as_mut()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn close_input(&mut self) {
        drop(self.stdin.take());
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The protocols this Python reads.
fn readable(py: &Python) -> &'static [Protocol] {
    if !py.at_least(3, 0) {
        &[Protocol::V2]
    } else if !py.at_least(3, 8) {
        &[Protocol::V2, Protocol::V3, Protocol::V4]
    } else {
        &[Protocol::V2, Protocol::V3, Protocol::V4, Protocol::V5]
    }
}

fn differential_round_trip_with_every_cpython(py: &Python) {
    let mut peer = Peer::start(py, &["roundtrip", "7", "300"]);
    let mut cases = Vec::new();
    loop {
        let line = peer.line(py);
        if line == "END" {
            break;
        }
        let mut parts = line.splitn(4, ' ');
        assert_eq!(parts.next(), Some("CASE"), "{py}: {line}");
        let name = parts.next().unwrap().to_owned();
        let proto = parts.next().unwrap().to_owned();
        cases.push((name, proto, unhex(parts.next().unwrap())));
    }
    let protos = readable(py);
    let mut reply = String::new();
    for (i, (name, proto, bytes)) in cases.iter().enumerate() {
        let out = protos[i % protos.len()];
        match pickle::value_from_slice(bytes)
            .and_then(|v| pickle::value_to_vec(&v, out).map(|b| (v, b)))
        {
            Ok((_, back)) => reply.push_str(&format!("BACK {name} {proto} {}\n", hex(&back))),
            Err(e) => reply.push_str(&format!("ERR {name} {proto} {e}\n")),
        }
    }
    // Python reads while we write: it prints nothing until our input ends.
    peer.write(&reply);
    peer.close_input();
    let mut failures = Vec::new();
    loop {
        let line = peer.line(py);
        if let Some(done) = line.strip_prefix("DONE ") {
            let (ok, fail) = done.split_once(' ').unwrap();
            assert_eq!(fail, "0", "{py}: {failures:#?}");
            assert_eq!(ok.parse::<usize>().unwrap(), cases.len(), "{py}");
            eprintln!("{py}: {ok} values round-tripped");
            break;
        }
        failures.push(line);
    }
}

#[derive(Serialize)]
struct Point {
    x: i32,
    label: String,
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Meters(f64);

#[derive(Serialize)]
struct Pair(i8, bool);

#[derive(Serialize)]
enum Shape {
    Empty,
    Circle(f64),
    Line(i32, i32),
    Rect { w: u8, h: u8 },
}

/// Every row of the type table in conn-pickle's docs: the Rust value, and the type and repr
/// Python gives it.
fn table() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    fn p<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        pickle::to_vec(v, Protocol::V2).unwrap()
    }
    vec![
        ("unit", p(&()), "builtins.NoneType", "None"),
        ("option_none", p(&None::<i32>), "builtins.NoneType", "None"),
        ("option_some", p(&Some(5u8)), "builtins.int", "5"),
        ("bool", p(&true), "builtins.bool", "True"),
        ("i64", p(&-7i64), "builtins.int", "-7"),
        (
            "u64_max",
            p(&u64::MAX),
            "builtins.int",
            "18446744073709551615",
        ),
        (
            "i128_min",
            p(&i128::MIN),
            "builtins.int",
            "-170141183460469231731687303715884105728",
        ),
        (
            "u128_max",
            p(&u128::MAX),
            "builtins.int",
            "340282366920938463463374607431768211455",
        ),
        ("f64", p(&0.1f64), "builtins.float", "0.1"),
        ("char", p(&'\u{e9}'), "builtins.str", "'\u{e9}'"),
        ("string", p("h\u{e9}llo"), "builtins.str", "'h\u{e9}llo'"),
        (
            "bytes",
            p(&ByteBuf::from(vec![0u8, 255])),
            "builtins.bytes",
            "b'\\x00\\xff'",
        ),
        ("vec_u8", p(&vec![1u8, 2]), "builtins.list", "[1, 2]"),
        ("vec", p(&vec!["a", "b"]), "builtins.list", "['a', 'b']"),
        ("empty_vec", p(&Vec::<i32>::new()), "builtins.list", "[]"),
        ("tuple0_array", p(&[0u8; 0]), "builtins.tuple", "()"),
        ("tuple2", p(&(1, "x")), "builtins.tuple", "(1, 'x')"),
        (
            "tuple5",
            p(&(1, 2, 3, 4, 5)),
            "builtins.tuple",
            "(1, 2, 3, 4, 5)",
        ),
        ("array", p(&[1u8, 2, 3]), "builtins.tuple", "(1, 2, 3)"),
        (
            "btreemap",
            p(&BTreeMap::from([("a", 1), ("b", 2)])),
            "builtins.dict",
            "{'a': 1, 'b': 2}",
        ),
        (
            "hashmap_int_keys",
            p(&HashMap::from([(7, "seven")])),
            "builtins.dict",
            "{7: 'seven'}",
        ),
        ("set", p(&BTreeSet::from([3, 1])), "builtins.list", "[1, 3]"),
        (
            "struct",
            p(&Point {
                x: 1,
                label: "p".into(),
            }),
            "builtins.dict",
            "{'x': 1, 'label': 'p'}",
        ),
        ("unit_struct", p(&Unit), "builtins.NoneType", "None"),
        ("newtype_struct", p(&Meters(2.5)), "builtins.float", "2.5"),
        (
            "tuple_struct",
            p(&Pair(-1, false)),
            "builtins.tuple",
            "(-1, False)",
        ),
        ("unit_variant", p(&Shape::Empty), "builtins.str", "'Empty'"),
        (
            "newtype_variant",
            p(&Shape::Circle(1.0)),
            "builtins.dict",
            "{'Circle': 1.0}",
        ),
        (
            "tuple_variant",
            p(&Shape::Line(1, 2)),
            "builtins.dict",
            "{'Line': (1, 2)}",
        ),
        (
            "struct_variant",
            p(&Shape::Rect { w: 3, h: 4 }),
            "builtins.dict",
            "{'Rect': {'w': 3, 'h': 4}}",
        ),
        (
            "value_set",
            p(&Value::set(vec![Value::Int(1)])),
            "builtins.set",
            "{1}",
        ),
        (
            "value_in_struct",
            p(&BTreeMap::from([(
                "when",
                Value::Date(Date::new(2024, 5, 6).unwrap()),
            )])),
            "builtins.dict",
            "{'when': datetime.date(2024, 5, 6)}",
        ),
    ]
}

fn serde_type_table_matches_python(py: &Python) {
    let mut peer = Peer::start(py, &["check"]);
    let rows = table();
    let mut input = String::new();
    for (name, bytes, _, _) in &rows {
        input.push_str(&format!("{name} {}\n", hex(bytes)));
    }
    peer.write(&input);
    peer.close_input();
    for (name, _, ty, repr) in &rows {
        let line = peer.line(py);
        assert_eq!(line, format!("{name} {ty} {repr}"), "{py}");
    }
}

fn main() -> ExitCode {
    harness::main(
        vec![
            per_python(
                "differential_round_trip_with_every_cpython",
                differential_round_trip_with_every_cpython,
            ),
            per_python(
                "serde_type_table_matches_python",
                serde_type_table_matches_python,
            )
            .since(
                3,
                7,
                "dict order and reprs differ before; the table documents 3.7+",
            ),
        ],
        vec![],
    )
}
