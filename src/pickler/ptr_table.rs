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
//!
//! A small table (at most `SCATTER_MAX_CAPACITY` slots, which sit in the L1
//! and L2 caches anyway) scatters instead, by Fibonacci hashing: locality
//! buys nothing there, and the few objects it holds (a record's keys, in
//! non-deterministic mode the only shared objects) are allocated at
//! unrelated addresses whose low bits often coincide, so address order sent
//! two lookups in three past their home slot.

/// An empty slot. Address 0 is never an object's.
const EMPTY: usize = 0;
/// Capacity of the first allocation (a power of two).
const MIN_CAPACITY: usize = 16;
/// Slots tried one after another before the probe starts jumping.
const LINEAR_PROBES: usize = 4;
/// How fast the perturbation hands its higher bits to the probe.
const PERTURB_SHIFT: u32 = 5;
/// Tables up to this many slots (2 KiB) are emptied whole by `clear`.
const FILL_MAX_CAPACITY: usize = 128;
/// Tables up to this many slots scatter their keys (see the module notes).
const SCATTER_MAX_CAPACITY: usize = 1 << 12;
/// 2^64 divided by the golden ratio, odd: Fibonacci hashing's multiplier.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

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
    /// 64 minus log2 of the capacity: Fibonacci hashing keeps the top bits.
    scatter_shift: u32,
}

impl PtrTable {
    /// The first slot to probe for `key`: order-preserving within any 16 MiB
    /// region; the fold mixes in the higher bits so regions that are a
    /// multiple of the table size apart do not all start at the same slot.
    /// In a small table, the top bits of the key times the Fibonacci
    /// multiplier instead.
    #[inline(always)]
    fn home(&self, key: usize) -> usize {
        if self.slots.len() <= SCATTER_MAX_CAPACITY {
            ((key as u64).wrapping_mul(FIBONACCI) >> self.scatter_shift) as usize
        } else {
            ((key >> 4) ^ (key >> 24)) & (self.slots.len() - 1)
        }
    }

    /// The probe sequence of `key`: its home slot, the next few, then jumps
    /// that soon depend on every bit of the key and, once the perturbation
    /// is spent, run through every slot (`i -> 5 i + 1` has full period
    /// modulo a power of two).
    #[inline(always)]
    fn probes(&self, key: usize) -> impl Iterator<Item = usize> {
        let mask = self.slots.len() - 1;
        let home = self.home(key);
        let mut i = home + LINEAR_PROBES - 1;
        let mut perturb = key >> 4;
        (0..LINEAR_PROBES)
            .map(move |k| (home + k) & mask)
            .chain(std::iter::from_fn(move || {
                i = i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb);
                perturb >>= PERTURB_SHIFT;
                Some(i & mask)
            }))
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline(always)]
    fn find(&self, key: usize) -> usize {
        for i in self.probes(key) {
            let k = self.slots[i].key;
            if k == key || k == EMPTY {
                return i;
            }
        }
        unreachable!("a probe sequence never ends")
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
    #[inline(always)]
    pub fn get(&self, key: usize) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        // The home slot inline (most lookups end there), the probe out of line.
        let home = self.slots[self.home(key)];
        if home.key == key {
            return Some(home.value);
        }
        if home.key == EMPTY {
            return None;
        }
        self.get_probing(key)
    }

    #[inline(never)]
    fn get_probing(&self, key: usize) -> Option<usize> {
        let slot = self.slots[self.find(key)];
        (slot.key == key).then_some(slot.value)
    }

    /// Store `value` for `key` (a non-null address); true when the key is new.
    #[inline]
    pub fn insert(&mut self, key: usize, value: usize) -> bool {
        debug_assert_ne!(key, EMPTY);
        // Grow before the load factor passes one half (a quarter while the
        // table scatters: a few more empty slots of cache-resident memory
        // keep a record's keys in their home slots).
        let load_shift = if self.slots.len() <= SCATTER_MAX_CAPACITY {
            2
        } else {
            1
        };
        if (self.len + 1) << load_shift > self.slots.len() {
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
        self.scatter_shift = 64 - capacity.trailing_zeros();
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
        // (A table of up to `FILL_MAX_CAPACITY` slots is filled whatever
        // the number of keys: that is a few vector stores, where emptying
        // the slots of a small dict's six keys one by one cost twice as much.)
        if keys.len() * 8 < self.slots.len() && self.slots.len() > FILL_MAX_CAPACITY {
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
    /// before may now lie on the key's probe sequence, so the search steps
    /// over empty slots instead of stopping at them; it gives up after the
    /// perturbation is spent and every slot had its turn.
    fn vacate(&mut self, key: usize) -> bool {
        let bound = self.slots.len() + LINEAR_PROBES + (usize::BITS / PERTURB_SHIFT + 1) as usize;
        let found = self
            .probes(key)
            .take(bound)
            .find(|&i| self.slots[i].key == key);
        if let Some(i) = found {
            self.slots[i] = VACANT;
            self.len -= 1;
        }
        found.is_some()
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

    /// Where `key` sits along its probe sequence (0: its home slot).
    fn probe_position(t: &PtrTable, key: usize) -> usize {
        t.probes(key)
            .position(|i| t.slots[i].key == key)
            .expect("a key of the table")
    }

    #[test]
    fn blocks_wrapping_onto_the_same_slots_probe_briefly() {
        // Two dense blocks of objects 16 bytes apart whose homes coincide
        // (one table span apart, same bits 24..): linear probing walked a
        // run as long as a block for every key of the second one.
        let mut t = PtrTable::default();
        let n = 30_000usize;
        let base = 0x7f00_0000_0000usize;
        for (v, k) in (0..n).map(|i| base + i * 16).enumerate() {
            t.insert(k, v);
        }
        // One span of the table the two blocks end in (2n keys, load <= 1/2).
        let slots = (2 * n + 1).next_power_of_two() * 2;
        let second: Vec<usize> = (0..n).map(|i| base + slots * 16 + i * 16).collect();
        for (v, &k) in second.iter().enumerate() {
            t.insert(k, n + v);
        }
        assert_eq!(t.capacity(), slots);
        let worst = second.iter().map(|&k| probe_position(&t, k)).max().unwrap();
        let mean = second.iter().map(|&k| probe_position(&t, k)).sum::<usize>() as f64 / n as f64;
        assert!(worst < 200 && mean < 8.0, "worst {worst}, mean {mean}");
        for (v, &k) in second.iter().enumerate() {
            assert_eq!(t.get(k), Some(n + v));
        }
        let all: Vec<usize> = (0..n).map(|i| base + i * 16).chain(second).collect();
        t.clear(all.into_iter());
        assert_eq!(t.len(), 0);
        assert!(t.slots.iter().all(|s| s.key == EMPTY));
    }

    #[test]
    fn small_tables_scatter_keys_with_equal_low_bits() {
        // A record's keys: a few objects at unrelated addresses, here all a
        // multiple of 512 apart, so that the address-order home sends every
        // one of them to the same slot of a 32-slot table.
        let mut t = PtrTable::default();
        let keys: Vec<usize> = (0..14usize).map(|i| 0x7f12_3400_0000 + i * 512).collect();
        for (v, &k) in keys.iter().enumerate() {
            t.insert(k, v);
        }
        assert_eq!(t.capacity(), 64);
        let total: usize = keys.iter().map(|&k| probe_position(&t, k)).sum();
        assert!(
            total <= keys.len(),
            "{total} probes past home for {} keys",
            keys.len()
        );
        for (v, &k) in keys.iter().enumerate() {
            assert_eq!(t.get(k), Some(v));
        }
        assert_eq!(t.get(0x7f12_3400_0000 + 14 * 512), None);
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
