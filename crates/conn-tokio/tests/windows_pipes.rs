//! conn-tokio's Windows named pipes (AF_PIPE, message mode; run under Wine by `cargo xtask
//! windows`): receives cancelled while waiting for a message and part way through long ones
//! read in chunks lose nothing, and pipe clients that connect and say nothing (or half a
//! handshake) delay no one. The cases every OS shares are in `connections.rs`.

#![cfg(windows)]

mod common;

use std::time::Duration;

use common::{T, current_thread, multi_thread};
use conn_address::Family;
use conn_tokio::{Client, Connection, Error, Listener};
use tokio::time::timeout;

/// Receives cancelled at any point (waiting for a message, part way through a long one read
/// in chunks) lose no byte: the next receive returns the whole message.
#[test]
fn a_cancelled_message_receive_loses_nothing() {
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

/// A file handle sent over an async pipe pair as CPython's Windows `send_handle` sends it (a
/// pickled `DupHandle`, duplicated into the receiver: here this process), and one named in
/// another process than the pipe's peer refused.
#[test]
fn handles_travel_as_dup_handle() {
    use std::io::{Read, Write};
    use std::os::windows::io::AsHandle;
    current_thread().block_on(async {
        let (mut x, mut y) = conn_tokio::pipe().unwrap();
        let path = std::env::temp_dir().join(format!("conn-tokio-handle-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"handed")
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        x.send_handle(file.as_handle().into()).await.unwrap();
        let handle = timeout(T, y.recv_handle()).await.unwrap().unwrap();
        let mut got =
            std::fs::File::from(std::os::windows::io::OwnedHandle::try_from(handle).unwrap());
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "handed");
        drop((file, got));
        let _ = std::fs::remove_file(&path);

        // A DupHandle naming a process other than the pipe's peer (here: this one is the
        // peer; pid 4 is another) is refused before any handle is touched.
        x.send_bytes(&conn_transport::sharing::wire::handle_pickle(8, 2, 4))
            .await
            .unwrap();
        let refused = y.recv_handle().await;
        assert!(matches!(refused, Err(Error::Io(_))), "{refused:?}");
    });
}
