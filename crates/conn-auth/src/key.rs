//! `AuthKey`: the shared secret, zeroed on drop and never printed.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The shared secret of a handshake (Python's `authkey`, a `bytes`).
///
/// `Debug` never shows it, its memory is zeroed when dropped (as is every value the handshake
/// derives from it), and `==` takes a time that depends only on the two lengths. An empty key
/// is a valid key, as in CPython ≥ 3.13 (it gives no security: prefer 32 random bytes).
#[derive(Clone)]
pub struct AuthKey(Zeroizing<Vec<u8>>);

impl AuthKey {
    /// A key holding `bytes` (CPython: `authkey=bytes`).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for AuthKey {
    /// Constant-time in the contents (`subtle`): comparing a guess with the key tells nothing
    /// about how many leading bytes matched.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for AuthKey {}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(<redacted>)")
    }
}

impl From<&[u8]> for AuthKey {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }
}

impl<const N: usize> From<&[u8; N]> for AuthKey {
    fn from(bytes: &[u8; N]) -> Self {
        Self::new(&bytes[..])
    }
}

impl From<Vec<u8>> for AuthKey {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<&str> for AuthKey {
    /// The UTF-8 bytes of `text` (Python: `text.encode()`).
    fn from(text: &str) -> Self {
        Self::new(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = AuthKey::from("secret password");
        let shown = format!("{key:?} {:?}", Some(&key));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("redacted"));
        assert_eq!(key.as_bytes(), b"secret password");
        assert!(AuthKey::from(&b""[..]).is_empty());
    }

    #[test]
    fn equality_compares_contents_and_lengths() {
        assert_eq!(AuthKey::from("abc"), AuthKey::from(&b"abc"[..]));
        assert_ne!(AuthKey::from("abc"), AuthKey::from("abd"));
        assert_ne!(AuthKey::from("abc"), AuthKey::from("abcd"));
        assert_ne!(AuthKey::from(""), AuthKey::from("\0"));
        assert_eq!(AuthKey::from(""), AuthKey::from(Vec::new()));
    }
}
