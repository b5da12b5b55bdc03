//! A listener in a process out of file descriptors: the documented serve loop ("log the error
//! and go on") must not spin, and clients are served once descriptors are freed. Alone in its
//! test binary, because it lowers the whole process's `RLIMIT_NOFILE` (with util-linux's
//! `prlimit`, so the test needs no unsafe code).

// Linux: the descriptor limit is set with util-linux `prlimit`, read back from /proc.
#![cfg(target_os = "linux")]

mod common;

use common::{cpu_time, highest_open_fd, set_nofile};

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use conn::{Error, Listener};

#[test]
fn a_serve_loop_out_of_fds_backs_off_and_recovers() {
    let mut listener = Listener::builder()
        .address("127.0.0.1:0")
        .accept_timeout(Some(Duration::from_secs(5)))
        .bind()
        .unwrap();
    let addr = listener.address().socket_addr().unwrap();
    let stat = File::open("/proc/self/stat").unwrap();
    // The client connects before the limit: the kernel completes the connection, and accepting
    // it needs one more descriptor than the process may have.
    let mut client = TcpStream::connect(addr).unwrap();
    let limit = highest_open_fd() + 16;
    set_nofile(&format!("{limit}:{limit}"));
    // Fill every descriptor left.
    let mut hog = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        hog.push(f);
        assert!(hog.len() < 10_000);
    }
    // The serve loop: log and go on, for one second.
    let cpu_before = cpu_time(&stat);
    let start = Instant::now();
    let mut errors = 0;
    while start.elapsed() < Duration::from_secs(1) {
        match listener.accept() {
            Err(Error::OutOfFds(_)) => errors += 1,
            other => panic!("accept with no fd left: {other:?}"),
        }
    }
    let cpu = cpu_time(&stat) - cpu_before;
    // Backing off from 10 ms, doubling: a handful of attempts, not millions.
    assert!(errors >= 1);
    assert!(errors < 20, "{errors} accept errors in a second");
    assert!(
        cpu < Duration::from_millis(200),
        "{cpu:?} of CPU in a second"
    );
    // Descriptors come back: the waiting client is accepted and served (after the backoff).
    drop(hog);
    let mut conn = listener.accept().unwrap();
    client.write_all(&[0, 0, 0, 2, b'h', b'i']).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"hi");
    conn.send_bytes(b"ok").unwrap();
    let mut reply = [0u8; 6];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, &[0, 0, 0, 2, b'o', b'k']);
}
