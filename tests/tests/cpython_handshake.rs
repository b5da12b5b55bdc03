//! conn-auth against real CPython: Python's own Listener/Client (which run its
//! deliver_challenge / answer_challenge) on one side of a loopback socket, conn-auth on the
//! other; both directions, right and wrong keys, every digest, legacy and modern interpreters.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use conn_auth::{
    AuthError, AuthKey, Authenticated, Digest, HandshakeError, Policy, client_handshake,
    server_handshake,
};
use conn_framing::FrameError;
use conn_tests::framed::Framed;
use conn_tests::harness::{self, per_python};
use conn_tests::hex::hex;
use conn_tests::python::{Python, PythonPeer};
use std::process::ExitCode;

const SCRIPT: &str = include_str!("../data/handshake_peer.py");
const STEP: Duration = Duration::from_secs(20);

type Outcome = Result<Authenticated, HandshakeError<FrameError>>;

fn framed(stream: TcpStream) -> Framed<TcpStream> {
    stream.set_read_timeout(Some(STEP)).unwrap();
    stream.set_write_timeout(Some(STEP)).unwrap();
    Framed::new(stream)
}

/// After a successful handshake: receive Python's message, send ours.
fn exchange(chan: &mut Framed<TcpStream>) {
    assert_eq!(chan.recv_bytes().unwrap(), b"from-python");
    chan.send_bytes(b"from-rust").unwrap();
}

/// Accepts one connection, giving up after `STEP`.
fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + STEP;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("no connection from Python within {STEP:?}: {e}"),
        }
    }
}

/// Python's Listener, our client. Returns our outcome and Python's report line.
fn python_listens(py: &Python, key_py: &[u8], key_rs: &[u8], policy: &Policy) -> (Outcome, String) {
    let mut peer = py.spawn(SCRIPT, &["listen", &hex(key_py)]).unwrap();
    let port: u16 = peer.line(STEP).unwrap().trim().parse().unwrap();
    let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), STEP).unwrap();
    let mut chan = framed(stream);
    let outcome = client_handshake(&mut chan, &AuthKey::new(key_rs), policy);
    if outcome.is_ok() {
        exchange(&mut chan);
    }
    drop(chan);
    (outcome, finish(peer))
}

/// Our listener, Python's Client (or, with `deliver`, Python running the server's order).
fn python_connects(
    py: &Python,
    key_py: &[u8],
    key_rs: &[u8],
    policy: &Policy,
    deliver: Option<Digest>,
) -> (Outcome, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let key_hex = hex(key_py);
    let peer = match deliver {
        None => py.spawn(SCRIPT, &["connect", &port, &key_hex]),
        Some(d) => py.spawn(SCRIPT, &["deliver", &port, &key_hex, d.name()]),
    }
    .unwrap();
    let mut chan = framed(accept(&listener));
    let key = AuthKey::new(key_rs);
    let outcome = match deliver {
        None => server_handshake(&mut chan, &key, policy),
        Some(_) => client_handshake(&mut chan, &key, policy),
    };
    if outcome.is_ok() {
        exchange(&mut chan);
    }
    drop(chan);
    (outcome, finish(peer))
}

fn finish(mut peer: PythonPeer) -> String {
    let line = peer.line(STEP).unwrap();
    peer.finish(STEP).unwrap();
    line
}

/// What a ≤3.11 peer answers with, and what a ≥3.12 peer answers a `d` challenge with.
fn answer_digest(py: &Python, challenged_with: Digest) -> Digest {
    if py.at_least(3, 12) {
        challenged_with
    } else {
        Digest::Md5
    }
}

fn rust_client_python_listener_right_key(py: &Python) {
    let (outcome, report) =
        python_listens(py, b"secret password", b"secret password", &Policy::new());
    let done = outcome.unwrap_or_else(|e| panic!("{py}: {e}"));
    assert_eq!(done.our_digest(), answer_digest(py, Digest::Sha256), "{py}");
    // We challenge with sha256; a ≤3.11 peer answers any challenge with a bare MD5.
    assert_eq!(
        done.peer_digest(),
        answer_digest(py, Digest::Sha256),
        "{py}"
    );
    assert_eq!(report, "OK from-rust", "{py}");
    eprintln!("{py}: Python Listener + Rust client: authenticated ({done:?})");
}

fn python_client_rust_listener_right_key(py: &Python) {
    let (outcome, report) = python_connects(py, b"k3y", b"k3y", &Policy::new(), None);
    let done = outcome.unwrap_or_else(|e| panic!("{py}: {e}"));
    assert_eq!(
        done.peer_digest(),
        answer_digest(py, Digest::Sha256),
        "{py}"
    );
    assert_eq!(done.our_digest(), answer_digest(py, Digest::Sha256), "{py}");
    assert_eq!(report, "OK from-rust", "{py}");
    eprintln!("{py}: Rust Listener + Python client: authenticated ({done:?})");
}

fn wrong_key_fails_on_both_sides_python_listener(py: &Python) {
    let (outcome, report) = python_listens(py, b"right", b"wrong", &Policy::new());
    assert!(
        matches!(outcome, Err(HandshakeError::Auth(AuthError::Rejected))),
        "{py}: {outcome:?}"
    );
    assert_eq!(
        report, "ERR AuthenticationError: digest received was wrong",
        "{py}"
    );
}

fn wrong_key_fails_on_both_sides_rust_listener(py: &Python) {
    let (outcome, report) = python_connects(py, b"wrong", b"right", &Policy::new(), None);
    assert!(
        matches!(outcome, Err(HandshakeError::Auth(AuthError::WrongDigest))),
        "{py}: {outcome:?}"
    );
    assert_eq!(
        report, "ERR AuthenticationError: digest sent was rejected",
        "{py}"
    );
}

fn every_digest_we_challenge_with(py: &Python) {
    for &digest in Digest::ALL {
        let policy = Policy::new().challenge_digest(digest);
        let (outcome, report) = python_connects(py, b"k", b"k", &policy, None);
        let done = outcome.unwrap_or_else(|e| panic!("{py} {digest}: {e}"));
        assert_eq!(done.peer_digest(), answer_digest(py, digest), "{py}");
        assert_eq!(report, "OK from-rust", "{py} {digest}");
    }
}

fn every_digest_python_challenges_with(py: &Python) {
    for &digest in Digest::ALL {
        let (outcome, report) = python_connects(py, b"k", b"k", &Policy::new(), Some(digest));
        let done = outcome.unwrap_or_else(|e| panic!("{py} {digest}: {e}"));
        assert_eq!(done.our_digest(), digest, "{py}");
        assert_eq!(report, "OK from-rust", "{py} {digest}");
    }
}

fn strict_policy_refuses_legacy_pythons(py: &Python) {
    let (outcome, report) = python_connects(py, b"k", b"k", &Policy::strict(), None);
    if py.at_least(3, 12) {
        assert!(outcome.is_ok(), "{py}: {outcome:?}");
        assert_eq!(report, "OK from-rust");
    } else {
        assert!(
            matches!(
                outcome,
                Err(HandshakeError::Auth(AuthError::DigestRefused {
                    digest: Digest::Md5,
                    ..
                }))
            ),
            "{py}: {outcome:?}"
        );
        assert_eq!(
            report, "ERR AuthenticationError: digest sent was rejected",
            "{py}"
        );
    }
}

/// CPython ≤ 3.12's Listener skips authentication for b'' (bpo-43952); 3.13 authenticates.
fn empty_key_authenticates_with_python_3_13(py: &Python) {
    let (outcome, report) = python_listens(py, b"", b"", &Policy::new());
    assert!(outcome.is_ok(), "{py}: {outcome:?}");
    assert_eq!(report, "OK from-rust");
    let (outcome, report) = python_connects(py, b"", b"", &Policy::new(), None);
    assert!(outcome.is_ok(), "{py}: {outcome:?}");
    assert_eq!(report, "OK from-rust");
}

fn main() -> ExitCode {
    harness::main(
        vec![
            per_python(
                "rust_client_python_listener_right_key",
                rust_client_python_listener_right_key,
            ),
            per_python(
                "python_client_rust_listener_right_key",
                python_client_rust_listener_right_key,
            ),
            per_python(
                "wrong_key_fails_on_both_sides_python_listener",
                wrong_key_fails_on_both_sides_python_listener,
            ),
            per_python(
                "wrong_key_fails_on_both_sides_rust_listener",
                wrong_key_fails_on_both_sides_rust_listener,
            ),
            per_python(
                "every_digest_we_challenge_with",
                every_digest_we_challenge_with,
            ),
            per_python(
                "every_digest_python_challenges_with",
                every_digest_python_challenges_with,
            )
            .since(3, 12, "older versions challenge with unprefixed MD5 only"),
            per_python(
                "strict_policy_refuses_legacy_pythons",
                strict_policy_refuses_legacy_pythons,
            ),
            per_python(
                "empty_key_authenticates_with_python_3_13",
                empty_key_authenticates_with_python_3_13,
            )
            .since(
                3,
                13,
                "older listeners skip authentication for an empty key",
            ),
        ],
        vec![],
    )
}
