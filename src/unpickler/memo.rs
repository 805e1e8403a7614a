//! The reader's memo: index → object.
//!
//! Indices come from the stream, so they are claims: a dense vector serves
//! the usual 0, 1, 2, … and a hash map takes any index far beyond the
//! entries stored so far. The vector only grows to about twice the number
//! of entries, and every entry costs at least two bytes of input, so a
//! lying index (LONG_BINPUT 0xFFFFFFFF) cannot make the memo allocate more
//! than the input backs.

use pyo3::prelude::*;
use rustc_hash::FxHashMap;

#[derive(Default)]
pub struct Memo {
    dense: Vec<Option<Py<PyAny>>>,
    sparse: FxHashMap<u64, Py<PyAny>>,
    /// Number of entries (MEMOIZE stores at this index).
    len: usize,
}

impl Memo {
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn get<'py>(&self, py: Python<'py>, idx: u64) -> Option<Bound<'py, PyAny>> {
        let dense = usize::try_from(idx).ok().and_then(|i| self.dense.get(i));
        let slot = match dense {
            Some(Some(obj)) => Some(obj),
            _ if self.sparse.is_empty() => None,
            _ => self.sparse.get(&idx),
        };
        slot.map(|obj| obj.bind(py).clone())
    }

    #[inline]
    pub fn put(&mut self, idx: u64, obj: Py<PyAny>) {
        let dense_limit = 2 * self.len + 64;
        let mut existed = !self.sparse.is_empty() && self.sparse.remove(&idx).is_some();
        match usize::try_from(idx) {
            Ok(i) if i < self.dense.len() => existed |= self.dense[i].replace(obj).is_some(),
            Ok(i) if i < dense_limit => {
                self.dense.resize_with(i + 1, || None);
                self.dense[i] = Some(obj);
            }
            _ => existed |= self.sparse.insert(idx, obj).is_some(),
        }
        if !existed {
            self.len += 1;
        }
    }

    pub fn clear(&mut self) {
        self.dense.clear();
        self.sparse.clear();
        self.len = 0;
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
