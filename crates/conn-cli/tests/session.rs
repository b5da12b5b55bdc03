//! `conn connect` and `conn listen` run as programs against CPython (every CPython found):
//! objects and bytes both ways with a key, JSON in and out, a `SyncManager` asked a request,
//! a CPython client served by `conn listen` (echo, reply, escaping), Ctrl-C, and the errors a
//! user can act on. Every child is bounded: Python peers exit by themselves after 60 s, each
//! `conn` has a timeout, and each wait below has one.

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use conn_tests::examples::start_server;
use conn_tests::harness::{self, once, per_python};
use conn_tests::python::Python;

/// A CPython listener that answers each object with `('got', obj)` until the client closes.
const ECHO: &str = include_str!("../../../tests/data/cli_echo_listener.py");

/// A `SyncManager` with an authkey; prints its port.
const MANAGER: &str = r#"
import signal, sys
from multiprocessing.managers import SyncManager
signal.alarm(60)
m = SyncManager(address=('127.0.0.1', 0), authkey=b'manager key')
s = m.get_server()
sys.stdout.write('%d\n' % s.address[1])
sys.stdout.flush()
s.serve_forever()
"#;

/// A CPython client: sends an object with an escape sequence in it and a bytes message, and
/// prints what comes back for each.
const CLIENT: &str = include_str!("../../../tests/data/cli_client.py");

fn conn() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conn"));
    cmd.env("CONN_TEST_KEY", "the key");
    cmd
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// The pickle protocol `py` reads.
fn protocol(py: &Python) -> &'static str {
    if py.version < (3, 0, 0) {
        "2"
    } else if py.version < (3, 4, 0) {
        "3"
    } else {
        "4"
    }
}

fn python(py: &Python, script: &str) -> Command {
    let mut cmd = Command::new(&py.path);
    cmd.args(["-c", script]);
    cmd
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn connect_sends_objects_and_prints_the_replies(py: &Python) {
    let (server, port) = start_server(&mut python(py, ECHO));
    let address = format!("127.0.0.1:{}", port.trim());
    let o = conn()
        .args(["connect", &address, "--authkey-env", "CONN_TEST_KEY"])
        .args(["--protocol", protocol(py)])
        .args([
            "[1, 2.5, None, 'text']",
            "(3, b'\\x00\\xff')",
            "12345678901234567890",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{py}: {}", text(&o));
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    if py.version >= (3, 0, 0) {
        assert_eq!(
            lines,
            [
                "('got', [1, 2.5, None, 'text'])",
                "('got', (3, b'\\x00\\xff'))",
                "('got', 12345678901234567890)",
            ],
            "{py}"
        );
    } else {
        // Python 2's str is bytes: its 'got' comes back as a Python 2 str.
        assert_eq!(lines.len(), 3, "{py}: {lines:?}");
        assert!(
            lines[2].ends_with(" 12345678901234567890)"),
            "{py}: {lines:?}"
        );
    }
    stop(server);
}

fn connect_reads_json_from_stdin_and_prints_json(py: &Python) {
    let (server, port) = start_server(&mut python(py, ECHO));
    let address = format!("127.0.0.1:{}", port.trim());
    let mut child = conn()
        .args(["connect", &address, "--authkey-env", "CONN_TEST_KEY"])
        .args([
            "--input",
            "json",
            "--format",
            "json",
            "--protocol",
            protocol(py),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"{\"k\": [1, {\"$bytes\": \"00ff\"}, {\"$tuple\": [true]}]}\n\n\"two\"\n")
        .unwrap();
    drop(stdin);
    let o = wait_output(child);
    assert_eq!(o.status.code(), Some(0), "{py}: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.lines();
    if py.version >= (3, 0, 0) {
        assert_eq!(
            lines.next(),
            Some("{\"$tuple\":[\"got\",{\"k\":[1,{\"$bytes\":\"00ff\"},{\"$tuple\":[true]}]}]}"),
            "{py}"
        );
        assert_eq!(lines.next(), Some("{\"$tuple\":[\"got\",\"two\"]}"), "{py}");
    } else {
        assert_eq!(out.lines().count(), 2, "{py}: {out}");
    }
    stop(server);
}

/// A `SyncManager`'s server answers the request `(None, 'dummy', (), {})` with
/// `('#RETURN', None)`, as it answers its own proxies.
fn connect_asks_a_sync_manager(py: &Python) {
    let (server, port) = start_server(&mut python(py, MANAGER));
    let address = format!("127.0.0.1:{}", port.trim());
    let o = conn()
        .env("CONN_TEST_MANAGER_KEY", "manager key")
        .args([
            "connect",
            &address,
            "--authkey-env",
            "CONN_TEST_MANAGER_KEY",
        ])
        .args(["--protocol", protocol(py), "(None, 'dummy', (), {})"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{py}: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("#RETURN"), "{py}: {out}");
    assert!(out.trim_end().ends_with("None)"), "{py}: {out}");
    let probe = conn()
        .env("CONN_TEST_MANAGER_KEY", "manager key")
        .args(["probe", &address, "--authkey-env", "CONN_TEST_MANAGER_KEY"])
        .output()
        .unwrap();
    assert_eq!(probe.status.code(), Some(0), "{py}: {}", text(&probe));
    assert!(
        text(&probe).contains("authkey    accepted"),
        "{}",
        text(&probe)
    );
    stop(server);
}

/// `conn listen --once` serves one CPython client: prints its messages (escaped), answers
/// each with `--reply`, and ends when the client closes.
fn listen_serves_a_python_client(py: &Python) {
    let mut cmd = conn();
    cmd.args([
        "listen",
        "127.0.0.1:0",
        "--once",
        "--authkey-env",
        "CONN_TEST_KEY",
    ])
    .args(["--protocol", protocol(py), "--reply", "'ok'"]);
    let (server, first) = start_server(&mut cmd);
    let port = first.trim().rsplit(':').next().unwrap().to_owned();
    let client = python(py, CLIENT).arg(&port).output().unwrap();
    assert!(client.status.success(), "{py}: {}", text(&client));
    let said = String::from_utf8_lossy(&client.stdout);
    let mut said = said.lines();
    assert!(said.next().unwrap().contains("ok"), "{py}");
    assert!(said.next().unwrap().contains("ok"), "{py}");
    let o = wait_output(server);
    assert_eq!(o.status.code(), Some(0), "{py}: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains('\x1b'), "peer text printed raw: {out}");
    assert!(out.contains("\\x1b[31mred"), "{py}: {out}");
    assert!(
        out.contains("connected") && out.contains("closed"),
        "{py}: {out}"
    );
    assert!(out.contains("b'plain bytes' (not a pickle)"), "{py}: {out}");
}

/// The errors a user can act on, each with its exit code, before or after connecting.
fn connect_errors_have_their_exit_codes() {
    let port = conn_tests::examples::free_port();
    let refused = conn()
        .args(["connect", &format!("127.0.0.1:{port}"), "1"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let bad = conn()
        .args(["connect", "127.0.0.1:1", "[1,"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("a message:"), "{}", text(&bad));

    // A wrong key, against conn's own listener.
    let mut cmd = conn();
    cmd.args(["listen", "127.0.0.1:0", "--authkey-env", "CONN_TEST_KEY"]);
    let (server, first) = start_server(&mut cmd);
    let address = first.trim().trim_start_matches("listening on ").to_owned();
    let wrong = conn()
        .env("CONN_TEST_OTHER", "another key")
        .args(["connect", &address, "--authkey-env", "CONN_TEST_OTHER", "1"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(4), "{}", text(&wrong));
    // conn to conn, both ways, while at it.
    let echo = conn()
        .args([
            "connect",
            &address,
            "--authkey-env",
            "CONN_TEST_KEY",
            "--recv",
            "0",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(echo.status.code(), Some(0), "{}", text(&echo));
    interrupt_and_wait(server);
}

/// Ctrl-C ends `conn listen` cleanly: exit 0, and a Unix socket file removed.
#[cfg(unix)]
fn ctrl_c_ends_listen_cleanly() {
    let dir = std::env::temp_dir().join(format!("conn-cli-listen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let mut cmd = conn();
    cmd.args(["listen", path.to_str().unwrap()]);
    let (server, first) = start_server(&mut cmd);
    assert!(first.starts_with("listening on "), "{first}");
    assert!(path.exists());
    let o = interrupt_and_wait(server);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!path.exists(), "the socket file was left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(not(unix))]
fn ctrl_c_ends_listen_cleanly() {}

/// On a terminal, `conn connect` prompts and answers each line with its reply (through
/// util-linux's `script`, which gives it a pseudo-terminal; ignored where there is none).
fn an_interactive_session_on_a_terminal() -> Result<(), String> {
    if !cfg!(target_os = "linux") || Command::new("script").arg("--version").output().is_err() {
        return Err(
            "util-linux's `script` is not installed: no pseudo-terminal to test with".into(),
        );
    }
    let mut cmd = conn();
    cmd.args(["listen", "127.0.0.1:0", "--echo"]);
    let (server, first) = start_server(&mut cmd);
    let address = first.trim().trim_start_matches("listening on ").to_owned();
    let line = format!(
        "{} connect {address} --timeout 10",
        env!("CARGO_BIN_EXE_conn")
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"[1, 'two']\nnot python(\n{'k': b'v'}\n")
        .unwrap();
    let o = wait_output(child);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("conn> [1, 'two']"), "{out}");
    assert!(out.contains("conn> {'k': b'v'}"), "{out}");
    // A line that is not a value is reported and the session goes on.
    assert!(out.contains("conn: "), "{out}");
    interrupt_and_wait(server);
    Ok(())
}

/// Thousands of stdin lines to a peer that answers each: replies are read as they come, so
/// neither side's buffers fill while the other waits (16 MB each way).
fn many_lines_to_an_echoing_peer_do_not_deadlock() -> Result<(), String> {
    let Some(py) = conn_tests::python::discover()
        .into_iter()
        .find(|p| p.version >= (3, 4, 0))
    else {
        return Err("no CPython 3.4 or later".into());
    };
    let (server, port) = start_server(&mut python(&py, ECHO));
    let address = format!("127.0.0.1:{}", port.trim());
    let mut child = conn()
        .args(["connect", &address, "--authkey-env", "CONN_TEST_KEY"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let line = format!("'{}'\n", "x".repeat(8000));
        for _ in 0..2000 {
            if stdin.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        stdout.read_to_end(&mut all).unwrap();
        all.iter().filter(|&&b| b == b'\n').count()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("conn connect deadlocked with an echoing peer");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(reader.join().unwrap(), 2000);
    stop(server);
    Ok(())
}

/// Sends SIGINT (Unix; elsewhere kills) and collects the output.
fn interrupt_and_wait(mut child: Child) -> Output {
    #[cfg(unix)]
    {
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
    }
    #[cfg(not(unix))]
    {
        let _ = child.kill();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "conn listen did not end on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_output(child)
}

/// The rest of a child's output once it has ended (at most 30 s).
fn wait_output(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a child did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_end(&mut stdout).unwrap();
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_end(&mut stderr).unwrap();
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

fn main() -> std::process::ExitCode {
    harness::main(
        vec![
            per_python(
                "connect_sends_objects_and_prints_the_replies",
                connect_sends_objects_and_prints_the_replies,
            ),
            per_python(
                "connect_reads_json_from_stdin_and_prints_json",
                connect_reads_json_from_stdin_and_prints_json,
            ),
            per_python("connect_asks_a_sync_manager", connect_asks_a_sync_manager),
            per_python(
                "listen_serves_a_python_client",
                listen_serves_a_python_client,
            ),
        ],
        vec![
            once(
                "connect_errors_have_their_exit_codes",
                connect_errors_have_their_exit_codes,
            ),
            once("ctrl_c_ends_listen_cleanly", ctrl_c_ends_listen_cleanly),
            harness::once_or_ignored(
                "many_lines_to_an_echoing_peer_do_not_deadlock",
                many_lines_to_an_echoing_peer_do_not_deadlock,
            ),
            harness::once_or_ignored(
                "an_interactive_session_on_a_terminal",
                an_interactive_session_on_a_terminal,
            ),
        ],
    )
}
