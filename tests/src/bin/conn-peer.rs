//! One side of the interop session of `tests/tests/wine.rs`, built for Windows and run under
//! Wine against a Linux CPython (`tests/data/wine_peer.py` is the other side), over AF_INET:
//!
//! ```text
//! conn-peer serve HOST:PORT KEY      listen (prints "listening"), accept one client, run the session
//! conn-peer connect HOST:PORT KEY    connect, run the session
//! ```
//!
//! The session: an object, a zero-length message and 3 MiB of bytes each way's turn, checked
//! on both sides; prints "ok" at the end.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test peer: any failure fails the test that runs it"
)]

use std::time::Duration;

use conn::{Client, Connection, Listener};

type Sample = (String, i64, f64, Vec<i32>, Option<i32>, bool);

fn session(mut c: Connection) {
    c.set_read_timeout(Some(Duration::from_secs(60)));
    let sample: Sample = ("hello".into(), 1729, 2.5, vec![1, 2, 3], None, true);
    c.send(&sample).unwrap();
    c.send_bytes(b"").unwrap();
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    c.send_bytes(&big).unwrap();
    let (tag, echoed, len): (String, Sample, u64) = c.recv().unwrap();
    assert_eq!(
        (tag.as_str(), &echoed, len),
        ("echo", &sample, big.len() as u64)
    );
    assert_eq!(c.recv_bytes().unwrap(), b"");
    let theirs = c.recv_bytes().unwrap();
    assert_eq!(theirs.len(), 5 << 20);
    assert!(theirs.iter().enumerate().all(|(i, &b)| b == i as u8));
    c.send_bytes(b"done").unwrap();
    println!("ok");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [role, address, key] = args.as_slice() else {
        panic!("usage: conn-peer serve|connect HOST:PORT KEY");
    };
    match role.as_str() {
        "serve" => {
            let mut l = Listener::builder()
                .address(address.as_str())
                .authkey(key.as_str())
                .accept_timeout(Some(Duration::from_secs(60)))
                .bind()
                .unwrap();
            println!("listening");
            session(l.accept().unwrap());
        }
        "connect" => session(
            Client::builder(address.as_str())
                .authkey(key.as_str())
                .connect()
                .unwrap(),
        ),
        other => panic!("unknown role {other}"),
    }
}
