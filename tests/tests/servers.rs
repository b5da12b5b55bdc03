//! The server examples (`server_threads`, `server_waitset`) serve three CPython clients at
//! once, and a silent client does not hold the single-threaded one.

use std::process::{Child, Command};
#[cfg(unix)]
use std::time::Duration;

use conn_tests::examples::{self, example, free_port, output, start_server};
use conn_tests::harness::{self, once, per_python};
use conn_tests::python::Python;
use std::process::ExitCode;

fn start(name: &str, port: u16, clients: usize) -> Child {
    let (child, line) = start_server(
        Command::new(example(name))
            .arg(format!("127.0.0.1:{port}"))
            .arg(clients.to_string()),
    );
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line}");
    child
}

fn three_python_clients(py: &Python, name: &str) {
    let port = free_port();
    let server = start(name, port, 3);
    examples::three_python_clients(py, name, server, port);
}

fn server_threads_serves_python_clients_at_once(py: &Python) {
    three_python_clients(py, "server_threads");
}

fn server_waitset_serves_python_clients_at_once(py: &Python) {
    three_python_clients(py, "server_waitset");
}

/// A client that connects and says nothing, and one that sends half a message, do not stop
/// the single-threaded server from serving a third. (Unix: half a message is written through
/// the connection's fd.)
#[cfg(unix)]
fn server_waitset_is_not_held_by_silent_clients() {
    use std::io::Write;
    let port = free_port();
    let server = start("server_waitset", port, 2);
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut half = conn::Client::builder(("127.0.0.1", port))
        .authkey("secret password")
        .connect()
        .unwrap();
    let mut raw = std::net::TcpStream::from(
        std::os::fd::AsFd::as_fd(&half)
            .try_clone_to_owned()
            .unwrap(),
    );
    raw.write_all(&[0, 0, 0, 100, 1, 2]).unwrap();
    let mut good = conn::Client::builder(("127.0.0.1", port))
        .authkey("secret password")
        .connect()
        .unwrap();
    good.set_read_timeout(Some(Duration::from_secs(10)));
    good.send(&"quick").unwrap();
    assert_eq!(good.recv::<String>().unwrap(), "QUICK");
    drop(good);
    drop(raw);
    half.set_read_timeout(Some(Duration::from_secs(10)));
    drop(half);
    drop(silent);
    output(server, "server_waitset");
}

fn main() -> ExitCode {
    let plain = vec![
        #[cfg(unix)]
        once(
            "server_waitset_is_not_held_by_silent_clients",
            server_waitset_is_not_held_by_silent_clients,
        ),
    ];
    harness::main(
        vec![
            // The servers answer in pickle protocol 4, which Python 2 cannot read.
            per_python(
                "server_threads_serves_python_clients_at_once",
                server_threads_serves_python_clients_at_once,
            )
            .since(3, 0, "the server answers in pickle protocol 4"),
            per_python(
                "server_waitset_serves_python_clients_at_once",
                server_waitset_serves_python_clients_at_once,
            )
            .since(3, 0, "the server answers in pickle protocol 4"),
        ],
        plain,
    )
}
