//! The `sync_manager` example against a real Python `SyncManager` (every CPython 3 found; 3.11
//! and 3.13 required in CI): a dict and a queue created and used from Rust, a datetime stored and
//! read back, the dict's `keys()` (a manager sends views as a `builtins.list` call) read as a
//! list, and the `#ERROR` reply of a missing key read as `KeyError('missing')`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use conn_tests::examples::{example, output, spawn};
use conn_tests::harness::{self, per_python};
use conn_tests::python::Python;
use std::process::ExitCode;

fn rust_drives_a_python_sync_manager(py: &Python) {
    let mut manager = Command::new(&py.path)
        .args(["-c", include_str!("../data/sync_manager.py")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(manager.stdout.as_mut().unwrap())
        .read_line(&mut port)
        .unwrap();
    let port: u16 = port
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{py}: {port}"));
    let client = spawn(
        Command::new(example("sync_manager"))
            .args([format!("127.0.0.1:{port}"), "rust-test".into()]),
    );
    let out = output(client, "sync_manager");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{py}: {out}");
    assert!(lines[0].starts_with("created dict '"), "{py}: {out}");
    assert_eq!(
        &lines[1..5],
        [
            "dict['when'] = datetime.datetime(2026, 11, 23, 9, 30)",
            "len(dict) = 2",
            "dict.keys() = ['when', 'sizes'] (list)",
            "#ERROR: KeyError args=('missing',)",
        ],
        "{py}"
    );
    assert!(lines[5].starts_with("created Queue '"), "{py}: {out}");
    assert_eq!(
        &lines[6..],
        ["queue.qsize() = 1", "queue.get() = ('job', 7)"],
        "{py}"
    );
    manager.stdin.as_mut().unwrap().write_all(b"").unwrap();
    drop(manager.stdin.take());
    let rest = output(manager, "SyncManager");
    assert_eq!(rest.trim(), "shutdown", "{py}");
}

fn main() -> ExitCode {
    harness::main(
        vec![
            per_python(
                "rust_drives_a_python_sync_manager",
                rust_drives_a_python_sync_manager,
            )
            .since(3, 6, "the example writes pickle protocol 4"),
        ],
        vec![],
    )
}
