//! A hash table from object addresses to memo indices, built for the memo's
//! access pattern.
//!
//! Why not a general hash map: a pickler looks up every object it meets and
//! memoizes most containers and strings, so on record-heavy data the table
//! holds hundreds of thousands of entries, far more than the CPU caches. A
//! scattering hash (Fx, SipHash) sends each of those lookups to a random
//! cache line. Objects built one after another sit at neighbouring addresses,
//! and are usually pickled in the same order, so a hash that keeps address
//! order (the address divided by the 16-byte allocation alignment, with the
//! high bits folded in) puts them in neighbouring slots: consecutive lookups
//! touch the same few cache lines. CPython's own memo table hashes addresses
//! the same way for the same reason. Collisions are resolved by linear
//! probing, which keeps them local too, and the load factor stays at most
//! one half so probe runs stay short.

/// An empty slot. Address 0 is never an object's.
const EMPTY: usize = 0;
/// Capacity of the first allocation (a power of two).
const MIN_CAPACITY: usize = 16;

#[derive(Clone, Copy)]
struct Slot {
    key: usize,
    value: usize,
}

const VACANT: Slot = Slot {
    key: EMPTY,
    value: 0,
};

#[derive(Default)]
pub struct PtrTable {
    /// Empty until the first insert; then a power-of-two number of slots.
    slots: Vec<Slot>,
    len: usize,
}

impl PtrTable {
    /// The first slot to probe for `key`: order-preserving within any 16 MiB
    /// region; the fold mixes in the higher bits so regions that are a
    /// multiple of the table size apart do not all start at the same slot.
    #[inline(always)]
    fn home(&self, key: usize) -> usize {
        ((key >> 4) ^ (key >> 24)) & (self.slots.len() - 1)
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline(always)]
    fn find(&self, key: usize) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].key;
            if k == key || k == EMPTY {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// Number of keys.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of slots (for deciding when to give memory back).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The value stored for `key` (a non-null address).
    #[inline]
    pub fn get(&self, key: usize) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let slot = self.slots[self.find(key)];
        (slot.key == key).then_some(slot.value)
    }

    /// Store `value` for `key` (a non-null address); true when the key is new.
    #[inline]
    pub fn insert(&mut self, key: usize, value: usize) -> bool {
        debug_assert_ne!(key, EMPTY);
        // Grow before the load factor passes one half.
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let i = self.find(key);
        let is_new = self.slots[i].key == EMPTY;
        self.slots[i] = Slot { key, value };
        self.len += is_new as usize;
        is_new
    }

    #[cold]
    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(MIN_CAPACITY);
        let old = std::mem::replace(&mut self.slots, vec![VACANT; capacity]);
        for slot in old.into_iter().filter(|s| s.key != EMPTY) {
            let i = self.find(slot.key);
            self.slots[i] = slot;
        }
    }

    /// Remove every key. `keys` should be exactly the keys present: when
    /// they are few compared with the capacity, only their slots are
    /// emptied, so clearing a big, mostly empty table after a small pickle
    /// stays cheap.
    pub fn clear(&mut self, keys: impl ExactSizeIterator<Item = usize>) {
        if self.len == 0 {
            return;
        }
        if keys.len() * 8 < self.slots.len() {
            for key in keys {
                if !self.vacate(key) {
                    break; // not a key after all
                }
            }
        }
        if self.len != 0 {
            self.slots.fill(VACANT);
            self.len = 0;
        }
    }

    /// Empty the slot of `key`; false if it is not found. Slots emptied
    /// before may now sit in the key's probe run, so the search steps over
    /// empty slots instead of stopping at them (bounded by the capacity).
    fn vacate(&mut self, key: usize) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            if self.slots[i].key == key {
                self.slots[i] = VACANT;
                self.len -= 1;
                return true;
            }
            i = (i + 1) & mask;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_and_overwrite() {
        let mut t = PtrTable::default();
        assert_eq!(t.get(0x1000), None);
        assert!(t.insert(0x1000, 7));
        assert!(!t.insert(0x1000, 9));
        assert_eq!(t.get(0x1000), Some(9));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn many_keys_with_colliding_homes() {
        // Addresses that share their home slot (same bits 4.. within the
        // mask) and sequential ones, interleaved.
        let mut t = PtrTable::default();
        let keys: Vec<usize> = (1..5000usize)
            .flat_map(|i| [i << 30, 0x10_0000 + i * 16, 0x7f00_0000_0000 + i * 48])
            .collect();
        for (v, &k) in keys.iter().enumerate() {
            assert!(t.insert(k, v));
        }
        assert_eq!(t.len(), keys.len());
        for (v, &k) in keys.iter().enumerate() {
            assert_eq!(t.get(k), Some(v));
        }
        assert_eq!(t.get(0x10_0008), None);
        assert!(t.capacity() >= 2 * keys.len());
    }

    #[test]
    fn clear_sparse_and_dense() {
        let mut t = PtrTable::default();
        let keys: Vec<usize> = (1..20_000usize).map(|i| i * 32).collect();
        for &k in &keys {
            t.insert(k, k);
        }
        t.clear(keys.iter().copied());
        assert_eq!(t.len(), 0);
        assert!(keys.iter().all(|&k| t.get(k).is_none()));
        // A few keys in a big table: cleared slot by slot.
        let few = [0x40usize, 0x50, 0x1_0000_0040];
        for &k in &few {
            t.insert(k, 1);
        }
        t.clear(few.iter().copied());
        assert_eq!(t.len(), 0);
        assert!(t.slots.iter().all(|s| s.key == EMPTY));
        // Keys sharing a home slot, emptied first-inserted first.
        let home = t.home(0x1000);
        let chain: Vec<usize> = (0x1000..)
            .step_by(16)
            .filter(|&k| t.home(k) == home)
            .take(3)
            .collect();
        for &k in &chain {
            t.insert(k, 2);
        }
        t.clear(chain.iter().copied());
        assert!(t.slots.iter().all(|s| s.key == EMPTY));
        // Wrong keys given: still emptied.
        t.insert(0x2000, 1);
        t.clear([0x3000usize].into_iter());
        assert_eq!(t.len(), 0);
        assert!(t.slots.iter().all(|s| s.key == EMPTY));
        assert!(t.insert(0x40, 3));
        assert_eq!(t.get(0x40), Some(3));
    }
}
