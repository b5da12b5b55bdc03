//! CPython's challenge/response handshake between two in-memory peers: a server and a client
//! that share a key, one whose key is wrong, and a legacy (CPython ≤ 3.11) client answering with
//! a bare HMAC-MD5.
//!
//! Run with `cargo run -p conn-auth --example handshake`.

use std::thread;
use std::time::Duration;

use conn_auth::test_util::{MemoryError, memory_pair};
use conn_auth::{
    AuthKey, CHALLENGE, Channel, Digest, HandshakeError, Policy, client_handshake,
    deliver_challenge, server_handshake,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = AuthKey::from("secret password");
    println!("key: {key:?}");

    // 1. Both sides share the key: mutual authentication, server first.
    let (mut server, mut client) = memory_pair(Duration::from_secs(5));
    let client_key = key.clone();
    let peer = thread::spawn(move || client_handshake(&mut client, &client_key, &Policy::new()));
    let done = server_handshake(&mut server, &key, &Policy::new())?;
    let theirs = peer.join().map_err(|_| "client thread panicked")??;
    println!(
        "same key:   server accepted the client's {} answer; client accepted the server's {} answer",
        done.peer_digest(),
        theirs.peer_digest()
    );

    // 2. The client has the wrong key: both sides fail, and say why.
    let (mut server, mut client) = memory_pair(Duration::from_secs(5));
    let peer = thread::spawn(move || {
        client_handshake(&mut client, &AuthKey::from("guess"), &Policy::new())
    });
    let ours = server_handshake(&mut server, &key, &Policy::new());
    let theirs = peer.join().map_err(|_| "client thread panicked")?;
    println!(
        "wrong key:  server: {}; client: {}",
        describe(&ours),
        describe(&theirs)
    );

    // 3. A CPython ≤ 3.11 client: a bare 16-byte HMAC-MD5 over the whole challenge body.
    let (mut server, mut client) = memory_pair(Duration::from_secs(5));
    let legacy_key = key.as_bytes().to_vec();
    let peer = thread::spawn(move || -> Result<Vec<u8>, MemoryError> {
        let challenge = client.recv_message(256)?;
        let body = &challenge[CHALLENGE.len()..];
        client.send_message(&Digest::Md5.hmac(&legacy_key, body))?;
        client.recv_message(256)
    });
    let digest = deliver_challenge(&mut server, &key)?;
    let verdict = peer.join().map_err(|_| "legacy thread panicked")??;
    println!(
        "legacy md5: server accepted a {digest} answer; client got {}",
        String::from_utf8_lossy(&verdict)
    );
    Ok(())
}

fn describe<T, E: std::fmt::Display>(result: &Result<T, HandshakeError<E>>) -> String {
    match result {
        Ok(_) => "authenticated".into(),
        Err(e) => format!("failed ({e})"),
    }
}
