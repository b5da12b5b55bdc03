//! A child process that inherits one end of a `Pipe`: the parent sends numbers, the child
//! answers with their squares, and the child ends when the parent closes its end.
//!
//! ```text
//! cargo run --example child_pipe            # parent: starts itself as the child
//! cargo run --example child_pipe -- child 3 # child: serves the connection on fd 3
//! ```
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

#[cfg(unix)]
use std::os::fd::{FromRawFd, OwnedFd};
#[cfg(unix)]
use std::process::Command;

#[cfg(unix)]
use conn::{Connection, Pickle};

#[cfg(unix)]
fn child(fd: i32) -> conn::Result<()> {
    // SAFETY: the parent passed this fd for this connection; nothing else here owns it.
    let mut conn = Connection::<Pickle>::try_from(unsafe { OwnedFd::from_raw_fd(fd) })?;
    loop {
        match conn.recv::<i64>() {
            Ok(n) => conn.send(&(n * n))?,
            Err(conn::Error::Eof) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(unix)]
fn parent() -> conn::Result<()> {
    let (mut ours, theirs) = conn::pipe()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["child", "3"]);
    conn::process::inherit(&mut cmd, [(theirs, 3)])?;
    let mut child = cmd.spawn()?;
    drop(cmd); // our copy of the child's end closes: the child's is the only one left
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

#[cfg(not(unix))]
fn main() {
    eprintln!("child_pipe passes a Unix fd; handing a handle to a Windows child is not built yet");
}

#[cfg(unix)]
fn main() -> conn::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") => child(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3)),
        _ => parent(),
    }
}
