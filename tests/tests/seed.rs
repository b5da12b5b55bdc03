//! The seed's listener/client pair, each side against the other: Rust server ↔ Rust client,
//! Rust server ↔ CPython's client, CPython's server ↔ Rust client, for every CPython found. The
//! Rust sides are the `seed_server` / `seed_client` examples of the `conn` crate and their tokio
//! twins `tokio_server` / `tokio_client` of `conn-tokio`, which `cargo test --workspace` builds.

use std::process::{Child, Command};

use conn_tests::examples::{example, free_port, output, spawn, start_server};
use conn_tests::harness::{self, once, per_python};
use conn_tests::python::Python;
use std::process::ExitCode;

/// The Rust servers and clients of the seed: blocking and under tokio.
const SERVERS: [&str; 2] = ["seed_server", "tokio_server"];
const CLIENTS: [&str; 2] = ["seed_client", "tokio_client"];

/// The example `name` listening on a free port: the port and the server. A port taken by
/// another test between `free_port` and the example's bind (the example then ends without
/// saying "listening") is replaced by another, at most five times.
fn server_example(name: &str) -> (u16, Child) {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new(example(name));
        cmd.arg(format!("127.0.0.1:{port}"));
        let (server, first) = start_server(&mut cmd);
        if first.starts_with("listening on 127.0.0.1:") {
            return (port, server);
        }
        last = output_or_error(server);
        last.insert_str(0, &first);
    }
    panic!("{name} never started listening: {last}");
}

/// What a server that ended early printed, or why it failed.
fn output_or_error(server: Child) -> String {
    match server.wait_with_output() {
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => e.to_string(),
    }
}

fn python_server(py: &Python, port: u16) -> (Child, String) {
    let mut cmd = Command::new(&py.path);
    cmd.args(["-c", include_str!("../data/seed_server.py"), "127.0.0.1"])
        .arg(port.to_string());
    start_server(&mut cmd)
}

fn client_example(name: &str, port: u16) -> String {
    let child = spawn(Command::new(example(name)).arg(format!("127.0.0.1:{port}")));
    output(child, name)
}

fn python_client(py: &Python, port: u16) -> String {
    let child = spawn(
        Command::new(&py.path)
            .args(["-c", include_str!("../data/seed_client.py"), "127.0.0.1"])
            .arg(port.to_string()),
    );
    output(child, "seed_client.py")
}

fn rust_server_rust_client() {
    for server_name in SERVERS {
        for client_name in CLIENTS {
            let (port, server) = server_example(server_name);
            let out = client_example(client_name, port);
            assert_eq!(
                out,
                "[2.25, None, 'junk', <class 'float'>]\nb'hello'\n8\narray('i', [42, 1729, 0, 0, 0])\n",
                "{server_name} and {client_name}"
            );
            let rest = output(server, server_name);
            assert!(
                rest.starts_with("connection accepted from 127.0.0.1:"),
                "{server_name}: {rest}"
            );
        }
    }
}

fn rust_server_python_client(py: &Python) {
    for name in SERVERS {
        let (port, server) = server_example(name);
        let out = python_client(py, port);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "[2.25, None, 'junk', <class 'float'>]",
                "b'hello'",
                "8",
                "array('i', [42, 1729, 0, 0, 0])"
            ],
            "{name} with {py}"
        );
        output(server, name);
    }
}

fn python_server_rust_client(py: &Python) {
    for name in CLIENTS {
        let port = free_port();
        let (server, first) = python_server(py, port);
        assert_eq!(first.trim(), "listening", "{py}");
        let out = client_example(name, port);
        // The class `float` arrives as an inert global and prints as Python prints it.
        assert_eq!(
            out,
            "[2.25, None, 'junk', <class 'float'>]\nb'hello'\n8\narray('i', [42, 1729, 0, 0, 0])\n",
            "{name} with {py}"
        );
        let rest = output(server, "seed_server.py");
        assert!(
            rest.starts_with("connection accepted from ('127.0.0.1', "),
            "{name} with {py}: {rest}"
        );
    }
}

fn main() -> ExitCode {
    harness::main(
        vec![
            // seed_server pickles with the default protocol 4, which Python 2 cannot read;
            // cpython_connection covers Python 2 with PickleProtocol::V2.
            per_python("rust_server_python_client", rust_server_python_client).since(
                3,
                0,
                "the server answers in pickle protocol 4",
            ),
            per_python("python_server_rust_client", python_server_rust_client),
        ],
        vec![once("rust_server_rust_client", rust_server_rust_client)],
    )
}
