//! Over TCP a client sends its own challenge only after the server's verdict, as CPython's
//! `Client` does: a CPython listener leaves Nagle's algorithm on, so a challenge that arrives
//! before its `#WELCOME#` is acknowledged makes its answer wait for the client's delayed ACK
//! (about 40 ms on Linux). Checked for the blocking client and the tokio one, against a raw
//! server that watches for bytes between the response and the verdict.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use conn::auth::{Challenge, WELCOME, respond};
use conn::{AuthKey, Digest, Policy};

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    s.read_exact(&mut body).unwrap();
    body
}

/// Serves one handshake as a CPython listener does, asserting that nothing comes between
/// the client's response and our verdict.
fn server(listener: &TcpListener, key: &AuthKey) {
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let challenge = Challenge::new(Digest::Sha256).unwrap();
    s.write_all(&frame(challenge.as_bytes())).unwrap();
    let response = read_frame(&mut s);
    assert!(challenge.verify(key, &response, &Policy::new()).is_ok());
    // A pipelining client would have sent its challenge already.
    s.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut early = [0u8; 1];
    match s.read(&mut early) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the client sent {other:?} before our verdict"),
    }
    s.set_nonblocking(false).unwrap();
    s.write_all(&frame(WELCOME)).unwrap();
    let theirs = read_frame(&mut s);
    let (answer, _) = respond(key, &theirs, &Policy::new()).unwrap();
    s.write_all(&frame(&answer)).unwrap();
    assert_eq!(read_frame(&mut s), WELCOME);
}

#[test]
fn a_tcp_client_challenges_only_after_the_verdict() {
    let key = AuthKey::from("k");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let serving = std::thread::spawn(move || {
        let key = AuthKey::from("k");
        server(&listener, &key);
        server(&listener, &key);
    });
    let blocking = conn::Client::builder(address)
        .authkey(key.clone())
        .connect();
    assert!(blocking.is_ok(), "{blocking:?}");
    #[cfg(feature = "tokio")]
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tokio = rt.block_on(conn::tokio::Client::builder(address).authkey(key).connect());
        assert!(tokio.is_ok(), "{tokio:?}");
    }
    #[cfg(not(feature = "tokio"))]
    {
        // The tokio client is checked with the facade's `tokio` feature (`cargo xtask ci`
        // turns every feature on); its place is taken by a second blocking client.
        let again = conn::Client::builder(address).authkey(key).connect();
        assert!(again.is_ok(), "{again:?}");
    }
    serving.join().unwrap();
}
