//! `pipe`: a connected pair in one process (CPython's `Pipe(duplex)`), under tokio.

use conn_framing::{Codec, Pickle};
use conn_transport::os::Stream;
use conn_transport::{Error, Result};

use crate::Connection;
use crate::io::Io;

/// A duplex pair (CPython's `Pipe()`): a socketpair whose ends both send and receive, with large
/// socket buffers. Call it inside a runtime.
pub fn pipe() -> Result<(Connection, Connection)> {
    pair(true, Pickle::default())
}

/// A one-way pair (CPython's `Pipe(duplex=False)`): (read-only end, write-only end).
pub fn pipe_simplex() -> Result<(Connection, Connection)> {
    pair(false, Pickle::default())
}

/// [`pipe`] (`duplex`) or [`pipe_simplex`] with a codec.
pub fn pipe_with_codec<C: Codec + Clone>(
    duplex: bool,
    codec: C,
) -> Result<(Connection<C>, Connection<C>)> {
    pair(duplex, codec)
}

fn pair<C: Codec + Clone>(duplex: bool, codec: C) -> Result<(Connection<C>, Connection<C>)> {
    let (a, b) = if duplex {
        Stream::pair()?
    } else {
        Stream::simplex()?
    };
    let a = Io::new(a).map_err(|(e, _)| Error::Io(e))?;
    let b = Io::new(b).map_err(|(e, _)| Error::Io(e))?;
    let mut a = Connection::from_io(a, codec.clone());
    let mut b = Connection::from_io(b, codec);
    if !duplex {
        a.set_directions(true, false);
        b.set_directions(false, true);
    }
    Ok((a, b))
}
