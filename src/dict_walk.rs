//! `PyDict_Next` for the writer's dict walk, inlined where the layout is known.
//!
//! On a list of records, `PyDict_Next` was a fifth of `dumps`: a call per
//! item that checks the argument's type, then the table's kind, each time.
//! On CPython 3.11 to 3.13 (with the GIL) a dict whose values live in its
//! keys table (a "combined" table, every dict but some instance dicts) is
//! walked here instead, reading the table as CPython's own `_PyDict_Next`
//! does: entries in insertion order, skipping deleted ones (null values),
//! the table re-read on every step so that a dict resized meanwhile is
//! followed exactly as CPython follows it. Split tables, 3.10 and
//! free-threaded builds take `PyDict_Next`.
//!
//! The layout read (CPython's `Include/internal/pycore_dict.h`, unchanged
//! from 3.11 to 3.13 without `Py_GIL_DISABLED`):
//!
//! ```text
//! PyDictKeysObject: dk_refcnt: isize, dk_log2_size: u8,
//!     dk_log2_index_bytes: u8, dk_kind: u8, dk_version: u32,
//!     dk_usable: isize, dk_nentries: isize, dk_indices: [u8; 1 << log2_index_bytes],
//!     then the entries: {key, value} when dk_kind is not DICT_KEYS_GENERAL,
//!     {hash, key, value} when it is.
//! ```

use pyo3::ffi;
use pyo3::prelude::*;

/// The next (key, value) of the dict `dict` from `*pos`, as borrowed
/// pointers, advancing `*pos`; None at the end. `dict` must be a dict (or
/// an instance of a subclass), and the GIL held.
#[inline(always)]
pub fn next(
    dict: &Bound<'_, PyAny>,
    pos: &mut ffi::Py_ssize_t,
) -> Option<(*mut ffi::PyObject, *mut ffi::PyObject)> {
    #[cfg(all(Py_3_11, not(Py_GIL_DISABLED)))]
    {
        // SAFETY: see `combined_next`; `dict` is a live dict.
        if let Some(step) = unsafe { combined_next(dict.as_ptr(), pos) } {
            return step;
        }
    }
    let mut key = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: the GIL is held; PyDict_Next bounds-checks `pos` against the
    // dict's current table and returns borrowed references.
    unsafe {
        if ffi::PyDict_Next(dict.as_ptr(), pos, &mut key, &mut value) == 0 {
            return None;
        }
    }
    Some((key, value))
}

/// The header of CPython's `PyDictKeysObject` (3.11 to 3.13, with the GIL).
#[cfg(all(Py_3_11, not(Py_GIL_DISABLED)))]
#[repr(C)]
struct KeysHeader {
    dk_refcnt: ffi::Py_ssize_t,
    dk_log2_size: u8,
    dk_log2_index_bytes: u8,
    dk_kind: u8,
    dk_version: u32,
    dk_usable: ffi::Py_ssize_t,
    dk_nentries: ffi::Py_ssize_t,
    // dk_indices follow.
}

/// `dk_kind` of a table whose keys may be anything (entries carry a hash).
#[cfg(all(Py_3_11, not(Py_GIL_DISABLED)))]
const DICT_KEYS_GENERAL: u8 = 0;

/// One step over a combined table: `Some(None)` at its end, `Some(pair)`
/// for the next live entry, `None` when the dict has a split table (the
/// caller then asks `PyDict_Next`).
///
/// # Safety
/// `dict` is a live dict or dict-subclass instance and the GIL is held.
#[cfg(all(Py_3_11, not(Py_GIL_DISABLED)))]
#[inline(always)]
#[allow(clippy::type_complexity)]
unsafe fn combined_next(
    dict: *mut ffi::PyObject,
    pos: &mut ffi::Py_ssize_t,
) -> Option<Option<(*mut ffi::PyObject, *mut ffi::PyObject)>> {
    // SAFETY (whole body): the caller's guarantees; every entry read is at
    // an index below `dk_nentries`, which the table was allocated to hold.
    unsafe {
        let d = &*(dict as *const ffi::PyDictObject);
        if !d.ma_values.is_null() {
            return None;
        }
        let keys = d.ma_keys as *const KeysHeader;
        let n = (*keys).dk_nentries;
        let mut i = *pos;
        if i < 0 || i >= n {
            return Some(None);
        }
        let entries = (keys as *const u8)
            .add(std::mem::size_of::<KeysHeader>())
            .add(1usize << (*keys).dk_log2_index_bytes);
        // A unicode entry is (key, value); a general one (hash, key, value).
        let (width, key_at) = if (*keys).dk_kind == DICT_KEYS_GENERAL {
            (3, 1)
        } else {
            (2, 0)
        };
        let slots = entries as *const *mut ffi::PyObject;
        loop {
            let entry = slots.add(i as usize * width);
            let value = *entry.add(key_at + 1);
            if !value.is_null() {
                *pos = i + 1;
                return Some(Some((*entry.add(key_at), value)));
            }
            i += 1;
            if i >= n {
                *pos = i;
                return Some(None);
            }
        }
    }
}

#[cfg(all(test, Py_3_11, not(Py_GIL_DISABLED)))]
mod tests {
    use super::KeysHeader;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_keys_header_is_cpythons() {
        // dk_indices starts at offset 32 on 64-bit builds.
        assert_eq!(std::mem::size_of::<KeysHeader>(), 32);
    }
}
