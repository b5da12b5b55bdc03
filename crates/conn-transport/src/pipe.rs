//! `Pipe`: a connected pair of connections in one process (CPython's `Pipe(duplex)`).

use crate::os::Stream;
use conn_framing::Codec;

use crate::{Connection, DefaultCodec, Result};

/// CPython's `multiprocessing.Pipe`: two connected connections, with no authentication (a pipe is
/// trusted by construction).
#[derive(Debug, Clone, Copy)]
pub struct Pipe;

impl Pipe {
    /// `Pipe(duplex)`: with `duplex`, a socketpair whose ends both send and receive; without,
    /// (read-only end, write-only end) of a socketpair used one way (CPython uses an OS pipe:
    /// the ends behave the same, and large messages cross several times faster; see
    /// `docs/decisions.md`). Both kinds get large socket buffers.
    #[expect(
        clippy::new_ret_no_self,
        reason = "mirrors Python's `Pipe(duplex)`, which returns a pair"
    )]
    pub fn new(duplex: bool) -> Result<(Connection, Connection)> {
        Self::with_codec(duplex, DefaultCodec::default())
    }

    /// [`Pipe::new`] with a codec.
    pub fn with_codec<C: Codec + Clone>(
        duplex: bool,
        codec: C,
    ) -> Result<(Connection<C>, Connection<C>)> {
        let (a, b) = if duplex {
            Stream::pair()?
        } else {
            Stream::simplex()?
        };
        Ok((
            Connection::from_stream(a, codec.clone()),
            Connection::from_stream(b, codec),
        ))
    }
}

/// A duplex pipe: CPython's `Pipe(duplex=True)`, `Pipe()`.
pub fn pipe() -> Result<(Connection, Connection)> {
    Pipe::new(true)
}

/// A one-way pipe: CPython's `Pipe(duplex=False)`, returned as (reader, writer).
pub fn pipe_simplex() -> Result<(Connection, Connection)> {
    Pipe::new(false)
}
