//! Running the `conn` crate's examples from tests: where `cargo test --workspace` puts them, a
//! free loopback port, and waiting for a child with a deadline.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure here is a failed test"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one example may run.
pub const STEP: Duration = Duration::from_secs(60);

/// `target/<profile>/examples/NAME`, next to the running test's own `deps/` directory.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("examples")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo test --workspace`, which builds the examples",
        path.display()
    );
    path
}

/// Starts `cmd` with no stdin and its stdout and stderr captured (for [`output`]).
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child process")
}

/// Starts a server with [`spawn`] and waits for its first line (it is listening), which it
/// returns with the child.
pub fn start_server(cmd: &mut Command) -> (Child, String) {
    let mut child = spawn(cmd);
    let mut line = String::new();
    let stdout = child.stdout.as_mut().expect("captured stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("the server's first line");
    (child, line)
}

/// Runs `tests/data/servers_client.py` with `py`: three clients at once against the server
/// example `name` listening on 127.0.0.1:`port` (started by `server`), checks what they print,
/// and waits for the server to finish.
pub fn three_python_clients(py: &crate::python::Python, name: &str, server: Child, port: u16) {
    let client = spawn(
        Command::new(&py.path)
            .args(["-c", include_str!("../data/servers_client.py"), "127.0.0.1"])
            .arg(port.to_string()),
    );
    assert_eq!(
        output(client, "servers_client.py")
            .lines()
            .collect::<Vec<_>>(),
        ["HELLO 0", "HELLO 1", "HELLO 2", "BYE", "BYE", "BYE"],
        "{name} with {py}"
    );
    output(server, name);
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs `child` to completion within [`STEP`], returning stdout; fails the test otherwise.
pub fn output(mut child: Child, what: &str) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(status) = child.try_wait().expect("child status") {
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut o, &mut out);
            }
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            assert!(status.success(), "{what} failed: {status}\n{out}\n{err}");
            return out;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {STEP:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
