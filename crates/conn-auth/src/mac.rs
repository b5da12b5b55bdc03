//! HMAC (RFC 2104) through the `hmac` crate, with nothing derived from the key left unwiped.
//!
//! `hmac::Hmac<D>` (the block-level form, not `SimpleHmac`) keeps only two hash cores, primed
//! with `K0 ^ ipad` and `K0 ^ opad`; with the `zeroize` feature every core wipes itself on drop
//! (checked at compile time by `hash_states_wipe_themselves` below), and the MAC comes back in
//! a buffer that wipes itself too. `tests/wipe.rs` checks the heap for every intermediate value.

use hmac::{KeyInit, Mac};
use zeroize::Zeroizing;

/// HMAC-`H` of `message` under `key`, in a buffer that wipes itself.
pub(crate) fn hmac<H: hmac::EagerHash>(key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    // Any key length is valid for HMAC: longer keys are hashed first.
    let Ok(mut mac) = <hmac::Hmac<H> as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of every length")
    };
    mac.update(message);
    let out = mac.finalize().into_bytes();
    Zeroizing::new(out.to_vec())
}

#[cfg(test)]
mod tests {
    use zeroize::ZeroizeOnDrop;

    /// Fails to compile if a digest crate's `zeroize` feature is dropped from the build: the
    /// hash states (which hold `K0 ^ ipad` and `K0 ^ opad` after their first block) must wipe
    /// themselves.
    #[test]
    fn hash_states_wipe_themselves() {
        fn wipes<T: ZeroizeOnDrop>() -> &'static str {
            std::any::type_name::<T>()
        }
        let names = [
            wipes::<md5::Md5>(),
            wipes::<sha2::Sha256>(),
            wipes::<sha2::Sha384>(),
            wipes::<sha3::Sha3_256>(),
            wipes::<sha3::Sha3_384>(),
        ];
        assert_eq!(names.len(), 5);
    }
}
