//! Addresses as `data/connection_peer.py` (the Python half of the connection interop tests)
//! prints and takes them.

use conn_address::Address;

use crate::hex::{hex, unhex};

/// The address of the peer's listener from the line it prints in `listen` mode: `ADDR inet
/// PORT` (on 127.0.0.1), `ADDR unix PATH` or `ADDR abstract NAMEHEX`. Panics (fails the test)
/// on any other line.
#[expect(
    clippy::panic,
    reason = "test helper: an unexpected line is a failed test"
)]
pub fn listening_at(line: &str) -> Address {
    let mut parts = line.splitn(3, ' ');
    let (Some("ADDR"), Some(kind), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("not an address line: {line}");
    };
    let address = match kind {
        "inet" => value
            .parse::<u16>()
            .ok()
            .map(|port| Address::from(std::net::SocketAddr::from(([127, 0, 0, 1], port)))),
        "unix" => Address::unix_path(value).ok(),
        "abstract" => Address::unix_abstract(unhex(value)).ok(),
        _ => None,
    };
    address.unwrap_or_else(|| panic!("not an address line: {line}"))
}

/// The address argument of the peer's `connect` mode for `address`: a port, a path, or an
/// abstract name in hex. Panics (fails the test) for a pipe name.
#[expect(
    clippy::panic,
    reason = "test helper: an address the peer cannot take is a failed test"
)]
pub fn connect_arg(address: &Address) -> String {
    match address {
        Address::Inet { port, .. } => port.to_string(),
        Address::UnixPath(p) => p.to_string_lossy().into_owned(),
        Address::UnixAbstract(name) => hex(name),
        other => panic!("the peer script cannot connect to {other:?}"),
    }
}
