//! The digests CPython's handshake allows, their `{name}` prefixes, and HMAC over each.

use std::fmt;
use std::str::FromStr;

use hmac::{KeyInit, Mac, SimpleHmac};

use crate::AuthError;

/// The longest digest name inside `{…}` (CPython's `_MAX_DIGEST_LEN`, `len('sha3_256')`).
pub const MAX_DIGEST_NAME_LEN: usize = 8;

/// An HMAC digest allowed in CPython's handshake (`_ALLOWED_DIGESTS`).
///
/// Ordered by strength, weakest first, so a policy can name a minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Digest {
    /// HMAC-MD5: the only digest of CPython ≤ 3.11 (then unprefixed); 16 bytes.
    Md5,
    /// HMAC-SHA256, CPython ≥ 3.12's default; 32 bytes.
    Sha256,
    /// HMAC-SHA3-256; 32 bytes.
    Sha3_256,
    /// HMAC-SHA384; 48 bytes.
    Sha384,
    /// HMAC-SHA3-384; 48 bytes.
    Sha3_384,
}

impl Digest {
    /// Every allowed digest.
    pub const ALL: &'static [Self] = &[
        Self::Md5,
        Self::Sha256,
        Self::Sha3_256,
        Self::Sha384,
        Self::Sha3_384,
    ];

    /// The name CPython writes in the `{…}` prefix (`hashlib` spelling).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha256 => "sha256",
            Self::Sha3_256 => "sha3_256",
            Self::Sha384 => "sha384",
            Self::Sha3_384 => "sha3_384",
        }
    }

    /// The MAC length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha256 | Self::Sha3_256 => 32,
            Self::Sha384 | Self::Sha3_384 => 48,
        }
    }

    /// The digest whose name is `name` (as bytes inside `{…}`), if allowed.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|d| d.name().as_bytes() == name)
    }

    /// `{name}`, the prefix of a modern challenge or response.
    pub fn prefix(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.name().len() + 2);
        out.push(b'{');
        out.extend_from_slice(self.name().as_bytes());
        out.push(b'}');
        out
    }

    /// HMAC of `message` under `key` with this digest.
    pub fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            Self::Md5 => hmac_with::<SimpleHmac<md5::Md5>>(key, message),
            Self::Sha256 => hmac_with::<SimpleHmac<sha2::Sha256>>(key, message),
            Self::Sha384 => hmac_with::<SimpleHmac<sha2::Sha384>>(key, message),
            Self::Sha3_256 => hmac_with::<SimpleHmac<sha3::Sha3_256>>(key, message),
            Self::Sha3_384 => hmac_with::<SimpleHmac<sha3::Sha3_384>>(key, message),
        }
    }

    /// Checks `mac` against the HMAC of `message` in constant time.
    pub fn verify(self, key: &[u8], message: &[u8], mac: &[u8]) -> bool {
        let expected = self.hmac(key, message);
        constant_time_eq(&expected, mac)
    }
}

fn hmac_with<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: longer ones are hashed, shorter ones padded, so
    // `new_from_slice` cannot fail; the fallback keeps this free of panics all the same.
    let mut mac = M::new_from_slice(key).unwrap_or_else(|_| M::new(&Default::default()));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Digest {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s.as_bytes()).ok_or(AuthError::UnsupportedMessage { len: s.len() })
    }
}

/// Splits a challenge body or response into (digest, payload) as CPython's
/// `_get_digest_name_and_payload` does: a message of exactly 20 or 16 bytes is legacy (`None`,
/// meaning unprefixed MD5); otherwise it must start with `{name}` naming an allowed digest.
pub fn split_digest_prefix(message: &[u8]) -> Result<(Option<Digest>, &[u8]), AuthError> {
    if message.len() == crate::LEGACY_MESSAGE_LENGTH || message.len() == Digest::Md5.output_len() {
        return Ok((None, message));
    }
    let unsupported = AuthError::UnsupportedMessage { len: message.len() };
    let Some(rest) = message.strip_prefix(b"{") else {
        return Err(unsupported);
    };
    let window = &rest[..rest.len().min(MAX_DIGEST_NAME_LEN + 1)];
    let close = window
        .iter()
        .position(|&b| b == b'}')
        .ok_or(AuthError::UnsupportedMessage { len: message.len() })?;
    let digest = Digest::from_name(&rest[..close]).ok_or(unsupported)?;
    Ok((Some(digest), &rest[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc_4231_and_2104_vectors() {
        // RFC 4231 test case 2 (SHA-256, SHA-384) and RFC 2104 (MD5): key "Jefe".
        let msg = b"what do ya want for nothing?";
        assert_eq!(
            hex(&Digest::Sha256.hmac(b"Jefe", msg)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&Digest::Md5.hmac(b"Jefe", msg)),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            hex(&Digest::Sha384.hmac(b"Jefe", msg)),
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
        );
        for &d in Digest::ALL {
            assert_eq!(d.hmac(b"k", b"m").len(), d.output_len(), "{d}");
        }
    }

    #[test]
    fn prefixes_parse_like_cpython() {
        let (d, rest) = split_digest_prefix(b"{sha256}0123456789abcdefghij0123").unwrap();
        assert_eq!(
            (d, rest),
            (Some(Digest::Sha256), &b"0123456789abcdefghij0123"[..])
        );
        let (d, _) = split_digest_prefix(b"{sha3_384}x").unwrap();
        assert_eq!(d, Some(Digest::Sha3_384));
        // Legacy lengths win even if the bytes look prefixed.
        assert_eq!(split_digest_prefix(&[b'{'; 20]).unwrap().0, None);
        assert_eq!(split_digest_prefix(&[0; 16]).unwrap().0, None);
        for bad in [
            &b"{sha512}0123456789"[..],
            b"{}abc",
            b"{sha256",
            b"sha256}abc",
            b"{sha256_and_more_than_fits}xyz",
            b"",
            &[7; 40],
        ] {
            assert!(
                matches!(split_digest_prefix(bad), Err(AuthError::UnsupportedMessage { len }) if len == bad.len()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn verify_is_exact() {
        let mac = Digest::Sha256.hmac(b"key", b"msg");
        assert!(Digest::Sha256.verify(b"key", b"msg", &mac));
        assert!(!Digest::Sha256.verify(b"key2", b"msg", &mac));
        assert!(!Digest::Sha256.verify(b"key", b"msg", &mac[..31]));
        let mut flipped = mac.clone();
        flipped[31] ^= 1;
        assert!(!Digest::Sha256.verify(b"key", b"msg", &flipped));
    }

    #[test]
    fn strength_order() {
        assert!(Digest::Md5 < Digest::Sha256);
        assert!(Digest::Sha256 < Digest::Sha384);
        assert_eq!("sha3_256".parse::<Digest>().unwrap(), Digest::Sha3_256);
        assert!("sha512".parse::<Digest>().is_err());
    }
}
