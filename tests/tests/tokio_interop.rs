//! conn-tokio against CPython 3.6–3.13 (`data/connection_peer.py`): an async listener serving
//! three CPython clients at once on TCP, a Unix path and (Linux) an abstract name, and an async
//! client against CPython's `Listener` on each, and descriptors both ways with
//! `multiprocessing.reduction`. Python 2 is left out: conn pickles with protocol 4.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conn_address::Family;
use conn_tests::harness::{self, per_python};
use conn_tests::hex::hex;
use conn_tests::peer::{connect_arg, listening_at};
use conn_tests::python::{Python, PythonPeer};
use conn_tokio::{Client, Connection, Listener};
use tokio::time::timeout;

const SCRIPT: &str = include_str!("../data/connection_peer.py");
const STEP: Duration = Duration::from_secs(60);
const KEY: &[u8] = b"async key";
/// Numbers the abstract names of this process's listeners.
static NAMES: AtomicUsize = AtomicUsize::new(0);

/// The families of this OS, as the peer script names them.
fn families(py: &Python) -> Vec<&'static str> {
    let mut out = vec!["inet", "unix"];
    // The script names an abstract listener with time.time_ns (3.7+).
    if cfg!(target_os = "linux") && py.at_least(3, 7) {
        out.push("abstract");
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One conversation with the peer's command loop: objects and bytes echoed, then goodbye.
async fn talk(conn: &mut Connection, who: &str) {
    let value = (who.to_owned(), vec![1_i64, 2, 3], 2.5_f64);
    conn.send(&("echo_obj",)).await.unwrap();
    conn.send(&value).await.unwrap();
    let back: (String, Vec<i64>, f64) = conn.recv().await.unwrap();
    assert_eq!(back, value, "{who}");
    conn.send(&("echo_bytes",)).await.unwrap();
    let bytes = vec![0x5a_u8; 70_000];
    conn.send_bytes(&bytes).await.unwrap();
    assert_eq!(conn.recv_bytes().await.unwrap(), bytes, "{who}");
    conn.send(&("bye",)).await.unwrap();
}

fn finish(mut peer: PythonPeer, what: &str) {
    assert_eq!(peer.line(STEP).unwrap(), "DONE", "{what}");
    peer.finish(STEP).unwrap();
}

fn async_listener_serves_three_python_clients_at_once(py: &Python) {
    runtime().block_on(async {
        for family in families(py) {
            let builder = Listener::builder().authkey(KEY);
            let mut listener = match family {
                "inet" => builder.address("127.0.0.1:0"),
                "unix" => builder.family(Family::Unix),
                // One name per listener: the versions' cases run at once in this process.
                _ => builder.address(
                    format!(
                        "@conn-tokio-py-{}-{}",
                        std::process::id(),
                        NAMES.fetch_add(1, Ordering::Relaxed)
                    )
                    .as_str(),
                ),
            }
            .bind()
            .unwrap();
            let where_ = connect_arg(listener.address());
            let peers: Vec<PythonPeer> = (0..3)
                .map(|_| {
                    py.spawn(SCRIPT, &["connect", family, &where_, &hex(KEY)])
                        .unwrap()
                })
                .collect();
            let mut served = tokio::task::JoinSet::new();
            for i in 0..3 {
                let mut conn = timeout(STEP, listener.accept()).await.unwrap().unwrap();
                let who = format!("{py} {family} client {i}");
                served.spawn(async move { talk(&mut conn, &who).await });
            }
            while let Some(done) = timeout(STEP, served.join_next()).await.unwrap() {
                done.unwrap();
            }
            for peer in peers {
                finish(peer, family);
            }
            listener.close().await.unwrap();
        }
    });
}

fn async_client_talks_to_python_listener(py: &Python) {
    runtime().block_on(async {
        for family in families(py) {
            let mut peer = py.spawn(SCRIPT, &["listen", family, &hex(KEY)]).unwrap();
            let address = listening_at(&peer.line(STEP).unwrap());
            let mut conn = Client::builder(address)
                .authkey(KEY)
                .connect()
                .await
                .unwrap();
            talk(&mut conn, &format!("{py} {family} listener")).await;
            finish(peer, family);
        }
    });
}

/// Descriptors both ways with CPython's `multiprocessing.reduction` over a Unix socket: one
/// from Python between two messages (it arrives while we read ahead), two to Python
/// (`recvfds(sock, 2)`).
fn async_descriptors_both_ways(py: &Python) {
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, OwnedFd};
    runtime().block_on(async {
        let mut peer = py.spawn(SCRIPT, &["listen", "unix", &hex(KEY)]).unwrap();
        let address = listening_at(&peer.line(STEP).unwrap());
        let mut conn = Client::builder(address)
            .authkey(KEY)
            .connect()
            .await
            .unwrap();
        conn.send(&("send_handle",)).await.unwrap();
        assert_eq!(conn.recv_bytes().await.unwrap(), b"before", "{py}");
        let fd = OwnedFd::from(conn.recv_handle().await.unwrap());
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).unwrap();
        assert_eq!(text, "from python", "{py}");
        assert_eq!(conn.recv_bytes().await.unwrap(), b"after", "{py}");

        conn.send(&("recv_handles", 2)).await.unwrap();
        let (r1, mut w1) = std::io::pipe().unwrap();
        let (r2, mut w2) = std::io::pipe().unwrap();
        w1.write_all(b"one").unwrap();
        w2.write_all(b"two").unwrap();
        drop((w1, w2));
        conn.send_handles(&[r1.as_fd().into(), r2.as_fd().into()])
            .await
            .unwrap();
        let got: Vec<serde_bytes::ByteBuf> = conn.recv().await.unwrap();
        assert_eq!(
            got,
            [&b"one"[..], &b"two"[..]].map(serde_bytes::ByteBuf::from),
            "{py}"
        );
        conn.send(&("bye",)).await.unwrap();
        finish(peer, "descriptors");
    });
}

fn main() -> ExitCode {
    harness::main(
        vec![
            per_python(
                "async_listener_serves_three_python_clients_at_once",
                async_listener_serves_three_python_clients_at_once,
            )
            .since(3, 0, "conn pickles with protocol 4"),
            per_python(
                "async_client_talks_to_python_listener",
                async_client_talks_to_python_listener,
            )
            .since(3, 0, "conn pickles with protocol 4"),
            per_python("async_descriptors_both_ways", async_descriptors_both_ways).since(
                3,
                0,
                "conn pickles with protocol 4",
            ),
        ],
        vec![],
    )
}
