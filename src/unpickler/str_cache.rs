//! Short ASCII strings kept from one load to the next.
//!
//! Pickles of functions, classes and small messages are mostly short
//! identifiers: attribute and dict keys, module and qualified names, the
//! names in code objects. Loading them again and again makes the same
//! strings again and again, and every dict lookup with a new str object
//! hashes it first. A process-wide table of the short ASCII strings met
//! recently hands back the string made last time: no allocation, and its
//! hash is already computed. (orjson and msgspec keep such a cache of keys.)
//!
//! The table is direct-mapped and overwrites on a miss. A load that meets
//! mostly distinct strings (a column of ids) would only pay for lookups and
//! evict useful entries, so each load stops consulting the table once it
//! has looked up `TRIAL` strings and found fewer than half of them there.
//!
//! Attribute names are interned when BUILD sets them, as `setattr` does.
//! When the interned copy of a name is another object (an identifier the
//! interpreter met before), the table keeps that copy from then on, so later
//! loads hand out the interned string and interning it again, or looking it
//! up in a dict, is a pointer comparison (in-process loads of a dataclass:
//! 4 % fewer instructions).
//!
//! Equal strings from different parts of one pickle, or from two pickles,
//! may therefore be one object. Strings are immutable and pickle promises
//! nothing about the identity of equal strings that were not one object
//! when pickled; the same holds for CPython's own interning.

use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Strings up to this many bytes are cached (longer ones are rarely
/// repeated names, and comparing them costs more).
pub const MAX_LEN: usize = 32;
/// Number of slots (a power of two): 8 KiB of pointers.
const SLOTS: usize = 1024;
/// Lookups a load makes before its hit rate decides whether it goes on.
const TRIAL: u64 = 256;

/// Strings shorter than this are CPython's own shared objects.
const MIN_LEN: usize = 2;

/// The table; taken by one load at a time (a load on another thread, or
/// nested in a hook, that finds it taken goes without).
static TABLE: Mutex<Vec<Option<Py<PyString>>>> = Mutex::new(Vec::new());

/// One load's use of the table.
#[derive(Default)]
pub struct StrCache {
    table: Option<MutexGuard<'static, Vec<Option<Py<PyString>>>>>,
    state: Use,
    lookups: u64,
    hits: u64,
    /// Slots whose string this load has handed out already (one bit each).
    served: [u64; SLOTS / 64],
}

#[derive(Default, PartialEq)]
enum Use {
    /// Not taken yet (a load with no short strings never takes it).
    #[default]
    Untried,
    Taken,
    /// Taken by someone else, or given up for this load.
    Off,
}

impl StrCache {
    /// Whether a str from `bytes` should come through `get`.
    #[inline(always)]
    pub fn wants(&self, bytes: &[u8]) -> bool {
        (MIN_LEN..=MAX_LEN).contains(&bytes.len()) && self.state != Use::Off && bytes.is_ascii()
    }

    /// The str for `bytes` (ASCII, `MIN_LEN..=MAX_LEN` bytes long): the cached
    /// one when it is there, else one made by `make` and cached.
    pub fn get<'py>(
        &mut self,
        py: Python<'py>,
        bytes: &[u8],
        make: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.state == Use::Untried {
            self.take();
        }
        let Some(table) = self.table.as_mut() else {
            return make();
        };
        self.lookups += 1;
        let index = slot_of(bytes);
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let slot = &mut table[index];
        if let Some(cached) = slot {
            if same_ascii(cached, bytes) {
                if self.served[word] & bit != 0 {
                    // Already handed out by this load: two strings that were
                    // distinct when pickled stay distinct (so the loaded data
                    // pickles to the same bytes again).
                    return make();
                }
                self.served[word] |= bit;
                self.hits += 1;
                return Ok(cached.bind(py).clone().into_any());
            }
        }
        let made = make()?;
        self.served[word] |= bit;
        // SAFETY: `make` built an exact str (checked by the debug assertion).
        debug_assert!(made.is_exact_instance_of::<PyString>());
        *slot = Some(unsafe { made.clone().cast_into_unchecked::<PyString>() }.unbind());
        if self.lookups >= TRIAL && self.hits * 2 < self.lookups {
            self.give_up();
        }
        Ok(made)
    }

    /// Replace `original`, if it is the string this load's table holds for
    /// its text, with `interned`: an equal string the interpreter had
    /// interned already (BUILD interns attribute names, as `setattr` does).
    /// Later loads then hand out the interned string, and every dict lookup
    /// and interning of it is a pointer comparison. Only strings interned
    /// anyway are kept, so no string is made immortal (3.12+) by this.
    pub fn adopt_interned(&mut self, original: &Bound<'_, PyAny>, interned: &Bound<'_, PyAny>) {
        let Some(table) = self.table.as_mut() else {
            return;
        };
        let Ok(interned) = interned.cast::<PyString>() else {
            return;
        };
        let ptr = interned.as_ptr();
        // SAFETY: `ptr` is a live str; its 1-byte data is read only when it
        // is compact ASCII, where the length is the byte length.
        let bytes = unsafe {
            if !interned.is_exact_instance_of::<PyString>()
                || ffi::PyUnicode_IS_COMPACT_ASCII(ptr) == 0
            {
                return;
            }
            let len = ffi::PyUnicode_GET_LENGTH(ptr) as usize;
            if !(MIN_LEN..=MAX_LEN).contains(&len) {
                return;
            }
            std::slice::from_raw_parts(ffi::PyUnicode_1BYTE_DATA(ptr), len)
        };
        let slot = &mut table[slot_of(bytes)];
        if slot
            .as_ref()
            .is_some_and(|held| held.as_ptr() == original.as_ptr())
        {
            *slot = Some(interned.clone().unbind());
        }
    }

    #[cold]
    fn take(&mut self) {
        let table = match TABLE.try_lock() {
            Ok(table) => table,
            // A panic while a load held it leaves only whole entries (each
            // one a complete string): the table is still sound.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Taken by a load on another thread, or by the load this one
            // is nested in: go without.
            Err(TryLockError::WouldBlock) => {
                self.state = Use::Off;
                return;
            }
        };
        let table = self.table.insert(table);
        if table.is_empty() {
            table.resize_with(SLOTS, || None);
        }
        self.state = Use::Taken;
    }

    #[cold]
    fn give_up(&mut self) {
        self.table = None;
        self.state = Use::Off;
    }
}

/// The slot for `bytes`: a multiplicative hash of its 8-byte words.
///
/// Every word is loaded straight from `bytes` (the last one overlapping the
/// one before, or assembled from narrower loads when `bytes` is shorter than
/// 8): copying the tail into a zeroed stack array first and loading that as
/// a word made the load wait for the copy's narrower stores to retire, which
/// perf put at a sixth of the string table's cost.
#[inline(always)]
fn slot_of(bytes: &[u8]) -> usize {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let n = bytes.len();
    let mut h = n as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        h = (h.rotate_left(23) ^ word).wrapping_mul(K);
    }
    if !chunks.remainder().is_empty() {
        h = (h.rotate_left(23) ^ tail_word(bytes)).wrapping_mul(K);
    }
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The last up-to-8 bytes of a non-empty `bytes` as one word, read with
/// loads from `bytes` only (see `slot_of`).
#[inline(always)]
fn tail_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as u64;
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes")) as u64;
    match n {
        0 => 0,
        1 => bytes[0] as u64,
        2..=3 => u16_at(0) | (u16_at(n - 2) << 16),
        4..=7 => u32_at(0) | (u32_at(n - 4) << 32),
        _ => u64::from_le_bytes(bytes[n - 8..].try_into().expect("8 bytes")),
    }
}

/// Whether `s` (a compact ASCII str, as the table holds only those: made
/// by the reader, or an interned twin of one) spells `bytes`.
#[inline(always)]
fn same_ascii(s: &Py<PyString>, bytes: &[u8]) -> bool {
    let ptr = s.as_ptr();
    // SAFETY: the table holds only compact ASCII strs (see above), so
    // the length is the byte length and the 1-byte data is `len` bytes long.
    unsafe {
        ffi::PyUnicode_GET_LENGTH(ptr) as usize == bytes.len()
            && std::slice::from_raw_parts(ffi::PyUnicode_1BYTE_DATA(ptr), bytes.len()) == bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_in_range_and_depend_on_every_byte() {
        let a = slot_of(b"__qualname__");
        assert!(a < SLOTS);
        let mut seen = std::collections::HashSet::new();
        for i in 0..200u32 {
            seen.insert(slot_of(format!("key:{i:06}").as_bytes()));
        }
        // Distinct keys that differ in one byte spread over many slots.
        assert!(seen.len() > 150, "only {} slots", seen.len());
        assert_ne!(slot_of(b"ab"), slot_of(b"ba"));
        assert!(slot_of(&[b'x'; MAX_LEN]) < SLOTS);
    }

    #[test]
    fn every_byte_of_every_length_counts() {
        // Changing any one byte of a string of any cached length moves it to
        // another slot (almost always: a few collisions of 1,024 slots).
        let mut same = 0;
        let mut total = 0;
        for len in MIN_LEN..=MAX_LEN {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            for pos in 0..len {
                let mut changed = base.clone();
                changed[pos] = b'Z';
                total += 1;
                same += (slot_of(&base) == slot_of(&changed)) as usize;
            }
        }
        assert!(
            same * 100 <= total,
            "{same} of {total} changes kept the slot"
        );
    }

    #[test]
    fn the_tail_word_is_the_last_bytes() {
        assert_eq!(tail_word(b"a"), b'a' as u64);
        assert_eq!(tail_word(b"abcdefgh"), u64::from_le_bytes(*b"abcdefgh"));
        assert_eq!(tail_word(b"0123456789"), u64::from_le_bytes(*b"23456789"));
        assert_ne!(tail_word(b"abc"), tail_word(b"abd"));
        assert_ne!(tail_word(b"abcdefg"), tail_word(b"Abcdefg"));
    }
}
