//! conn-tokio on Windows (run under Wine by `cargo xtask windows`): named pipes (AF_PIPE,
//! message mode) and TCP carry objects, zero-length and multi-megabyte messages and limits;
//! keys; async <-> blocking both ways; cancellation of receives at any point and of a send the
//! peer never takes; pairs and halves across tasks; hostile pipe clients; conversions; and a
//! load of concurrent clients on both runtime flavors. Every wait is bounded.

#![cfg(windows)]

use std::time::Duration;

use conn_address::{Address, Family};
use conn_tokio::{Client, Connection, Error, Listener, pipe, pipe_simplex};
use tokio::time::timeout;

/// The bound on every wait in these tests.
const T: Duration = Duration::from_secs(30);

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

/// A listener on a named pipe (the default family on Windows) and one on TCP.
fn listeners(key: Option<&str>) -> Vec<Listener> {
    [None, Some("127.0.0.1:0".parse::<Address>().unwrap())]
        .into_iter()
        .map(|address| {
            let mut b = Listener::builder()
                .handshake_timeout(Some(T))
                // The load test's clients may all be authenticating at once (default cap: 256).
                .max_pending_handshakes(1024)
                .backlog(1024);
            b = match address {
                Some(a) => b.address(a),
                None => b.family(Family::Pipe),
            };
            if let Some(k) = key {
                b = b.authkey(k);
            }
            b.bind().unwrap()
        })
        .collect()
}

#[test]
fn pipes_and_tcp_carry_objects_bytes_and_limits() {
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
                c.send_bytes(b"").await.unwrap();
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
            let nothing = timeout(Duration::from_millis(500), l.accept()).await;
            assert!(nothing.is_err(), "nothing accepted");
            let refused = timeout(T, client).await.unwrap().unwrap();
            assert!(matches!(refused, Err(Error::Auth(_))), "{refused:?}");
            let nothing = timeout(Duration::from_millis(200), l.accept()).await;
            assert!(nothing.is_err(), "nothing accepted");
            assert_eq!(l.handshake_failures(), 1, "{}", l.address());
        }
    });
}

#[test]
fn async_and_blocking_connections_talk_both_ways() {
    current_thread().block_on(async {
        for mut l in listeners(Some("k")) {
            // An async listener, a blocking client.
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
        // A blocking listener of each family, an async client.
        let pipe_name = format!(r"\\.\pipe\conn-tokio-test-{}", std::process::id());
        for address in [pipe_name.as_str(), "127.0.0.1:0"] {
            let mut bl = conn_transport::Listener::builder()
                .address(address)
                .authkey("k")
                .bind()
                .unwrap();
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

/// Receives cancelled at any point (waiting for a message, part way through a long one read
/// in chunks) lose no byte: the next receive returns the whole message.
#[test]
fn a_cancelled_receive_loses_nothing() {
    current_thread().block_on(async {
        let (ours, mut theirs) = conn_transport::pipe().unwrap();
        let mut ours = Connection::from_blocking(ours).unwrap();
        assert!(
            timeout(Duration::from_millis(50), ours.recv_bytes())
                .await
                .is_err()
        );
        assert!(
            timeout(Duration::from_millis(50), ours.readable())
                .await
                .is_err()
        );
        let messages: Vec<Vec<u8>> = (0..6u8)
            .map(|i| vec![i; [0, 1, 70_000, 3 << 20, 65_536, 200_000][i as usize]])
            .collect();
        let sent = messages.clone();
        let (go, went) = std::sync::mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            for m in &sent {
                went.recv().unwrap();
                theirs.send_bytes(m).unwrap();
            }
            theirs
        });
        let mut cancelled = 0;
        for m in &messages {
            // Cancelled while waiting for the message's first part.
            assert!(
                timeout(Duration::from_millis(20), ours.recv_bytes())
                    .await
                    .is_err()
            );
            cancelled += 1;
            go.send(()).unwrap();
            let got = loop {
                // Short enough to cut a long message's reads part way, now and then.
                match timeout(Duration::from_micros(300), ours.recv_bytes()).await {
                    Ok(got) => break got.unwrap(),
                    Err(_) => cancelled += 1,
                }
            };
            assert_eq!(got.len(), m.len());
            assert!(got == *m);
        }
        assert!(cancelled >= messages.len());
        drop(writer.join().unwrap());
        assert!(matches!(ours.recv_bytes().await, Err(Error::Eof)));
    });
}

/// A connected TCP pair of blocking connections (no key).
fn tcp_pair() -> (conn_transport::Connection, conn_transport::Connection) {
    let mut l = conn_transport::Listener::bind("127.0.0.1:0").unwrap();
    let ours = conn_transport::Client::connect(l.address().clone()).unwrap();
    (ours, l.accept().unwrap())
}

/// On TCP, a receive cancelled with part of a frame read (inside the header, inside the
/// body) loses no byte.
#[test]
fn a_cancelled_tcp_receive_loses_nothing() {
    use std::io::Write;
    current_thread().block_on(async {
        let (ours, theirs) = tcp_pair();
        let raw = theirs.into_stream().unwrap();
        let message = b"a message cut in three".to_vec();
        let mut frame = (message.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&message);
        let mut ours = Connection::from_blocking(ours).unwrap();
        for cut in [0, 2, 4, 9, frame.len() - 1] {
            (&raw).write_all(&frame[..cut]).unwrap();
            let cancelled = timeout(Duration::from_millis(50), ours.recv_bytes()).await;
            assert!(cancelled.is_err(), "cut {cut}: nothing whole yet");
            (&raw).write_all(&frame[cut..]).unwrap();
            assert_eq!(ours.recv_bytes().await.unwrap(), message, "cut {cut}");
        }
        drop(raw);
        assert!(matches!(ours.recv_bytes().await, Err(Error::Eof)));
    });
}

/// A send the reader never takes, cancelled, leaves the connection unable to send; dropping
/// it stops the write under way.
#[test]
fn a_cancelled_send_marks_the_connection_unable_to_send() {
    current_thread().block_on(async {
        let (tcp, tcp_peer) = tcp_pair();
        let (pipe_end, pipe_peer) = conn_transport::pipe().unwrap();
        for (a, b) in [(pipe_end, pipe_peer), (tcp, tcp_peer)] {
            let mut a = Connection::from_blocking(a).unwrap();
            let huge = vec![1u8; 64 << 20];
            let cut = timeout(Duration::from_millis(200), a.send_bytes(&huge)).await;
            assert!(cut.is_err(), "the send cannot finish");
            assert!(a.is_broken());
            assert!(matches!(
                a.send_bytes(b"x").await,
                Err(Error::HandOver { cut_off: true, .. })
            ));
            // Dropped with the write under way: it is stopped, and the peer sees the end.
            drop(a.into_blocking().unwrap_err());
            let mut b = b;
            b.set_max_message(128 << 20);
            loop {
                match b.recv_bytes() {
                    Ok(_) => {}
                    Err(Error::Eof) => break,
                    Err(e) => {
                        // A cut message is reported as such (TCP: a short frame).
                        assert!(!matches!(e, Error::Io(_)), "{e:?}");
                        break;
                    }
                }
            }
        }
    });
}

#[test]
fn pairs_and_split_halves_work_across_tasks() {
    multi_thread().block_on(async {
        let (a, mut b) = pipe().unwrap();
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
        let mut l = conn_transport::Listener::bind("127.0.0.1:0").unwrap();
        let tcp = conn_transport::Client::connect(l.address().clone()).unwrap();
        let tcp_peer = l.accept().unwrap();
        for (a, mut b) in [conn_transport::pipe().unwrap(), (tcp, tcp_peer)] {
            let mut a = Connection::from_blocking(a).unwrap();
            a.send(&"async").await.unwrap();
            assert_eq!(b.recv::<String>().unwrap(), "async");
            let mut a = a.into_blocking().unwrap();
            a.send(&"blocking again").unwrap();
            assert_eq!(b.recv::<String>().unwrap(), "blocking again");
            b.send(&1).unwrap();
            b.send(&2).unwrap();
            let mut a = Connection::from_blocking(a).unwrap();
            assert_eq!(a.recv::<i32>().await.unwrap(), 1);
            // On TCP both frames may have been read at once: then the second is buffered and
            // the handover is refused; on a pipe each read stays inside one message.
            match a.into_blocking() {
                Ok(mut a) => assert_eq!(a.recv::<i32>().unwrap(), 2),
                Err(mut a) => assert_eq!(a.recv::<i32>().await.unwrap(), 2),
            }
        }
    });
}

/// Pipe clients that connect and say nothing, or close mid-handshake, delay no one: a good
/// client is accepted at once, and the bad ones end as failures.
#[test]
fn hostile_pipe_clients_delay_no_one() {
    multi_thread().block_on(async {
        let mut l = Listener::builder()
            .family(Family::Pipe)
            .authkey("k")
            .handshake_timeout(Some(Duration::from_secs(2)))
            .bind()
            .unwrap();
        let address = l.address().clone();
        // Pipe instances are made as the listener accepts: the bad clients connect from
        // threads of their own while it does.
        let mut bad = Vec::new();
        for i in 0..6 {
            let address = address.clone();
            bad.push(tokio::task::spawn_blocking(move || {
                let s = conn_transport::os::Stream::connect(&address, Some(T)).unwrap();
                if i == 0 {
                    // Half a handshake's worth, then gone.
                    s.write_message(b"#CHALL", Some(T)).unwrap();
                    return;
                }
                // Silent: held past the handshake timeout.
                std::thread::sleep(Duration::from_secs(3));
            }));
        }
        let good = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut c = Client::builder(address).authkey("k").connect().await?;
            c.send(&"good").await?;
            Ok::<_, Error>(c)
        });
        let started = std::time::Instant::now();
        let mut s = timeout(T, l.accept()).await.unwrap().unwrap();
        assert_eq!(s.recv::<String>().await.unwrap(), "good");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "accepted before any silent client timed out"
        );
        let _c = timeout(T, good).await.unwrap().unwrap().unwrap();
        // The silent ones time out and are counted.
        let nothing = timeout(Duration::from_secs(3), l.accept()).await;
        assert!(nothing.is_err());
        assert!(l.handshake_failures() >= 5, "{}", l.handshake_failures());
        for b in bad {
            timeout(T, b).await.unwrap().unwrap();
        }
    });
}

/// A thousand concurrent clients on pipes and TCP, each sending numbered messages and reading them
/// back: nothing lost, duplicated or reordered, on both runtime flavors.
#[test]
fn a_thousand_concurrent_clients_lose_nothing() {
    const CLIENTS: usize = 1000;
    const MESSAGES: u32 = 5;
    for rt in [current_thread(), multi_thread()] {
        rt.block_on(async {
            for mut l in listeners(Some("k")) {
                if std::env::var("ONLY").is_ok_and(|o| !l.address().to_string().contains(&o)) {
                    continue;
                }
                let address = l.address().clone();
                let server = tokio::spawn(async move {
                    let mut echoes = Vec::new();
                    for _ in 0..CLIENTS {
                        let mut c = timeout(T, l.accept()).await.unwrap().unwrap();
                        echoes.push(tokio::spawn(async move {
                            loop {
                                match c.recv::<(u32, u32)>().await {
                                    Ok(v) => c.send(&v).await.unwrap(),
                                    Err(Error::Eof) => break,
                                    Err(e) => panic!("{e:?}"),
                                }
                            }
                        }));
                    }
                    for e in echoes {
                        timeout(T, e).await.unwrap().unwrap();
                    }
                    l
                });
                let mut clients = Vec::new();
                for id in 0..CLIENTS as u32 {
                    let address = address.clone();
                    clients.push(tokio::spawn(async move {
                        let mut c = Client::builder(address)
                            .authkey("k")
                            .connect()
                            .await
                            .unwrap();
                        for n in 0..MESSAGES {
                            c.send(&(id, n)).await.unwrap();
                            assert_eq!(c.recv::<(u32, u32)>().await.unwrap(), (id, n));
                        }
                    }));
                }
                timeout(Duration::from_secs(120), async {
                    for c in clients {
                        c.await.unwrap();
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
