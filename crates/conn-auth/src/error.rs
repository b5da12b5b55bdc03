//! `AuthError` and `HandshakeError`: why a handshake failed, each named after the CPython message
//! it stands for.

use crate::Digest;

/// Why authentication failed.
///
/// All of these are CPython's `multiprocessing.AuthenticationError`; each variant names the
/// message CPython gives. They say little about the bytes the peer sent, on purpose.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Server side: the peer's response is not the HMAC of our challenge under our key, so the
    /// keys differ (CPython: `'digest received was wrong'`).
    #[error("digest received was wrong")]
    WrongDigest,
    /// Client side: the peer answered our response with `#FAILURE#` or anything other than
    /// `#WELCOME#` (CPython: `'digest sent was rejected'`).
    #[error("digest sent was rejected")]
    Rejected,
    /// The first message did not start with `#CHALLENGE#`: the peer is not authenticating, or
    /// speaks another protocol (CPython: `"Protocol error, expected challenge: message=..."`).
    #[error("Protocol error, expected challenge ({len}-byte message)")]
    NotAChallenge {
        /// Length of the message received.
        len: usize,
    },
    /// The challenge carried fewer than 20 random bytes
    /// (CPython: `'challenge too short: N bytes'`).
    #[error("challenge too short: {len} bytes")]
    ChallengeTooShort {
        /// Bytes after `#CHALLENGE#`.
        len: usize,
    },
    /// Neither a legacy length (20-byte challenge, 16-byte response) nor a `{digest}` prefix
    /// naming an allowed digest (CPython: `"unsupported message length, missing digest prefix, or
    /// unsupported digest: message=..."`).
    #[error(
        "unsupported message length, missing digest prefix, or unsupported digest ({len}-byte message)"
    )]
    UnsupportedMessage {
        /// Length of the message received.
        len: usize,
    },
    /// The response names a digest but its MAC has the wrong length
    /// (CPython: `"expected 'md5' of length 16 got 20"`).
    #[error("expected '{digest}' of length {expected} got {got}")]
    DigestLength {
        /// The digest the response named (or md5 for an unprefixed one).
        digest: Digest,
        /// The MAC length of that digest.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A handshake message arrived after the handshake had ended (no CPython equivalent: its
    /// blocking calls never read one).
    #[error("unexpected message after the handshake ended")]
    UnexpectedMessage,
    /// Our policy refuses this digest (no CPython equivalent: CPython ≥ 3.12 accepts MD5 from
    /// anyone; see [`crate::Policy::strict`]).
    #[error("digest '{digest}' is refused by policy (minimum {minimum})")]
    DigestRefused {
        /// The digest the peer asked for or used.
        digest: Digest,
        /// The weakest digest the policy accepts.
        minimum: Digest,
    },
}

/// A handshake failed: either authentication itself, or the channel carrying it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError<E> {
    /// The peer failed (or we failed) authentication.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Sending or receiving a handshake message failed (CPython: `EOFError`, `OSError('bad
    /// message length')` for a message over 256 bytes, connection errors).
    #[error("handshake transport error: {0}")]
    Channel(E),
    /// The OS random source failed while making a challenge.
    #[error("cannot read the OS random source: {0}")]
    Random(std::io::Error),
}
