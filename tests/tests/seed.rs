//! The seed's listener/client pair, each side against the other: Rust server ↔ Rust client,
//! Rust server ↔ CPython's client, CPython's server ↔ Rust client, for every CPython found. The
//! Rust sides are the `seed_server` / `seed_client` examples of the `conn` crate, which
//! `cargo test --workspace` builds.

use std::process::{Child, Command};

use conn_tests::examples::{example, free_port, output, spawn, start_server};
use conn_tests::harness::{self, once, per_python};
use conn_tests::python::Python;
use std::process::ExitCode;

fn rust_server(port: u16) -> (Child, String) {
    let mut cmd = Command::new(example("seed_server"));
    cmd.arg(format!("127.0.0.1:{port}"));
    start_server(&mut cmd)
}

fn python_server(py: &Python, port: u16) -> (Child, String) {
    let mut cmd = Command::new(&py.path);
    cmd.args(["-c", include_str!("../data/seed_server.py"), "127.0.0.1"])
        .arg(port.to_string());
    start_server(&mut cmd)
}

fn rust_client(port: u16) -> String {
    let child = spawn(Command::new(example("seed_client")).arg(format!("127.0.0.1:{port}")));
    output(child, "seed_client")
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
    let port = free_port();
    let (server, first) = rust_server(port);
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
    let out = rust_client(port);
    assert_eq!(
        out,
        "[2.25, None, 'junk', <class 'float'>]\nb'hello'\n8\narray('i', [42, 1729, 0, 0, 0])\n"
    );
    let rest = output(server, "seed_server");
    assert!(
        rest.starts_with("connection accepted from 127.0.0.1:"),
        "{rest}"
    );
}

fn rust_server_python_client(py: &Python) {
    let port = free_port();
    let (server, _) = rust_server(port);
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
        "{py}"
    );
    output(server, "seed_server");
}

fn python_server_rust_client(py: &Python) {
    let port = free_port();
    let (server, first) = python_server(py, port);
    assert_eq!(first.trim(), "listening", "{py}");
    let out = rust_client(port);
    // The class `float` arrives as an inert global and prints as Python prints it.
    assert_eq!(
        out,
        "[2.25, None, 'junk', <class 'float'>]\nb'hello'\n8\narray('i', [42, 1729, 0, 0, 0])\n",
        "{py}"
    );
    let rest = output(server, "seed_server.py");
    assert!(
        rest.starts_with("connection accepted from ('127.0.0.1', "),
        "{py}: {rest}"
    );
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
