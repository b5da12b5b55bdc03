//! conn-tokio's descriptor passing on Unix, wire-compatible with `multiprocessing.reduction`:
//! descriptors both ways between an async and a blocking end in step with the messages around
//! them, and a cancelled descriptor receive that loses nothing. Every wait is bounded.

#![cfg(unix)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::current_thread;
use conn_tokio::{Connection, Error};
use tokio::time::timeout;

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
