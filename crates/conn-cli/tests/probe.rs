//! `conn probe` run as a program against CPython listeners (every CPython found, 2.7 and
//! 3.6–3.13: with and without keys, legacy MD5 and `{sha256}` challenges, `--strict`,
//! `--json`) and against endpoints that are not CPython's (nothing listening, no socket file,
//! a peer speaking something else). Every child is bounded: the listeners exit by themselves
//! after 60 s, each probe has a timeout.

use std::io::Write;
use std::process::{Command, Output};

use conn_tests::examples::start_server;
use conn_tests::harness::{self, once, per_python};
use conn_tests::python::Python;

/// A CPython listener on 127.0.0.1 that accepts clients and keeps them, as a server waiting
/// for requests does, until killed (or 60 s pass), with authkey `argv[1]` when given; prints
/// its port.
const LISTENER: &str = r#"
import signal, sys
from multiprocessing.connection import Listener
signal.alarm(60)
key = sys.argv[1].encode() if len(sys.argv) > 1 else None
l = Listener(('127.0.0.1', 0), authkey=key)
sys.stdout.write('%d\n' % l.address[1])
sys.stdout.flush()
kept = []
while True:
    try:
        kept.append(l.accept())
    except Exception:
        pass
"#;

/// A listener of `py` with `key`, and its address.
fn python_listener(py: &Python, key: Option<&str>) -> (std::process::Child, String) {
    let mut cmd = Command::new(&py.path);
    cmd.args(["-c", LISTENER]);
    if let Some(k) = key {
        cmd.arg(k);
    }
    let (child, port) = start_server(&mut cmd);
    (child, format!("127.0.0.1:{}", port.trim()))
}

/// `conn probe ARGS`, with the key (if any) in environment variable `CONN_TEST_KEY`.
fn probe(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conn"));
    cmd.arg("probe").args(args);
    match key {
        Some(k) => cmd
            .env("CONN_TEST_KEY", k)
            .args(["--authkey-env", "CONN_TEST_KEY"]),
        None => cmd.env_remove("CONN_TEST_KEY"),
    };
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn modern(py: &Python) -> bool {
    py.version >= (3, 12, 0)
}

fn a_listener_with_a_key(py: &Python) {
    let (mut listener, address) = python_listener(py, Some("the key"));
    let digest = if modern(py) { "sha256" } else { "md5" };

    let ok = probe(&[&address], Some("the key"));
    let out = text(&ok);
    assert_eq!(ok.status.code(), Some(0), "{py}: {out}");
    assert!(out.contains("authkey    accepted"), "{py}: {out}");
    assert!(
        out.contains(&format!("took our {digest} answer")),
        "{py}: {out}"
    );
    if modern(py) {
        assert!(
            out.contains("{sha256} (CPython 3.12 and later)"),
            "{py}: {out}"
        );
    } else {
        assert!(out.contains("legacy: HMAC-MD5"), "{py}: {out}");
    }

    let wrong = probe(&[&address], Some("another key"));
    assert_eq!(wrong.status.code(), Some(4), "{py}: {}", text(&wrong));
    assert!(
        text(&wrong).contains("refused our key"),
        "{py}: {}",
        text(&wrong)
    );

    let none = probe(&[&address], None);
    assert_eq!(none.status.code(), Some(0), "{py}: {}", text(&none));
    assert!(
        text(&none).contains("authkey    required"),
        "{py}: {}",
        text(&none)
    );

    let json = probe(&[&address, "--json"], Some("the key"));
    let line = String::from_utf8_lossy(&json.stdout);
    assert!(
        line.starts_with('{') && line.trim_end().ends_with('}'),
        "{line}"
    );
    assert!(line.contains("\"authkey\":\"accepted\""), "{line}");
    assert!(
        line.contains(&format!("\"challenge\":\"{digest}\"")),
        "{line}"
    );

    // --strict refuses MD5, the only digest of 3.11 and earlier.
    let strict = probe(&[&address, "--strict"], Some("the key"));
    let expected = if modern(py) { 0 } else { 7 };
    assert_eq!(
        strict.status.code(),
        Some(expected),
        "{py}: {}",
        text(&strict)
    );
    listener.kill().unwrap();
    listener.wait().unwrap();
}

fn a_listener_without_a_key(py: &Python) {
    let (mut listener, address) = python_listener(py, None);
    let o = probe(&[&address, "--timeout", "0.3"], None);
    assert_eq!(o.status.code(), Some(0), "{py}: {}", text(&o));
    assert!(
        text(&o).contains("challenge  none within 0.3 s"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("authkey    not needed"), "{}", text(&o));
    let with_key = probe(&[&address, "--timeout", "0.3"], Some("k"));
    assert!(
        text(&with_key).contains("given but not asked for"),
        "{}",
        text(&with_key)
    );
    listener.kill().unwrap();
    listener.wait().unwrap();
}

fn nothing_listening_is_a_connect_failure() {
    let port = conn_tests::examples::free_port();
    let o = probe(&[&format!("127.0.0.1:{port}")], None);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("refused"), "{}", text(&o));
    let dir = std::env::temp_dir().join(format!("conn-cli-none-{}", std::process::id()));
    let o = probe(&[dir.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("no such socket file"), "{}", text(&o));
    let o = probe(&["not an address at all:"], None);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

/// A peer that speaks something else: its first message is not a challenge, or its first
/// "header" claims more than a handshake message may be. Its bytes are shown escaped.
fn a_peer_speaking_something_else() {
    for first in [
        &b"\x00\x00\x00\x0dHELLO \x1b[31mRED"[..],
        b"HTTP/1.1 200 OK\r\n\r\n",
    ] {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = server.local_addr().unwrap().to_string();
        let first = first.to_vec();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            s.write_all(&first).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
        });
        let o = probe(&[&address, "--timeout", "5"], None);
        assert_eq!(o.status.code(), Some(5), "{}", text(&o));
        assert!(
            !text(&o).contains('\x1b'),
            "peer bytes printed raw: {}",
            text(&o)
        );
        peer.join().unwrap();
    }
}

/// A peer that sends half a message and then nothing cannot hold the probe past its timeout.
fn a_stalling_peer_times_out() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = server.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        s.write_all(b"\x00\x00\x00\x20#CHALL").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
    });
    let started = std::time::Instant::now();
    let o = probe(&[&address, "--timeout", "0.5"], None);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    peer.join().unwrap();
}

fn keys_come_from_a_file_or_the_environment_never_the_command_line() {
    let help = Command::new(env!("CARGO_BIN_EXE_conn"))
        .args(["probe", "--help"])
        .output()
        .unwrap();
    let help = text(&help);
    assert!(help.contains("--authkey-env"), "{help}");
    assert!(help.contains("--authkey-file"), "{help}");
    assert!(!help.contains("--authkey <"), "{help}");
    let missing = Command::new(env!("CARGO_BIN_EXE_conn"))
        .args([
            "probe",
            "127.0.0.1:1",
            "--authkey-env",
            "CONN_TEST_NO_SUCH_VAR",
        ])
        .env_remove("CONN_TEST_NO_SUCH_VAR")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(text(&missing).contains("no such environment variable"));
}

fn a_key_file_with_a_trailing_newline(py: &Python) {
    let (mut listener, address) = python_listener(py, Some("from a file"));
    let file = std::env::temp_dir().join(format!("conn-cli-key-{}-{}", std::process::id(), py));
    std::fs::write(&file, "from a file\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_conn"))
        .args(["probe", &address, "--authkey-file", file.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(o.status.code(), Some(0), "{py}: {}", text(&o));
    assert!(text(&o).contains("authkey    accepted"), "{}", text(&o));
    listener.kill().unwrap();
    listener.wait().unwrap();
}

/// The README's copy of `conn --help` is the binary's.
fn the_readme_shows_the_help_as_it_is() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let marker = "<!-- conn --help";
    let after = &readme[readme.find(marker).expect("the help block's marker")..];
    let start = after.find("```text\n").unwrap() + "```text\n".len();
    let end = after[start..].find("\n```").unwrap();
    let shown = &after[start..start + end];
    let help = Command::new(env!("CARGO_BIN_EXE_conn"))
        .arg("--help")
        .output()
        .unwrap();
    let actual = String::from_utf8(help.stdout).unwrap();
    assert_eq!(
        shown,
        actual.trim_end(),
        "README.md's `conn --help` block is stale"
    );
}

fn main() -> std::process::ExitCode {
    harness::main(
        vec![
            per_python("a_listener_with_a_key", a_listener_with_a_key),
            per_python("a_listener_without_a_key", a_listener_without_a_key),
            per_python(
                "a_key_file_with_a_trailing_newline",
                a_key_file_with_a_trailing_newline,
            ),
        ],
        vec![
            once(
                "nothing_listening_is_a_connect_failure",
                nothing_listening_is_a_connect_failure,
            ),
            once(
                "a_peer_speaking_something_else",
                a_peer_speaking_something_else,
            ),
            once("a_stalling_peer_times_out", a_stalling_peer_times_out),
            once(
                "the_readme_shows_the_help_as_it_is",
                the_readme_shows_the_help_as_it_is,
            ),
            once(
                "keys_come_from_a_file_or_the_environment_never_the_command_line",
                keys_come_from_a_file_or_the_environment_never_the_command_line,
            ),
        ],
    )
}
