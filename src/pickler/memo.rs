//! The writer's memo: which objects were already written, and at which index.
//!
//! Keys are object addresses; the memo keeps a strong reference to every
//! memoized object so that an address cannot be reused by a new object while
//! the memo lives (the same guarantee CPython's memo table gives).

use pyo3::prelude::*;

use super::ptr_table::PtrTable;

#[derive(Default)]
pub struct Memo {
    /// Object address -> memo index.
    index: PtrTable,
    /// One strong reference per key of `index`, in memoization order.
    keep_alive: Vec<Py<PyAny>>,
    /// Objects whose put is in the stream but that are not in `index` yet
    /// (see `put_pending`), with their indices. Held, so that their
    /// addresses stay theirs, as `keep_alive` holds the others.
    pending: Vec<(Py<PyAny>, usize)>,
}

impl Memo {
    /// The memo index of `obj`, if it was memoized.
    #[inline(always)]
    pub fn get(&self, obj: &Bound<'_, PyAny>) -> Option<usize> {
        self.index.get(obj.as_ptr() as usize)
    }

    /// Number of indices handed out; also the index the next memoized
    /// object gets.
    #[inline]
    pub fn len(&self) -> usize {
        self.index.len() + self.pending.len()
    }

    /// Memoize `obj` under the next free index and return that index.
    #[inline]
    pub fn put(&mut self, obj: &Bound<'_, PyAny>) -> usize {
        let idx = self.len();
        self.set(obj, idx);
        idx
    }

    /// Memoize `obj` under the next free index without entering it in the
    /// table yet: for an object that, as long as no Python code runs, cannot
    /// be met again. `store_pending` enters it before any code could lead
    /// back to it. Until then it costs a push, not a table insert (a cache
    /// miss for every new address).
    #[inline]
    pub fn put_pending(&mut self, obj: &Bound<'_, PyAny>) -> usize {
        let idx = self.len();
        self.pending.push((obj.clone().unbind(), idx));
        idx
    }

    /// Enter every pending object in the table (before Python code runs).
    #[inline]
    pub fn store_pending(&mut self) {
        if !self.pending.is_empty() {
            self.store_pending_now();
        }
    }

    #[cold]
    fn store_pending_now(&mut self) {
        // (Drained, not taken: the vector keeps its memory for the next ones.)
        for (obj, idx) in self.pending.drain(..) {
            // A pending object is alive and was met once: its address is
            // not in the table.
            if self.index.insert(obj.as_ptr() as usize, idx) {
                self.keep_alive.push(obj);
            }
        }
    }

    /// Memoize `obj` under a given index (used when a memo is assigned).
    #[inline]
    pub fn set(&mut self, obj: &Bound<'_, PyAny>, idx: usize) {
        if self.index.insert(obj.as_ptr() as usize, idx) {
            self.keep_alive.push(obj.clone().unbind());
        }
    }

    pub fn clear(&mut self) {
        self.pending.clear();
        self.index
            .clear(self.keep_alive.iter().map(|o| o.as_ptr() as usize));
        self.keep_alive.clear();
    }

    /// Empty the memo for reuse by the next call. Its memory is kept up to
    /// a bound (2 MiB of table, 512 KiB of references): a fresh table of
    /// that size costs a page fault per 4 KiB on every call, which on
    /// record-heavy data of a few thousand records was a quarter of the
    /// time. Bigger tables go back to the allocator.
    pub fn reset_for_reuse(&mut self) {
        self.pending.clear();
        self.pending.shrink_to(1 << 16);
        if self.keep_alive.is_empty() {
            return; // nothing memoized (and nothing kept that is too big)
        }
        const KEEP_SLOTS: usize = 1 << 17;
        const KEEP_REFS: usize = 1 << 16;
        if self.index.capacity() > KEEP_SLOTS {
            // Dropped whole: no point emptying slots first.
            self.index = PtrTable::default();
            self.keep_alive.clear();
        } else {
            self.clear();
        }
        self.keep_alive.shrink_to(KEEP_REFS);
    }

    /// `(index, object)` for every entry, in memoization order.
    pub fn entries<'py>(&self, py: Python<'py>) -> Vec<(usize, Bound<'py, PyAny>)> {
        self.keep_alive
            .iter()
            .map(|o| {
                let o = o.bind(py).clone();
                let idx = self.index.get(o.as_ptr() as usize);
                (idx.expect("every kept object is a key of the memo"), o)
            })
            .collect()
    }
}

impl Memo {
    /// Report the memoized objects to the garbage collector.
    pub fn traverse(&self, visit: &pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for obj in self
            .keep_alive
            .iter()
            .chain(self.pending.iter().map(|(o, _)| o))
        {
            visit.call(obj)?;
        }
        Ok(())
    }
}
