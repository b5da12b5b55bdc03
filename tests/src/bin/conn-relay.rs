//! A helper process for `tests/tests/children.rs`: connections handed between processes.
//!
//! ```text
//! conn-relay forward   fd 3 is our parent: receive a connection `next`, then a connection
//!                      `payload`, and hand `payload` on over `next`
//! conn-relay use       fd 3 is our parent: receive a connection `prev`, receive `payload`
//!                      over it, send "hello from PID" on `payload`, and wait for "ok"
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

    // SAFETY: the parent passed fd 3 for this connection; nothing else here owns it.
    let mut parent = Connection::<Pickle>::try_from(unsafe { OwnedFd::from_raw_fd(3) }).unwrap();
    parent.set_read_timeout(Some(Duration::from_secs(30)));
    match std::env::args().nth(1).as_deref() {
        Some("forward") => {
            let mut next = parent.recv_connection(Pickle::new()).unwrap();
            let payload = parent.recv_connection(Pickle::new()).unwrap();
            next.send_connection(payload).unwrap();
        }
        Some("use") => {
            let mut prev = parent.recv_connection(Pickle::new()).unwrap();
            prev.set_read_timeout(Some(Duration::from_secs(30)));
            let mut payload = prev.recv_connection(Pickle::new()).unwrap();
            payload.set_read_timeout(Some(Duration::from_secs(30)));
            payload
                .send(&format!("hello from {}", std::process::id()))
                .unwrap();
            assert_eq!(payload.recv::<String>().unwrap(), "ok");
        }
        other => panic!("unknown mode {other:?}"),
    }
}

#[cfg(not(unix))]
fn main() {}
