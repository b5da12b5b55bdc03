//! The digests CPython's handshake allows, their `{name}` prefixes, and HMAC over each.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::AuthError;
use crate::mac::hmac;

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

    /// HMAC of `message` under `key` with this digest (Python: `hmac.new(key, message,
    /// name).digest()`). The MAC's buffer, like every value derived from the key on the way,
    /// is wiped when dropped.
    pub fn hmac(self, key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
        match self {
            Self::Md5 => hmac::<md5::Md5>(key, message),
            Self::Sha256 => hmac::<sha2::Sha256>(key, message),
            Self::Sha384 => hmac::<sha2::Sha384>(key, message),
            Self::Sha3_256 => hmac::<sha3::Sha3_256>(key, message),
            Self::Sha3_384 => hmac::<sha3::Sha3_384>(key, message),
        }
    }

    /// Checks `mac` against the HMAC of `message` in constant time (Python:
    /// `hmac.compare_digest`).
    pub fn verify(self, key: &[u8], message: &[u8], mac: &[u8]) -> bool {
        let expected = self.hmac(key, message);
        constant_time_eq(&expected, mac)
    }
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
        // RFC 4231 test case 6: a 131-byte key, longer than SHA-256's and MD5's 64-byte block.
        assert_eq!(
            hex(&Digest::Sha256.hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        for &d in Digest::ALL {
            assert_eq!(d.hmac(b"k", b"m").len(), d.output_len(), "{d}");
        }
    }

    #[test]
    fn every_digest_agrees_with_pythons_hmac() {
        // From CPython 3.11: hmac.new(key, msg, name).hexdigest(). The 200-byte key is longer
        // than every block (64, 128 and SHA3-256's 136 bytes), so each one hashes it first; the
        // empty key and message are the other edge.
        let long_key: Vec<u8> = (0..200).collect();
        let long = [
            ("md5", "e9d173d07e5a0ba2be8d70e82998ece3"),
            (
                "sha256",
                "d7fff1e23924e9f5cc72adc887677025ea8345afd55a833e012f2c5c890464e1",
            ),
            (
                "sha3_256",
                "7c161bbca57f7706a55f993fe3d371ce1f4d85e698c11ab9f2ca8661beb01f98",
            ),
            (
                "sha384",
                "fa895894e95836144a41056183dcd93ebc902ad4c67cd3d41b96ba526e08c99bae52c747ef8ed3e4ca1cfcd049567841",
            ),
            (
                "sha3_384",
                "124f15d298bc3b3e027c738a3ac7d65555ff08661416806580512adbbbcf8b3c5b575eb6061775672853ad72e04bbb17",
            ),
        ];
        let jefe = [
            (
                "sha3_256",
                "c7d4072e788877ae3596bbb0da73b887c9171f93095b294ae857fbe2645e1ba5",
            ),
            (
                "sha3_384",
                "f1101f8cbf9766fd6764d2ed61903f21ca9b18f57cf3e1a23ca13508a93243ce48c045dc007f26a21b3f5e0e9df4c20a",
            ),
        ];
        let empty = [
            ("md5", "74e6f7298a9c2d168935f58c001bad88"),
            (
                "sha256",
                "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad",
            ),
            (
                "sha3_256",
                "e841c164e5b4f10c9f3985587962af72fd607a951196fc92fb3a5251941784ea",
            ),
        ];
        for (name, want) in long {
            let d: Digest = name.parse().unwrap();
            assert_eq!(
                hex(&d.hmac(&long_key, b"long keys are hashed first")),
                want,
                "{d}"
            );
        }
        for (name, want) in jefe {
            let d: Digest = name.parse().unwrap();
            assert_eq!(
                hex(&d.hmac(b"Jefe", b"what do ya want for nothing?")),
                want,
                "{d}"
            );
        }
        for (name, want) in empty {
            let d: Digest = name.parse().unwrap();
            assert_eq!(hex(&d.hmac(b"", b"")), want, "{d}");
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
