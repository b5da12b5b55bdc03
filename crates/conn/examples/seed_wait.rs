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
//! On Windows (where handing a handle to a child is not built yet) each worker instead connects
//! to a named pipe its parent listens on, given on its command line (`seed_wait worker NAME
//! ADDRESS`); the parent drains the four connections and waits on the process handles the same
//! way.
//!
//! On Unix a worker gets its pipe's write end as an inherited fd and the number on its command line
//! (`seed_wait worker NAME FD`; a Python worker opens `Connection(FD, readable=False)`). The
//! seed's program, which this mirrors:
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

#[cfg(unix)]
fn worker(name: &str, fd: i32) -> conn::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: the parent passed this fd for this pipe; nothing else here owns it.
    let w = conn::Connection::<conn::Pickle>::try_from(unsafe { OwnedFd::from_raw_fd(fd) })?;
    let mut w = w.with_directions(false, true)?;
    for i in 0..10 {
        w.send(&(i, name))?;
    }
    w.close()
}

#[cfg(unix)]
fn parent(worker_command: &[String]) -> conn::Result<()> {
    use std::process::Command;

    use conn::{Connection, Sentinel, pipe_simplex};

    let mut readers: Vec<Connection> = Vec::new();
    let mut children = Vec::new();
    for i in 1..=4 {
        let (reader, writer) = pipe_simplex()?;
        readers.push(reader);
        let name = format!("Process-{i}");
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
        cmd.args([name.as_str(), "3"]);
        conn::process::inherit(&mut cmd, [(writer, 3)])?;
        let child = cmd.spawn()?;
        drop(cmd); // the worker's write end is now the only one
        let sentinel = Sentinel::of(&child)?;
        children.push((child, sentinel));
    }
    drain(readers, children)
}

/// What both parents do once their workers run: drain the connections with `wait` until each
/// reports EOF, printing every message, then wait on the workers' sentinels until all have
/// exited, and check that each succeeded.
#[cfg(any(unix, windows))]
fn drain(
    mut readers: Vec<conn::Connection>,
    children: Vec<(std::process::Child, conn::Sentinel)>,
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

#[cfg(unix)]
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

/// Windows: the worker connects to its parent's pipe and sends its ten messages.
#[cfg(windows)]
fn worker(name: &str, address: &str) -> conn::Result<()> {
    let mut w = conn::Client::connect(address)?;
    for i in 0..10 {
        w.send(&(i, name))?;
    }
    w.close()
}

/// Windows: one listener on a fresh pipe name; four workers connect to it.
#[cfg(windows)]
fn parent() -> conn::Result<()> {
    use std::process::Command;

    use conn::{Connection, Family, Listener, Sentinel};

    let mut listener = Listener::builder()
        .family(Family::Pipe)
        .accept_timeout(Some(std::time::Duration::from_secs(60)))
        .bind()?;
    let address = listener.address().to_string();
    let mut children = Vec::new();
    for i in 1..=4 {
        let child = Command::new(std::env::current_exe()?)
            .args(["worker", &format!("Process-{i}"), &address])
            .spawn()?;
        let sentinel = Sentinel::of(&child)?;
        children.push((child, sentinel));
    }
    let mut readers: Vec<Connection> = Vec::new();
    for _ in 0..4 {
        readers.push(listener.accept()?);
    }
    drain(readers, children)
}

#[cfg(windows)]
fn main() -> conn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1), args.get(2)) {
        (Some("worker"), Some(name), Some(address)) => worker(name, address),
        _ => parent(),
    }
}
