//! Connections handed over within one process, through the process's resource sharer as
//! CPython hands them (Unix: `DupFd` and the sharer; Windows: a pipe end by `DupHandle`, a
//! socket by `DupSocket` and the sharer): directions kept, anything else refused with a typed
//! error and the connection still usable, a resource claimed once, hostile clients of the
//! sharer, a wrong key, the bound on unclaimed resources, and `stop`.
//!
//! One test: the sharer and the key are process-wide, and the steps change them in turn.

use std::time::Duration;

use conn::sharing;
use conn::{Client, Connection, Error, Listener, Pickle};

const STEP: Option<Duration> = Some(Duration::from_secs(20));

fn pair() -> (Connection, Connection) {
    let (mut a, mut b) = conn::pipe().unwrap();
    a.set_read_timeout(STEP);
    b.set_read_timeout(STEP);
    (a, b)
}

/// Hands `handed` from `x` to `y` and returns what `y` rebuilt.
fn hand(x: &mut Connection, y: &mut Connection, handed: Connection) -> conn::Result<Connection> {
    x.send_connection(handed)?;
    let mut got = y.recv_connection(Pickle::new())?;
    got.set_read_timeout(STEP);
    Ok(got)
}

fn tcp_pair() -> (Connection, Connection) {
    let mut listener = Listener::builder()
        .address("127.0.0.1:0")
        .accept_timeout(STEP)
        .bind()
        .unwrap();
    let client = Client::connect(listener.address()).unwrap();
    let mut server = listener.accept().unwrap();
    server.set_read_timeout(STEP);
    (client, server)
}

#[test]
fn connections_through_the_resource_sharer() {
    sharing::set_authkey(&b"sharing test key"[..]);
    let (mut x, mut y) = pair();

    // Every kind of end, with its directions; each works after the hand-over.
    let (a, mut b) = pair();
    let mut a = hand(&mut x, &mut y, a).unwrap();
    assert!(a.readable() && a.writable());
    a.send(&"over the handed end").unwrap();
    assert_eq!(b.recv::<String>().unwrap(), "over the handed end");
    b.send(&7u8).unwrap();
    assert_eq!(a.recv::<u8>().unwrap(), 7);

    let (reader, mut writer) = conn::pipe_simplex().unwrap();
    let mut reader = hand(&mut x, &mut y, reader).unwrap();
    assert!(reader.readable() && !reader.writable());
    writer.send(&"one way").unwrap();
    assert_eq!(reader.recv::<String>().unwrap(), "one way");
    let mut writer = hand(&mut x, &mut y, writer).unwrap();
    assert!(!writer.readable() && writer.writable());
    writer.send(&"still one way").unwrap();
    assert_eq!(reader.recv::<String>().unwrap(), "still one way");

    let (client, mut server) = tcp_pair();
    let mut client = hand(&mut x, &mut y, client).unwrap();
    client.send(&"tcp").unwrap();
    assert_eq!(server.recv::<String>().unwrap(), "tcp");

    // Anything else where a connection is expected: a typed error, the message consumed, the
    // connection still in step.
    x.send(&"not a connection").unwrap();
    x.send_bytes(b"\x80\x04garbage").unwrap();
    x.send_bytes(&sharing::wire::handle_pickle(1, 2, 3))
        .unwrap();
    for _ in 0..3 {
        let refused = y.recv_connection(Pickle::new());
        assert!(
            matches!(refused, Err(Error::NotHandedOver(_))),
            "{refused:?}"
        );
    }
    x.send(&"in step").unwrap();
    assert_eq!(y.recv::<String>().unwrap(), "in step");

    // A resource is claimed once: the same pickle twice. (A Windows pipe end handed within
    // one process names a handle of this process, which is adopted as it is, as CPython does:
    // replaying that pickle is the sender's own doing and is not guarded against.)
    #[cfg(unix)]
    {
        let (a, mut b) = pair();
        x.send_connection(a).unwrap();
        let pickle = y.recv_bytes().unwrap();
        x.send_bytes(&pickle).unwrap();
        x.send_bytes(&pickle).unwrap();
        let mut first = y.recv_connection(Pickle::new()).unwrap();
        let second = y.recv_connection(Pickle::new());
        assert!(matches!(second, Err(Error::NotShared { .. })), "{second:?}");
        first.send(&"first").unwrap();
        assert_eq!(b.recv::<String>().unwrap(), "first");
    }

    // A socket handed over twice through the sharer, on every OS (Windows: DupSocket).
    let (client, _server) = tcp_pair();
    x.send_connection(client).unwrap();
    let pickle = y.recv_bytes().unwrap();
    x.send_bytes(&pickle).unwrap();
    x.send_bytes(&pickle).unwrap();
    y.recv_connection(Pickle::new()).unwrap();
    let second = y.recv_connection(Pickle::new());
    assert!(matches!(second, Err(Error::NotShared { .. })), "{second:?}");

    // Hostile clients of the sharer: no key, garbage, an unknown key, an oversized claim. Each
    // is closed; the sharer goes on serving.
    let address = sharing::address().expect("the sharer runs");
    let mut no_key = Client::builder(address.clone()).connect().unwrap();
    no_key.set_read_timeout(STEP);
    let challenge = no_key.recv_bytes().unwrap();
    assert!(challenge.starts_with(b"#CHALLENGE#"));
    no_key
        .send_bytes(&sharing::wire::claim_pickle(1, 1))
        .unwrap();
    assert_eq!(no_key.recv_bytes().unwrap(), b"#FAILURE#");
    let after = no_key.recv_bytes();
    assert!(
        matches!(after, Err(Error::Eof | Error::Io(_))),
        "a client without the key got {after:?}"
    );
    for claim in [
        b"garbage".to_vec(),
        sharing::wire::claim_pickle(u64::MAX / 2, 1),
        vec![0x80; 70_000],
    ] {
        let mut c = Client::builder(address.clone())
            .authkey(&b"sharing test key"[..])
            .timeout(STEP)
            .handshake_timeout(STEP)
            .connect()
            .unwrap();
        c.set_read_timeout(STEP);
        // The sharer may refuse an oversized claim from its header and close while the rest
        // is still being sent: the send then fails, as the peer has gone.
        if let Err(e) = c.send_bytes(&claim) {
            assert!(peer_gone(&e), "sending {} bytes: {e:?}", claim.len());
        }
        let answer = c.recv_bytes();
        assert!(
            matches!(answer, Err(Error::Eof | Error::Io(_))),
            "{answer:?}"
        );
    }
    let (a, mut b) = pair();
    let mut a = hand(&mut x, &mut y, a).unwrap();
    a.send(&"after the hostile clients").unwrap();
    assert_eq!(b.recv::<String>().unwrap(), "after the hostile clients");

    // A receiver with another key is refused by the sharer (which keeps the key it started
    // with).
    let (client, _server) = tcp_pair();
    x.send_connection(client).unwrap();
    sharing::set_authkey(&b"another key"[..]);
    let refused = y.recv_connection(Pickle::new());
    assert!(matches!(refused, Err(Error::Auth(_))), "{refused:?}");
    sharing::set_authkey(&b"sharing test key"[..]);

    // The bound on unclaimed resources: beyond it, nothing is sent and the handed connection
    // is closed.
    let limit = sharing::pending() + 1;
    sharing::set_max_pending(limit);
    let (first, _keep) = tcp_pair();
    x.send_connection(first).unwrap();
    let (over, mut over_peer) = tcp_pair();
    let full = x.send_connection(over);
    assert!(
        matches!(full, Err(Error::SharerFull { max }) if max == limit),
        "{full:?}"
    );
    assert!(matches!(over_peer.recv::<String>(), Err(Error::Eof)));
    assert_eq!(sharing::pending(), limit);
    sharing::set_max_pending(sharing::DEFAULT_MAX_PENDING);

    // `stop` closes the sharer and what it held; a claim then fails; the next hand-over
    // starts a new one.
    assert!(sharing::pending() > 0);
    sharing::stop().unwrap();
    assert_eq!(sharing::pending(), 0);
    assert!(sharing::address().is_none());
    let _ = y.recv_bytes().unwrap(); // the pickle of `first`, whose sharer is gone
    let (client, _server) = tcp_pair();
    x.send_connection(client).unwrap();
    let pickle = y.recv_bytes().unwrap();
    let restarted = sharing::address().expect("started again");
    assert_ne!(Some(&restarted), Some(&address));
    sharing::stop().unwrap();
    x.send_bytes(&pickle).unwrap();
    let gone = y.recv_connection(Pickle::new());
    assert!(matches!(gone, Err(Error::Io(_))), "{gone:?}");
}

/// Whether `e` says the peer closed the connection (a send after it was refused).
fn peer_gone(e: &Error) -> bool {
    use std::io::ErrorKind as K;
    let Error::Io(io) = e else {
        return false;
    };
    matches!(
        io.kind(),
        K::BrokenPipe | K::ConnectionReset | K::ConnectionAborted
    )
}
