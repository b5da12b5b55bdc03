//! A listener and connections against peers that attack with raw sockets: descriptors flooded
//! before and after authentication (counted in `/proc/self/fd`), a handshake message cut off by
//! a close, failures that must all be kept, a connection flood over the pending-handshake cap.
//! Loopback and Unix sockets only; every wait is bounded.

// Descriptor counts come from /proc/self/fd (Linux); the cases need Unix sockets.
#![cfg(target_os = "linux")]

mod common;

use common::open_fds;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use conn::transport::Handle;
use conn::transport::os::Stream;
use conn::{Client, Connection, Error, Family, Listener, Pickle};

const KEY: &str = "hostile peers key";

/// The tests count this process's descriptors: they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_listener(max_pending: usize) -> Listener {
    Listener::builder()
        .family(Family::Unix)
        .authkey(KEY)
        .backlog(64)
        .max_pending_handshakes(max_pending)
        .accept_timeout(Some(Duration::from_millis(20)))
        .bind()
        .unwrap()
}

/// Reads one frame from a raw socket (the server's challenge).
fn read_raw_frame(s: &mut &Stream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut header = [0u8; 4];
    s.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    s.read_exact(&mut body).unwrap();
    body
}

/// Accepts for `rounds` short rounds, returning what was accepted.
fn pump(listener: &mut Listener, rounds: usize) -> Vec<Connection> {
    let mut got = Vec::new();
    for _ in 0..rounds {
        if let Ok(c) = listener.accept() {
            got.push(c);
        }
    }
    got
}

/// A client with the key connects (in a thread) and the listener accepts it within 10 s.
fn a_good_client_gets_through(listener: &mut Listener) {
    let good = std::thread::spawn({
        let address = listener.address().clone();
        move || Client::builder(address).authkey(KEY).connect().map(drop)
    });
    let mut accepted = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while accepted.is_empty() && Instant::now() < until {
        accepted = pump(listener, 1);
    }
    assert_eq!(accepted.len(), 1);
    good.join().unwrap().unwrap();
}

#[test]
fn descriptors_sent_before_authentication_are_never_held() {
    let _alone = alone();
    let mut listener = unix_listener(16);
    let attacker = Stream::connect(listener.address(), Some(Duration::from_secs(5))).unwrap();
    // The descriptor it floods with: one of its own, 253 times per byte.
    let bait = std::fs::File::open("/proc/self/stat").unwrap();
    let handles: Vec<Handle<'_>> = (0..253).map(|_| Handle::from(bait.as_fd())).collect();
    let before = open_fds();
    pump(&mut listener, 2);
    let _challenge = read_raw_frame(&mut &attacker);
    // A 40-byte answer announced, sent a byte per sendmsg, each carrying 253 descriptors.
    attacker.send_handles(&[0, 0, 0, 40], &handles).unwrap();
    pump(&mut listener, 2);
    for _ in 0..20 {
        attacker.send_handles(b"x", &handles).unwrap();
        pump(&mut listener, 1);
        let now = open_fds();
        assert!(
            now <= before + 4,
            "{now} descriptors open, {before} before the flood: a stranger's fds were taken in"
        );
    }
    assert_eq!(
        listener.pending_handshakes(),
        1,
        "the attacker still holds only its slot"
    );
    // A CPython-compatible client still gets through.
    a_good_client_gets_through(&mut listener);
}

#[test]
fn unclaimed_descriptors_after_authentication_are_capped_per_connection() {
    let _alone = alone();
    let (raw, ours) = Stream::pair().unwrap();
    let mut conn = Connection::from_stream(ours, Pickle::new());
    conn.set_max_unclaimed_handles(30);
    let bait = std::fs::File::open("/proc/self/stat").unwrap();
    let ten: Vec<Handle<'_>> = (0..10).map(|_| Handle::from(bait.as_fd())).collect();
    let before = open_fds();
    // A 100-byte message whose every byte carries 10 descriptors nobody asked for.
    raw.send_handles(&[0, 0, 0, 100], &ten).unwrap();
    for _ in 0..100 {
        raw.send_handles(b"m", &ten).unwrap();
    }
    conn.set_read_timeout(Some(Duration::from_secs(5)));
    assert_eq!(conn.recv_bytes().unwrap(), vec![b'm'; 100], "no byte lost");
    let held = open_fds() - before;
    assert!(held <= 30, "{held} descriptors held for a cap of 30");
    match conn.recv_handles(1) {
        Err(Error::HandlesDropped {
            dropped,
            truncated: false,
            max: 30,
        }) => assert_eq!(dropped, 1010 - 30),
        other => panic!("{other:?}"),
    }
    // The connection goes on: a real transfer after the report.
    let mut sender = Connection::from_stream(raw, Pickle::new());
    sender.send_handle(Handle::from(bait.as_fd())).unwrap();
    drop(conn.recv_handle().unwrap());
    drop(conn);
    assert!(open_fds() <= before, "closed with the connection");
}

#[test]
fn a_close_mid_handshake_is_noticed_at_once() {
    let _alone = alone();
    // A client that sends part of a handshake message and closes before the listener reads:
    // its handshake ends as truncated within a few rounds, not at the 20 s deadline. Six
    // variants (where the cut falls), three times each.
    for round in 0..3 {
        for cut in [1usize, 3, 4, 5, 20, 43] {
            let mut listener = unix_listener(16);
            let client = Stream::connect(listener.address(), Some(Duration::from_secs(5))).unwrap();
            pump(&mut listener, 1);
            let _challenge = read_raw_frame(&mut &client);
            let mut answer = vec![0, 0, 0, 60];
            answer.extend([b'd'; 60]);
            (&client).write_all(&answer[..cut]).unwrap();
            drop(client);
            std::thread::sleep(Duration::from_millis(20));
            let started = Instant::now();
            while listener.pending_handshakes() > 0 && started.elapsed() < Duration::from_secs(5) {
                pump(&mut listener, 1);
            }
            assert_eq!(
                listener.pending_handshakes(),
                0,
                "round {round}, cut at {cut}: still pending after {:?}",
                started.elapsed()
            );
            let reason = listener.take_handshake_failure().unwrap();
            assert!(
                matches!(reason, Error::Eof | Error::Framing(_)),
                "round {round}, cut at {cut}: {reason:?}"
            );
        }
    }
}

#[test]
fn every_failure_reason_within_one_accept_is_kept() {
    let _alone = alone();
    let mut listener = unix_listener(16);
    let address = listener.address().clone();
    // Two clients with wrong keys, then a good one: one accept call meets both failures.
    let clients = std::thread::spawn(move || {
        for key in ["wrong one", "wrong two"] {
            let err = Client::builder(address.clone()).authkey(key).connect();
            assert!(err.is_err());
        }
        Client::builder(address).authkey(KEY).connect().unwrap()
    });
    listener.set_accept_timeout(Some(Duration::from_secs(10)));
    let _good = listener.accept().unwrap();
    let _client = clients.join().unwrap();
    let reasons = listener.take_handshake_failures();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| matches!(r, Error::Auth(_))),
        "{reasons:?}"
    );
    assert_eq!(listener.handshake_failures(), 2);
    assert_eq!(listener.handshake_failures_dropped(), 0);
}

#[test]
fn failure_reasons_are_bounded_oldest_dropped_and_counted() {
    let _alone = alone();
    let mut listener = unix_listener(256);
    let n = conn::KEPT_HANDSHAKE_FAILURES + 10;
    for _ in 0..n {
        let s = Stream::connect(listener.address(), Some(Duration::from_secs(5))).unwrap();
        // A negative length: a malformed frame, failed at once.
        (&s).write_all(&[0xff, 0xff, 0xff, 0xfe]).unwrap();
        pump(&mut listener, 1);
    }
    let until = Instant::now() + Duration::from_secs(10);
    while listener.handshake_failures() < n as u64 && Instant::now() < until {
        pump(&mut listener, 1);
    }
    assert_eq!(listener.handshake_failures(), n as u64);
    assert_eq!(listener.handshake_failures_dropped(), 10);
    assert_eq!(
        listener.take_handshake_failures().len(),
        conn::KEPT_HANDSHAKE_FAILURES
    );
}

#[test]
fn a_connection_flood_is_capped_and_good_clients_get_through() {
    let _alone = alone();
    const CAP: usize = 8;
    let mut listener = unix_listener(CAP);
    let before = open_fds();
    let flood: Vec<Stream> = (0..40)
        .map(|i| {
            if i % 16 == 15 {
                pump(&mut listener, 1);
            }
            Stream::connect(listener.address(), Some(Duration::from_secs(5))).unwrap()
        })
        .collect();
    pump(&mut listener, 10);
    assert_eq!(listener.pending_handshakes(), CAP);
    assert!(
        listener.handshake_failures() >= 32,
        "{}",
        listener.handshake_failures()
    );
    assert!(matches!(
        listener.take_handshake_failure(),
        Some(Error::TooManyPendingHandshakes { max: CAP })
    ));
    // The listener holds a descriptor per pending client and none for the refused ones (the
    // flood's own 40 sockets are this process's too).
    let held = open_fds() - before;
    assert!(held <= 40 + CAP + 2, "{held}");
    // Refused clients were closed at once: they read end of file.
    let refused = flood
        .iter()
        .filter(|s| {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = [0u8; 256];
            matches!((&**s).read(&mut buf), Ok(0))
        })
        .count();
    assert_eq!(refused, 40 - CAP);
    // The flood goes away; a good client then gets through at once.
    drop(flood);
    a_good_client_gets_through(&mut listener);
}

#[test]
fn a_close_behind_half_a_message_is_noticed_by_waitsets_and_try_recv() {
    let _alone = alone();
    // The peer sends half a frame and closes before anyone reads: the bytes and the end of file
    // arrive together, one edge for an edge-triggered poller.
    for cut in [1usize, 4, 7] {
        let mut frame = vec![0, 0, 0, 10];
        frame.extend([b'z'; 10]);
        // WaitSet: the connection is reported at once, and its receive says truncated.
        let (raw, ours) = Stream::pair().unwrap();
        let mut set = conn::WaitSet::new().unwrap();
        let key = set
            .insert(Connection::from_stream(ours, Pickle::new()))
            .unwrap();
        assert!(set.wait(Some(Duration::ZERO)).unwrap().is_empty());
        (&raw).write_all(&frame[..cut]).unwrap();
        drop(raw);
        let started = Instant::now();
        let ready = set.wait(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(ready, vec![key], "cut at {cut}");
        assert!(started.elapsed() < Duration::from_secs(2), "cut at {cut}");
        let err = set.get_mut(key).unwrap().recv_bytes().unwrap_err();
        assert!(
            matches!(err, Error::Framing(_) | Error::Eof),
            "cut at {cut}: {err:?}"
        );
        // try_recv: the first call after the bytes arrived reports the end, not "not yet".
        let (raw, ours) = Stream::pair().unwrap();
        let mut conn = Connection::from_stream(ours, Pickle::new());
        assert!(conn.try_recv_bytes().unwrap().is_none());
        (&raw).write_all(&frame[..cut]).unwrap();
        drop(raw);
        assert!(conn.try_recv_bytes().is_err(), "cut at {cut}");
    }
}
