//! conn-tokio's connections on every OS (on Windows under Wine, by `cargo xtask windows`):
//! every address kind carries objects, bytes and limits; keys; async <-> blocking both ways;
//! cancellation of receives, sends and accepts; pairs and halves across tasks; conversions;
//! hostile clients and the pending cap; and 1000 concurrent clients on both runtime flavors.
//! Every wait is bounded. Unix descriptors are in `unix_descriptors.rs`, Windows pipe messages
//! in `windows_pipes.rs`.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{
    T, addresses, byte_stream_pairs, current_thread, listeners, listeners_on, multi_thread,
};
use conn_tokio::{Client, Connection, Error, Listener, Operation, pipe, pipe_simplex};
use tokio::time::timeout;

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
            assert_eq!(s.recv_bytes().await.unwrap(), b"", "{}", l.address());
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
        for mut l in listeners(Some("right")) {
            let address = l.address().clone();
            let client =
                tokio::spawn(
                    async move { Client::builder(address).authkey("wrong").connect().await },
                );
            // The listener takes the client in and refuses it; its accept goes on (nothing is
            // accepted), and the client's error is the refusal.
            let nothing = timeout(Duration::from_millis(500), l.accept()).await;
            assert!(nothing.is_err(), "nothing accepted");
            let refused = timeout(T, client).await.unwrap().unwrap();
            assert!(matches!(refused, Err(Error::Auth(_))), "{refused:?}");
            // The listener counts the failure when accept next collects the ended handshake.
            let nothing = timeout(Duration::from_millis(200), l.accept()).await;
            assert!(nothing.is_err(), "nothing accepted");
            assert_eq!(l.handshake_failures(), 1, "{}", l.address());
            assert!(matches!(
                l.take_handshake_failures().as_slice(),
                [Error::Auth(_)]
            ));
        }
    });
}

#[test]
fn async_and_blocking_connections_talk_both_ways() {
    current_thread().block_on(async {
        // Async listeners, blocking clients.
        for mut l in listeners(Some("k")) {
            let address = l.address().clone();
            let blocking = tokio::task::spawn_blocking(move || {
                let mut c = conn_transport::Client::builder(address)
                    .authkey("k")
                    .connect()
                    .unwrap();
                c.send(&"from blocking").unwrap();
                c.send_bytes(b"").unwrap();
                c.recv::<String>().unwrap()
            });
            let mut s = timeout(T, l.accept()).await.unwrap().unwrap();
            let got: String = s.recv().await.unwrap();
            assert_eq!(s.recv_bytes().await.unwrap(), b"");
            s.send(&format!("{got}, answered async")).await.unwrap();
            assert_eq!(
                timeout(T, blocking).await.unwrap().unwrap(),
                "from blocking, answered async"
            );
        }
        // Blocking listeners of the default family and TCP, async clients.
        for family in [None, Some(conn_address::Family::Inet)] {
            let mut b = conn_transport::Listener::builder().authkey("k");
            if let Some(f) = family {
                b = b.family(f);
            }
            let mut bl = b.bind().unwrap();
            let address = bl.address().clone();
            let server = std::thread::spawn(move || {
                let mut c = bl.accept().unwrap();
                let n: i64 = c.recv().unwrap();
                assert_eq!(c.recv_bytes().unwrap(), b"");
                c.send(&(n * 2)).unwrap();
            });
            let mut c = Client::builder(address)
                .authkey("k")
                .connect()
                .await
                .unwrap();
            c.send(&21_i64).await.unwrap();
            c.send_bytes(b"").await.unwrap();
            assert_eq!(c.recv::<i64>().await.unwrap(), 42);
            server.join().unwrap();
        }
    });
}

/// On a byte stream, a receive cancelled with part of a frame read (none, inside the header,
/// inside the body) loses no byte: the next receive returns the whole message. `readable`
/// likewise.
#[test]
fn a_cancelled_receive_loses_nothing() {
    current_thread().block_on(async {
        for (ours, theirs) in byte_stream_pairs() {
            let raw = theirs.into_stream().unwrap();
            let message = b"a message cut in three".to_vec();
            let mut frame = (message.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&message);
            let mut ours = Connection::from_blocking(ours).unwrap();
            for cut in [0, 2, 4, 9, frame.len() - 1] {
                (&raw).write_all(&frame[..cut]).unwrap();
                let cancelled = timeout(Duration::from_millis(30), ours.recv_bytes()).await;
                assert!(cancelled.is_err(), "cut {cut}: nothing whole yet");
                (&raw).write_all(&frame[cut..]).unwrap();
                assert_eq!(ours.recv_bytes().await.unwrap(), message, "cut {cut}");
            }
            (&raw).write_all(&frame[..5]).unwrap();
            assert!(
                timeout(Duration::from_millis(30), ours.readable())
                    .await
                    .is_err()
            );
            (&raw).write_all(&frame[5..]).unwrap();
            timeout(T, ours.readable()).await.unwrap().unwrap();
            assert_eq!(ours.recv_bytes().await.unwrap(), message);
            drop(raw);
            assert!(matches!(ours.recv_bytes().await, Err(Error::Eof)));
        }
    });
}

/// A send the peer never takes, cut off, leaves the connection unable to send and refuses to
/// hand it over; dropping it stops the write under way and the peer reads a clean end or a
/// cut message, never garbage.
#[test]
fn a_cancelled_send_marks_the_connection_unable_to_send() {
    current_thread().block_on(async {
        let mut pairs = vec![conn_transport::pipe().unwrap()];
        pairs.extend(byte_stream_pairs());
        for (a, mut b) in pairs {
            let mut a = Connection::from_blocking(a).unwrap();
            // Far more than the buffers hold: the peer does not read yet.
            let huge = vec![1u8; 64 << 20];
            let cut = timeout(Duration::from_millis(200), a.send_bytes(&huge)).await;
            assert!(cut.is_err(), "the send cannot finish");
            assert!(a.is_broken());
            assert!(matches!(
                a.send_bytes(b"x").await,
                Err(Error::HandOver { cut_off: true, .. })
            ));
            let a = a.into_blocking().unwrap_err();
            drop(a);
            b.set_max_message(128 << 20);
            loop {
                match b.recv_bytes() {
                    Ok(m) => assert!(m.iter().all(|&x| x == 1)),
                    Err(Error::Eof) => break,
                    Err(e) => {
                        assert!(!matches!(e, Error::Io(_)), "{e:?}");
                        break;
                    }
                }
            }
        }
    });
}

/// `accept` cancelled again and again while a client connects and authenticates: the client
/// is not lost, the next `accept` returns it.
#[test]
fn a_cancelled_accept_loses_no_client() {
    current_thread().block_on(async {
        for mut l in listeners(Some("k")) {
            let address = l.address().clone();
            let client = tokio::spawn(async move {
                // Late enough that the first accepts are cancelled with nothing there.
                tokio::time::sleep(Duration::from_millis(5)).await;
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
        }
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
                tx.send(&vec![i; i as usize * 100]).await.unwrap();
            }
        });
        for i in 0..100_u32 {
            let v: Vec<u32> = timeout(T, rx.recv()).await.unwrap().unwrap();
            assert_eq!(v, vec![i; i as usize * 100]);
        }
        timeout(T, sender).await.unwrap().unwrap();
        timeout(T, echo).await.unwrap().unwrap();

        let (mut r, mut w) = pipe_simplex().unwrap();
        w.send_bytes(b"one way").await.unwrap();
        w.send_bytes(b"").await.unwrap();
        assert_eq!(r.recv_bytes().await.unwrap(), b"one way");
        assert_eq!(r.recv_bytes().await.unwrap(), b"");
        assert!(r.send_bytes(b"back").await.is_err(), "a read-only end");
        drop(w);
        assert!(matches!(r.recv_bytes().await, Err(Error::Eof)));
    });
}

#[test]
fn connections_convert_to_and_from_blocking() {
    current_thread().block_on(async {
        let mut pairs = vec![conn_transport::pipe().unwrap()];
        pairs.push(common::tcp_pair());
        for (a, mut b) in pairs {
            let mut a = Connection::from_blocking(a).unwrap();
            a.send(&"async").await.unwrap();
            assert_eq!(b.recv::<String>().unwrap(), "async");
            let mut a = a.into_blocking().unwrap();
            a.send(&"blocking again").unwrap();
            assert_eq!(b.recv::<String>().unwrap(), "blocking again");
            // Bytes read ahead are not handed over: once both frames were read at once, the
            // second is buffered and the handover refused (a Windows pipe read stays inside
            // one message, so there it may go through).
            b.send(&1).unwrap();
            b.send(&2).unwrap();
            let mut a = Connection::from_blocking(a).unwrap();
            timeout(T, a.readable()).await.unwrap().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(a.recv::<i32>().await.unwrap(), 1);
            match a.into_blocking() {
                Ok(mut a) => {
                    if cfg!(unix) {
                        panic!("read ahead, yet handed over");
                    }
                    assert_eq!(a.recv::<i32>().unwrap(), 2);
                }
                Err(mut a) => assert_eq!(a.recv::<i32>().await.unwrap(), 2),
            }
        }
    });
}

/// Connections handed over as CPython hands them, through this process's resource sharer (a
/// Windows pipe end lent by `DupHandle`): async to async and blocking to async, each kind of
/// end, directions kept, usable after; a message that is not a connection is a typed error and
/// the connection goes on.
#[test]
fn connections_handed_over_arrive_with_their_directions() {
    multi_thread().block_on(async {
        let (mut x, mut y) = pipe().unwrap();
        let (handed, mut kept) = conn_transport::pipe().unwrap();
        x.send_connection(handed).await.unwrap();
        let mut got = timeout(T, y.recv_connection(conn_transport::Pickle::new()))
            .await
            .unwrap()
            .unwrap();
        got.send(&"over the handed end").await.unwrap();
        assert_eq!(kept.recv::<String>().unwrap(), "over the handed end");

        let (client, mut server) = common::tcp_pair();
        x.send_connection(client).await.unwrap();
        let mut got = timeout(T, y.recv_connection(conn_transport::Pickle::new()))
            .await
            .unwrap()
            .unwrap();
        got.send(&"tcp").await.unwrap();
        assert_eq!(server.recv::<String>().unwrap(), "tcp");

        // From a blocking sender: a one-way read end stays one-way.
        let (mut bx, by) = conn_transport::pipe().unwrap();
        let mut y = Connection::from_blocking(by).unwrap();
        let (reader, mut writer) = conn_transport::pipe_simplex().unwrap();
        bx.send_connection(reader).unwrap();
        let mut reader = timeout(T, y.recv_connection(conn_transport::Pickle::new()))
            .await
            .unwrap()
            .unwrap();
        writer.send(&"one way").unwrap();
        assert_eq!(reader.recv::<String>().await.unwrap(), "one way");
        assert!(matches!(reader.send(&1).await, Err(Error::ReadOnly)));

        // Directions: a one-way pair's ends, and through the blocking conversion.
        let (r, mut w) = pipe_simplex().unwrap();
        assert!(r.is_readable() && !r.is_writable());
        assert!(!w.is_readable() && w.is_writable());
        assert!(matches!(w.recv::<i32>().await, Err(Error::WriteOnly)));
        let r = r.into_blocking().unwrap();
        assert!(r.readable() && !r.writable());
        let r = Connection::from_blocking(r).unwrap();
        assert!(r.is_readable() && !r.is_writable());

        bx.send(&"not a connection").unwrap();
        let refused = y.recv_connection(conn_transport::Pickle::new()).await;
        assert!(
            matches!(refused, Err(Error::NotHandedOver(_))),
            "{refused:?}"
        );
        bx.send(&"in step").unwrap();
        assert_eq!(y.recv::<String>().await.unwrap(), "in step");
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
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_drip = std::sync::Arc::clone(&stop);
        let drip = std::thread::spawn(move || {
            let mut drippers: Vec<_> = (0..4)
                .map(|_| std::net::TcpStream::connect(sock).unwrap())
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

/// 1000 clients at once on TCP and on the default family, on a current-thread and on a
/// multi-thread runtime: every message comes back to its sender, whole, once, in order.
#[test]
fn a_thousand_concurrent_clients_lose_nothing() {
    for rt in [current_thread(), multi_thread()] {
        rt.block_on(async {
            let load = addresses().into_iter().take(2).collect();
            for mut l in listeners_on(load, Some("k")) {
                let address = l.address().clone();
                let server = tokio::spawn(async move {
                    let mut served = tokio::task::JoinSet::new();
                    for _ in 0..1000 {
                        let mut c = timeout(T, l.accept()).await.unwrap().unwrap();
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
                    l
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
                let l = timeout(T, server).await.unwrap().unwrap();
                l.close().await.unwrap();
            }
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
