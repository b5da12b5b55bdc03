//! Connections handed between a Rust process and CPython as CPython hands them
//! (`multiprocessing.connection.reduce_connection`, `resource_sharer`), both ways, on every
//! CPython 3.6+ found: directions kept, talk over what was handed, wrong keys, resources
//! claimed twice, a stopped sharer, a Python parent and a Rust child handing one back and forth,
//! and the pickles conn writes compared byte for byte with CPython's.

use std::process::ExitCode;
use std::time::Duration;

use conn::sharing::wire::{self, Wrapped};
use conn::{Connection, Error, Family, Listener, Pickle};
use conn_tests::harness::{self, per_python};
use conn_tests::hex::{hex, unhex};
use conn_tests::python::{Python, PythonPeer};

const SCRIPT: &str = include_str!("../data/handover_peer.py");
const KEY: &[u8] = b"conn handover test key";
const STEP: Duration = Duration::from_secs(30);

/// A Python peer connected to us, its process key the same as ours.
fn python_peer(py: &Python) -> (Connection, PythonPeer) {
    let mut listener = Listener::builder()
        .family(Family::Unix)
        .authkey(KEY)
        .accept_timeout(Some(STEP))
        .bind()
        .unwrap();
    let conn::Address::UnixPath(path) = listener.address().clone() else {
        panic!("a Unix listener has a path")
    };
    let peer = py
        .spawn(SCRIPT, &["serve", &hex(KEY), path.to_str().unwrap()])
        .unwrap();
    let mut conn = listener.accept().unwrap_or_else(|e| panic!("{py}: {e}"));
    conn.set_read_timeout(Some(STEP));
    (conn, peer)
}

fn bye(mut conn: Connection, mut peer: PythonPeer, py: &Python) {
    conn.send(&("bye",)).unwrap();
    assert_eq!(peer.line(STEP).unwrap(), "DONE", "{py}");
    peer.finish(STEP).unwrap();
}

/// Python hands us each end of a duplex and a one-way `Pipe`; each arrives with its
/// directions and works.
fn python_hands_connections_to_rust(py: &Python) {
    let (mut conn, peer) = python_peer(py);
    for (duplex, which, readable, writable) in [
        (true, 0, true, true),
        (false, 0, true, false),
        (false, 1, false, true),
    ] {
        conn.send(&("send_end", duplex, which, true)).unwrap();
        let mut got = conn
            .recv_connection(Pickle::new())
            .unwrap_or_else(|e| panic!("{py}: {e}"));
        assert_eq!(
            (got.readable(), got.writable()),
            (readable, writable),
            "{py}"
        );
        got.set_read_timeout(Some(STEP));
        if readable {
            assert_eq!(got.recv::<String>().unwrap(), "to the end you got", "{py}");
        }
        if writable {
            got.send(&"from rust").unwrap();
            let reply: (String, String) = conn.recv().unwrap();
            assert_eq!(reply, ("python got".into(), "from rust".into()), "{py}");
        }
    }
    bye(conn, peer, py);
}

/// We hand Python a duplex end, each end of a one-way pipe, an accepted Unix connection and a
/// TCP client connection; Python's `recv()` rebuilds each with its directions and talks on it.
fn rust_hands_connections_to_python(py: &Python) {
    let (mut conn, peer) = python_peer(py);
    let mut tcp_listener = Listener::bind("127.0.0.1:0").unwrap();
    let tcp_client = conn::Client::connect(tcp_listener.address()).unwrap();
    let tcp_server = tcp_listener.accept().unwrap();
    let (a, b) = conn::pipe().unwrap();
    let (reader, writer) = conn::pipe_simplex().unwrap();
    let (reader2, writer2) = conn::pipe_simplex().unwrap();
    for (handed, mut kept) in [
        (a, b),
        (reader, writer),
        (writer2, reader2),
        (tcp_client, tcp_server),
    ] {
        let directions = (handed.readable(), handed.writable());
        conn.send(&("recv_conn",)).unwrap();
        conn.send_connection(handed)
            .unwrap_or_else(|e| panic!("{py}: {e}"));
        let received: (String, bool, bool) = conn.recv().unwrap();
        assert_eq!(
            received,
            ("received".into(), directions.0, directions.1),
            "{py}"
        );
        kept.set_read_timeout(Some(STEP));
        if directions.1 {
            assert_eq!(kept.recv::<String>().unwrap(), "hello from python", "{py}");
        }
        if directions.0 {
            kept.send(&"from rust").unwrap();
        }
        let reply: (String, Option<String>) = conn.recv().unwrap();
        let expected = directions.0.then(|| "from rust".to_owned());
        assert_eq!(reply, ("python got".into(), expected), "{py}");
    }
    bye(conn, peer, py);
}

/// A process with another key is refused by our sharer, and we by its: each side's claim
/// fails authentication, and nothing is handed over.
fn wrong_keys_are_refused_both_ways(py: &Python) {
    let (mut conn, peer) = python_peer(py);
    conn.send(&("set_key", hex(b"not the shared key"))).unwrap();
    assert_eq!(conn.recv::<String>().unwrap(), "ok");
    // Python claims from our sharer with the wrong key.
    let (a, _b) = conn::pipe().unwrap();
    conn.send(&("recv_conn_fails",)).unwrap();
    conn.send_connection(a).unwrap();
    let outcome: (String, String) = conn.recv().unwrap();
    assert_eq!(
        outcome,
        ("error".into(), "AuthenticationError".into()),
        "{py}"
    );
    // We claim from Python's sharer, which runs with its new key.
    conn.send(&("send_end", true, 0, false)).unwrap();
    let refused = conn.recv_connection(Pickle::new());
    assert!(matches!(refused, Err(Error::Auth(_))), "{py}: {refused:?}");
    bye(conn, peer, py);
}

/// A handed connection can be claimed once: Python unpickling the same bytes twice gets
/// `EOFError` from our sharer the second time, and we get `NotShared` from Python's.
fn a_resource_is_claimed_once(py: &Python) {
    let (mut conn, peer) = python_peer(py);
    let (a, mut b) = conn::pipe().unwrap();
    conn.send(&("claim_twice",)).unwrap();
    conn.send_connection(a).unwrap();
    let outcome: (String, bool, bool, String) = conn.recv().unwrap();
    assert_eq!(
        outcome,
        ("claimed".into(), true, true, "EOFError".into()),
        "{py}"
    );
    b.set_read_timeout(Some(STEP));
    assert_eq!(b.recv::<String>().unwrap(), "first claim works", "{py}");

    conn.send(&("send_twice",)).unwrap();
    let mut first = conn
        .recv_connection(Pickle::new())
        .unwrap_or_else(|e| panic!("{py}: {e}"));
    first.set_read_timeout(Some(STEP));
    assert_eq!(first.recv::<String>().unwrap(), "to the end you got");
    let second = conn.recv_connection(Pickle::new());
    assert!(
        matches!(second, Err(Error::NotShared { .. })),
        "{py}: {second:?}"
    );
    conn.send(&"done").unwrap();
    bye(conn, peer, py);
}

/// A connection whose sender stopped its sharer before it was claimed cannot be had: a clear
/// error, and the connection we read it on goes on working.
fn a_stopped_python_sharer(py: &Python) {
    let (mut conn, peer) = python_peer(py);
    conn.send(&("send_then_stop",)).unwrap();
    let gone = conn.recv_connection(Pickle::new());
    assert!(
        matches!(&gone, Err(Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused)),
        "{py}: {gone:?}"
    );
    bye(conn, peer, py);
}

/// A CPython parent hands a connection to a Rust child, which talks on it and hands it back;
/// the parent talks on what came back.
fn python_parent_rust_child_round_trip(py: &Python) {
    let relay = env!("CARGO_BIN_EXE_conn-relay");
    let mut peer = py.spawn(SCRIPT, &["parent", &hex(KEY), relay]).unwrap();
    assert_eq!(peer.line(STEP).unwrap(), "OK", "{py}");
    peer.finish(STEP).unwrap();
}

/// The pickles conn writes are CPython's, byte for byte: a Unix `DupFd` connection, a claim,
/// and (through stand-in classes with the same module, name and attributes, since CPython on
/// Linux has no Windows classes) a `DupHandle`, a pipe connection and a `DupSocket` one.
fn pickles_match_cpython_byte_for_byte(py: &Python) {
    let mut peer = py.spawn(SCRIPT, &["stand_ins"]).unwrap();
    let mut theirs = std::collections::BTreeMap::new();
    for _ in 0..5 {
        let line = peer.line(STEP).unwrap();
        let (name, bytes) = line.split_once(' ').unwrap();
        theirs.insert(name.to_owned(), unhex(bytes));
    }
    peer.finish(STEP).unwrap();
    let ours = [
        ("dup_handle", wire::handle_pickle(1234, 2, 4321)),
        (
            "pipe_connection",
            wire::connection_pickle(
                &Wrapped::Handle {
                    handle: 0x1f4,
                    access: 0x120089,
                    pid: 77,
                },
                true,
                false,
            ),
        ),
        (
            "socket_connection",
            wire::connection_pickle(
                &Wrapped::SharedSocket {
                    address: r"\\.\pipe\pyc-12-0-abcdefgh".into(),
                    key: 3,
                },
                false,
                true,
            ),
        ),
        (
            "fd_connection",
            wire::connection_pickle(
                &Wrapped::SharedFd {
                    address: "/tmp/pymp-x/listener-y".into(),
                    key: 1 << 40,
                },
                true,
                true,
            ),
        ),
        ("claim", wire::claim_pickle(5, 4321)),
    ];
    for (name, bytes) in ours {
        assert_eq!(hex(&bytes), hex(&theirs[name]), "{py}: {name}");
        // And what CPython wrote reads back as what it says.
        if name.ends_with("connection") {
            let handed = wire::parse_connection(&theirs[name]).unwrap();
            assert_eq!(
                wire::connection_pickle(&handed.wrapped, handed.readable, handed.writable),
                bytes
            );
        }
    }
}

/// The README's "Across processes" Python program against `examples/handover.rs`.
fn readme_program_against_the_example(py: &Python) {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Across processes").unwrap()..];
    let start = section.find("```python\n").unwrap() + "```python\n".len();
    let program = &section[start..start + section[start..].find("```").unwrap()];
    let path = std::env::temp_dir().join(format!(
        "conn-handover-{}-{}.sock",
        std::process::id(),
        py.minor().1
    ));
    let path = path.to_str().unwrap();
    let mut example = std::process::Command::new(conn_tests::examples::example("handover"));
    example.arg(path);
    let (server, first) = conn_tests::examples::start_server(&mut example);
    assert_eq!(first.trim(), format!("listening on {path}"));
    let mut python = py.spawn(program, &[path]).unwrap();
    assert_eq!(
        python.line(STEP).unwrap(),
        "hello from rust, over the end you handed me",
        "{py}"
    );
    assert_eq!(python.line(STEP).unwrap(), "this end is yours now", "{py}");
    python.finish(STEP).unwrap();
    let rest = conn_tests::examples::output(server, "handover");
    assert_eq!(
        rest, "rust got: hello from python\npython says: claimed\n",
        "{py}"
    );
}

fn main() -> ExitCode {
    conn::sharing::set_authkey(KEY);
    let since =
        |t: harness::PerPython| t.since(3, 6, "the resource sharer's protocol is Python 3's");
    harness::main(
        vec![
            since(per_python(
                "python_hands_connections_to_rust",
                python_hands_connections_to_rust,
            )),
            since(per_python(
                "rust_hands_connections_to_python",
                rust_hands_connections_to_python,
            )),
            since(per_python(
                "wrong_keys_are_refused_both_ways",
                wrong_keys_are_refused_both_ways,
            )),
            since(per_python(
                "a_resource_is_claimed_once",
                a_resource_is_claimed_once,
            )),
            since(per_python(
                "a_stopped_python_sharer",
                a_stopped_python_sharer,
            )),
            since(per_python(
                "python_parent_rust_child_round_trip",
                python_parent_rust_child_round_trip,
            )),
            since(per_python(
                "readme_program_against_the_example",
                readme_program_against_the_example,
            )),
            per_python(
                "pickles_match_cpython_byte_for_byte",
                pickles_match_cpython_byte_for_byte,
            )
            .since(3, 8, "ForkingPickler writes protocol 4 from 3.8 (3 before)"),
        ],
        vec![],
    )
}
