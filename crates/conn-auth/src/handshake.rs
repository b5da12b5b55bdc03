//! `deliver_challenge` / `answer_challenge` over any [`Channel`], and the two orders a Listener
//! and a Client run them in.

use crate::machine::{ClientHandshake, Progress, ServerHandshake};
use crate::{AuthError, AuthKey, Digest, HandshakeError, MAX_HANDSHAKE_MESSAGE, Policy};

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
    peer_digest: Digest,
    our_digest: Digest,
}

impl Authenticated {
    /// The digest the peer answered our challenge with.
    pub fn peer_digest(&self) -> Digest {
        self.peer_digest
    }

    /// The digest we answered the peer's challenge with.
    pub fn our_digest(&self) -> Digest {
        self.our_digest
    }
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
    let mut m = ServerHandshake::deliver_only(*policy).map_err(HandshakeError::Random)?;
    drive(channel, key, &mut m)?;
    m.peer_digest().ok_or(AuthError::UnexpectedMessage.into())
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
    let mut m = ClientHandshake::answer_only(*policy);
    drive(channel, key, &mut m)?;
    m.our_digest().ok_or(AuthError::UnexpectedMessage.into())
}

/// The server's half of mutual authentication, as `Listener.accept()` runs it: deliver, then
/// answer ([`ServerHandshake`] driven over `channel`).
pub fn server_handshake<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
) -> Result<Authenticated, HandshakeError<C::Error>> {
    let mut m = ServerHandshake::new(*policy).map_err(HandshakeError::Random)?;
    drive(channel, key, &mut m)?;
    authenticated(m.peer_digest(), m.our_digest())
}

/// The client's half, as `Client()` runs it: answer, then deliver — pipelined
/// ([`ClientHandshake`] driven over `channel`): our response and our own challenge leave in one
/// [`Channel::send_messages`]. For TCP, [`client_handshake_in_turn`].
pub fn client_handshake<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
) -> Result<Authenticated, HandshakeError<C::Error>> {
    let mut m = ClientHandshake::new(*policy).map_err(HandshakeError::Random)?;
    drive(channel, key, &mut m)?;
    authenticated(m.peer_digest(), m.our_digest())
}

/// [`client_handshake`] with our challenge sent only after the server's verdict, as CPython's
/// `Client` sends it: what TCP needs (see [`ClientHandshake::in_turn`]).
pub fn client_handshake_in_turn<C: Channel>(
    channel: &mut C,
    key: &AuthKey,
    policy: &Policy,
) -> Result<Authenticated, HandshakeError<C::Error>> {
    let mut m = ClientHandshake::new(*policy)
        .map_err(HandshakeError::Random)?
        .in_turn();
    drive(channel, key, &mut m)?;
    authenticated(m.peer_digest(), m.our_digest())
}

fn authenticated<E>(
    peer: Option<Digest>,
    ours: Option<Digest>,
) -> Result<Authenticated, HandshakeError<E>> {
    match (peer, ours) {
        (Some(peer_digest), Some(our_digest)) => Ok(Authenticated {
            peer_digest,
            our_digest,
        }),
        _ => Err(AuthError::UnexpectedMessage.into()),
    }
}

/// The two machines, for one blocking driver.
pub(crate) trait Machine {
    fn transmit(&mut self) -> Vec<Vec<u8>>;
    fn on_message(&mut self, key: &AuthKey, message: &[u8]) -> Result<Progress, AuthError>;
    fn is_done(&self) -> bool;
}

macro_rules! machine {
    ($($t:ty),*) => {$(
        impl Machine for $t {
            fn transmit(&mut self) -> Vec<Vec<u8>> {
                Self::transmit(self)
            }
            fn on_message(&mut self, key: &AuthKey, message: &[u8]) -> Result<Progress, AuthError> {
                Self::on_message(self, key, message)
            }
            fn is_done(&self) -> bool {
                Self::is_done(self)
            }
        }
    )*};
}

machine!(ServerHandshake, ClientHandshake);

/// Sends what the machine queued (together), receives one message, feeds it; until done. After
/// an authentication error, what the machine queued (`#FAILURE#`) is sent if the peer is still
/// there, and the authentication error is the one returned.
fn drive<C: Channel, M: Machine>(
    channel: &mut C,
    key: &AuthKey,
    m: &mut M,
) -> Result<(), HandshakeError<C::Error>> {
    loop {
        send_all(channel, &m.transmit()).map_err(HandshakeError::Channel)?;
        if m.is_done() {
            return Ok(());
        }
        let message = channel
            .recv_message(MAX_HANDSHAKE_MESSAGE)
            .map_err(HandshakeError::Channel)?;
        if let Err(e) = m.on_message(key, &message) {
            let _ = send_all(channel, &m.transmit());
            return Err(e.into());
        }
    }
}

fn send_all<C: Channel>(channel: &mut C, messages: &[Vec<u8>]) -> Result<(), C::Error> {
    match messages {
        [] => Ok(()),
        [one] => channel.send_message(one),
        many => {
            let slices: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
            channel.send_messages(&slices)
        }
    }
}
