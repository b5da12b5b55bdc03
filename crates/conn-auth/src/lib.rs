#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod challenge;
mod digest;
mod error;
mod handshake;
mod key;
mod mac;
mod machine;
mod memory;
mod policy;

pub use challenge::{
    CHALLENGE, Challenge, FAILURE, LEGACY_MESSAGE_LENGTH, MAX_HANDSHAKE_MESSAGE, MESSAGE_LENGTH,
    WELCOME, respond,
};
pub use digest::{Digest, MAX_DIGEST_NAME_LEN, split_digest_prefix};
pub use error::{AuthError, HandshakeError};
pub use handshake::{
    Authenticated, Channel, answer_challenge, answer_challenge_with, client_handshake,
    client_handshake_in_turn, deliver_challenge, deliver_challenge_with, server_handshake,
};
pub use key::AuthKey;
pub use machine::{ClientHandshake, Progress, ServerHandshake};
pub use policy::Policy;

/// Helpers for tests and examples, not part of the API: two connected in-memory channels.
#[doc(hidden)]
pub mod test_util {
    pub use crate::memory::{MemoryChannel, MemoryError, memory_pair};
}
