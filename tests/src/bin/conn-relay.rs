//! A helper process for the tests of connections handed between processes
//! (`tests/tests/children.rs`, `tests/tests/handover.rs`). The process key (for the resource
//! sharers) comes from `CONN_TEST_KEY`, in hex.
//!
//! ```text
//! conn-relay forward      fd 3 is our parent: receive a connection `next`, then a connection
//!                         `payload`, hand `payload` on over `next`, and wait until it is claimed
//! conn-relay use          fd 3 is our parent: receive a connection `prev`, receive `payload`
//!                         over it, say "claimed" on `prev`, send "hello from PID" on `payload`,
//!                         and wait for "ok"
//! conn-relay round-trip FD  FD is our (Python) parent: receive a connection, say "hello from
//!                         the rust child" on it, hand it back, and wait until it is claimed
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test peer: any failure fails the test that runs it"
)]

#[cfg(unix)]
fn main() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::time::Duration;

    use conn::{Connection, Pickle};

    let key = std::env::var("CONN_TEST_KEY").expect("CONN_TEST_KEY");
    conn::sharing::set_authkey(conn_tests::hex::unhex(&key));
    let mode = std::env::args().nth(1);
    let fd: i32 = std::env::args()
        .nth(2)
        .map_or(3, |n| n.parse().expect("an fd number"));
    // SAFETY: the parent passed this fd for this connection; nothing else here owns it.
    let mut parent = Connection::<Pickle>::try_from(unsafe { OwnedFd::from_raw_fd(fd) }).unwrap();
    let step = Some(Duration::from_secs(30));
    parent.set_read_timeout(step);
    match mode.as_deref() {
        Some("forward") => {
            let mut next = parent.recv_connection(Pickle::new()).unwrap();
            let payload = parent.recv_connection(Pickle::new()).unwrap();
            next.send_connection(payload).unwrap();
            next.set_read_timeout(step);
            assert_eq!(next.recv::<String>().unwrap(), "claimed");
        }
        Some("use") => {
            let mut prev = parent.recv_connection(Pickle::new()).unwrap();
            prev.set_read_timeout(step);
            let mut payload = prev.recv_connection(Pickle::new()).unwrap();
            prev.send(&"claimed").unwrap();
            payload.set_read_timeout(step);
            payload
                .send(&format!("hello from {}", std::process::id()))
                .unwrap();
            assert_eq!(payload.recv::<String>().unwrap(), "ok");
        }
        Some("round-trip") => {
            let mut handed = parent.recv_connection(Pickle::new()).unwrap();
            assert!(handed.readable() && handed.writable());
            handed.send(&"hello from the rust child").unwrap();
            parent.send_connection(handed).unwrap();
            assert_eq!(parent.recv::<String>().unwrap(), "claimed");
        }
        other => panic!("unknown mode {other:?}"),
    }
}

#[cfg(not(unix))]
fn main() {}
