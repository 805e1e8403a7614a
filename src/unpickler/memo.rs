//! The reader's memo: index → object.
//!
//! Indices come from the stream, so they are claims: a dense vector serves
//! the usual 0, 1, 2, … and a hash map takes any index far beyond the
//! entries stored so far. The vector only grows to about twice the number
//! of entries, and every entry costs at least two bytes of input, so a
//! lying index (LONG_BINPUT 0xFFFFFFFF) cannot make the memo allocate more
//! than the input backs.
//!
//! While loading, entries are `Bound` (a reference count change is one
//! instruction); an `Unpickler` keeps its memo between loads as a
//! [`StoredMemo`] of `Py` and converts it without touching reference counts.

use pyo3::ffi;
use pyo3::prelude::*;
use rustc_hash::FxHashMap;
use std::cell::Cell;

use super::machine::{reuse_allocation, SPARE_CAPACITY};

thread_local! {
    /// The dense vector of the last memo dropped on this thread, emptied, so
    /// that a small `loads` does not allocate one (a nested load finds it
    /// taken and allocates its own).
    static SPARE_DENSE: Cell<Vec<*mut ffi::PyObject>> = const { Cell::new(Vec::new()) };
}

// The spare vector's allocation is reused for `Option<Bound>`s: same size
// and alignment (the option uses the pointer's null niche).
const _: () = assert!(
    std::mem::size_of::<Option<Bound<'static, PyAny>>>()
        == std::mem::size_of::<*mut ffi::PyObject>()
        && std::mem::align_of::<Option<Bound<'static, PyAny>>>()
            == std::mem::align_of::<*mut ffi::PyObject>()
);

/// The memo while a pickle is being read.
pub struct Memo<'py> {
    dense: Vec<Option<Bound<'py, PyAny>>>,
    sparse: FxHashMap<u64, Bound<'py, PyAny>>,
    /// Number of entries (MEMOIZE stores at this index).
    len: usize,
}

impl<'py> Memo<'py> {
    pub fn new() -> Self {
        Memo {
            dense: reuse_allocation(SPARE_DENSE.take()),
            sparse: FxHashMap::default(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn get(&self, idx: u64) -> Option<&Bound<'py, PyAny>> {
        let dense = usize::try_from(idx).ok().and_then(|i| self.dense.get(i));
        match dense {
            Some(Some(obj)) => Some(obj),
            _ if self.sparse.is_empty() => None,
            _ => self.sparse.get(&idx),
        }
    }

    #[inline]
    pub fn put(&mut self, idx: u64, obj: Bound<'py, PyAny>) {
        let dense_limit = 2 * self.len + 64;
        let mut existed = !self.sparse.is_empty() && self.sparse.remove(&idx).is_some();
        match usize::try_from(idx) {
            Ok(i) if i < self.dense.len() => existed |= self.dense[i].replace(obj).is_some(),
            Ok(i) if i == self.dense.len() => self.dense.push(Some(obj)),
            Ok(i) if i < dense_limit => {
                self.dense.resize_with(i, || None);
                self.dense.push(Some(obj));
            }
            _ => existed |= self.sparse.insert(idx, obj).is_some(),
        }
        if !existed {
            self.len += 1;
        }
    }

    /// Keep the entries for a later load, without touching reference counts.
    pub fn store(mut self) -> StoredMemo {
        StoredMemo {
            dense: std::mem::take(&mut self.dense)
                .into_iter()
                .map(|o| o.map(Bound::unbind))
                .collect(),
            sparse: std::mem::take(&mut self.sparse)
                .into_iter()
                .map(|(i, o)| (i, o.unbind()))
                .collect(),
            len: self.len,
        }
    }
}

impl Drop for Memo<'_> {
    fn drop(&mut self) {
        let mut dense = std::mem::take(&mut self.dense);
        dense.clear();
        // An empty allocation (a memo moved out by `store`) is not worth
        // keeping over the spare already there.
        if dense.capacity() > 0 && dense.capacity() <= SPARE_CAPACITY {
            SPARE_DENSE.set(reuse_allocation(dense));
        }
    }
}

/// A memo kept between loads (in an `Unpickler`).
#[derive(Default)]
pub struct StoredMemo {
    dense: Vec<Option<Py<PyAny>>>,
    sparse: FxHashMap<u64, Py<PyAny>>,
    len: usize,
}

impl StoredMemo {
    /// The memo to load with, without touching reference counts.
    pub fn into_memo(self, py: Python<'_>) -> Memo<'_> {
        Memo {
            dense: self
                .dense
                .into_iter()
                .map(|o| o.map(|p| p.into_bound(py)))
                .collect(),
            sparse: self
                .sparse
                .into_iter()
                .map(|(i, o)| (i, o.into_bound(py)))
                .collect(),
            len: self.len,
        }
    }

    /// Build from `(index, object)` pairs (an assigned `memo`).
    pub fn from_entries<'py>(entries: impl IntoIterator<Item = (u64, Bound<'py, PyAny>)>) -> Self {
        let mut memo = Memo::new();
        for (idx, obj) in entries {
            memo.put(idx, obj);
        }
        memo.store()
    }

    /// Forget every entry (a new `Unpickler` configuration).
    pub fn clear(&mut self) {
        self.clear_entries();
        self.len = 0;
    }

    /// Forget every entry but keep counting MEMOIZE indices where the
    /// writer does (`memo.clear()` between loads, as CPython's C reader):
    /// a later GET of a cleared entry then fails instead of finding a new,
    /// unrelated object under a reused index.
    pub fn clear_entries(&mut self) {
        self.dense.clear();
        self.sparse.clear();
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &Py<PyAny>)> {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().map(|o| (i as u64, o)));
        dense.chain(self.sparse.iter().map(|(&i, o)| (i, o)))
    }

    pub fn traverse(&self, visit: &pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for (_, obj) in self.entries() {
            visit.call(obj)?;
        }
        Ok(())
    }
}
