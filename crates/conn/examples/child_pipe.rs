//! A child process that inherits one end of a `Pipe`: the parent sends numbers, the child
//! answers with their squares, and the child ends when the parent closes its end.
//!
//! ```text
//! cargo run --example child_pipe            # parent: starts itself as the child
//! cargo run --example child_pipe -- child N # child: serves the connection inherited as N
//! ```
//!
//! On every OS: the child inherits its end and nothing else of the parent's
//! (`conn::process::Inheritance`; on Windows a `CreateProcessW` handle list), and takes it back
//! with `conn::process::inherited`. `N` is a descriptor number on Unix, a handle value on
//! Windows.
//!
//! The CPython programs it mirrors, either of which can take either side:
//!
//! ```python
//! # parent
//! import subprocess, sys
//! from multiprocessing import Pipe
//! ours, theirs = Pipe()
//! child = subprocess.Popen([CHILD, 'child', str(theirs.fileno())], pass_fds=[theirs.fileno()])
//! theirs.close()
//! for n in range(10):
//!     ours.send(n)
//!     print(n, ours.recv())
//! ours.close()
//! child.wait()
//!
//! # child
//! import sys
//! from multiprocessing.connection import Connection
//! conn = Connection(int(sys.argv[2]))
//! while True:
//!     try:
//!         n = conn.recv()
//!     except EOFError:
//!         break
//!     conn.send(n * n)
//! ```

use std::process::Command;

use conn::{Connection, Pickle};

fn child(number: u64) -> conn::Result<()> {
    // SAFETY: the parent passed this number for this connection; nothing else here owns it.
    let handle = unsafe { conn::process::inherited(number)? };
    let mut conn = Connection::from_owned_handle(handle, Pickle::new())?;
    loop {
        match conn.recv::<i64>() {
            Ok(n) => conn.send(&(n * n))?,
            Err(conn::Error::Eof) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn parent() -> conn::Result<()> {
    let (mut ours, theirs) = conn::pipe()?;
    let mut inheritance = conn::process::Inheritance::new();
    let number = inheritance.add(theirs)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["child", &number.to_string()]);
    // Our copy of the child's end closes once it started: the child's is the only one left.
    let mut child = inheritance.spawn(cmd)?;
    for n in 0..10i64 {
        ours.send(&n)?;
        let square: i64 = ours.recv()?;
        println!("{n} {square}");
    }
    drop(ours);
    let status = child.wait()?;
    println!("child exited: {status}");
    Ok(())
}

fn main() -> conn::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") => child(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3)),
        _ => parent(),
    }
}
