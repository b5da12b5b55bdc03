//! A generational slab: values under keys that are never reused. One type serves the
//! listener's pending handshakes and the [`WaitSet`](crate::WaitSet)'s objects; a key also
//! travels as a poller token, so that a report still queued for a removed value (its handle may
//! live on in a duplicate) never reaches the value now in its slot.

/// A key into a slab: a slot and the generation the slot had when the value went in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    slot: u32,
    generation: u32,
}

impl Key {
    /// The poller token of this key: slot and generation together where `usize` holds both
    /// (on 32-bit targets the slot alone; the generation is then checked nowhere but here).
    /// Never `usize::MAX`, which callers may keep for a token of their own.
    pub fn token(self) -> usize {
        #[cfg(target_pointer_width = "64")]
        {
            ((self.generation as usize) << 32) | self.slot as usize
        }
        #[cfg(not(target_pointer_width = "64"))]
        {
            self.slot as usize
        }
    }

    /// The key a token was made from.
    pub fn from_token(token: usize) -> Self {
        #[cfg(target_pointer_width = "64")]
        {
            Self {
                slot: (token & 0xffff_ffff) as u32,
                generation: (token >> 32) as u32,
            }
        }
        #[cfg(not(target_pointer_width = "64"))]
        {
            Self {
                slot: token as u32,
                generation: u32::MAX,
            }
        }
    }
}

#[derive(Debug)]
struct Slot<T> {
    value: Option<T>,
    generation: u32,
}

/// Values under generational keys, slots reused, keys never.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// The key the next [`insert`](Self::insert) will return (for registering a value's handle
    /// under its token before the value goes in); `None` when every slot a `u32` can number
    /// is taken.
    pub(crate) fn vacant_key(&self) -> Option<Key> {
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => u32::try_from(self.slots.len())
                .ok()
                .filter(|&s| s < u32::MAX)?,
        };
        let generation = self.slots.get(slot as usize).map_or(0, |s| s.generation);
        Some(Key { slot, generation })
    }

    /// Puts `value` in and returns its key (the one [`vacant_key`](Self::vacant_key) said), or
    /// gives the value back when the slab is full.
    pub(crate) fn insert(&mut self, value: T) -> Result<Key, T> {
        let Some(key) = self.vacant_key() else {
            return Err(value);
        };
        if key.slot as usize == self.slots.len() {
            self.slots.push(Slot {
                value: Some(value),
                generation: key.generation,
            });
        } else {
            self.free.pop();
            self.slots[key.slot as usize].value = Some(value);
        }
        self.len += 1;
        Ok(key)
    }

    /// The value under `key`, if the key is current.
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        let slot = self.slots.get(key.slot as usize)?;
        (slot.generation == key.generation)
            .then_some(slot.value.as_ref())
            .flatten()
    }

    /// The value under `key`, mutably, if the key is current.
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        let slot = self.slots.get_mut(key.slot as usize)?;
        (slot.generation == key.generation)
            .then_some(slot.value.as_mut())
            .flatten()
    }

    /// Takes the value under `key` out; the key is spent (its slot's next value gets another).
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.slot as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.slot);
        self.len -= 1;
        Some(value)
    }

    /// How many values are in.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The keys and values, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let key = Key {
                slot: i as u32,
                generation: s.generation,
            };
            s.value.as_ref().map(|v| (key, v))
        })
    }

    /// Takes out every value for which `take` says true, in slot order.
    pub(crate) fn take_where(&mut self, mut take: impl FnMut(&T) -> bool) -> Vec<T> {
        let keys: Vec<Key> = self
            .iter()
            .filter(|(_, v)| take(v))
            .map(|(k, _)| k)
            .collect();
        keys.into_iter().filter_map(|k| self.remove(k)).collect()
    }

    /// Takes every value out; every key is spent.
    pub(crate) fn clear(&mut self) {
        let keys: Vec<Key> = self.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Key, Slab};

    #[test]
    fn keys_are_never_reused_though_slots_are() {
        let mut slab = Slab::default();
        let a = slab.insert("a").unwrap();
        let b = slab.insert("b").unwrap();
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None, "a spent key addresses nothing");
        assert_eq!(slab.vacant_key().map(|k| k.slot), Some(a.slot));
        let c = slab.insert("c").unwrap();
        assert_eq!(c.slot, a.slot, "the slot is reused");
        assert_ne!(c, a, "under another key");
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.get(c), Some(&"c"));
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 2);
        slab.clear();
        assert_eq!(slab.len(), 0);
        assert_eq!(slab.get(b), None);
    }

    #[test]
    fn tokens_carry_the_generation() {
        let mut slab = Slab::default();
        let a = slab.insert(1).unwrap();
        slab.remove(a);
        let b = slab.insert(2).unwrap();
        assert_eq!(Key::from_token(b.token()), b);
        if cfg!(target_pointer_width = "64") {
            assert_ne!(a.token(), b.token());
            assert_eq!(slab.get(Key::from_token(a.token())), None);
        }
        assert_ne!(b.token(), usize::MAX);
    }

    #[test]
    fn take_where_takes_only_what_it_is_asked_for() {
        let mut slab = Slab::default();
        let keys: Vec<_> = (0..6).map(|i| slab.insert(i).unwrap()).collect();
        assert_eq!(slab.take_where(|v| v % 2 == 0), vec![0, 2, 4]);
        assert_eq!(slab.len(), 3);
        assert_eq!(slab.get(keys[1]), Some(&1));
        assert_eq!(slab.get(keys[2]), None);
    }
}
