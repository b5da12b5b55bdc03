//! Peers that try to stall a server, and timeouts that cannot panic: silent and dripping clients
//! against a single-threaded accept loop, a half frame in a single-threaded `WaitSet` server,
//! the drip attack on both sides of the handshake, and `Duration::MAX` everywhere a timeout is
//! taken. Loopback only; every wait is bounded.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use conn::{Client, Connection, Error, Listener, Operation, WaitSet, pipe, wait};

const KEY: &str = "stall test key";

/// Writes `bytes` one per `every` on each socket until `stop`, then hands the sockets back
/// still open (closing them here would race the server's count of pending clients).
fn drip(
    mut sockets: Vec<TcpStream>,
    bytes: Vec<u8>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Vec<TcpStream> {
    for b in bytes {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        for s in &mut sockets {
            let _ = s.write_all(&[b]);
        }
        thread::sleep(every);
    }
    sockets
}

#[test]
fn silent_and_dripping_clients_do_not_delay_good_ones() {
    const BAD: usize = 50;
    const GOOD: usize = 50;
    const MESSAGES: usize = 100;
    let mut listener = Listener::builder()
        .address("127.0.0.1:0")
        .authkey(KEY)
        .backlog(512)
        .accept_timeout(Some(Duration::from_millis(100)))
        .bind()
        .unwrap();
    let addr = listener.address().socket_addr().unwrap();
    // 50 clients that connect and say nothing, 50 that drip a plausible frame a byte a second.
    let silent: Vec<TcpStream> = (0..BAD)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let drippers: Vec<TcpStream> = (0..BAD)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let dripping = {
        let stop = Arc::clone(&stop);
        let frame = [&[0u8, 0, 0, 40][..], &[7u8; 40]].concat();
        thread::spawn(move || drip(drippers, frame, Duration::from_secs(1), stop))
    };
    // A single-threaded accept loop; each accepted connection is echoed on its own thread.
    let served = Arc::new(AtomicUsize::new(0));
    let server = {
        let stop = Arc::clone(&stop);
        let served = Arc::clone(&served);
        thread::spawn(move || {
            let mut echoes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(mut conn) => {
                        served.fetch_add(1, Ordering::Relaxed);
                        echoes.push(thread::spawn(move || {
                            while let Ok(m) = conn.recv_bytes() {
                                if conn.send_bytes(&m).is_err() {
                                    break;
                                }
                            }
                        }));
                    }
                    Err(Error::Timeout { .. }) => {}
                    Err(e) => panic!("accept: {e}"),
                }
            }
            let failures = (
                listener.handshake_failures(),
                listener.take_handshake_failure(),
            );
            (listener.pending_handshakes(), echoes, failures)
        })
    };
    // Give the bad clients a head start: they are pending before any good one connects.
    thread::sleep(Duration::from_millis(300));
    let good: Vec<_> = (0..GOOD)
        .map(|i| {
            let address = format!("127.0.0.1:{}", addr.port());
            thread::spawn(move || {
                let start = Instant::now();
                let mut c = Client::builder(address.as_str())
                    .authkey(KEY)
                    .handshake_timeout(Some(Duration::from_secs(10)))
                    .connect()
                    .unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10)));
                for n in 0..MESSAGES {
                    let m = format!("client {i} message {n}");
                    c.send_bytes(m.as_bytes()).unwrap();
                    assert_eq!(c.recv_bytes().unwrap(), m.as_bytes());
                }
                start.elapsed()
            })
        })
        .collect();
    let times: Vec<Duration> = good.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let (pending, echoes, failures) = server.join().unwrap();
    let drippers = dripping.join().unwrap();
    drop((silent, drippers));
    for e in echoes {
        e.join().unwrap();
    }
    let slowest = times.iter().max().unwrap();
    eprintln!("slowest good client: {slowest:?}");
    assert_eq!(served.load(Ordering::Relaxed), GOOD);
    // The bad clients were still connected and pending when the good ones had all finished.
    assert_eq!(
        pending,
        2 * BAD,
        "bad clients still pending (failed handshakes, the last: {failures:?})"
    );
    // Before the concurrent accept, 0 of 50 good clients got through in 45 s.
    assert!(
        *slowest < Duration::from_secs(5),
        "slowest good client took {slowest:?}"
    );
}

#[test]
fn a_dripping_client_fails_at_the_servers_whole_handshake_deadline() {
    let mut listener = Listener::builder()
        .address("127.0.0.1:0")
        .authkey(KEY)
        .handshake_timeout(Some(Duration::from_millis(800)))
        .accept_timeout(Some(Duration::from_millis(1500)))
        .bind()
        .unwrap();
    let addr = listener.address().socket_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Every byte arrives well within any per-read timeout; the whole takes 6 s.
    let dripper = {
        let s = TcpStream::connect(addr).unwrap();
        let stop = Arc::clone(&stop);
        let frame = [&[0u8, 0, 0, 56][..], &[7u8; 56]].concat();
        thread::spawn(move || drip(vec![s], frame, Duration::from_millis(100), stop))
    };
    let start = Instant::now();
    assert!(matches!(
        listener.accept(),
        Err(Error::Timeout {
            operation: Operation::Accept
        })
    ));
    stop.store(true, Ordering::Relaxed);
    dripper.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(listener.handshake_failures(), 1);
    assert_eq!(listener.pending_handshakes(), 0);
    assert!(matches!(
        listener.take_handshake_failure(),
        Some(Error::Timeout {
            operation: Operation::Handshake
        })
    ));
}

#[test]
fn a_dripping_server_fails_at_the_clients_whole_handshake_deadline() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let dripper = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let (s, _) = server.accept().unwrap();
            let challenge = conn::auth::Challenge::new(conn::auth::Digest::Sha256).unwrap();
            let body = challenge.as_bytes();
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(body);
            drop(drip(vec![s], frame, Duration::from_millis(100), stop));
        })
    };
    let start = Instant::now();
    let result = Client::builder(format!("127.0.0.1:{}", addr.port()).as_str())
        .authkey(KEY)
        .handshake_timeout(Some(Duration::from_millis(800)))
        .connect();
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    dripper.join().unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Timeout {
                operation: Operation::Handshake
            })
        ),
        "{result:?}"
    );
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn a_half_frame_does_not_stall_a_single_threaded_waitset_server() {
    const CLIENTS: usize = 100;
    const MESSAGES: usize = 20;
    let mut listener = Listener::builder()
        .address("127.0.0.1:0")
        .backlog(256)
        .accept_timeout(Some(Duration::from_secs(10)))
        .bind()
        .unwrap();
    let address = format!(
        "127.0.0.1:{}",
        listener.address().socket_addr().unwrap().port()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // Client 0 sends half a frame and stops; the others echo MESSAGES messages each.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let address = address.clone();
            let stop = Arc::clone(&stop);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                if i == 0 {
                    // A 100-byte message of which 10 bytes ever arrive.
                    let mut raw = TcpStream::connect(address.as_str()).unwrap();
                    raw.write_all(&[0, 0, 0, 100]).unwrap();
                    raw.write_all(&[1; 10]).unwrap();
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(20));
                    }
                    return None;
                }
                let mut c = Client::connect(address.as_str()).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10)));
                let start = Instant::now();
                for n in 0..MESSAGES {
                    c.send(&(i, n)).unwrap();
                    assert_eq!(c.recv::<(usize, usize)>().unwrap(), (i, n));
                }
                done.fetch_add(1, Ordering::Relaxed);
                Some(start.elapsed())
            })
        })
        .collect();
    // The server: one thread, one WaitSet.
    let mut set: WaitSet<Connection> = WaitSet::new().unwrap();
    for _ in 0..CLIENTS {
        set.insert(listener.accept().unwrap()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::Relaxed) < CLIENTS - 1 && Instant::now() < deadline {
        for key in set.wait(Some(Duration::from_millis(100))).unwrap() {
            let conn = set.get_mut(key).unwrap();
            match conn.recv::<(usize, usize)>() {
                Ok(m) => conn.send(&m).unwrap(),
                Err(Error::Eof) => {
                    set.remove(key);
                }
                Err(e) => panic!("server recv: {e}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let times: Vec<Duration> = clients
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(times.len(), CLIENTS - 1);
    let slowest = times.iter().max().unwrap();
    eprintln!("slowest good client: {slowest:?}");
    assert!(
        *slowest < Duration::from_secs(5),
        "slowest good client took {slowest:?}"
    );
}

#[cfg(unix)]
#[test]
fn try_recv_waits_for_the_whole_message() {
    let (mut a, mut b) = pipe().unwrap();
    assert_eq!(b.try_recv_bytes().unwrap(), None);
    // Half a message: still nothing, and nothing blocks.
    use std::os::fd::AsFd;
    let fd = a.as_fd().try_clone_to_owned().unwrap();
    let mut raw = std::os::unix::net::UnixStream::from(fd);
    raw.write_all(&[0, 0, 0, 6, b'h', b'a']).unwrap();
    assert_eq!(b.try_recv_bytes().unwrap(), None);
    // What arrived is taken in: the handle has nothing more, and no whole message is buffered.
    assert!(wait(&[&b], Some(Duration::ZERO)).unwrap().is_empty());
    raw.write_all(b"lf!").unwrap();
    assert_eq!(b.try_recv_bytes().unwrap(), None);
    raw.write_all(b"!").unwrap();
    assert_eq!(b.try_recv_bytes().unwrap().as_deref(), Some(&b"half!!"[..]));
    // A large message trickling in is gathered as it comes.
    let big = vec![9u8; 300_000];
    let writer = thread::spawn(move || {
        a.send_bytes(&big).unwrap();
        a
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        if let Some(m) = b.try_recv_bytes().unwrap() {
            break m;
        }
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(got.len(), 300_000);
    drop(writer.join().unwrap());
    drop(raw);
    assert!(matches!(b.try_recv_bytes(), Err(Error::Eof)));
}

#[cfg(unix)]
#[test]
fn read_and_write_timeouts_bound_the_whole_call() {
    let (mut a, mut b) = pipe().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(200)));
    let start = Instant::now();
    assert!(matches!(
        b.recv_bytes(),
        Err(Error::Timeout {
            operation: Operation::Read
        })
    ));
    assert!(start.elapsed() < Duration::from_secs(2));
    // Part of a message arrives; the timeout still holds, and the part is kept.
    use std::os::fd::AsFd;
    let fd = a.as_fd().try_clone_to_owned().unwrap();
    let mut raw = std::os::unix::net::UnixStream::from(fd);
    raw.write_all(&[0, 0, 0, 3, b'a']).unwrap();
    assert!(matches!(
        b.recv_bytes(),
        Err(Error::Timeout {
            operation: Operation::Read
        })
    ));
    raw.write_all(b"bc").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"abc");
    // Nobody reads: sends fill the socket buffer, then time out.
    a.set_write_timeout(Some(Duration::from_millis(200)));
    let start = Instant::now();
    let chunk = vec![0u8; 1 << 16];
    let err = loop {
        if let Err(e) = a.send_bytes(&chunk) {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never filled");
    };
    assert!(
        matches!(
            err,
            Error::Timeout {
                operation: Operation::Write
            }
        ),
        "{err:?}"
    );
}

#[test]
fn duration_max_is_a_timeout_like_any_other() {
    let max = Some(Duration::MAX);
    let (mut a, b) = pipe().unwrap();
    a.send(&1u8).unwrap();
    assert!(b.poll(max).unwrap());
    assert_eq!(wait(&[&b], max).unwrap(), [0]);
    let mut set = WaitSet::new().unwrap();
    let key = set.insert(b).unwrap();
    assert_eq!(set.wait(max).unwrap(), [key]);
    let mut b = set.remove(key).unwrap();
    b.set_read_timeout(max);
    a.set_write_timeout(max);
    assert_eq!(b.recv::<u8>().unwrap(), 1);
    a.send(&2u8).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), 2);
    // Listener and client.
    let mut l = Listener::builder()
        .address("127.0.0.1:0")
        .authkey(KEY)
        .accept_timeout(max)
        .handshake_timeout(max)
        .bind()
        .unwrap();
    let address = format!("127.0.0.1:{}", l.address().socket_addr().unwrap().port());
    let client = thread::spawn(move || {
        let mut c = Client::builder(address.as_str())
            .authkey(KEY)
            .timeout(max)
            .handshake_timeout(max)
            .connect()
            .unwrap();
        c.send(&"hi").unwrap();
    });
    let mut conn = l.accept().unwrap();
    assert_eq!(conn.recv::<String>().unwrap(), "hi");
    client.join().unwrap();
}

#[test]
fn a_listener_is_ready_only_when_accept_would_return_at_once() {
    let mut l = Listener::builder()
        .address("127.0.0.1:0")
        .authkey(KEY)
        .accept_timeout(Some(Duration::from_secs(10)))
        .bind()
        .unwrap();
    let addr = l.address().socket_addr().unwrap();
    // A connected client that never authenticates does not make the listener ready.
    let _silent = TcpStream::connect(addr).unwrap();
    assert!(
        wait(&[&l], Some(Duration::from_millis(300)))
            .unwrap()
            .is_empty()
    );
    assert_eq!(l.pending_handshakes(), 1);
    // A good client does, and accept then returns at once.
    let address = format!("127.0.0.1:{}", addr.port());
    let good = thread::spawn(move || {
        let mut c = Client::builder(address.as_str())
            .authkey(KEY)
            .connect()
            .unwrap();
        c.send(&"in").unwrap();
        c
    });
    assert_eq!(wait(&[&l], Some(Duration::from_secs(10))).unwrap(), [0]);
    let start = Instant::now();
    let mut conn = l.accept().unwrap();
    assert!(start.elapsed() < Duration::from_millis(50));
    assert_eq!(conn.recv::<String>().unwrap(), "in");
    drop(good.join().unwrap());
    // The same in a WaitSet that owns the listener.
    let mut set: WaitSet<Listener> = WaitSet::new().unwrap();
    let key = set.insert(l).unwrap();
    assert!(
        set.wait(Some(Duration::from_millis(300)))
            .unwrap()
            .is_empty()
    );
    let address = format!("127.0.0.1:{}", addr.port());
    let good = thread::spawn(move || {
        Client::builder(address.as_str())
            .authkey(KEY)
            .connect()
            .unwrap()
    });
    assert_eq!(set.wait(Some(Duration::from_secs(10))).unwrap(), [key]);
    let start = Instant::now();
    drop(set.get_mut(key).unwrap().accept().unwrap());
    assert!(start.elapsed() < Duration::from_millis(50));
    drop(good.join().unwrap());
}
