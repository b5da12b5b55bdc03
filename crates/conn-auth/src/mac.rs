//! HMAC (RFC 2104) whose key material lives only in buffers that are wiped on drop.
//!
//! Why not the `hmac` crate: its `SimpleHmac` keeps the key XOR'ed with the outer pad in a plain
//! array that is never wiped, and both `SimpleHmac` and `Hmac` build the padded keys in stack
//! temporaries that outlive the call; its `zeroize` feature covers only the hash states. HMAC is
//! two hashes around two XOR'ed copies of the key, so we keep the whole derivation here: the
//! block-sized key, both pads, the inner hash and the expected MAC sit in `Zeroizing` heap
//! buffers, and the hash states are wiped by the digest crates' `zeroize` feature (checked at
//! compile time by `hash_states_wipe_themselves` below).

use sha2::digest::{Digest as Hash, common::BlockSizeUser};
use zeroize::Zeroizing;

/// RFC 2104's inner pad byte.
const IPAD: u8 = 0x36;
/// RFC 2104's outer pad byte.
const OPAD: u8 = 0x5c;

/// HMAC-`H` of `message` under `key`. Every intermediate value derived from the key is wiped
/// before this returns; the MAC itself is returned in a buffer that wipes itself too.
pub(crate) fn hmac<H: Hash + BlockSizeUser>(key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    let block = <H as BlockSizeUser>::block_size();
    // K0: the key, hashed first if longer than a block, then zero-padded to a block.
    let mut pad = Zeroizing::new(vec![0u8; block]);
    if key.len() > block {
        let mut hasher = H::new();
        hasher.update(key);
        let hashed = Zeroizing::new(hasher.finalize().to_vec());
        let n = hashed.len().min(block);
        pad[..n].copy_from_slice(&hashed[..n]);
    } else {
        pad[..key.len()].copy_from_slice(key);
    }

    // Inner: H((K0 ^ ipad) || message).
    pad.iter_mut().for_each(|b| *b ^= IPAD);
    let mut inner = H::new();
    inner.update(&pad[..]);
    inner.update(message);
    let inner = Zeroizing::new(inner.finalize().to_vec());

    // Outer: H((K0 ^ opad) || inner), reusing the pad buffer in place.
    pad.iter_mut().for_each(|b| *b ^= IPAD ^ OPAD);
    let mut outer = H::new();
    outer.update(&pad[..]);
    outer.update(&inner[..]);
    Zeroizing::new(outer.finalize().to_vec())
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
