//! The handshake's messages as pure functions over bytes: making a challenge, answering one,
//! checking an answer. No I/O; `handshake.rs` drives these over a channel.

use std::io;

use crate::{AuthError, AuthKey, Digest, Policy, split_digest_prefix};

/// Prefix of every challenge message (`_CHALLENGE`).
pub const CHALLENGE: &[u8] = b"#CHALLENGE#";
/// The verdict for a correct response (`_WELCOME`).
pub const WELCOME: &[u8] = b"#WELCOME#";
/// The verdict for a wrong response (`_FAILURE`).
pub const FAILURE: &[u8] = b"#FAILURE#";
/// Random bytes in a modern challenge (CPython ≥ 3.12's `MESSAGE_LENGTH`).
pub const MESSAGE_LENGTH: usize = 40;
/// Random bytes in a legacy challenge (CPython ≤ 3.11's `MESSAGE_LENGTH`); also the shortest
/// challenge body a modern peer accepts.
pub const LEGACY_MESSAGE_LENGTH: usize = 20;
/// The longest handshake message either side accepts (CPython's `recv_bytes(256)`).
pub const MAX_HANDSHAKE_MESSAGE: usize = 256;

/// A challenge we sent, kept to check the answer against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `#CHALLENGE#` + body.
    message: Vec<u8>,
}

impl Challenge {
    /// A fresh modern challenge: `#CHALLENGE#{digest}` + 40 bytes from the OS random source.
    pub fn new(digest: Digest) -> io::Result<Self> {
        let mut random = [0u8; MESSAGE_LENGTH];
        getrandom::fill(&mut random).map_err(io::Error::other)?;
        Ok(Self::from_parts(Some(digest), &random))
    }

    /// A challenge with the given random bytes: `Some(digest)` for the modern `{digest}` form,
    /// `None` for the legacy unprefixed form of CPython ≤ 3.11. For tests and known answers;
    /// real challenges come from [`Challenge::new`].
    pub fn from_parts(digest: Option<Digest>, random: &[u8]) -> Self {
        let mut message = CHALLENGE.to_vec();
        if let Some(digest) = digest {
            message.extend_from_slice(&digest.prefix());
        }
        message.extend_from_slice(random);
        Self { message }
    }

    /// The whole message to send.
    pub fn as_bytes(&self) -> &[u8] {
        &self.message
    }

    /// The part the MAC covers: everything after `#CHALLENGE#`, `{digest}` prefix included.
    pub fn body(&self) -> &[u8] {
        &self.message[CHALLENGE.len()..]
    }

    /// Checks the peer's response (CPython's `_verify_challenge`): the peer picks the digest, as
    /// in CPython, subject to `policy`. Returns the digest it used.
    pub fn verify(
        &self,
        key: &AuthKey,
        response: &[u8],
        policy: &Policy,
    ) -> Result<Digest, AuthError> {
        let (named, mac) = split_digest_prefix(response)?;
        let digest = named.unwrap_or(Digest::Md5);
        policy.check(digest)?;
        if mac.len() != digest.output_len() {
            return Err(AuthError::DigestLength {
                digest,
                expected: digest.output_len(),
                got: mac.len(),
            });
        }
        if digest.verify(key.as_bytes(), self.body(), mac) {
            Ok(digest)
        } else {
            Err(AuthError::WrongDigest)
        }
    }
}

/// Answers a challenge message (CPython's `_create_response` after the `#CHALLENGE#` check):
/// a legacy 20-byte body gets a bare 16-byte HMAC-MD5, a `{digest}` body gets `{digest}` + HMAC
/// over the whole body. Returns the response and the digest used.
pub fn respond(
    key: &AuthKey,
    message: &[u8],
    policy: &Policy,
) -> Result<(Vec<u8>, Digest), AuthError> {
    let body = message
        .strip_prefix(CHALLENGE)
        .ok_or(AuthError::NotAChallenge { len: message.len() })?;
    if body.len() < LEGACY_MESSAGE_LENGTH {
        return Err(AuthError::ChallengeTooShort { len: body.len() });
    }
    let (named, _) = split_digest_prefix(body)?;
    match named {
        None => {
            policy.check(Digest::Md5)?;
            Ok((Digest::Md5.hmac(key.as_bytes(), body).to_vec(), Digest::Md5))
        }
        Some(digest) => {
            policy.check(digest)?;
            let mut response = digest.prefix();
            response.extend_from_slice(&digest.hmac(key.as_bytes(), body));
            Ok((response, digest))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn key() -> AuthKey {
        AuthKey::from("secret")
    }

    fn counting(n: u8) -> Vec<u8> {
        (0..n).collect()
    }

    // docs/protocol.md §2.5: computed with CPython's own `_create_response`, authkey b'secret'.

    #[test]
    fn modern_challenge_and_response_known_answer() {
        let challenge = Challenge::from_parts(Some(Digest::Sha256), &counting(40));
        assert_eq!(
            hex(challenge.as_bytes()),
            format!(
                "234348414c4c454e474523{}{}",
                "7b7368613235367d",
                hex(&counting(40))
            )
        );
        assert_eq!(challenge.as_bytes().len(), 59);
        let (response, digest) = respond(&key(), challenge.as_bytes(), &Policy::new()).unwrap();
        assert_eq!(digest, Digest::Sha256);
        assert_eq!(
            hex(&response),
            "7b7368613235367dfc57fbe650d6124b98215e7b5d197d5807ad69982d275a9735ea2d56f1fa6989"
        );
        assert_eq!(
            challenge.verify(&key(), &response, &Policy::new()),
            Ok(Digest::Sha256)
        );
    }

    #[test]
    fn legacy_challenge_and_response_known_answer() {
        let challenge = Challenge::from_parts(None, &counting(20));
        assert_eq!(challenge.as_bytes().len(), 31);
        let (response, digest) = respond(&key(), challenge.as_bytes(), &Policy::new()).unwrap();
        assert_eq!(
            (hex(&response), digest),
            ("7defa9cc46abc3583325d17ccda75190".into(), Digest::Md5)
        );
        assert_eq!(
            challenge.verify(&key(), &response, &Policy::new()),
            Ok(Digest::Md5)
        );
    }

    #[test]
    fn a_legacy_clients_raw_md5_to_a_modern_challenge_is_accepted() {
        let challenge = Challenge::from_parts(Some(Digest::Sha256), &counting(40));
        let raw = Digest::Md5.hmac(b"secret", challenge.body());
        assert_eq!(hex(&raw), "8e48d2bb349b4b72b9382999ed5b62eb");
        assert_eq!(
            challenge.verify(&key(), &raw, &Policy::new()),
            Ok(Digest::Md5)
        );
        assert_eq!(
            challenge.verify(&key(), &raw, &Policy::strict()),
            Err(AuthError::DigestRefused {
                digest: Digest::Md5,
                minimum: Digest::Sha256
            })
        );
    }

    #[test]
    fn every_digest_round_trips_and_reports_itself() {
        for &digest in Digest::ALL {
            let challenge = Challenge::new(digest).unwrap();
            assert_eq!(
                challenge.body().len(),
                digest.name().len() + 2 + MESSAGE_LENGTH
            );
            let (response, used) = respond(&key(), challenge.as_bytes(), &Policy::new()).unwrap();
            assert_eq!(used, digest);
            assert_eq!(
                response.len(),
                digest.name().len() + 2 + digest.output_len()
            );
            assert_eq!(
                challenge.verify(&key(), &response, &Policy::new()),
                Ok(digest)
            );
            assert_eq!(
                challenge.verify(&AuthKey::from("other"), &response, &Policy::new()),
                Err(AuthError::WrongDigest)
            );
        }
    }

    #[test]
    fn server_reactions_to_unusual_responses() {
        // docs/protocol.md §2.4, a server's reactions (observed on CPython 3.12/3.13).
        let challenge = Challenge::from_parts(Some(Digest::Sha256), &counting(40));
        let p = Policy::new();
        let mut md5_prefixed = b"{md5}".to_vec();
        md5_prefixed.extend_from_slice(&Digest::Md5.hmac(b"secret", challenge.body()));
        assert_eq!(challenge.verify(&key(), &md5_prefixed, &p), Ok(Digest::Md5));
        let mut sha3 = b"{sha3_384}".to_vec();
        sha3.extend_from_slice(&Digest::Sha3_384.hmac(b"secret", challenge.body()));
        assert_eq!(challenge.verify(&key(), &sha3, &p), Ok(Digest::Sha3_384));
        let err = challenge.verify(&key(), &[0; 20], &p).unwrap_err();
        assert_eq!(err.to_string(), "expected 'md5' of length 16 got 20");
        assert!(matches!(
            challenge.verify(
                &key(),
                b"{sha512}0123456789012345678901234567890123456789",
                &p
            ),
            Err(AuthError::UnsupportedMessage { .. })
        ));
        assert!(matches!(
            challenge.verify(&key(), b"something bogus", &p),
            Err(AuthError::UnsupportedMessage { len: 15 })
        ));
        let mut short = b"{sha256}".to_vec();
        short.extend([0; 31]);
        assert_eq!(
            challenge.verify(&key(), &short, &p),
            Err(AuthError::DigestLength {
                digest: Digest::Sha256,
                expected: 32,
                got: 31
            })
        );
    }

    #[test]
    fn client_reactions_to_unusual_challenges() {
        // docs/protocol.md §2.4, a client's reactions.
        let p = Policy::new();
        for body_len in [10usize, 16, 19] {
            let mut msg = CHALLENGE.to_vec();
            msg.extend(vec![1; body_len]);
            assert_eq!(
                respond(&key(), &msg, &p),
                Err(AuthError::ChallengeTooShort { len: body_len })
            );
        }
        let mut msg = CHALLENGE.to_vec();
        msg.extend([1; 40]);
        assert!(matches!(
            respond(&key(), &msg, &p),
            Err(AuthError::UnsupportedMessage { len: 40 })
        ));
        let mut msg = CHALLENGE.to_vec();
        msg.extend(b"{sha512}");
        msg.extend([1; 40]);
        assert!(matches!(
            respond(&key(), &msg, &p),
            Err(AuthError::UnsupportedMessage { .. })
        ));
        assert_eq!(
            respond(&key(), &[2; 51], &p),
            Err(AuthError::NotAChallenge { len: 51 })
        );
        // CPython's OtherTest.test_answer_challenge_auth_failure: a bare `#CHALLENGE#`.
        assert_eq!(
            respond(&key(), CHALLENGE, &p),
            Err(AuthError::ChallengeTooShort { len: 0 })
        );
        // A strict policy will not answer a legacy challenge.
        let legacy = Challenge::from_parts(None, &counting(20));
        assert!(matches!(
            respond(&key(), legacy.as_bytes(), &Policy::strict()),
            Err(AuthError::DigestRefused { .. })
        ));
    }

    #[test]
    fn challenges_are_random() {
        let a = Challenge::new(Digest::Sha256).unwrap();
        let b = Challenge::new(Digest::Sha256).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn cpythons_challengeresponse_test() {
        // CPython's ChallengeResponseTest: key b'supadupasecretkey', message prefix +
        // b'is-twenty-bytes-long'; the response starts with the same prefix and verifies.
        let key = AuthKey::from("supadupasecretkey");
        for digest in [None, Some(Digest::Md5), Some(Digest::Sha256)] {
            let challenge = Challenge::from_parts(digest, b"is-twenty-bytes-long");
            let (response, _) = respond(&key, challenge.as_bytes(), &Policy::new()).unwrap();
            let prefix = digest.map(Digest::prefix).unwrap_or_default();
            assert!(response.starts_with(&prefix));
            assert!(challenge.verify(&key, &response, &Policy::new()).is_ok());
        }
    }
}
