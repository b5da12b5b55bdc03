//! Secrets are wiped before their memory goes back to the allocator: a global allocator that
//! looks at every freed block for the key, the key XOR'ed with HMAC's inner and outer pads, and
//! an HMAC computed under the key, while real handshakes run with every digest.
//!
//! (The stack is not watched: temporaries there are beyond what a test can see portably. The
//! hash states that do live there wipe themselves; see `mac.rs`.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use conn_auth::test_util::memory_pair;
use conn_auth::{AuthKey, Digest, Policy, client_handshake, server_handshake};

/// A key no other allocation of this test holds by accident.
const KEY: &[u8; 24] = b"wipe-test: KEY 012345678";
/// How many bytes of a pattern must match for a freed block to count as holding it.
const PROBE: usize = 12;

/// The patterns watched for, filled in by the test before it starts the handshakes.
static mut PATTERNS: [[u8; PROBE]; 4] = [[0; PROBE]; 4];
static WATCHING: AtomicBool = AtomicBool::new(false);
/// Bit i set: pattern i was found in a freed block.
static FOUND: AtomicUsize = AtomicUsize::new(0);

struct Watching;

fn holds(block: &[u8], pattern: &[u8]) -> bool {
    block.windows(pattern.len()).any(|w| w == pattern)
}

// SAFETY: every call is forwarded to `System` unchanged; `dealloc` only reads the block it is
// handed, which is still valid until it is passed on.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCHING.load(Ordering::Acquire) && layout.size() <= 1 << 20 {
            // SAFETY: the block is `layout.size()` initialized-or-not bytes we still own; reading
            // them as u8 is what a wipe check has to do (uninitialized bytes are never a match
            // in practice and this is a test).
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            // SAFETY: PATTERNS is written only before WATCHING is set (Release/Acquire).
            let patterns = unsafe { &*std::ptr::addr_of!(PATTERNS) };
            for (i, pattern) in patterns.iter().enumerate() {
                if holds(block, pattern) {
                    FOUND.fetch_or(1 << i, Ordering::Relaxed);
                }
            }
        }
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

#[test]
fn no_freed_block_holds_the_key_or_anything_derived_from_it() {
    let mac = Digest::Sha256.hmac(KEY, b"a message");
    let mut patterns = [[0u8; PROBE]; 4];
    patterns[0].copy_from_slice(&KEY[..PROBE]);
    for (i, pad) in [(1, 0x36u8), (2, 0x5c)] {
        for (out, k) in patterns[i].iter_mut().zip(KEY) {
            *out = k ^ pad;
        }
    }
    patterns[3].copy_from_slice(&mac[..PROBE]);
    // SAFETY: no other thread reads PATTERNS before WATCHING is set below.
    unsafe { *std::ptr::addr_of_mut!(PATTERNS) = patterns };
    drop(mac);
    WATCHING.store(true, Ordering::Release);

    // The check itself must be able to see a leak: a plain Vec holding the key, freed.
    drop(KEY.to_vec());
    assert_eq!(
        FOUND.swap(0, Ordering::Relaxed),
        1,
        "the watcher saw the plain copy"
    );

    assert!(Digest::Sha256.verify(KEY, b"a message", &Digest::Sha256.hmac(KEY, b"a message")));
    for &digest in Digest::ALL {
        // Each side challenges with `digest`, so both directions use it.
        let policy = Policy::new().challenge_digest(digest);
        let (mut a, mut b) = memory_pair(Duration::from_secs(5));
        let server = thread::spawn(move || {
            server_handshake(&mut a, &AuthKey::from(KEY), &policy).map(|_| ())
        });
        client_handshake(&mut b, &AuthKey::from(KEY), &policy).unwrap();
        server.join().unwrap().unwrap();
    }
    for &digest in Digest::ALL {
        let _ = digest.hmac(KEY, b"each digest once");
        let long: Vec<u8> = KEY.iter().cycle().take(300).copied().collect();
        let _ = digest.hmac(&long, b"a key longer than a block is hashed first");
        drop(AuthKey::from(long)); // the caller's Vec becomes the key's buffer and is wiped
    }
    WATCHING.store(false, Ordering::Release);

    let found = FOUND.load(Ordering::Relaxed);
    let names = [
        "the key",
        "key ^ ipad",
        "key ^ opad",
        "an HMAC under the key",
    ];
    let leaked: Vec<_> = (0..4)
        .filter(|i| found & (1 << i) != 0)
        .map(|i| names[i])
        .collect();
    assert!(leaked.is_empty(), "freed without being wiped: {leaked:?}");
}
