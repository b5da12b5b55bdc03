//! conn in one run: a Listener and a Client that authenticate with a shared key, exchange Python
//! objects and raw bytes, poll, receive into a buffer, refuse a wrong key, and a Pipe drained
//! with `wait`. Every step prints what happened.
//!
//! Run with `cargo run -p conn --example quickstart`.

use std::thread;
use std::time::Duration;

use conn::address::default_family;
use conn::{Client, Error, Listener, pipe, wait};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    id: u32,
    name: String,
    weights: Vec<f64>,
}

fn main() -> Result<(), Error> {
    // A listener of the platform's default family (CPython's `default_family`: a Unix socket in
    // a fresh private directory, a named pipe on Windows), authenticating every client.
    let family = default_family();
    let mut listener = Listener::builder()
        .family(family)
        .authkey("secret password")
        .bind()?;
    let address = listener.address().clone();
    println!("listener bound to {address} ({family}, authkey set)");

    let client_address = address.clone();
    let client = thread::spawn(move || -> Result<(), Error> {
        let mut conn = Client::builder(client_address)
            .authkey("secret password")
            .connect()?;
        println!("client: connected and authenticated");
        conn.send(&Job {
            id: 7,
            name: "resize".into(),
            weights: vec![0.25, 0.5],
        })?;
        conn.send_bytes(b"raw bytes, no codec")?;
        let reply: (u32, String) = conn.recv()?;
        println!("client: got reply {reply:?}");
        let mut buf = [0u8; 8];
        match conn.recv_bytes_into(&mut buf) {
            Err(Error::BufferTooShort { message }) => println!(
                "client: an 8-byte buffer was too short; the whole {}-byte message is in the error",
                message.len()
            ),
            other => println!("client: unexpected {other:?}"),
        }
        Ok(())
    });

    let mut conn = listener.accept()?;
    println!("server: accepted and authenticated a client");
    let job: Job = conn.recv()?;
    println!("server: received object {job:?}");
    println!(
        "server: received bytes {:?}",
        String::from_utf8_lossy(&conn.recv_bytes()?)
    );
    conn.send(&(job.id, format!("{} done", job.name)))?;
    conn.send_bytes(&[0u8; 32])?;
    client
        .join()
        .map_err(|_| Error::Io(std::io::Error::other("client panicked")))??;
    println!(
        "server: peer gone, poll says {} and recv says {:?}",
        conn.poll(Some(Duration::from_secs(5)))?,
        conn.recv_bytes().err()
    );

    // A client with the wrong key is refused on both sides; the listener drops it and goes on
    // waiting for a good one (here, for a second).
    let wrong = thread::spawn(move || {
        Client::builder(address)
            .authkey("guess")
            .connect()
            .map(drop)
    });
    listener.set_accept_timeout(Some(Duration::from_secs(1)));
    let server_side = listener.accept().err();
    let client_side = wrong
        .join()
        .map_err(|_| Error::Io(std::io::Error::other("client panicked")))?
        .err();
    println!(
        "wrong key: client {client_side:?}; server dropped it ({} failed handshake, {:?}), then accept gave {server_side:?}",
        listener.handshake_failures(),
        listener.take_handshake_failure()
    );
    listener.close()?;

    // A Pipe and wait().
    let (mut a, b) = pipe()?;
    println!(
        "pipe: ready before sending: {:?}",
        wait(&[&b], Some(Duration::ZERO))?
    );
    a.send(&"ping")?;
    println!(
        "pipe: ready after sending: {:?}",
        wait(&[&b], Some(Duration::from_secs(5)))?
    );
    Ok(())
}
