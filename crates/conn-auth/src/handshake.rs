//! `deliver_challenge` / `answer_challenge` over any [`Channel`], and the two orders a Listener
//! and a Client run them in.

use crate::{
    AuthError, AuthKey, Challenge, Digest, FAILURE, HandshakeError, MAX_HANDSHAKE_MESSAGE, Policy,
    WELCOME, respond,
};

/// What carries handshake messages: anything that sends one whole message and receives one.
///
/// On a stream each message is a frame (`conn-framing`); on a Windows message-mode pipe, one pipe
/// message. [`recv_message`](Self::recv_message) must refuse a message longer than `max_len`
/// (CPython's `OSError('bad message length')`) without reading it into memory.
pub trait Channel {
    /// The carrier's error.
    type Error;

    /// Sends one whole message.
    fn send_message(&mut self, message: &[u8]) -> Result<(), Self::Error>;

    /// Receives one whole message of at most `max_len` bytes.
    fn recv_message(&mut self, max_len: usize) -> Result<Vec<u8>, Self::Error>;

    /// Sends several whole messages back to back. The default sends them one by one; a stream
    /// carrier should override it to write them all at once.
    fn send_messages(&mut self, messages: &[&[u8]]) -> Result<(), Self::Error> {
        messages.iter().try_for_each(|m| self.send_message(m))
    }
}

impl<C: Channel + ?Sized> Channel for &mut C {
    type Error = C::Error;

    fn send_message(&mut self, message: &[u8]) -> Result<(), Self::Error> {
        (**self).send_message(message)
    }

    fn recv_message(&mut self, max_len: usize) -> Result<Vec<u8>, Self::Error> {
        (**self).recv_message(max_len)
    }

    fn send_messages(&mut self, messages: &[&[u8]]) -> Result<(), Self::Error> {
        (**self).send_messages(messages)
    }
}

/// The digests a completed two-way handshake used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The digest the peer answered our challenge with.
    pub peer_digest: Digest,
    /// The digest we answered the peer's challenge with.
    pub our_digest: Digest,
}

/// Challenges the peer and checks its answer (CPython's `deliver_challenge(conn, authkey)`),
/// with the default [`Policy`]: SHA-256 challenge, any allowed answer.
///
/// Sends `#CHALLENGE#{sha256}` + 40 random bytes, receives the response (at most 256 bytes),
/// replies `#WELCOME#` and returns the digest the peer used, or replies `#FAILURE#` and fails.
pub fn deliver_challenge<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
) -> Result<Digest, HandshakeError<C::Error>> {
    deliver_challenge_with(channel, key, &Policy::default())
}

/// [`deliver_challenge`] under `policy` (CPython's third argument, `digest_name`, is
/// [`Policy::challenge_digest`]).
pub fn deliver_challenge_with<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
) -> Result<Digest, HandshakeError<C::Error>> {
    let challenge = Challenge::new(policy.challenge()).map_err(HandshakeError::Random)?;
    channel
        .send_message(challenge.as_bytes())
        .map_err(HandshakeError::Channel)?;
    finish_delivery(channel, key, policy, &challenge)
}

/// The rest of deliver_challenge once `challenge` is sent: receive the response, check it, send
/// the verdict.
fn finish_delivery<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
    challenge: &Challenge,
) -> Result<Digest, HandshakeError<C::Error>> {
    let response = channel
        .recv_message(MAX_HANDSHAKE_MESSAGE)
        .map_err(HandshakeError::Channel)?;
    match challenge.verify(key, &response, policy) {
        Ok(digest) => {
            channel
                .send_message(WELCOME)
                .map_err(HandshakeError::Channel)?;
            Ok(digest)
        }
        Err(auth) => {
            // As CPython: tell the peer, then fail. If the peer has gone, the verdict is lost,
            // and the authentication error is still the one that matters.
            let _ = channel.send_message(FAILURE);
            Err(auth.into())
        }
    }
}

/// Answers the peer's challenge (CPython's `answer_challenge(conn, authkey)`) with the default
/// [`Policy`]. Returns the digest used.
///
/// On a malformed challenge nothing is sent, as in CPython.
pub fn answer_challenge<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
) -> Result<Digest, HandshakeError<C::Error>> {
    answer_challenge_with(channel, key, &Policy::default())
}

/// [`answer_challenge`] under `policy`.
pub fn answer_challenge_with<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
) -> Result<Digest, HandshakeError<C::Error>> {
    answer(channel, key, policy, None)
}

/// answer_challenge, sending `also` (our own challenge) in the same write as our response when
/// given. Nothing is sent if the peer's challenge is malformed.
fn answer<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
    also: Option<&Challenge>,
) -> Result<Digest, HandshakeError<C::Error>> {
    let message = channel
        .recv_message(MAX_HANDSHAKE_MESSAGE)
        .map_err(HandshakeError::Channel)?;
    let (response, digest) = respond(key, &message, policy)?;
    match also {
        None => channel.send_message(&response),
        Some(challenge) => channel.send_messages(&[&response, challenge.as_bytes()]),
    }
    .map_err(HandshakeError::Channel)?;
    let verdict = channel
        .recv_message(MAX_HANDSHAKE_MESSAGE)
        .map_err(HandshakeError::Channel)?;
    if verdict == WELCOME {
        Ok(digest)
    } else {
        Err(AuthError::Rejected.into())
    }
}

/// The server's half of mutual authentication, as `Listener.accept()` runs it: deliver, then
/// answer.
pub fn server_handshake<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
) -> Result<Authenticated, HandshakeError<C::Error>> {
    let peer_digest = deliver_challenge_with(channel, key, policy)?;
    let our_digest = answer_challenge_with(channel, key, policy)?;
    Ok(Authenticated {
        peer_digest,
        our_digest,
    })
}

/// The client's half, as `Client()` runs it: answer, then deliver — pipelined.
///
/// Our response and our own challenge leave together ([`Channel::send_messages`]) instead of
/// waiting for the server's verdict in between. The bytes and their order on the wire are the
/// same as CPython's client sends, and the server reads our challenge right after sending its
/// verdict, so any server works; one round trip is saved. If the server rejects our response,
/// the challenge is simply never read.
pub fn client_handshake<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
) -> Result<Authenticated, HandshakeError<C::Error>> {
    let challenge = Challenge::new(policy.challenge()).map_err(HandshakeError::Random)?;
    let our_digest = answer(channel, key, policy, Some(&challenge))?;
    let peer_digest = finish_delivery(channel, key, policy, &challenge)?;
    Ok(Authenticated {
        peer_digest,
        our_digest,
    })
}
