//! The `wait` example of the seed, with real processes: four workers each send ten messages on
//! their own one-way pipe and exit; the parent drains the pipes with `wait` until every one
//! reports EOF, then waits on the workers' sentinels (CPython's `Process.sentinel`) until all
//! have exited.
//!
//! ```text
//! cargo run -p conn --example seed_wait                   # four workers: this program again
//! cargo run -p conn --example seed_wait -- python3 w.py   # four workers: `python3 w.py NAME FD`
//! ```
//!
//! A worker inherits its pipe's write end and nothing else of the parent's
//! (`conn::process::Inheritance`; on Windows a `CreateProcessW` handle list) and gets its number
//! on its command line (`seed_wait worker NAME N`: a descriptor on Unix, where a Python worker
//! opens `Connection(N, readable=False)`; a handle value on Windows). The seed's program, which
//! this mirrors:
//!
//! ```python
//! from multiprocessing import Process, Pipe, current_process
//! from multiprocessing.connection import wait
//!
//! def foo(w):
//!     for i in range(10):
//!         w.send((i, current_process().name))
//!     w.close()
//!
//! if __name__ == '__main__':
//!     readers = []
//!     for i in range(4):
//!         r, w = Pipe(duplex=False)
//!         readers.append(r)
//!         p = Process(target=foo, args=(w,))
//!         p.start()
//!         w.close()
//!     while readers:
//!         for r in wait(readers):
//!             try:
//!                 msg = r.recv()
//!             except EOFError:
//!                 readers.remove(r)
//!             else:
//!                 print(msg)
//! ```

fn worker(name: &str, number: u64) -> conn::Result<()> {
    // SAFETY: the parent passed this number for this pipe; nothing else here owns it.
    let handle = unsafe { conn::process::inherited(number)? };
    let w = conn::Connection::from_owned_handle(handle, conn::Pickle::new())?;
    let mut w = w.with_directions(false, true)?;
    for i in 0..10 {
        w.send(&(i, name))?;
    }
    w.close()
}

fn parent(worker_command: &[String]) -> conn::Result<()> {
    use std::process::Command;

    use conn::process::Inheritance;
    use conn::{Connection, pipe_simplex};

    let mut readers: Vec<Connection> = Vec::new();
    let mut children = Vec::new();
    for i in 1..=4 {
        let (reader, writer) = pipe_simplex()?;
        readers.push(reader);
        let mut inheritance = Inheritance::new();
        let number = inheritance.add(writer)?;
        let mut cmd = match worker_command.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            None => {
                let mut cmd = Command::new(std::env::current_exe()?);
                cmd.arg("worker");
                cmd
            }
        };
        cmd.args([format!("Process-{i}"), number.to_string()]);
        // Our copy of the write end closes once the worker started: the worker's is the only one.
        let child = inheritance.spawn(cmd)?;
        let sentinel = child.sentinel()?;
        children.push((child, sentinel));
    }
    drain(readers, children)
}

/// Drains the connections with `wait` until each reports EOF, printing every message, then
/// waits on the workers' sentinels until all have exited, and checks that each succeeded.
fn drain(
    mut readers: Vec<conn::Connection>,
    children: Vec<(conn::process::Child, conn::Sentinel)>,
) -> conn::Result<()> {
    use conn::{Error, Sentinel, Waitable, wait};

    let mut received = 0;
    while !readers.is_empty() {
        // Walk backwards so removing a finished reader keeps the other positions valid.
        for index in wait(&readers, None)?.into_iter().rev() {
            match readers[index].recv::<(i32, String)>() {
                Ok((i, name)) => {
                    println!("({i}, '{name}')");
                    received += 1;
                }
                Err(Error::Eof) => {
                    readers.remove(index);
                }
                Err(e) => return Err(e),
            }
        }
    }
    // Processes and their exits, waited on like connections.
    let mut left: Vec<&Sentinel> = children.iter().map(|(_, s)| s).collect();
    while !left.is_empty() {
        let ready = wait(left.iter().map(|s| *s as &dyn Waitable), None)?;
        for index in ready.into_iter().rev() {
            left.remove(index);
        }
    }
    for (mut child, _) in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(Error::Io(std::io::Error::other(format!(
                "a worker failed: {status}"
            ))));
        }
    }
    println!("received {received} messages; every pipe reported EOF; 4 workers exited");
    Ok(())
}

fn main() -> conn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => worker(
            args.get(1).map_or("worker", String::as_str),
            args.get(2).and_then(|n| n.parse().ok()).unwrap_or(3),
        ),
        _ => parent(&args),
    }
}
