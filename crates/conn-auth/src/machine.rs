//! The handshake as two state machines: messages in, messages out, no I/O and no clock.
//!
//! [`ServerHandshake`] is what `Listener.accept()` runs (deliver a challenge, then answer the
//! client's); [`ClientHandshake`] is what `Client()` runs (answer, then deliver), with our response
//! and our own challenge leaving together. Each also runs one half alone, which is all
//! `deliver_challenge` / `answer_challenge` are. The blocking functions of this crate, a `WaitSet`
//! loop or an async runtime drive the same machines: take [`transmit`](ServerHandshake::transmit)
//! and send it (one write), give each whole message received to
//! [`on_message`](ServerHandshake::on_message), until it says it is done. Messages are at most
//! [`MAX_HANDSHAKE_MESSAGE`](crate::MAX_HANDSHAKE_MESSAGE) bytes: the carrier refuses longer ones
//! before reading them (CPython's `OSError('bad message length')`).

use std::io;

use crate::{AuthError, AuthKey, Challenge, Digest, FAILURE, Policy, WELCOME, respond};

/// Where a handshake stands after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Send what [`transmit`](ServerHandshake::transmit) holds, then wait for the next message.
    Continue,
    /// Authenticated: send what `transmit` holds (the last verdict), then the connection is
    /// the application's.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    /// Our challenge is out; the client's response comes next.
    AwaitResponse,
    /// We accepted the response; the client's challenge comes next.
    AwaitChallenge,
    /// We answered; the client's verdict comes next.
    AwaitVerdict,
    Done,
    Failed,
}

/// The server's side: `deliver_challenge`, then (unless built with
/// [`deliver_only`](Self::deliver_only)) `answer_challenge`.
#[derive(Debug)]
pub struct ServerHandshake {
    state: Server,
    answer_after: bool,
    policy: Policy,
    challenge: Challenge,
    out: Vec<Vec<u8>>,
    peer_digest: Option<Digest>,
    our_digest: Option<Digest>,
}

impl ServerHandshake {
    /// Starts a full server handshake with a fresh challenge (OS random source); the challenge
    /// is ready in [`transmit`](Self::transmit).
    pub fn new(policy: Policy) -> io::Result<Self> {
        Ok(Self::with_challenge(
            policy,
            Challenge::new(policy.challenge())?,
            true,
        ))
    }

    /// Only `deliver_challenge`: done once the client's response is checked and `#WELCOME#`
    /// is queued.
    pub fn deliver_only(policy: Policy) -> io::Result<Self> {
        Ok(Self::with_challenge(
            policy,
            Challenge::new(policy.challenge())?,
            false,
        ))
    }

    /// With a given challenge (known answers and tests); `answer_after` runs the second half.
    #[doc(hidden)]
    pub fn with_challenge(policy: Policy, challenge: Challenge, answer_after: bool) -> Self {
        Self {
            state: Server::AwaitResponse,
            answer_after,
            policy,
            out: vec![challenge.as_bytes().to_vec()],
            challenge,
            peer_digest: None,
            our_digest: None,
        }
    }

    /// The messages to send now, in order, best written together; empties the queue.
    pub fn transmit(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }

    /// Whether messages are waiting in [`transmit`](Self::transmit).
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// Feeds one whole message from the client. An error ends the handshake; after a wrong
    /// response `#FAILURE#` is queued first, as CPython sends it (send it if you can, then drop
    /// the connection).
    pub fn on_message(&mut self, key: &AuthKey, message: &[u8]) -> Result<Progress, AuthError> {
        let result = self.step(key, message);
        if result.is_err() {
            self.state = Server::Failed;
        }
        result
    }

    fn step(&mut self, key: &AuthKey, message: &[u8]) -> Result<Progress, AuthError> {
        match self.state {
            Server::AwaitResponse => match self.challenge.verify(key, message, &self.policy) {
                Ok(digest) => {
                    self.peer_digest = Some(digest);
                    self.out.push(WELCOME.to_vec());
                    if self.answer_after {
                        self.state = Server::AwaitChallenge;
                        Ok(Progress::Continue)
                    } else {
                        self.state = Server::Done;
                        Ok(Progress::Done)
                    }
                }
                Err(e) => {
                    self.out.push(FAILURE.to_vec());
                    Err(e)
                }
            },
            Server::AwaitChallenge => {
                let (response, digest) = respond(key, message, &self.policy)?;
                self.our_digest = Some(digest);
                self.out.push(response);
                self.state = Server::AwaitVerdict;
                Ok(Progress::Continue)
            }
            Server::AwaitVerdict if message == WELCOME => {
                self.state = Server::Done;
                Ok(Progress::Done)
            }
            Server::AwaitVerdict => Err(AuthError::Rejected),
            Server::Done | Server::Failed => Err(AuthError::UnexpectedMessage),
        }
    }

    /// Whether the handshake has succeeded.
    pub fn is_done(&self) -> bool {
        self.state == Server::Done
    }

    /// The digest the client answered our challenge with, once checked.
    pub fn peer_digest(&self) -> Option<Digest> {
        self.peer_digest
    }

    /// The digest we answered the client's challenge with, once answered.
    pub fn our_digest(&self) -> Option<Digest> {
        self.our_digest
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    /// The server's challenge comes first.
    AwaitChallenge,
    /// We answered (and challenged, when pipelined); the server's verdict comes next.
    AwaitVerdict,
    /// Accepted; the server's response to our challenge comes next.
    AwaitResponse,
    Done,
    Failed,
}

/// The client's side: `answer_challenge`, then (unless built with
/// [`answer_only`](Self::answer_only)) `deliver_challenge`, pipelined: our response and our own
/// challenge leave in one write instead of waiting for the verdict in between. The bytes and
/// their order are CPython's client's, so any server works; one round trip is saved, and if the
/// server rejects our response our challenge is simply never read. Over TCP use
/// [`in_turn`](Self::in_turn) (see there).
#[derive(Debug)]
pub struct ClientHandshake {
    state: Client,
    policy: Policy,
    /// Our challenge, when we deliver one.
    challenge: Option<Challenge>,
    out: Vec<Vec<u8>>,
    peer_digest: Option<Digest>,
    our_digest: Option<Digest>,
    /// Our challenge leaves with our response (the default), or after the verdict.
    pipelined: bool,
}

impl ClientHandshake {
    /// Starts a full client handshake with a fresh challenge of our own (OS random source).
    /// Nothing is sent until the server's challenge arrives.
    pub fn new(policy: Policy) -> io::Result<Self> {
        Ok(Self::with_challenge(
            policy,
            Some(Challenge::new(policy.challenge())?),
        ))
    }

    /// Only `answer_challenge`: done when the server welcomes our response.
    pub fn answer_only(policy: Policy) -> Self {
        Self::with_challenge(policy, None)
    }

    /// With a given challenge of ours (known answers and tests); `None` answers only.
    #[doc(hidden)]
    pub fn with_challenge(policy: Policy, challenge: Option<Challenge>) -> Self {
        Self {
            state: Client::AwaitChallenge,
            policy,
            challenge,
            out: Vec::new(),
            peer_digest: None,
            our_digest: None,
            pipelined: true,
        }
    }

    /// Sends our challenge only after the server's `#WELCOME#`, as CPython's `Client` does,
    /// instead of with our response. For TCP to a server that leaves Nagle's algorithm on
    /// (every CPython listener): a pipelined challenge reaches it before its verdict is
    /// acknowledged, so its answer waits for our delayed ACK, about 40 ms on Linux; sent after
    /// the verdict, our challenge carries that ACK. Over Unix sockets and pipes (no Nagle)
    /// pipelining saves a round trip.
    pub fn in_turn(mut self) -> Self {
        self.pipelined = false;
        self
    }

    /// The messages to send now, in order, best written together; empties the queue.
    pub fn transmit(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }

    /// Whether messages are waiting in [`transmit`](Self::transmit).
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// Feeds one whole message from the server. On a malformed challenge nothing is queued, as
    /// in CPython; after a wrong response to our challenge `#FAILURE#` is queued first.
    pub fn on_message(&mut self, key: &AuthKey, message: &[u8]) -> Result<Progress, AuthError> {
        let result = self.step(key, message);
        if result.is_err() {
            self.state = Client::Failed;
        }
        result
    }

    fn step(&mut self, key: &AuthKey, message: &[u8]) -> Result<Progress, AuthError> {
        match self.state {
            Client::AwaitChallenge => {
                let (response, digest) = respond(key, message, &self.policy)?;
                self.our_digest = Some(digest);
                self.out.push(response);
                if let (Some(challenge), true) = (&self.challenge, self.pipelined) {
                    self.out.push(challenge.as_bytes().to_vec());
                }
                self.state = Client::AwaitVerdict;
                Ok(Progress::Continue)
            }
            Client::AwaitVerdict if message == WELCOME => {
                if let Some(challenge) = &self.challenge {
                    if !self.pipelined {
                        self.out.push(challenge.as_bytes().to_vec());
                    }
                    self.state = Client::AwaitResponse;
                    Ok(Progress::Continue)
                } else {
                    self.state = Client::Done;
                    Ok(Progress::Done)
                }
            }
            Client::AwaitVerdict => Err(AuthError::Rejected),
            Client::AwaitResponse => {
                let Some(challenge) = &self.challenge else {
                    return Err(AuthError::UnexpectedMessage);
                };
                match challenge.verify(key, message, &self.policy) {
                    Ok(digest) => {
                        self.peer_digest = Some(digest);
                        self.out.push(WELCOME.to_vec());
                        self.state = Client::Done;
                        Ok(Progress::Done)
                    }
                    Err(e) => {
                        self.out.push(FAILURE.to_vec());
                        Err(e)
                    }
                }
            }
            Client::Done | Client::Failed => Err(AuthError::UnexpectedMessage),
        }
    }

    /// Whether the handshake has succeeded.
    pub fn is_done(&self) -> bool {
        self.state == Client::Done
    }

    /// The digest the server answered our challenge with, once checked.
    pub fn peer_digest(&self) -> Option<Digest> {
        self.peer_digest
    }

    /// The digest we answered the server's challenge with, once answered.
    pub fn our_digest(&self) -> Option<Digest> {
        self.our_digest
    }
}
