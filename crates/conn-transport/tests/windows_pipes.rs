//! Windows message-mode pipes at the transport level: message boundaries (zero-length and
//! large messages), the listener's instances, busy pipes, and readiness. Run under Wine by
//! `cargo xtask ci` (the `windows` step).
#![cfg(windows)]

use std::thread;
use std::time::Duration;

use conn_address::{Address, Family, arbitrary_address};
use conn_transport::os::{Listener, MessagePart, Stream, wait_readable_many};

const T: Option<Duration> = Some(Duration::from_secs(10));

/// Reads one whole message: its parts until one says it is the last.
fn read_whole(s: &Stream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0; 7000];
    loop {
        match s.read_message(&mut buf, T).unwrap() {
            MessagePart::Data { len, more } => {
                out.extend_from_slice(&buf[..len]);
                if !more {
                    return Some(out);
                }
            }
            MessagePart::End => return None,
        }
    }
}

#[test]
fn pair_keeps_message_boundaries() {
    let (a, b) = Stream::pair().unwrap();
    let sizes = [5usize, 0, 7000, 100_000, 0, 3];
    let sender = thread::spawn(move || {
        for (i, n) in sizes.iter().enumerate() {
            a.write_message(&vec![i as u8; *n], T).unwrap();
        }
        a
    });
    for (i, n) in sizes.iter().enumerate() {
        assert_eq!(read_whole(&b).unwrap(), vec![i as u8; *n], "message {i}");
    }
    drop(sender.join().unwrap());
    assert_eq!(read_whole(&b), None, "EOF after the writer closes");
}

#[test]
fn message_left_counts_the_rest() {
    let (a, b) = Stream::pair().unwrap();
    // A message larger than the pipe's buffer is written when the reader takes it.
    let writer = thread::spawn(move || {
        a.write_message(&[9; 300_000], T).unwrap();
        a
    });
    let mut head = [0; 128];
    assert_eq!(
        b.read_message(&mut head, T).unwrap(),
        MessagePart::Data {
            len: 128,
            more: true
        }
    );
    assert_eq!(b.message_left().unwrap(), 300_000 - 128);
    let mut rest = vec![0; 300_000];
    let mut got = 128;
    while got < 300_000 {
        match b.read_message(&mut rest[got..], T).unwrap() {
            MessagePart::Data { len, .. } => got += len,
            other => panic!("{other:?}"),
        }
    }
    assert!(rest[128..].iter().all(|&x| x == 9));
    drop(writer.join().unwrap());
}

#[test]
fn listener_accepts_clients_and_waits_report_them() {
    let address = arbitrary_address(Family::Pipe).unwrap();
    let listener = Listener::bind(&address, 1).unwrap();
    assert_eq!(
        wait_readable_many(&[listener.handle()], Some(Duration::ZERO)).unwrap(),
        Vec::<usize>::new()
    );
    let client = Stream::connect(&address, T).unwrap();
    assert_eq!(
        wait_readable_many(&[listener.handle()], T).unwrap(),
        vec![0]
    );
    let (server, peer) = listener.accept(T).unwrap();
    assert_eq!(peer, None);
    client.write_message(b"hi", T).unwrap();
    assert_eq!(
        wait_readable_many(&[listener.handle(), server.handle()], T).unwrap(),
        vec![1]
    );
    assert_eq!(read_whole(&server).unwrap(), b"hi");
    assert!(!server.wait_readable(Some(Duration::ZERO)).unwrap());
    // Three clients at once: two find instances, the third waits for accept to make one.
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let address = address.clone();
            thread::spawn(move || {
                let c = Stream::connect(&address, T).unwrap();
                c.write_message(&[i], T).unwrap();
                read_whole(&c)
            })
        })
        .collect();
    let mut servers = Vec::new();
    for _ in 0..3 {
        let (s, _) = listener.accept(T).unwrap();
        let got = read_whole(&s).unwrap();
        s.write_message(&got, T).unwrap();
        servers.push(s);
    }
    let mut echoed: Vec<u8> = clients
        .into_iter()
        .map(|c| c.join().unwrap().unwrap()[0])
        .collect();
    echoed.sort_unstable();
    assert_eq!(echoed, [0, 1, 2]);
}

#[test]
fn a_missing_pipe_is_not_found() {
    let address = Address::Pipe(r"\\.\pipe\conn-no-such-pipe-here".into());
    let err = Stream::connect(&address, T).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
}

/// More handles than one `WaitForMultipleObjects` takes (64): helper threads wait on groups,
/// and the one ready handle is found wherever it sits.
#[test]
fn waits_over_more_than_64_handles() {
    let pairs: Vec<(Stream, Stream)> = (0..150).map(|_| Stream::pair().unwrap()).collect();
    let handles: Vec<_> = pairs.iter().map(|(r, _)| r.handle()).collect();
    let start = std::time::Instant::now();
    assert!(
        wait_readable_many(&handles, Some(Duration::from_millis(200)))
            .unwrap()
            .is_empty()
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    // Ready before the wait, and ready during it.
    pairs[3].1.write_message(b"early", T).unwrap();
    assert_eq!(wait_readable_many(&handles, T).unwrap(), vec![3]);
    assert_eq!(read_whole(&pairs[3].0).unwrap(), b"early");
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(100));
            pairs[140].1.write_message(b"late", T).unwrap();
        });
        assert_eq!(wait_readable_many(&handles, T).unwrap(), vec![140]);
    });
    let mut poller = conn_transport::os::Poller::new().unwrap();
    for (i, h) in handles.iter().enumerate() {
        poller.add(*h, i).unwrap();
    }
    let mut ready = Vec::new();
    poller.wait(&mut ready, T).unwrap();
    assert_eq!(ready.iter().map(|r| r.key()).collect::<Vec<_>>(), vec![140]);
}

/// A process handle is ready when the process exits, and waiting does not take its exit code.
#[test]
fn a_sentinel_is_ready_when_the_process_exits() {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sentinel = conn_transport::Sentinel::of(&child).unwrap();
    assert_eq!(sentinel.pid(), child.id());
    assert!(sentinel.wait_exited(T).unwrap());
    assert_eq!(
        wait_readable_many(&[sentinel.handle()], Some(Duration::ZERO)).unwrap(),
        vec![0]
    );
    assert!(child.wait().unwrap().success());
}

/// A closed pipe listener is gone: clients find no pipe.
#[test]
fn a_closed_listener_is_not_found() {
    let address = arbitrary_address(Family::Pipe).unwrap();
    let listener = Listener::bind(&address, 1).unwrap();
    listener.close().unwrap();
    let err = Stream::connect(&address, T).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
}
