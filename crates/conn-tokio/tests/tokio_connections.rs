//! conn-tokio's connections: every Unix family, async <-> blocking both ways, keys, limits,
//! cancellation, hostile clients, pairs, conversions, and a load of 1000 concurrent clients on
//! both runtime flavors. Every wait is bounded.

#![cfg(unix)]

use std::io::Write;
use std::time::Duration;

use conn_address::{Address, Family};
use conn_tokio::{Client, Connection, Error, Listener, Operation, pipe, pipe_simplex};
use tokio::time::timeout;

/// The bound on every wait in these tests.
const T: Duration = Duration::from_secs(20);

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A listener on every address kind this OS has: TCP v4 and v6, a Unix path (a private
/// directory), and on Linux an abstract name.
fn listeners(key: Option<&str>) -> Vec<Listener> {
    let mut addresses: Vec<Option<Address>> = vec![
        Some("127.0.0.1:0".parse().unwrap()),
        Some("[::1]:0".parse().unwrap()),
        None,
    ];
    if cfg!(target_os = "linux") {
        let name = format!(
            "@conn-tokio-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        addresses.push(Some(name.parse().unwrap()));
    }
    addresses
        .into_iter()
        .filter_map(|address| {
            let mut b = Listener::builder().handshake_timeout(Some(T));
            b = match address {
                Some(a) => b.address(a),
                None => b.family(Family::Unix),
            };
            if let Some(k) = key {
                b = b.authkey(k);
            }
            match b.bind() {
                Ok(l) => Some(l),
                // No IPv6 loopback on this machine: the v6 case cannot run.
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AddrNotAvailable => None,
                Err(e) => panic!("bind: {e:?}"),
            }
        })
        .collect()
}

#[test]
fn every_family_carries_objects_bytes_and_limits() {
    current_thread().block_on(async {
        for mut l in listeners(Some("k")) {
            let address = l.address().clone();
            let big = vec![7u8; 5 << 20];
            let expected = big.clone();
            let client = tokio::spawn(async move {
                let mut c = Client::builder(address.clone())
                    .authkey("k")
                    .connect()
                    .await
                    .unwrap();
                c.send(&(1729_i64, "hello")).await.unwrap();
                c.send_bytes(b"").await.unwrap();
                c.send_bytes(&big).await.unwrap();
                c.send_bytes(b"0123456789").await.unwrap();
                c.send_bytes(b"too long").await.unwrap();
                let back: String = c.recv().await.unwrap();
                assert_eq!(back, "HELLO", "{address}");
            });
            let mut s = timeout(T, l.accept()).await.unwrap().unwrap();
            let (n, text): (i64, String) = s.recv().await.unwrap();
            assert_eq!(n, 1729);
            assert_eq!(s.recv_bytes().await.unwrap(), b"");
            assert_eq!(s.recv_bytes().await.unwrap(), expected);
            let mut small = [0u8; 4];
            match s.recv_bytes_into(&mut small).await {
                Err(Error::BufferTooShort { message }) => assert_eq!(message, b"0123456789"),
                other => panic!("{other:?}"),
            }
            assert!(matches!(
                s.recv_bytes_max(3).await,
                Err(Error::BadMessageLength { len: 8, max: 3 })
            ));
            s.send(&text.to_uppercase()).await.unwrap();
            timeout(T, client).await.unwrap().unwrap();
            l.close().await.unwrap();
        }
    });
}

#[test]
fn a_wrong_key_fails_on_both_sides() {
    current_thread().block_on(async {
        let mut l = Listener::builder()
            .address("127.0.0.1:0")
            .authkey("right")
            .bind()
            .unwrap();
        let address = l.address().clone();
        let client =
            tokio::spawn(async move { Client::builder(address).authkey("wrong").connect().await });
        // The listener takes the client in and refuses it; its accept goes on (nothing is
        // accepted), and the client's error is the refusal.
        let nothing = timeout(Duration::from_millis(500), l.accept()).await;
        assert!(nothing.is_err(), "nothing accepted");
        let refused = timeout(T, client).await.unwrap().unwrap();
        assert!(matches!(refused, Err(Error::Auth(_))), "{refused:?}");
        // The listener counts the failure when accept next collects the ended handshake.
        let nothing = timeout(Duration::from_millis(200), l.accept()).await;
        assert!(nothing.is_err(), "nothing accepted");
        assert_eq!(l.handshake_failures(), 1);
        assert!(matches!(
            l.take_handshake_failures().as_slice(),
            [Error::Auth(_)]
        ));
    });
}

#[test]
fn async_and_blocking_connections_talk_both_ways() {
    current_thread().block_on(async {
        // An async listener, a blocking client.
        let mut l = Listener::builder()
            .family(Family::Unix)
            .authkey("k")
            .bind()
            .unwrap();
        let address = l.address().clone();
        let blocking = tokio::task::spawn_blocking(move || {
            let mut c = conn_transport::Client::builder(address)
                .authkey("k")
                .connect()
                .unwrap();
            c.send(&"from blocking").unwrap();
            c.recv::<String>().unwrap()
        });
        let mut s = timeout(T, l.accept()).await.unwrap().unwrap();
        let got: String = s.recv().await.unwrap();
        s.send(&format!("{got}, answered async")).await.unwrap();
        assert_eq!(
            timeout(T, blocking).await.unwrap().unwrap(),
            "from blocking, answered async"
        );

        // A blocking listener, an async client.
        let mut bl = conn_transport::Listener::builder()
            .address("127.0.0.1:0")
            .authkey("k")
            .bind()
            .unwrap();
        let address = bl.address().clone();
        let server = std::thread::spawn(move || {
            let mut c = bl.accept().unwrap();
            let n: i64 = c.recv().unwrap();
            c.send(&(n * 2)).unwrap();
        });
        let mut c = Client::builder(address)
            .authkey("k")
            .connect()
            .await
            .unwrap();
        c.send(&21_i64).await.unwrap();
        assert_eq!(c.recv::<i64>().await.unwrap(), 42);
        server.join().unwrap();
    });
}

/// A receive cancelled at any point (before a message, after half of it) loses no byte: the
/// next receive returns the whole message.
#[test]
fn a_cancelled_receive_loses_nothing() {
    current_thread().block_on(async {
        let (ours, theirs) = conn_transport::pipe().unwrap();
        let raw = theirs.into_owned_handle().unwrap();
        let mut raw = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(raw));
        let message = b"a message cut in three".to_vec();
        let mut frame = (message.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&message);
        let mut async_end = Connection::from_blocking(ours).unwrap();
        for cut in [0, 2, 4, 9, frame.len() - 1] {
            raw.write_all(&frame[..cut]).unwrap();
            let cancelled = timeout(Duration::from_millis(30), async_end.recv_bytes()).await;
            assert!(cancelled.is_err(), "cut {cut}: nothing whole yet");
            raw.write_all(&frame[cut..]).unwrap();
            assert_eq!(async_end.recv_bytes().await.unwrap(), message, "cut {cut}");
        }
        // `readable` cancelled the same way.
        raw.write_all(&frame[..5]).unwrap();
        assert!(
            timeout(Duration::from_millis(30), async_end.readable())
                .await
                .is_err()
        );
        raw.write_all(&frame[5..]).unwrap();
        timeout(T, async_end.readable()).await.unwrap().unwrap();
        assert_eq!(async_end.recv_bytes().await.unwrap(), message);
    });
}

/// A send cut off part way leaves the connection unable to send; one that wrote nothing does
/// not.
#[test]
fn a_cancelled_send_marks_the_connection_unable_to_send() {
    current_thread().block_on(async {
        let (mut a, _b) = pipe().unwrap();
        // Far more than the socket buffers hold: the peer never reads.
        let huge = vec![1u8; 64 << 20];
        let cut = timeout(Duration::from_millis(100), a.send_bytes(&huge)).await;
        assert!(cut.is_err(), "the send cannot finish");
        assert!(a.is_broken());
        assert!(matches!(
            a.send_bytes(b"x").await,
            Err(Error::HandOver { cut_off: true, .. })
        ));
        assert!(
            a.into_blocking().is_err(),
            "a cut-off connection is not handed over"
        );
    });
}

#[test]
fn pairs_and_split_halves_work_across_tasks() {
    multi_thread().block_on(async {
        let (a, mut b) = pipe().unwrap();
        let (c, _d) = pipe().unwrap();
        let (tx, rx) = a.into_split();
        let (ctx, crx) = c.into_split();
        // Halves of different connections are given back; halves of one go back together.
        let (tx, _) = *Connection::reunite(tx, crx).unwrap_err();
        let a = Connection::reunite(tx, rx).unwrap();
        drop(ctx);
        let (mut tx, mut rx) = a.into_split();
        let echo = tokio::spawn(async move {
            for _ in 0..100 {
                let v: Vec<u32> = b.recv().await.unwrap();
                b.send(&v).await.unwrap();
            }
        });
        let sender = tokio::spawn(async move {
            for i in 0..100_u32 {
                tx.send(&vec![i; i as usize]).await.unwrap();
            }
        });
        for i in 0..100_u32 {
            let v: Vec<u32> = rx.recv().await.unwrap();
            assert_eq!(v, vec![i; i as usize]);
        }
        timeout(T, sender).await.unwrap().unwrap();
        timeout(T, echo).await.unwrap().unwrap();

        let (mut r, mut w) = pipe_simplex().unwrap();
        w.send_bytes(b"one way").await.unwrap();
        assert_eq!(r.recv_bytes().await.unwrap(), b"one way");
        assert!(r.send_bytes(b"back").await.is_err(), "a read-only end");
        drop(w);
        assert!(matches!(r.recv_bytes().await, Err(Error::Eof)));
    });
}

#[test]
fn connections_convert_to_and_from_blocking() {
    current_thread().block_on(async {
        let (a, mut b) = conn_transport::pipe().unwrap();
        let mut a = Connection::from_blocking(a).unwrap();
        a.send(&"async").await.unwrap();
        assert_eq!(b.recv::<String>().unwrap(), "async");
        let mut a = a.into_blocking().unwrap();
        a.send(&"blocking again").unwrap();
        assert_eq!(b.recv::<String>().unwrap(), "blocking again");
        // Bytes read ahead are not handed over.
        b.send(&1).unwrap();
        b.send(&2).unwrap();
        let mut a = Connection::from_blocking(a).unwrap();
        assert_eq!(a.recv::<i32>().await.unwrap(), 1);
        let mut a = a.into_blocking().unwrap_err();
        assert_eq!(a.recv::<i32>().await.unwrap(), 2);
    });
}

/// Silent clients, one-byte-a-while clients, half frames and clients that close mid-handshake
/// delay no one: a good client is accepted at once, and the bad ones end as failures.
#[test]
fn hostile_clients_delay_no_one() {
    multi_thread().block_on(async {
        let mut l = Listener::builder()
            .address("127.0.0.1:0")
            .authkey("k")
            .handshake_timeout(Some(Duration::from_secs(3)))
            .bind()
            .unwrap();
        let sock = l.address().socket_addr().unwrap();
        let mut bad = Vec::new();
        // Clients that drip a byte every 50 ms (of a header that never ends) until dropped.
        let sock_drip = sock;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_drip = std::sync::Arc::clone(&stop);
        let drip = std::thread::spawn(move || {
            let mut drippers: Vec<_> = (0..4)
                .map(|_| std::net::TcpStream::connect(sock_drip).unwrap())
                .collect();
            while !stop_drip.load(std::sync::atomic::Ordering::Relaxed) {
                for d in &mut drippers {
                    let _ = d.write_all(&[0xff]);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drippers
        });
        for i in 0..40 {
            let mut s = std::net::TcpStream::connect(sock).unwrap();
            match i % 4 {
                0 => {}                                       // silent
                1 => s.write_all(&[0, 0]).unwrap(),           // half a header
                2 => s.write_all(&[0, 0, 0, 40, 1]).unwrap(), // half a frame
                _ => {
                    s.write_all(&[0, 0, 0]).unwrap();
                    s.shutdown(std::net::Shutdown::Write).unwrap(); // closes mid-handshake
                }
            }
            bad.push(s);
        }
        let address = l.address().clone();
        let good = tokio::spawn(async move {
            let mut c = Client::builder(address)
                .authkey("k")
                .connect()
                .await
                .unwrap();
            c.send(&"through").await.unwrap();
        });
        let mut s = timeout(T, l.accept()).await.unwrap().unwrap();
        assert_eq!(s.recv::<String>().await.unwrap(), "through");
        // The silent clients were still pending when the good one got through: it did not
        // wait for their deadline.
        assert!(
            l.pending_handshakes() > 0,
            "the good client waited for the bad ones' deadline"
        );
        timeout(T, good).await.unwrap().unwrap();
        // The bad ones end by their deadline at the latest, while accept is awaited.
        let nothing = timeout(Duration::from_secs(4), l.accept()).await;
        assert!(nothing.is_err());
        assert_eq!(
            l.handshake_failures(),
            44,
            "{:?}",
            l.take_handshake_failures()
        );
        assert_eq!(l.pending_handshakes(), 0);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(drip.join().unwrap());
        drop(bad);
    });
}

#[test]
fn the_pending_cap_closes_the_clients_beyond_it() {
    current_thread().block_on(async {
        let mut l = Listener::builder()
            .address("127.0.0.1:0")
            .authkey("k")
            .max_pending_handshakes(4)
            .handshake_timeout(Some(T))
            .bind()
            .unwrap();
        let sock = l.address().socket_addr().unwrap();
        let flood: Vec<_> = (0..10)
            .map(|_| std::net::TcpStream::connect(sock).unwrap())
            .collect();
        // Accept takes the flood in (bounded: at most T).
        let until = std::time::Instant::now() + T;
        while l.handshake_failures() < 6 && std::time::Instant::now() < until {
            let _ = timeout(Duration::from_millis(50), l.accept()).await;
        }
        assert_eq!(l.pending_handshakes(), 4);
        assert_eq!(l.handshake_failures(), 6);
        assert!(
            l.take_handshake_failures()
                .iter()
                .all(|e| matches!(e, Error::TooManyPendingHandshakes { max: 4 }))
        );
        drop(flood);
    });
}

/// 1000 clients at once, on a current-thread and on a multi-thread runtime: every message
/// comes back to its sender, whole, once, in order.
#[test]
fn a_thousand_concurrent_clients_lose_nothing() {
    for rt in [current_thread(), multi_thread()] {
        rt.block_on(async {
            let mut l = Listener::builder()
                .address("127.0.0.1:0")
                .authkey("k")
                .backlog(1024)
                // All 1000 may be authenticating at once (the default cap is 256).
                .max_pending_handshakes(1024)
                .bind()
                .unwrap();
            let address = l.address().clone();
            let server = tokio::spawn(async move {
                let mut served = tokio::task::JoinSet::new();
                for _ in 0..1000 {
                    let mut c = l.accept().await.unwrap();
                    served.spawn(async move {
                        loop {
                            match c.recv::<(u32, u32)>().await {
                                Ok(m) => c.send(&m).await.unwrap(),
                                Err(Error::Eof) => break,
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                    });
                }
                while let Some(done) = served.join_next().await {
                    done.unwrap();
                }
            });
            let mut clients = tokio::task::JoinSet::new();
            for id in 0..1000_u32 {
                let address = address.clone();
                clients.spawn(async move {
                    let mut c = Client::builder(address)
                        .authkey("k")
                        .connect()
                        .await
                        .unwrap();
                    for seq in 0..3 {
                        c.send(&(id, seq)).await.unwrap();
                        assert_eq!(c.recv::<(u32, u32)>().await.unwrap(), (id, seq));
                    }
                });
            }
            timeout(Duration::from_secs(120), async {
                while let Some(done) = clients.join_next().await {
                    done.unwrap();
                }
            })
            .await
            .unwrap();
            timeout(T, server).await.unwrap().unwrap();
        });
    }
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    assert!(matches!(pipe(), Err(Error::Io(_))));
    assert!(matches!(Listener::bind("127.0.0.1:0"), Err(Error::Io(_))));
    let (a, _b) = conn_transport::pipe().unwrap();
    assert!(Connection::from_blocking(a).is_err());
    let _ = Operation::Read;
}

/// Descriptors both ways between an async and a blocking end, in step with the messages
/// around them; a plain byte where descriptors were expected is a typed error.
#[test]
fn descriptors_cross_in_step_with_messages() {
    use std::io::{Read, Write as _};
    use std::os::fd::{AsFd, OwnedFd};
    current_thread().block_on(async {
        let (ours, mut theirs) = conn_transport::pipe().unwrap();
        let mut ours = Connection::from_blocking(ours).unwrap();
        // Blocking -> async: a message, a descriptor, a message, all read ahead together.
        let (r, mut w) = std::io::pipe().unwrap();
        w.write_all(b"through a pipe").unwrap();
        drop(w);
        theirs.send_bytes(b"before").unwrap();
        theirs.send_handle(r.as_fd().into()).unwrap();
        theirs.send_bytes(b"after").unwrap();
        drop(r);
        assert_eq!(ours.recv_bytes().await.unwrap(), b"before");
        let fd = OwnedFd::from(ours.recv_handle().await.unwrap());
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).unwrap();
        assert_eq!(text, "through a pipe");
        assert_eq!(ours.recv_bytes().await.unwrap(), b"after");
        // Async -> blocking: two at once.
        let (r1, mut w1) = std::io::pipe().unwrap();
        let (r2, mut w2) = std::io::pipe().unwrap();
        w1.write_all(b"one").unwrap();
        w2.write_all(b"two").unwrap();
        drop((w1, w2));
        ours.send_handles(&[r1.as_fd().into(), r2.as_fd().into()])
            .await
            .unwrap();
        let got = tokio::task::spawn_blocking(move || {
            let handles = theirs.recv_handles(2).unwrap();
            let texts: Vec<String> = handles
                .into_iter()
                .map(|h| {
                    let mut t = String::new();
                    std::fs::File::from(OwnedFd::from(h))
                        .read_to_string(&mut t)
                        .unwrap();
                    t
                })
                .collect();
            theirs.send_bytes(b"x").unwrap();
            (texts, theirs)
        })
        .await
        .unwrap();
        assert_eq!(got.0, ["one", "two"]);
        // A plain message where descriptors were expected.
        assert!(matches!(
            ours.recv_handles(1).await,
            Err(Error::HandleTransfer { received: 0, .. })
        ));
    });
}

/// `accept` cancelled again and again while a client connects and authenticates: the client
/// is not lost, the next `accept` returns it.
#[test]
fn a_cancelled_accept_loses_no_client() {
    current_thread().block_on(async {
        let mut l = Listener::builder()
            .address("127.0.0.1:0")
            .authkey("k")
            .bind()
            .unwrap();
        let address = l.address().clone();
        let client = tokio::spawn(async move {
            let mut c = Client::builder(address)
                .authkey("k")
                .connect()
                .await
                .unwrap();
            c.send(&"kept").await.unwrap();
            c
        });
        let mut cancelled = 0;
        let mut conn = loop {
            match timeout(Duration::from_micros(200), l.accept()).await {
                Ok(conn) => break conn.unwrap(),
                Err(_) => cancelled += 1,
            }
            assert!(cancelled < 100_000, "never accepted");
        };
        assert!(
            cancelled > 0,
            "accept was never cancelled: the test proved nothing"
        );
        assert_eq!(conn.recv::<String>().await.unwrap(), "kept");
        drop(timeout(T, client).await.unwrap().unwrap());
    });
}

/// `recv_handles` cancelled before anything came loses nothing: the next call gets the
/// descriptor, and the messages around it stay in step.
#[test]
fn a_cancelled_descriptor_receive_loses_nothing() {
    use std::io::Read;
    use std::os::fd::{AsFd, OwnedFd};
    current_thread().block_on(async {
        let (ours, mut theirs) = conn_transport::pipe().unwrap();
        let mut ours = Connection::from_blocking(ours).unwrap();
        assert!(
            timeout(Duration::from_millis(20), ours.recv_handles(1))
                .await
                .is_err()
        );
        let (r, mut w) = std::io::pipe().unwrap();
        w.write_all(b"late").unwrap();
        drop(w);
        theirs.send_handle(r.as_fd().into()).unwrap();
        theirs.send_bytes(b"next").unwrap();
        let fd = OwnedFd::from(ours.recv_handle().await.unwrap());
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).unwrap();
        assert_eq!(text, "late");
        assert_eq!(ours.recv_bytes().await.unwrap(), b"next");
    });
}
