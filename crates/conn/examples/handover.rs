//! Connections handed between a Python program and this one, as CPython hands them
//! (`conn.send(other_connection)` / `conn.recv()`): Python hands us one end of its `Pipe()`
//! and we talk on it; we hand Python one end of ours and it talks on it.
//!
//! ```text
//! cargo run --example handover -- ADDRESS      # then run the Python program of the README
//! ```
//!
//! Both processes hold the same key: the listener's, and the one each proves to the other's
//! resource sharer when it claims what was handed (Python's `current_process().authkey`, set
//! here with `conn::sharing::set_authkey`). `CONN_AUTHKEY` overrides the README's key.

use conn::{Listener, Pickle};

fn main() -> conn::Result<()> {
    let Some(address) = std::env::args().nth(1) else {
        eprintln!(
            "usage: handover ADDRESS   (a Unix socket path, or \\\\.\\pipe\\NAME on Windows)"
        );
        std::process::exit(2);
    };
    let key = std::env::var("CONN_AUTHKEY").unwrap_or_else(|_| "secret key".into());
    conn::sharing::set_authkey(key.as_bytes());
    let mut listener = Listener::builder()
        .address(address.as_str())
        .authkey(key.as_bytes())
        .bind()?;
    println!("listening on {}", listener.address());
    let mut python = listener.accept()?;

    // One end of Python's Pipe(), claimed from Python's resource sharer.
    let mut theirs = python.recv_connection(Pickle::new())?;
    let greeting: String = theirs.recv()?;
    println!("rust got: {greeting}");
    theirs.send(&"hello from rust, over the end you handed me")?;

    // One end of ours, which Python claims from our resource sharer: stay until it has.
    let (mut mine, yours) = conn::pipe()?;
    python.send_connection(yours)?;
    mine.send(&"this end is yours now")?;
    let done: String = python.recv()?;
    println!("python says: {done}");
    Ok(())
}
