#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The address layer (`conn-address`): families, addresses, `arbitrary_address`.
pub use conn_address as address;
/// The authentication layer (`conn-auth`): `deliver_challenge`, `answer_challenge`, policies.
pub use conn_auth as auth;
/// The framing layer (`conn-framing`): headers, decoder, codecs.
pub use conn_framing as framing;
/// The pickle layer (`conn-pickle`): Python values, decoding limits, serde for pickles.
pub use conn_pickle as pickle;
/// The same connections under tokio (`conn-tokio`), with the `tokio` feature.
#[cfg(feature = "tokio")]
pub use conn_tokio as tokio;
/// The socket-and-pipe layer (`conn-transport`): connections, listeners, waiting, and its OS
/// layer (`transport::os`: streams, OS listeners, pollers).
pub use conn_transport as transport;

pub use conn_address::AddressError;
pub use conn_address::{Address, Family, arbitrary_address, default_family, families};
pub use conn_auth::{AuthError, HandshakeError};
pub use conn_auth::{AuthKey, Digest, Policy, answer_challenge, deliver_challenge};
pub use conn_framing::Codec;
pub use conn_framing::codecs::*;
pub use conn_framing::{CodecError, CodecOp, FrameError};
pub use conn_pickle::Value as PyValue;
pub use conn_transport::{
    Client, ClientBuilder, Connection, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_PENDING_HANDSHAKES, DefaultCodec, Endpoint, Error, Handle, InsertError,
    IntoAddress, IntoHandleError, KEPT_HANDSHAKE_FAILURES, Listener, ListenerBuilder, Operation,
    OwnedHandle, Pipe, Receiver, Result, Sender, Sentinel, WaitKey, WaitSet, Waitable, pipe,
    pipe_simplex, process, sharing, wait,
};
