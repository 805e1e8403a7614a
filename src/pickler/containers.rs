//! Built-in containers: tuple, list, dict, set, frozenset, and the batched
//! APPENDS / SETITEMS writers that `__reduce__` list and dict items also use.
//!
//! Every item is held by a strong reference while it is written: a
//! `__reduce__` or `__getstate__` further down may mutate the container, so
//! sizes are re-read on every step and never trusted across a `save`.

use super::write_error::Written;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PySet, PyTuple};

use super::writer::{builtin_type, is_unshared_item, type_of, PathStep, Writer};
use crate::dict_walk;
use crate::opcodes::*;
use crate::prefetch;

/// How many items ahead a list walk prefetches (see `crate::prefetch`).
const PREFETCH_AHEAD: usize = 4;

/// The number of items of `dict`, a dict or an instance of a subclass
/// (CPython's `PyDict_GET_SIZE`, read inline instead of through a call).
#[inline(always)]
fn dict_len(dict: &Bound<'_, PyAny>) -> ffi::Py_ssize_t {
    // SAFETY: every caller passes a live dict (checked by its caller); the
    // object of a dict subclass starts with a `PyDictObject` too.
    unsafe { (*(dict.as_ptr() as *const ffi::PyDictObject)).ma_used }
}

impl<'py> Writer<'py, '_> {
    pub(super) fn save_tuple(&mut self, t: &Bound<'py, PyTuple>) -> Written {
        let len = t.len();
        if len == 0 {
            return if self.proto >= 1 {
                self.out.byte(EMPTY_TUPLE)
            } else {
                self.out.write(&[MARK, TUPLE])
            };
        }
        let obj = t.as_any();
        // If the tuple shows up in the memo after its items are written, it
        // is recursive: drop what was pushed and fetch it from the memo.
        if len <= 3 && self.proto >= 2 {
            self.with_unmemoized(obj, |w| w.save_tuple_items(t))?;
            if let Some(idx) = self.memo.get(obj) {
                for _ in 0..len {
                    self.out.byte(POP)?;
                }
                return self.memo_get(idx);
            }
            self.out.byte([TUPLE1, TUPLE2, TUPLE3][len - 1])?;
            return self.memo_put(obj);
        }
        self.out.byte(MARK)?;
        self.with_unmemoized(obj, |w| w.save_tuple_items(t))?;
        if let Some(idx) = self.memo.get(obj) {
            if self.bin {
                self.out.byte(POP_MARK)?;
            } else {
                for _ in 0..=len {
                    self.out.byte(POP)?;
                }
            }
            return self.memo_get(idx);
        }
        self.out.byte(TUPLE)?;
        self.memo_put(obj)
    }

    fn save_tuple_items(&mut self, t: &Bound<'py, PyTuple>) -> Written {
        // Tuples are immutable: the length cannot change under us.
        for (i, item) in t.iter().enumerate() {
            self.save_item(&item, is_unshared_item(&item))
                .map_err(|e| self.at(e, PathStep::Index(i)))?;
        }
        Ok(())
    }

    pub(super) fn save_list(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if !self.fast {
            // A tail call: the callee's result is not copied (see `save_dict`).
            return self.save_list_body(obj);
        }
        self.fast_enter(obj)?;
        let result = self.save_list_body(obj);
        self.fast_leave(obj);
        result
    }

    fn save_list_body(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if self.bin {
            self.out.byte(EMPTY_LIST)?;
        } else {
            self.out.write(&[MARK, LIST])?;
        }
        // SAFETY: the caller checked the exact list type.
        let list = unsafe { obj.cast_unchecked::<PyList>() };
        let len = list.len();
        self.memo_put(obj)?;
        if len == 0 {
            return Ok(());
        }
        if self.proto > 0 {
            self.batch_list_exact(list)
        } else {
            self.batch_list(obj.try_iter()?.as_any())
        }
    }

    /// The list item at `i`, by strong reference, or None past the end
    /// (the list may have shrunk while earlier items were written).
    #[inline]
    fn list_item(&self, list: &Bound<'py, PyList>, i: usize) -> Option<Bound<'py, PyAny>> {
        // SAFETY: the GIL is held and no Python code runs between the bounds
        // check and taking a new reference to the item.
        unsafe {
            let len = ffi::PyList_GET_SIZE(list.as_ptr()) as usize;
            if i < len {
                if i + PREFETCH_AHEAD < len {
                    let ahead = ffi::PyList_GET_ITEM(list.as_ptr(), (i + PREFETCH_AHEAD) as _);
                    prefetch::read(ahead);
                }
                let item = ffi::PyList_GET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t);
                Some(Bound::from_borrowed_ptr(self.py, item))
            } else {
                None
            }
        }
    }

    fn batch_list_exact(&mut self, list: &Bound<'py, PyList>) -> Written {
        if list.len() == 1 {
            if let Some(item) = self.list_item(list, 0) {
                self.save(&item, false)
                    .map_err(|e| self.at(e, PathStep::Index(0)))?;
            }
            return self.out.byte(APPEND);
        }
        let mut total = 0;
        loop {
            self.out.byte(MARK)?;
            let mut this_batch = 0;
            while let Some(item) = self.list_item(list, total) {
                self.save_item(&item, is_unshared_item(&item))
                    .map_err(|e| self.at(e, PathStep::Index(total)))?;
                total += 1;
                this_batch += 1;
                if this_batch == BATCHSIZE {
                    break;
                }
            }
            self.out.byte(APPENDS)?;
            if total >= list.len() {
                return Ok(());
            }
        }
    }

    /// MARK item ... APPENDS batches from any iterator (protocol 0: APPEND
    /// one at a time).
    pub(super) fn batch_list(&mut self, iter: &Bound<'py, PyAny>) -> Written {
        let next = || -> PyResult<Option<Bound<'py, PyAny>>> { next_item(iter) };
        if self.proto == 0 {
            while let Some(item) = next()? {
                self.save(&item, false)?;
                self.out.byte(APPEND)?;
            }
            return Ok(());
        }
        loop {
            let Some(first) = next()? else { return Ok(()) };
            let Some(mut item) = next()? else {
                self.save(&first, false)?;
                return self.out.byte(APPEND);
            };
            self.out.byte(MARK)?;
            self.save(&first, false)?;
            let mut n = 1;
            loop {
                self.save(&item, false)?;
                n += 1;
                if n == BATCHSIZE {
                    break;
                }
                match next()? {
                    Some(i) => item = i,
                    None => break,
                }
            }
            self.out.byte(APPENDS)?;
            if n != BATCHSIZE {
                return Ok(());
            }
        }
    }

    pub(super) fn save_dict(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if !self.fast {
            // A tail call. Keeping the result across `fast_leave` made the
            // caller copy it (a `PyResult` is 72 bytes, returned through
            // memory), and that copy's loads, of bytes the callee had just
            // stored in narrower pieces, stalled: perf put a quarter of
            // `save_nested`'s cycles on them.
            return self.save_dict_body(obj, true);
        }
        self.fast_enter(obj)?;
        let result = self.save_dict_body(obj, true);
        self.fast_leave(obj);
        result
    }

    /// The dict `obj`; `memoize` false only for a dict nothing can lead
    /// back to that no stdlib bytes constrain (see `save_unmemoized_dict`).
    fn save_dict_body(&mut self, obj: &Bound<'py, PyAny>, memoize: bool) -> Written {
        if self.bin {
            self.out.byte(EMPTY_DICT)?;
        } else {
            self.out.write(&[MARK, DICT])?;
        }
        if memoize {
            self.memo_put(obj)?;
        }
        if dict_len(obj) == 0 {
            return Ok(());
        }
        if type_of(obj) == builtin_type!(PyDict_Type) {
            if self.proto > 0 {
                self.batch_dict_exact(obj)
            } else {
                self.setitem_dict_exact(obj)
            }
        } else {
            let items = obj.call_method0(intern!(self.py, "items"))?;
            self.batch_dict(items.try_iter()?.as_any())
        }
    }

    /// An exact dict that can never be met again, without a memo put (the
    /// state of an instance of a class written by value).
    pub(super) fn save_unmemoized_dict(&mut self, dict: &Bound<'py, PyAny>) -> Written {
        self.opcode_boundary()?;
        self.save_dict_body(dict, false)
    }

    /// The next (key, value) of an exact dict by strong references.
    #[inline]
    fn dict_next(
        &self,
        dict: &Bound<'py, PyAny>,
        pos: &mut ffi::Py_ssize_t,
    ) -> Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let (key, value) = dict_walk::next(dict, pos)?;
        // SAFETY: the GIL is held; both borrowed results get a new reference
        // before any Python code can run.
        unsafe {
            Some((
                Bound::from_borrowed_ptr(self.py, key),
                Bound::from_borrowed_ptr(self.py, value),
            ))
        }
    }

    fn batch_dict_exact(&mut self, dict: &Bound<'py, PyAny>) -> Written {
        let dict_size = dict_len(dict);
        let mut pos: ffi::Py_ssize_t = 0;
        if dict_size == 1 {
            if let Some((k, v)) = self.dict_next(dict, &mut pos) {
                self.save(&k, false)?;
                self.save(&v, false)
                    .map_err(|e| self.at(e, PathStep::Key(k)))?;
            }
            return self.out.byte(SETITEM);
        }
        loop {
            self.out.byte(MARK)?;
            let mut i = 0;
            while let Some((k, v)) = self.dict_next(dict, &mut pos) {
                let unshared_value = is_unshared_item(&v);
                let epoch = self.python_epoch;
                self.save_item(&k, is_unshared_item(&k))?;
                // Code run while the key was written may have reached the
                // value and had it written (and memoized) there.
                let unshared_value = unshared_value && self.python_epoch == epoch;
                self.save_item(&v, unshared_value)
                    .map_err(|e| self.at(e, PathStep::Key(k)))?;
                i += 1;
                if i == BATCHSIZE {
                    break;
                }
            }
            self.out.byte(SETITEMS)?;
            if dict_len(dict) != dict_size {
                return Err(
                    PyRuntimeError::new_err("dictionary changed size during iteration").into(),
                );
            }
            // Like CPython, a full last batch is followed by an empty one.
            if i != BATCHSIZE {
                return Ok(());
            }
        }
    }

    /// Protocol 0: SETITEM per pair. CPython iterates `dict.items()`; for an
    /// exact dict walking the table directly gives the same pairs without
    /// the items iterator's cached tuple holding extra references.
    fn setitem_dict_exact(&mut self, dict: &Bound<'py, PyAny>) -> Written {
        let dict_size = dict_len(dict);
        let mut pos: ffi::Py_ssize_t = 0;
        while let Some((k, v)) = self.dict_next(dict, &mut pos) {
            self.save(&k, false)?;
            self.save(&v, false)
                .map_err(|e| self.at(e, PathStep::Key(k)))?;
            self.out.byte(SETITEM)?;
            if dict_len(dict) != dict_size {
                return Err(
                    PyRuntimeError::new_err("dictionary changed size during iteration").into(),
                );
            }
        }
        Ok(())
    }

    /// MARK key value ... SETITEMS batches from an iterator of 2-tuples
    /// (protocol 0: SETITEM one at a time).
    pub(super) fn batch_dict(&mut self, iter: &Bound<'py, PyAny>) -> Written {
        let next = || -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
            match next_item(iter)? {
                None => Ok(None),
                Some(pair) => {
                    let pair = pair
                        .cast_into::<PyTuple>()
                        .ok()
                        .filter(|t| t.len() == 2)
                        .ok_or_else(|| {
                            PyTypeError::new_err("dict items iterator must return 2-tuples")
                        })?;
                    Ok(Some((pair.get_item(0)?, pair.get_item(1)?)))
                }
            }
        };
        if self.proto == 0 {
            while let Some((k, v)) = next()? {
                self.save(&k, false)?;
                self.save(&v, false)?;
                self.out.byte(SETITEM)?;
            }
            return Ok(());
        }
        loop {
            let Some((k0, v0)) = next()? else {
                return Ok(());
            };
            let Some(mut kv) = next()? else {
                self.save(&k0, false)?;
                self.save(&v0, false)?;
                return self.out.byte(SETITEM);
            };
            self.out.byte(MARK)?;
            self.save(&k0, false)?;
            self.save(&v0, false)?;
            let mut n = 1;
            loop {
                self.save(&kv.0, false)?;
                self.save(&kv.1, false)?;
                n += 1;
                if n == BATCHSIZE {
                    break;
                }
                match next()? {
                    Some(p) => kv = p,
                    None => break,
                }
            }
            self.out.byte(SETITEMS)?;
            if n != BATCHSIZE {
                return Ok(());
            }
        }
    }

    pub(super) fn save_set(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if self.proto < 4 {
            return self.save_set_as_reduce(obj, self.py.get_type::<PySet>().into_any());
        }
        self.out.byte(EMPTY_SET)?;
        self.memo_put(obj)?;
        // SAFETY: `obj` is an exact set.
        let set_size = unsafe { ffi::PySet_Size(obj.as_ptr()) };
        if set_size == 0 {
            return Ok(());
        }
        let iter = obj.try_iter()?;
        loop {
            self.out.byte(MARK)?;
            let mut i = 0;
            while let Some(item) = next_item(iter.as_any())? {
                self.save(&item, false)?;
                i += 1;
                if i == BATCHSIZE {
                    break;
                }
            }
            self.out.byte(ADDITEMS)?;
            // SAFETY: as above.
            if unsafe { ffi::PySet_Size(obj.as_ptr()) } != set_size {
                return Err(PyRuntimeError::new_err("set changed size during iteration").into());
            }
            // Like CPython, a full last batch is followed by an empty one.
            if i != BATCHSIZE {
                return Ok(());
            }
        }
    }

    /// Below protocol 4 sets and frozensets reduce to `type(list(items))`.
    fn save_set_as_reduce(&mut self, obj: &Bound<'py, PyAny>, ty: Bound<'py, PyAny>) -> Written {
        let py = self.py;
        // SAFETY: `obj` is a live set or frozenset; PySequence_List returns a
        // new list reference or null with an exception set.
        let items =
            unsafe { Bound::from_owned_ptr_or_err(py, ffi::PySequence_List(obj.as_ptr()))? };
        let rv = PyTuple::new(py, [ty, PyTuple::new(py, [items])?.into_any()])?;
        self.save_reduce(&rv, Some(obj))
    }

    pub(super) fn save_frozenset(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        // CPython enters fast mode's cycle guard here and never leaves it;
        // only the error message differs, so the guard is simply not used.
        if self.proto < 4 {
            return self.save_set_as_reduce(
                obj,
                self.py.get_type::<pyo3::types::PyFrozenSet>().into_any(),
            );
        }
        self.out.byte(MARK)?;
        self.with_unmemoized(obj, |w| -> Written {
            for item in obj.try_iter()? {
                w.save(&item?, false)?;
            }
            Ok(())
        })?;
        if let Some(idx) = self.memo.get(obj) {
            self.out.byte(POP_MARK)?;
            return self.memo_get(idx);
        }
        self.out.byte(FROZENSET)?;
        self.memo_put(obj)
    }
}

/// `next(iter)`, or None when it is exhausted.
fn next_item<'py>(iter: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    // SAFETY: `iter` is an iterator (callers made it with try_iter or checked
    // PyIter_Check); PyIter_Next returns a new reference or null.
    let item = unsafe { ffi::PyIter_Next(iter.as_ptr()) };
    if item.is_null() {
        return match PyErr::take(iter.py()) {
            Some(e) => Err(e),
            None => Ok(None),
        };
    }
    // SAFETY: non-null new reference.
    Ok(Some(unsafe { Bound::from_owned_ptr(iter.py(), item) }))
}
