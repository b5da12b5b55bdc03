#![doc = include_str!("../README.md")]
// One `unsafe` call, tokio's fd registration on Unix (io/unix.rs), with its SAFETY note.
#![deny(unsafe_code)]

mod client;
#[cfg(feature = "codec")]
mod codec;
mod connection;
mod handshake;
mod io;
mod listener;
mod pipe;

pub use client::{Client, ClientBuilder};
#[cfg(feature = "codec")]
pub use codec::FrameCodec;
pub use conn_transport::{Error, Operation, Result};
pub use connection::{Connection, Receiver, Sender};
pub use listener::{Listener, ListenerBuilder};
pub use pipe::{pipe, pipe_simplex, pipe_with_codec};

/// What may cross tasks and threads, checked at compile time.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Connection>();
    send_sync::<Sender>();
    send_sync::<Receiver>();
    send_sync::<Listener>();
};
