//! conn's Listener / Client / Connection against real CPython: every interpreter under
//! `~/.pyenv/versions`, both as listener and as client, over AF_INET, AF_UNIX and (Linux, 3.8+)
//! abstract names, with and without an authkey; bytes at the sizes where framing changes,
//! objects of every basic Python type in both directions, recv_bytes_into and BufferTooShort,
//! maxlength, poll, empty messages and EOF.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conn::auth::AuthError;
use conn::{Client, Connection, Error, Family, Listener, Pickle, PickleProtocol, PyValue};
use conn_tests::harness::{self, once_or_ignored, per_python};
use conn_tests::hex::hex;
use conn_tests::peer::{connect_arg, listening_at};
use conn_tests::python::{Python, PythonPeer};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::process::ExitCode;

const SCRIPT: &str = include_str!("../data/connection_peer.py");
const STEP: Duration = Duration::from_secs(60);
const NOW: Option<Duration> = Some(Duration::ZERO);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fam {
    Inet,
    Unix,
    Abstract,
}

impl Fam {
    fn arg(self) -> &'static str {
        match self {
            Self::Inet => "inet",
            Self::Unix => "unix",
            Self::Abstract => "abstract",
        }
    }
}

fn key_arg(key: Option<&[u8]>) -> String {
    key.map_or_else(|| "-".to_owned(), hex)
}

/// The codec a peer of this version reads: protocol 2 for Python 2.
fn codec(py: &Python) -> Pickle {
    if py.at_least(3, 0) {
        Pickle::new()
    } else {
        Pickle::new().protocol(PickleProtocol::V2)
    }
}

/// Python listens; we connect. Returns our connection (or the error) and the peer.
fn python_listens(
    py: &Python,
    fam: Fam,
    py_key: Option<&[u8]>,
    rs_key: Option<&[u8]>,
) -> (conn::Result<Connection>, PythonPeer) {
    let mut peer = py
        .spawn(SCRIPT, &["listen", fam.arg(), &key_arg(py_key)])
        .unwrap();
    let address = listening_at(&peer.line(STEP).unwrap());
    let mut client = Client::builder(address).codec(codec(py));
    if let Some(k) = rs_key {
        client = client.authkey(k);
    }
    (client.connect(), peer)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// We listen; Python connects.
fn rust_listens(
    py: &Python,
    fam: Fam,
    py_key: Option<&[u8]>,
    rs_key: Option<&[u8]>,
) -> (conn::Result<Connection>, PythonPeer) {
    let mut builder = Listener::builder()
        .accept_timeout(Some(STEP))
        .codec(codec(py));
    builder = match fam {
        Fam::Inet => builder.address("127.0.0.1:0"),
        Fam::Unix => builder.family(Family::Unix),
        Fam::Abstract => builder.address(
            format!(
                "@conn-rs-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            )
            .as_str(),
        ),
    };
    if let Some(k) = rs_key {
        builder = builder.authkey(k);
    }
    let mut listener = builder.bind().unwrap();
    let where_ = connect_arg(listener.address());
    let peer = py
        .spawn(SCRIPT, &["connect", fam.arg(), &where_, &key_arg(py_key)])
        .unwrap();
    // A refused client is dropped and counted, not returned by accept: report what the server
    // saw then.
    listener.set_accept_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + STEP;
    let accepted = loop {
        match listener.accept() {
            Err(Error::Timeout { .. }) if listener.handshake_failures() > 0 => {
                break Err(listener.take_handshake_failure().unwrap());
            }
            Err(Error::Timeout { .. }) if Instant::now() < deadline => {}
            other => break other,
        }
    };
    (accepted, peer)
}

fn end(mut peer: PythonPeer, expected_last_line: &str) {
    let line = peer.line(STEP).unwrap();
    assert_eq!(line, expected_last_line);
    peer.finish(STEP).unwrap();
}

fn cmd(conn: &mut Connection, op: &str) {
    conn.send(&(op,)).unwrap();
}

fn cmd_n(conn: &mut Connection, op: &str, n: u64) {
    conn.send(&(op, n)).unwrap();
}

const SIZES: &[usize] = &[0, 1, 16384, 16385, 1 << 20, 64 << 20];

fn bytes_at_every_size(py: &Python, conn: &mut Connection) {
    for &n in SIZES {
        cmd_n(conn, "make_bytes", n as u64);
        let got = conn.recv_bytes().unwrap();
        assert!(
            got.len() == n && got.iter().all(|&b| b == 0x5a),
            "{py}: {n} from Python"
        );
        cmd(conn, "check_bytes");
        conn.send_bytes(&vec![0x5a; n]).unwrap();
        let (len, ok): (u64, bool) = conn.recv().unwrap();
        assert_eq!((len, ok), (n as u64, true), "{py}: {n} to Python");
    }
    cmd(conn, "echo_bytes");
    conn.send_bytes(b"hello\x00world\xff").unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"hello\x00world\xff");
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Dict {
    a: i64,
    b: Vec<f64>,
}

fn sample<T: serde::de::DeserializeOwned>(conn: &mut Connection, name: &str) -> conn::Result<T> {
    conn.send(&("sample", name)).unwrap();
    conn.recv()
}

fn objects_from_python(py: &Python, conn: &mut Connection) {
    assert_eq!(sample::<Option<i64>>(conn, "none").unwrap(), None);
    assert_eq!(sample::<PyValue>(conn, "none").unwrap(), PyValue::None);
    assert!(sample::<bool>(conn, "true").unwrap());
    assert!(!sample::<bool>(conn, "false").unwrap());
    assert_eq!(sample::<i64>(conn, "zero").unwrap(), 0);
    assert_eq!(sample::<i64>(conn, "minus_one").unwrap(), -1);
    assert_eq!(sample::<i64>(conn, "i64_max").unwrap(), i64::MAX);
    assert_eq!(sample::<i64>(conn, "i64_min").unwrap(), i64::MIN);
    // Beyond 64 bits: a clear decode error into i64, a big int in a dynamic value.
    let err = sample::<i64>(conn, "big").unwrap_err();
    assert_eq!(err.python_exception(), "UnpicklingError", "{py}: {err}");
    conn.send(&("sample", "big")).unwrap();
    match conn.recv_value().unwrap() {
        PyValue::BigInt(big) => assert_eq!(big.to_string(), "1180591620717411303424"),
        other => panic!("{py}: {other:?}"),
    }
    assert_eq!(sample::<f64>(conn, "float").unwrap(), 1.5);
    assert_eq!(sample::<f64>(conn, "neg_float").unwrap(), -0.25);
    assert_eq!(
        sample::<String>(conn, "str").unwrap(),
        "h\u{e9}llo \u{4e16}\u{754c}"
    );
    assert_eq!(sample::<String>(conn, "empty_str").unwrap(), "");
    assert_eq!(
        sample::<(i64, String, Option<i64>)>(conn, "list").unwrap(),
        (1, "a".into(), None)
    );
    assert_eq!(
        sample::<(i64, f64, String)>(conn, "tuple").unwrap(),
        (1, 2.5, "x".into())
    );
    assert_eq!(
        sample::<Dict>(conn, "dict").unwrap(),
        Dict {
            a: 1,
            b: vec![2.5, 3.5]
        }
    );
    conn.send(&("sample", "nested")).unwrap();
    let nested = conn.recv_value().unwrap();
    assert_eq!(
        nested.to_string(),
        "{'k': [(1, {'z': [None, True]}), []]}",
        "{py}"
    );
    // The seed's object: the class `float` arrives as an inert global.
    assert_eq!(
        sample::<PyValue>(conn, "seed").unwrap().to_string(),
        "[2.25, None, 'junk', <class 'float'>]"
    );
    assert!(sample::<(f64, Option<()>, String, f64)>(conn, "seed").is_err());
    if py.at_least(3, 0) {
        assert_eq!(
            sample::<ByteBuf>(conn, "bytes").unwrap(),
            &b"\x00\xffbytes"[..]
        );
        assert_eq!(sample::<ByteBuf>(conn, "empty_bytes").unwrap(), &b""[..]);
    }
}

fn expect<T: Serialize>(py: &Python, conn: &mut Connection, name: &str, value: &T) {
    conn.send(&("expect", name)).unwrap();
    conn.send(value).unwrap();
    let (equal, repr): (bool, String) = conn.recv().unwrap();
    assert!(equal, "{py}: {name} arrived as {repr}");
}

/// A heterogeneous Python list item: an untagged enum serializes as its content.
#[derive(Serialize)]
#[serde(untagged)]
enum Item {
    Int(i64),
    Str(String),
    None(Option<()>),
}

fn objects_to_python(py: &Python, conn: &mut Connection) {
    expect(py, conn, "none", &None::<i64>);
    expect(py, conn, "true", &true);
    expect(py, conn, "false", &false);
    expect(py, conn, "zero", &0i64);
    expect(py, conn, "minus_one", &-1i64);
    expect(py, conn, "i64_max", &i64::MAX);
    expect(py, conn, "i64_min", &i64::MIN);
    expect(py, conn, "float", &1.5f64);
    expect(py, conn, "neg_float", &-0.25f64);
    expect(py, conn, "str", &"h\u{e9}llo \u{4e16}\u{754c}");
    expect(py, conn, "empty_str", &"");
    expect(
        py,
        conn,
        "list",
        &vec![Item::Int(1), Item::Str("a".into()), Item::None(None)],
    );
    expect(py, conn, "tuple", &(1i64, 2.5f64, "x"));
    expect(
        py,
        conn,
        "dict",
        &Dict {
            a: 1,
            b: vec![2.5, 3.5],
        },
    );
    let nested = conn.send(&("expect", "nested")).and_then(|()| {
        conn.send_value(&PyValue::dict(vec![(
            PyValue::str("k"),
            PyValue::list(vec![
                PyValue::tuple(vec![
                    PyValue::Int(1),
                    PyValue::dict(vec![(
                        PyValue::str("z"),
                        PyValue::list(vec![PyValue::None, PyValue::Bool(true)]),
                    )]),
                ]),
                PyValue::list(vec![]),
            ]),
        )]))
    });
    nested.unwrap();
    let (equal, repr): (bool, String) = conn.recv().unwrap();
    assert!(equal, "{py}: nested arrived as {repr}");
    if py.at_least(3, 0) {
        expect(py, conn, "bytes", &ByteBuf::from(b"\x00\xffbytes".to_vec()));
        expect(py, conn, "empty_bytes", &ByteBuf::new());
    }
}

fn recv_into_and_buffer_too_short(py: &Python, conn: &mut Connection) {
    // Python's recv_bytes_into(array('i', [0]*5)) — the seed client's call.
    let ints: Vec<u8> = [42i32, 1729].iter().flat_map(|i| i.to_ne_bytes()).collect();
    cmd(conn, "recv_into");
    conn.send_bytes(&ints).unwrap();
    let got: (i64, Vec<i64>) = conn.recv().unwrap();
    assert_eq!(got, (8, vec![42, 1729, 0, 0, 0]), "{py}");
    cmd(conn, "recv_into");
    conn.send_bytes(&[1u8; 24]).unwrap();
    let got: (String, i64) = conn.recv().unwrap();
    assert_eq!(got, ("BufferTooShort".into(), 24), "{py}");
    // Ours.
    cmd_n(conn, "make_bytes", 40);
    let mut buf = [0u8; 16];
    match conn.recv_bytes_into(&mut buf).unwrap_err() {
        Error::BufferTooShort { message } => assert_eq!(message, vec![0x5a; 40]),
        other => panic!("{py}: {other:?}"),
    }
    cmd_n(conn, "make_bytes", 3);
    assert_eq!(conn.recv_bytes_into(&mut buf).unwrap(), 3, "still in step");
    cmd_n(conn, "make_bytes", 100);
    assert_eq!(
        conn.recv_bytes_max(100).unwrap().len(),
        100,
        "exactly maxlength"
    );
}

fn poll_and_empty_messages(py: &Python, conn: &mut Connection) {
    cmd(conn, "poll");
    assert!(!conn.recv::<bool>().unwrap(), "{py}: nothing to poll yet");
    conn.send_bytes(b"x").unwrap();
    let (after, data): (bool, ByteBuf) = conn.recv().unwrap();
    assert!(after && data.as_slice() == b"x", "{py}");
    conn.send(&("send_later", 0.3f64)).unwrap();
    assert!(!conn.poll(NOW).unwrap());
    assert!(conn.poll(Some(STEP)).unwrap());
    assert_eq!(conn.recv_bytes().unwrap(), b"late");
    cmd(conn, "empties");
    for m in [&b""[..], b"a", b""] {
        assert!(conn.poll(Some(STEP)).unwrap(), "an empty message is ready");
        assert_eq!(conn.recv_bytes().unwrap(), m);
    }
}

/// Everything, then the peer closes and we see EOF.
fn full_session(py: &Python, conn: &mut Connection) {
    bytes_at_every_size(py, conn);
    objects_from_python(py, conn);
    objects_to_python(py, conn);
    recv_into_and_buffer_too_short(py, conn);
    poll_and_empty_messages(py, conn);
}

fn full_session_with_python_as_listener(py: &Python) {
    let (conn, peer) = python_listens(
        py,
        Fam::Inet,
        Some(b"secret password"),
        Some(b"secret password"),
    );
    let mut conn = conn.unwrap_or_else(|e| panic!("{py}: {e}"));
    full_session(py, &mut conn);
    cmd(&mut conn, "close");
    end(peer, "CLOSED");
    assert!(conn.poll(Some(STEP)).unwrap(), "{py}: EOF is ready");
    assert!(matches!(conn.recv_bytes(), Err(Error::Eof)), "{py}");
    eprintln!("{py}: Python Listener, Rust Client: full session ok");
}

fn full_session_with_python_as_client(py: &Python) {
    let (conn, peer) = rust_listens(py, Fam::Inet, Some(b"k3y"), Some(b"k3y"));
    let mut conn = conn.unwrap_or_else(|e| panic!("{py}: {e}"));
    full_session(py, &mut conn);
    conn.close().unwrap();
    end(peer, "EOF");
    eprintln!("{py}: Rust Listener, Python Client: full session ok");
}

fn every_family_both_ways_with_and_without_key(py: &Python) {
    let mut families = vec![Fam::Inet, Fam::Unix];
    if cfg!(target_os = "linux") && py.at_least(3, 8) {
        families.push(Fam::Abstract);
    }
    for fam in families {
        for key in [None, Some(&b"k"[..])] {
            for python_listens_first in [true, false] {
                let (conn, peer) = if python_listens_first {
                    python_listens(py, fam, key, key)
                } else {
                    rust_listens(py, fam, key, key)
                };
                let what =
                    format!("{py} {fam:?} key={key:?} python_listens={python_listens_first}");
                let mut conn = conn.unwrap_or_else(|e| panic!("{what}: {e}"));
                cmd(&mut conn, "echo_obj");
                conn.send(&("hello", 1729i64)).unwrap();
                assert_eq!(
                    conn.recv::<(String, i64)>().unwrap(),
                    ("hello".into(), 1729),
                    "{what}"
                );
                cmd(&mut conn, "bye");
                end(peer, "DONE");
            }
        }
    }
}

fn wrong_key_fails_on_both_sides_and_delivers_nothing(py: &Python) {
    let (conn, peer) = python_listens(py, Fam::Inet, Some(b"right"), Some(b"wrong"));
    assert!(
        matches!(conn, Err(Error::Auth(AuthError::Rejected))),
        "{py}: {conn:?}"
    );
    end(peer, "ERR AuthenticationError: digest received was wrong");
    // Over AF_UNIX too: our pipelined challenge is left unread when the server refuses us.
    let (conn, peer) = python_listens(py, Fam::Unix, Some(b"right"), Some(b"wrong"));
    assert!(
        matches!(conn, Err(Error::Auth(AuthError::Rejected))),
        "{py}: {conn:?}"
    );
    end(peer, "ERR AuthenticationError: digest received was wrong");
    let (conn, peer) = rust_listens(py, Fam::Unix, Some(b"wrong"), Some(b"right"));
    assert!(
        matches!(conn, Err(Error::Auth(AuthError::WrongDigest))),
        "{py}: {conn:?}"
    );
    end(peer, "ERR AuthenticationError: digest sent was rejected");
}

fn maxlength_both_ways(py: &Python) {
    // Python's recv_bytes(10) refuses 11 bytes and stops reading.
    let (conn, peer) = python_listens(py, Fam::Inet, None, None);
    let mut conn = conn.unwrap();
    cmd_n(&mut conn, "maxlength", 10);
    conn.send_bytes(&[7; 11]).unwrap();
    let exception = if py.at_least(3, 3) {
        "OSError"
    } else {
        "IOError"
    };
    end(peer, &format!("ERR {exception}: bad message length"));
    // Python closed with our 11 bytes unread, so the kernel may reset the connection.
    let after = conn.recv_bytes();
    assert!(
        matches!(&after, Err(Error::Eof))
            || matches!(&after, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{py}: {after:?}"
    );
    // Ours refuses too, and the connection stops being readable.
    let (conn, peer) = rust_listens(py, Fam::Unix, None, None);
    let mut conn = conn.unwrap();
    cmd_n(&mut conn, "make_bytes", 50);
    assert!(matches!(
        conn.recv_bytes_max(10),
        Err(Error::BadMessageLength { len: 50, max: 10 })
    ));
    assert!(!conn.readable() && conn.writable());
    cmd(&mut conn, "bye");
    end(peer, "DONE");
}

/// Over 2 GiB each way (the `-1` + 8-byte header) with the newest CPython ≥ 3.8. Needs about
/// 10 GiB of memory across both processes, so it runs only with `CONN_BIG_TESTS=1` (which
/// `.ci/run` sets).
fn over_2_gib_each_way() -> Result<(), String> {
    if std::env::var("CONN_BIG_TESTS").as_deref() != Ok("1") {
        return Err("set CONN_BIG_TESTS=1 to send 2 GiB each way".into());
    }
    let py = harness::newest_since(3, 8).ok_or("no CPython >= 3.8")?;
    let n: u64 = (1 << 31) + 3;
    let (conn, peer) = rust_listens(&py, Fam::Unix, None, None);
    let mut conn = conn.unwrap();
    cmd(&mut conn, "check_bytes");
    conn.send_bytes(&vec![0x5a; n as usize]).unwrap();
    assert_eq!(conn.recv::<(u64, bool)>().unwrap(), (n, true), "{py}");
    cmd_n(&mut conn, "make_bytes", n);
    let got = conn.recv_bytes().unwrap();
    assert!(got.len() as u64 == n && got.iter().all(|&b| b == 0x5a));
    drop(got);
    cmd(&mut conn, "bye");
    end(peer, "DONE");
    eprintln!("{py}: 2 GiB + 3 bytes each way ok");
    Ok(())
}

/// File descriptors both ways, wire-compatible with `multiprocessing.reduction`: one from
/// Python (number above 256) between two messages, so it arrives while we read ahead; two to
/// Python (`recvfds(sock, 2)`); and a plain byte where a handle was expected (CPython's
/// `test_missing_fd_transfer`), which is a typed error.
fn handles_both_ways(py: &Python) {
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, OwnedFd};
    let (conn, peer) = python_listens(py, Fam::Unix, Some(b"k"), Some(b"k"));
    let mut conn = conn.unwrap_or_else(|e| panic!("{py}: {e}"));
    cmd(&mut conn, "send_handle");
    assert_eq!(conn.recv_bytes().unwrap(), b"before", "{py}");
    let fd = OwnedFd::from(conn.recv_handle().unwrap_or_else(|e| panic!("{py}: {e}")));
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text).unwrap();
    assert_eq!(text, "from python", "{py}");
    assert_eq!(conn.recv_bytes().unwrap(), b"after", "{py}");

    cmd_n(&mut conn, "recv_handles", 2);
    let (r1, mut w1) = std::io::pipe().unwrap();
    let (r2, mut w2) = std::io::pipe().unwrap();
    w1.write_all(b"one").unwrap();
    w2.write_all(b"two").unwrap();
    drop((w1, w2));
    conn.send_handles(&[r1.as_fd().into(), r2.as_fd().into()])
        .unwrap();
    let got: Vec<ByteBuf> = conn.recv().unwrap();
    assert_eq!(
        got,
        [ByteBuf::from(&b"one"[..]), ByteBuf::from(&b"two"[..])],
        "{py}"
    );

    cmd(&mut conn, "raw_byte");
    let missing = conn.recv_handles(1);
    assert!(
        matches!(
            missing,
            Err(Error::HandleTransfer {
                announced: 1,
                received: 0,
                ..
            })
        ),
        "{py}: {missing:?}"
    );
    assert_eq!(missing.unwrap_err().python_exception(), "RuntimeError");
    cmd(&mut conn, "bye");
    end(peer, "DONE");
}

fn main() -> ExitCode {
    harness::main(
        vec![
            per_python(
                "full_session_with_python_as_listener",
                full_session_with_python_as_listener,
            ),
            per_python(
                "full_session_with_python_as_client",
                full_session_with_python_as_client,
            ),
            per_python(
                "every_family_both_ways_with_and_without_key",
                every_family_both_ways_with_and_without_key,
            ),
            per_python(
                "wrong_key_fails_on_both_sides_and_delivers_nothing",
                wrong_key_fails_on_both_sides_and_delivers_nothing,
            ),
            per_python("maxlength_both_ways", maxlength_both_ways),
            per_python("handles_both_ways", handles_both_ways).since(
                3,
                4,
                "multiprocessing.reduction.sendfds and recvfds arrived in 3.4",
            ),
        ],
        vec![once_or_ignored("over_2_gib_each_way", over_2_gib_each_way)],
    )
}
