#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod connection;
mod error;
mod into_address;
mod listener;
mod message_frames;
mod pipe;
#[cfg(unix)]
pub mod process;
mod wait;

/// The address layer (`conn-address`): families, addresses, `arbitrary_address`.
pub use conn_address as address;
/// The authentication layer (`conn-auth`): `deliver_challenge`, `answer_challenge`, policies.
pub use conn_auth as auth;
/// The framing layer (`conn-framing`): headers, decoder, codecs.
pub use conn_framing as framing;
/// The pickle layer (`conn-pickle`): Python values, decoding limits, serde for pickles.
pub use conn_pickle as pickle;
/// The transport layer (`conn-transport`): streams, listeners, readiness.
pub use conn_transport as transport;

pub use client::{Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT};
pub use conn_address::AddressError;
pub use conn_address::{Address, Family, arbitrary_address, default_family, families};
pub use conn_auth::{AuthError, HandshakeError};
pub use conn_auth::{AuthKey, Digest, Policy, answer_challenge, deliver_challenge};
#[cfg(feature = "postcard")]
pub use conn_framing::Postcard;
pub use conn_framing::{Codec, Pickle, PickleProtocol};
pub use conn_framing::{CodecError, CodecOp, FrameError};
pub use conn_pickle::Value as PyValue;
pub use conn_transport::{Handle, OwnedHandle, Sentinel};
pub use connection::{Connection, IntoHandleError, Receiver, Sender};
pub use error::{Error, Operation, Result};
pub use into_address::IntoAddress;
pub use listener::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_PENDING_HANDSHAKES, KEPT_HANDSHAKE_FAILURES, Listener,
    ListenerBuilder,
};
pub use pipe::{Pipe, pipe, pipe_simplex};
pub use wait::{Endpoint, InsertError, WaitKey, WaitSet, Waitable, wait};

/// The codec connections use unless told otherwise: [`Pickle`], what CPython's `send()` /
/// `recv()` speak. Unpickling here never runs code.
pub type DefaultCodec = Pickle;

/// What may cross threads, checked at compile time: a connection, its halves, a listener and a
/// wait set can be moved to another thread, and shared where `&self` methods suffice.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Connection>();
    send_sync::<Sender>();
    send_sync::<Receiver>();
    send_sync::<Listener>();
    send_sync::<Endpoint>();
    send_sync::<WaitSet<Connection>>();
    send_sync::<WaitSet<Endpoint>>();
    send_sync::<Error>();
    send_sync::<ClientBuilder>();
    send_sync::<ListenerBuilder>();
};
