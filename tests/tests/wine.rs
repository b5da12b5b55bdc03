//! The Windows build of conn, run under Wine, against the Linux CPython interpreters over
//! 127.0.0.1 (both roles, an authkey, objects, a zero-length message, megabytes each way), the
//! seed's listener under tokio with the seed's CPython client, and the seed examples (blocking
//! and tokio) and the quickstart under Wine with named-pipe (AF_PIPE) addresses.
//!
//! `cargo xtask ci` (step `windows`) builds the Windows programs, prepares a Wine prefix and
//! runs this target with `CONN_WINE_BUILD` set to the Windows build directory
//! (`target/x86_64-pc-windows-gnu/debug`). Without it every case is ignored, with the reason.
//! AF_PIPE against a Windows CPython cannot run here (no Windows CPython on these machines):
//! the pipe protocol follows CPython's `PipeConnection` / `PipeListener`, see
//! `conn-transport`'s docs.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use conn_tests::examples::{free_port, output, spawn, start_server, three_python_clients};
use conn_tests::harness::{self, once, per_python};
use conn_tests::python::Python;
use libtest_mimic::{Arguments, Completion, Trial};

const KEY: &str = "wine interop key";
const BUILD_VAR: &str = "CONN_WINE_BUILD";

/// A Windows program of the build under test, run through `wine`.
fn wine(relative: &str) -> Command {
    let dir = PathBuf::from(std::env::var_os(BUILD_VAR).expect("CONN_WINE_BUILD"));
    let exe = dir.join(relative);
    assert!(exe.is_file(), "{} is missing", exe.display());
    let mut cmd = Command::new("wine");
    cmd.arg(exe);
    cmd
}

fn python_peer(py: &Python, role: &str, port: u16) -> Command {
    let mut cmd = Command::new(&py.path);
    cmd.args([
        "-c",
        include_str!("../data/wine_peer.py"),
        role,
        "127.0.0.1",
    ])
    .arg(port.to_string())
    .arg(KEY);
    cmd
}

fn wine_server_python_client(py: &Python) {
    let port = free_port();
    let mut cmd = wine("conn-peer.exe");
    cmd.args(["serve", &format!("127.0.0.1:{port}"), KEY]);
    let (server, first) = start_server(&mut cmd);
    assert_eq!(first.trim(), "listening", "{py}");
    let client = spawn(&mut python_peer(py, "connect", port));
    assert_eq!(output(client, "wine_peer.py connect").trim(), "python ok");
    assert_eq!(output(server, "conn-peer.exe serve").trim(), "ok");
}

fn python_server_wine_client(py: &Python) {
    let port = free_port();
    let (server, first) = start_server(&mut python_peer(py, "serve", port));
    assert_eq!(first.trim(), "listening", "{py}");
    let client = spawn(wine("conn-peer.exe").args(["connect", &format!("127.0.0.1:{port}"), KEY]));
    assert_eq!(output(client, "conn-peer.exe connect").trim(), "ok");
    assert_eq!(output(server, "wine_peer.py serve").trim(), "python ok");
}

/// A server example under Wine serving three Linux CPython clients at once.
fn wine_server_example(py: &Python, name: &str) {
    let port = free_port();
    let mut cmd = wine(&format!("examples/{name}.exe"));
    cmd.args([format!("127.0.0.1:{port}"), "3".into()]);
    let (server, first) = start_server(&mut cmd);
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
    three_python_clients(py, name, server, port);
}

fn wine_server_waitset_serves_python_clients(py: &Python) {
    wine_server_example(py, "server_waitset");
}

fn wine_server_threads_serves_python_clients(py: &Python) {
    wine_server_example(py, "server_threads");
}

/// The quickstart: a listener of the default family (AF_PIPE on Windows) with an authkey.
fn quickstart_over_a_pipe() {
    let out = output(
        spawn(&mut wine("examples/quickstart.exe")),
        "quickstart.exe",
    );
    for expected in [
        r"listener bound to \\.\pipe\",
        "(AF_PIPE, authkey set)",
        "client: connected and authenticated",
        "server: received object Job { id: 7",
        "the whole 32-byte message is in the error",
        "recv says Some(Eof(",
        "wrong key: client Some(Auth(",
        "pipe: ready after sending: [0]",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
}

/// What the seed's clients print for what the seed's servers send.
const SEED_OUTPUT: &str =
    "[2.25, None, 'junk', <class 'float'>]\nb'hello'\n8\narray('i', [42, 1729, 0, 0, 0])\n";

/// The seed's listeners and clients, blocking and under tokio (`tokio_server.exe`,
/// `tokio_client.exe`), each server with each client, over a named pipe.
fn seed_over_a_pipe() {
    for server_name in ["seed_server", "tokio_server"] {
        for client_name in ["seed_client", "tokio_client"] {
            let address = format!(r"\\.\pipe\conn-seed-{}-{}", std::process::id(), free_port());
            let mut cmd = wine(&format!("examples/{server_name}.exe"));
            cmd.arg(&address);
            let (server, first) = start_server(&mut cmd);
            assert_eq!(first.trim(), format!("listening on {address}"));
            let client = spawn(wine(&format!("examples/{client_name}.exe")).arg(&address));
            assert_eq!(
                output(client, client_name),
                SEED_OUTPUT,
                "{server_name} and {client_name}"
            );
            output(server, server_name);
        }
    }
}

/// The seed's listener under tokio (`tokio_server.exe`) under Wine, on TCP, with the seed's
/// CPython client on Linux.
fn wine_tokio_server_python_seed_client(py: &Python) {
    let port = free_port();
    let mut cmd = wine("examples/tokio_server.exe");
    cmd.arg(format!("127.0.0.1:{port}"));
    let (server, first) = start_server(&mut cmd);
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
    let client = spawn(
        Command::new(&py.path)
            .args(["-c", include_str!("../data/seed_client.py"), "127.0.0.1"])
            .arg(port.to_string()),
    );
    assert_eq!(output(client, "seed_client.py"), SEED_OUTPUT, "{py}");
    let rest = output(server, "tokio_server.exe");
    assert!(
        rest.starts_with("connection accepted from 127.0.0.1:"),
        "{rest}"
    );
}

/// `child_pipe.exe`: a child started with one pipe end inherited (a `CreateProcessW` handle
/// list) squares ten numbers and exits when the parent closes its end.
fn child_pipe_inherits_a_pipe_end() {
    let out = output(
        spawn(&mut wine("examples/child_pipe.exe")),
        "child_pipe.exe",
    );
    let expected: String = (0..10i64).map(|n| format!("{n} {}\n", n * n)).collect();
    assert_eq!(out, format!("{expected}child exited: exit code: 0\n"));
}

/// The seed's `wait` example: four worker processes, forty messages, four EOFs, four exits.
fn seed_wait_with_worker_processes() {
    let out = output(spawn(&mut wine("examples/seed_wait.exe")), "seed_wait.exe");
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.pop(),
        Some("received 40 messages; every pipe reported EOF; 4 workers exited")
    );
    lines.sort_unstable();
    let mut expected: Vec<String> = (1..=4)
        .flat_map(|p| (0..10).map(move |i| format!("({i}, 'Process-{p}')")))
        .collect();
    expected.sort_unstable();
    assert_eq!(lines, expected);
}

/// `conn.exe` (the command line) under Wine against a Linux CPython listener over TCP: `probe`
/// finds the challenge and our key accepted, `connect` sends objects and prints the replies.
fn wine_conn_command_line_against_python(py: &Python) {
    let mut listener = Command::new(&py.path);
    listener.args(["-c", include_str!("../data/cli_echo_listener.py")]);
    let (server, port) = start_server(&mut listener);
    let address = format!("127.0.0.1:{}", port.trim());
    let mut probe = wine("conn.exe");
    probe.env("CONN_TEST_KEY", "the key").args([
        "probe",
        &address,
        "--authkey-env",
        "CONN_TEST_KEY",
    ]);
    let out = output(spawn(&mut probe), "conn.exe probe");
    assert!(out.contains("authkey    accepted"), "{py}: {out}");
    // The probe's connection ended the listener's only client: a new one for connect.
    output(server, "cli_echo_listener.py");
    let (server, port) = start_server(&mut listener);
    let mut connect = wine("conn.exe");
    connect
        .env("CONN_TEST_KEY", "the key")
        .args(["connect", &format!("127.0.0.1:{}", port.trim())])
        .args(["--authkey-env", "CONN_TEST_KEY", "[1, 'two', b'3']"]);
    let out = output(spawn(&mut connect), "conn.exe connect");
    assert_eq!(out.trim(), "('got', [1, 'two', b'3'])", "{py}");
    output(server, "cli_echo_listener.py");
}

/// `conn.exe listen --once` under Wine serving a Linux CPython client over TCP.
fn wine_conn_listen_serves_python(py: &Python) {
    let mut listen = wine("conn.exe");
    listen
        .env("CONN_TEST_KEY", "the key")
        .args([
            "listen",
            "127.0.0.1:0",
            "--once",
            "--authkey-env",
            "CONN_TEST_KEY",
        ])
        .args(["--reply", "'ok'"]);
    let (server, first) = start_server(&mut listen);
    let port = first
        .trim()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let client = spawn(
        Command::new(&py.path)
            .args(["-c", include_str!("../data/cli_client.py")])
            .arg(&port),
    );
    let said = output(client, "cli_client.py");
    assert_eq!(said.lines().count(), 2, "{py}: {said}");
    let out = output(server, "conn.exe listen");
    assert!(out.contains("\\x1b[31mred"), "{py}: {out}");
    assert!(out.contains("closed"), "{py}: {out}");
}

/// `conn.exe listen` and `conn.exe connect` under Wine over a named pipe.
fn conn_command_line_over_a_pipe() {
    let address = format!(r"\\.\pipe\conn-cli-{}-{}", std::process::id(), free_port());
    let mut listen = wine("conn.exe");
    listen.args(["listen", &address, "--once", "--echo"]);
    let (server, first) = start_server(&mut listen);
    assert!(first.starts_with("listening on"), "{first}");
    let client = spawn(wine("conn.exe").args(["connect", &address, "{'k': (1, 2.5)}", "b''"]));
    assert_eq!(output(client, "conn.exe connect"), "{'k': (1, 2.5)}\nb''\n");
    let out = output(server, "conn.exe listen");
    assert!(out.contains("{'k': (1, 2.5)}"), "{out}");
}

fn main() -> ExitCode {
    let interop = vec![
        // The Rust side pickles with protocol 4 (CPython 3.4 and later).
        per_python("wine_server_python_client", wine_server_python_client).since(
            3,
            4,
            "conn pickles with protocol 4",
        ),
        per_python("python_server_wine_client", python_server_wine_client).since(
            3,
            4,
            "conn pickles with protocol 4",
        ),
        per_python(
            "wine_server_waitset_serves_python_clients",
            wine_server_waitset_serves_python_clients,
        )
        .since(3, 4, "conn pickles with protocol 4"),
        per_python(
            "wine_server_threads_serves_python_clients",
            wine_server_threads_serves_python_clients,
        )
        .since(3, 4, "conn pickles with protocol 4"),
        per_python(
            "wine_tokio_server_python_seed_client",
            wine_tokio_server_python_seed_client,
        )
        .since(3, 4, "conn pickles with protocol 4"),
        per_python(
            "wine_conn_command_line_against_python",
            wine_conn_command_line_against_python,
        )
        .since(3, 4, "conn pickles with protocol 4"),
        per_python(
            "wine_conn_listen_serves_python",
            wine_conn_listen_serves_python,
        )
        .since(3, 4, "conn pickles with protocol 4"),
    ];
    let plain = vec![
        once("quickstart_over_a_pipe", quickstart_over_a_pipe),
        once("seed_over_a_pipe", seed_over_a_pipe),
        once(
            "conn_command_line_over_a_pipe",
            conn_command_line_over_a_pipe,
        ),
        once(
            "seed_wait_with_worker_processes",
            seed_wait_with_worker_processes,
        ),
        once(
            "child_pipe_inherits_a_pipe_end",
            child_pipe_inherits_a_pipe_end,
        ),
    ];
    if std::env::var_os(BUILD_VAR).is_some() {
        return harness::main(interop, plain);
    }
    // No Windows build to run: every case is ignored, saying why.
    let args = Arguments::from_args();
    let found = conn_tests::python::discover();
    let names: Vec<String> = harness::trials(interop, &found)
        .iter()
        .chain(&plain)
        .map(|t| t.name().to_owned())
        .collect();
    let ignored = names
        .into_iter()
        .map(|name| {
            Trial::ignorable_test(name, || {
                Ok(Completion::ignored_with(
                    "needs the Windows build under Wine: `cargo xtask ci` (step windows) runs it",
                ))
            })
        })
        .collect();
    libtest_mimic::run(&args, ignored).exit_code()
}
