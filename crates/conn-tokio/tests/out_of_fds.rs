//! The async listener in a process out of file descriptors: a serve loop that logs the error and
//! goes on must not spin, and clients are served once descriptors are freed. Alone in its test
//! binary, because it lowers the whole process's `RLIMIT_NOFILE` (with util-linux's `prlimit`).

#![cfg(target_os = "linux")]

// The descriptor helpers of the blocking listener's same test, one copy for both.
#[path = "../../conn/tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{cpu_time, highest_open_fd, set_nofile};
use conn_tokio::{Error, Listener};

#[test]
fn an_async_serve_loop_out_of_fds_backs_off_and_recovers() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut listener = Listener::bind("127.0.0.1:0").unwrap();
        let addr = listener.address().socket_addr().unwrap();
        let stat = File::open("/proc/self/stat").unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let limit = highest_open_fd() + 16;
        set_nofile(&format!("{limit}:{limit}"));
        let mut hog = Vec::new();
        while let Ok(f) = File::open("/dev/null") {
            hog.push(f);
            assert!(hog.len() < 10_000);
        }
        let cpu_before = cpu_time(&stat);
        let start = Instant::now();
        let mut errors = 0;
        while start.elapsed() < Duration::from_secs(1) {
            match tokio::time::timeout(Duration::from_secs(5), listener.accept()).await {
                Ok(Err(Error::OutOfFds(_))) => errors += 1,
                other => panic!("accept with no fd left: {other:?}"),
            }
        }
        let cpu = cpu_time(&stat) - cpu_before;
        assert!(errors >= 1);
        assert!(errors < 20, "{errors} accept errors in a second");
        assert!(
            cpu < Duration::from_millis(200),
            "{cpu:?} of CPU in a second"
        );
        drop(hog);
        let mut conn = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
        client.write_all(&[0, 0, 0, 2, b'h', b'i']).unwrap();
        assert_eq!(conn.recv_bytes().await.unwrap(), b"hi");
        conn.send_bytes(b"ok").await.unwrap();
        let mut reply = [0u8; 6];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, &[0, 0, 0, 2, b'o', b'k']);
    });
}
