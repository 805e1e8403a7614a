//! The writer's memo: which objects were already written, and at which index.
//!
//! Keys are object addresses; the memo keeps a strong reference to every
//! memoized object so that an address cannot be reused by a new object while
//! the memo lives (the same guarantee CPython's memo table gives).

use pyo3::prelude::*;
use rustc_hash::FxHashMap;

#[derive(Default)]
pub struct Memo {
    index: FxHashMap<usize, usize>,
    keep_alive: Vec<Py<PyAny>>,
}

impl Memo {
    /// The memo index of `obj`, if it was memoized.
    #[inline]
    pub fn get(&self, obj: &Bound<'_, PyAny>) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        self.index.get(&(obj.as_ptr() as usize)).copied()
    }

    /// Number of entries; also the index the next memoized object gets.
    #[inline]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Memoize `obj` under the next free index and return that index.
    #[inline]
    pub fn put(&mut self, obj: &Bound<'_, PyAny>) -> usize {
        let idx = self.index.len();
        self.set(obj, idx);
        idx
    }

    /// Memoize `obj` under a given index (used when a memo is assigned).
    pub fn set(&mut self, obj: &Bound<'_, PyAny>, idx: usize) {
        if self.index.insert(obj.as_ptr() as usize, idx).is_none() {
            self.keep_alive.push(obj.clone().unbind());
        }
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.keep_alive.clear();
    }

    /// Empty the memo for reuse by the next call, keeping a small
    /// allocation (so tiny `dumps` calls allocate no table) but returning
    /// large ones to the allocator.
    pub fn reset_for_reuse(&mut self) {
        const KEEP: usize = 16 * 1024;
        self.clear();
        if self.index.capacity() > KEEP {
            self.index.shrink_to(KEEP);
            self.keep_alive.shrink_to(KEEP);
        }
    }

    /// `(index, object)` for every entry, in memoization order.
    pub fn entries<'py>(&self, py: Python<'py>) -> Vec<(usize, Bound<'py, PyAny>)> {
        self.keep_alive
            .iter()
            .map(|o| {
                let o = o.bind(py).clone();
                (self.index[&(o.as_ptr() as usize)], o)
            })
            .collect()
    }
}

impl Memo {
    /// Report the memoized objects to the garbage collector.
    pub fn traverse(&self, visit: &pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for obj in &self.keep_alive {
            visit.call(obj)?;
        }
        Ok(())
    }
}
