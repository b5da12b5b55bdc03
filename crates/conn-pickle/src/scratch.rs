//! Working vectors kept between messages, per thread.
//!
//! A decoder's memo and stack are sized by the message and dropped after it. For a large
//! message they are large blocks, and glibc's malloc hands a large block freed at the top of
//! the heap (or one it mapped) back to the kernel: the next message of that size then faults
//! every page of its memo in again. A connection decodes message after message on one thread,
//! so each working vector is cleared and kept here for the next decode on the same thread,
//! up to [`KEEP_BYTES`]; a larger one is dropped (a rare huge message does not pin its memory
//! to the thread).
//!
//! The value encoder keeps its task stack the same way, so a small message makes no
//! allocation for it.
//!
//! A slot is taken for the length of one decode (or encode) and put back after it; a nested
//! one on the same thread (none today) would find the slot empty and allocate, as before.

use std::cell::Cell;
use std::thread::LocalKey;

/// The largest working vector (its capacity in bytes) a thread keeps between decodes.
pub(crate) const KEEP_BYTES: usize = 1 << 20;

/// A slot for one working vector per thread.
pub(crate) type Slot<T> = LocalKey<Cell<Vec<T>>>;

/// The vector kept in `slot` (empty, with its capacity), or a new one.
pub(crate) fn take<T, U>(slot: &'static Slot<T>) -> Vec<U> {
    recycle(slot.try_with(Cell::take).unwrap_or_default())
}

/// Clears `v` and keeps it in `slot` for the next decode, unless it is larger than
/// [`KEEP_BYTES`] (or the thread is ending).
pub(crate) fn give<T, U>(slot: &'static Slot<T>, v: Vec<U>) {
    if v.capacity().saturating_mul(size_of::<U>()) <= KEEP_BYTES {
        let v = recycle(v);
        // A slot being torn down with its thread keeps nothing.
        let _ = slot.try_with(|s| s.set(v));
    }
}

/// `v`'s allocation as an empty vector of another type of the same size and alignment (the
/// memo's entries borrow from one message's bytes, so its type differs per message): the
/// standard library collects an emptied vector's iterator in place. For any other pair of
/// types, or if that ever changes, the result is simply a new vector.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SLOT: Cell<Vec<&'static str>> = const { Cell::new(Vec::new()) };
    }

    #[test]
    fn a_vector_given_back_is_taken_again_empty_with_its_room() {
        let text = String::from("borrowed for one decode");
        let mut v: Vec<&str> = take(&SLOT);
        v.extend(std::iter::repeat_n(text.as_str(), 1000));
        let room = v.capacity();
        give(&SLOT, v);
        drop(text);
        let again: Vec<&str> = take(&SLOT);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), room);
        // Taken: the slot is empty until it is given back.
        assert_eq!(take::<_, &str>(&SLOT).capacity(), 0);
    }

    #[test]
    fn a_vector_larger_than_the_bound_is_not_kept() {
        let big: Vec<&str> = Vec::with_capacity(KEEP_BYTES / size_of::<&str>() + 1);
        give(&SLOT, big);
        assert_eq!(take::<_, &str>(&SLOT).capacity(), 0);
        let kept: Vec<&str> = Vec::with_capacity(KEEP_BYTES / size_of::<&str>());
        give(&SLOT, kept);
        assert_eq!(
            take::<_, &str>(&SLOT).capacity(),
            KEEP_BYTES / size_of::<&str>()
        );
    }
}
