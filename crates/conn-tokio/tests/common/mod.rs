//! What conn-tokio's test files share: the bound on every wait, both runtime flavors, a
//! listener on every address kind this OS has, and a TCP pair of blocking connections.

#![allow(
    dead_code,
    reason = "each test file uses its own part of these helpers"
)]

use std::time::Duration;

use conn_address::{Address, Family};
use conn_tokio::{Error, Listener};

/// The bound on every wait in these tests.
pub(crate) const T: Duration = Duration::from_secs(30);

pub(crate) fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The address kinds of this OS: on Unix TCP v4 and v6, the default family (a Unix path in a
/// private directory) and on Linux an abstract name; on Windows the default family (a named
/// pipe) and TCP. `None` is the default family.
pub(crate) fn addresses() -> Vec<Option<Address>> {
    let mut addresses = vec![None, Some("127.0.0.1:0".parse().unwrap())];
    if cfg!(unix) {
        addresses.push(Some("[::1]:0".parse().unwrap()));
    }
    if cfg!(target_os = "linux") {
        let name = format!(
            "@conn-tokio-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        addresses.push(Some(name.parse().unwrap()));
    }
    addresses
}

/// A listener on each of `addresses`, with `key`; an address this machine lacks (no IPv6
/// loopback) is left out.
pub(crate) fn listeners_on(addresses: Vec<Option<Address>>, key: Option<&str>) -> Vec<Listener> {
    let default_family = if cfg!(windows) {
        Family::Pipe
    } else {
        Family::Unix
    };
    addresses
        .into_iter()
        .filter_map(|address| {
            let mut b = Listener::builder()
                .handshake_timeout(Some(T))
                // The load test's clients may all be authenticating at once (default: 256).
                .max_pending_handshakes(1024)
                .backlog(1024);
            b = match address {
                Some(a) => b.address(a),
                None => b.family(default_family),
            };
            if let Some(k) = key {
                b = b.authkey(k);
            }
            match b.bind() {
                Ok(l) => Some(l),
                // No IPv6 loopback on this machine: the v6 case cannot run.
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AddrNotAvailable => None,
                Err(e) => panic!("bind: {e:?}"),
            }
        })
        .collect()
}

/// A listener on every address kind of this OS (see [`addresses`]).
pub(crate) fn listeners(key: Option<&str>) -> Vec<Listener> {
    listeners_on(addresses(), key)
}

/// A connected TCP pair of blocking connections (no key).
pub(crate) fn tcp_pair() -> (conn_transport::Connection, conn_transport::Connection) {
    let mut l = conn_transport::Listener::bind("127.0.0.1:0").unwrap();
    let ours = conn_transport::Client::connect(l.address().clone()).unwrap();
    (ours, l.accept().unwrap())
}

/// Byte-stream pairs of blocking connections this OS has: a TCP pair, and on Unix `pipe()`'s
/// socketpair (a Windows `pipe()` keeps messages instead).
pub(crate) fn byte_stream_pairs() -> Vec<(conn_transport::Connection, conn_transport::Connection)> {
    let mut pairs = vec![tcp_pair()];
    if cfg!(unix) {
        pairs.push(conn_transport::pipe().unwrap());
    }
    pairs
}
