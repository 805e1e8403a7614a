//! Attribute lookups that the reader and writer make on every object, done
//! without raising and discarding an `AttributeError` when the attribute is
//! missing (creating that exception costs more than the rest of the lookup).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

#[cfg(not(Py_3_13))]
unsafe extern "C" {
    // Exported by CPython 3.7-3.12 (the private name of 3.13's
    // PyObject_GetOptionalAttr): 1 and a new reference when found, 0 and no
    // error when missing, -1 with an error set. For types with the generic
    // getattr it never creates the AttributeError it would discard.
    fn _PyObject_LookupAttr(
        obj: *mut ffi::PyObject,
        name: *mut ffi::PyObject,
        result: *mut *mut ffi::PyObject,
    ) -> std::ffi::c_int;
}

#[cfg(not(Py_3_11))]
unsafe extern "C" {
    // Exported by CPython 3.10: the address of the instance's dict slot
    // (null when its type has none), without creating the dict.
    pub fn _PyObject_GetDictPtr(obj: *mut ffi::PyObject) -> *mut *mut ffi::PyObject;
}

unsafe extern "C" {
    // Exported by CPython 3.10-3.13 (Cython relies on it). The MRO lookup
    // behind `type.attr`, through the type's method cache: a borrowed
    // reference or null, never raising.
    fn _PyType_Lookup(tp: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// `getattr(obj, name, None)` as an `Option`, with any error other than
/// `AttributeError` propagated. `name` is normally a str; any other object
/// fails with CPython's own TypeError, as `getattr` does.
///
/// Same result as PyO3's `getattr_opt`, which before 3.13 raises the
/// `AttributeError` and then clears it.
#[inline]
pub fn lookup<'py, N>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, N>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    let mut found: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: both pointers are alive for the call; the function stores a
    // new reference in `found` only when it returns 1.
    let rc = unsafe {
        #[cfg(Py_3_13)]
        {
            ffi::PyObject_GetOptionalAttr(obj.as_ptr(), name.as_ptr(), &mut found)
        }
        #[cfg(not(Py_3_13))]
        {
            _PyObject_LookupAttr(obj.as_ptr(), name.as_ptr(), &mut found)
        }
    };
    match rc {
        // SAFETY: `found` is the new reference the lookup returned.
        1 => Ok(Some(unsafe { Bound::from_owned_ptr(py, found) })),
        0 => Ok(None),
        _ => Err(PyErr::fetch(py)),
    }
}

/// The attribute `name` of type `tp` found along its MRO (what `tp.name`
/// would find before descriptors run), borrowed from the type; `None` when no
/// class in the MRO defines it.
///
/// # Safety
/// `tp` must point to a live type object, and the GIL must be held. The
/// returned pointer is borrowed: use it before running any Python code that
/// could change the type.
#[inline]
pub unsafe fn type_lookup(
    tp: *mut ffi::PyTypeObject,
    name: &Bound<'_, PyString>,
) -> Option<*mut ffi::PyObject> {
    // SAFETY: the caller guarantees `tp` is a live type and the GIL is held.
    let found = unsafe { _PyType_Lookup(tp, name.as_ptr()) };
    (!found.is_null()).then_some(found)
}
