//! `Policy`: which digest we challenge with, and the weakest we accept.

use crate::{AuthError, Digest};

/// What a handshake asks for and accepts.
///
/// The default is CPython ≥ 3.12's behaviour: challenge with SHA-256 and accept any allowed
/// digest the peer picks, MD5 included (what ≤ 3.11 peers speak). [`Policy::strict`] refuses MD5,
/// which locks out CPython ≤ 3.11 peers in both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    challenge_digest: Digest,
    minimum_digest: Digest,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            challenge_digest: Digest::Sha256,
            minimum_digest: Digest::Md5,
        }
    }
}

impl Policy {
    /// CPython ≥ 3.12's policy: challenge with SHA-256, accept anything allowed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Challenge with SHA-256 and refuse MD5 (legacy peers cannot authenticate).
    pub fn strict() -> Self {
        Self {
            challenge_digest: Digest::Sha256,
            minimum_digest: Digest::Sha256,
        }
    }

    /// Sets the digest our challenges ask for (CPython's `deliver_challenge(..., digest_name)`).
    pub fn challenge_digest(mut self, digest: Digest) -> Self {
        self.challenge_digest = digest;
        self
    }

    /// Sets the weakest digest accepted, in the order of [`Digest`].
    pub fn minimum_digest(mut self, digest: Digest) -> Self {
        self.minimum_digest = digest;
        self
    }

    /// The digest our challenges ask for.
    pub fn challenge(&self) -> Digest {
        self.challenge_digest
    }

    /// The weakest digest accepted.
    pub fn minimum(&self) -> Digest {
        self.minimum_digest
    }

    /// `Ok` if `digest` is acceptable.
    pub fn check(&self, digest: Digest) -> Result<(), AuthError> {
        if digest >= self.minimum_digest {
            Ok(())
        } else {
            Err(AuthError::DigestRefused {
                digest,
                minimum: self.minimum_digest,
            })
        }
    }
}
