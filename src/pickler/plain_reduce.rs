//! `object.__reduce_ex__(protocol >= 2)` for plain instances, computed in
//! Rust.
//!
//! Most instances pickled by anyone are of a class that reduces through
//! `object.__reduce_ex__`, which CPython answers with its C `reduce_newobj`:
//! `(copyreg.__newobj__, (cls,), state, None, None)`, where the state is the
//! instance dict (None when empty) and, for `__slots__`, a `(dict, slots)`
//! pair. Calling it from the writer costs a bound method, an argument tuple,
//! the lookups of `__reduce__`, `__getnewargs_ex__`, `__getnewargs__`,
//! `__getstate__` and `copyreg.__newobj__`, the 5-tuple and `(cls,)`, and
//! then the writer takes that tuple apart again.
//!
//! `plain_reduction` computes the same `(cls, state)` directly, but only
//! where the result cannot differ from CPython's on any of 3.10-3.13; in any
//! other case it answers `None` and the writer calls `__reduce_ex__` as
//! before. The conditions, each checked by pointer or flag:
//! - a heap type, not variable-sized, with a `tp_new`, not a list or dict
//!   subclass (those add list/dict items to the reduction);
//! - the generic `__getattribute__` on the instance and on its metaclass, so
//!   the attribute lookups below are the ones CPython's would make;
//! - the metaclass's MRO gives `object.__reduce__` too (CPython compares
//!   `type(obj).__reduce__`, where a metaclass data descriptor would win);
//! - along the MRO, `__reduce_ex__`, `__reduce__`, `__getstate__` (3.11+) and
//!   `__class__` are `object`'s own, and there is no `__getnewargs_ex__`,
//!   `__getnewargs__` (or, before 3.11, `__getstate__`);
//! - the instance dict has none of those names either (it would shadow the
//!   methods, which are not data descriptors);
//! - the class dict's `__slotnames__`, if there is one, is a list or None;
//!   when there is none, `copyreg._slotnames(cls)` computes and caches it,
//!   as CPython's reduction does at the same point;
//! - CPython's "cannot pickle 'X' object" size check would pass. The sum
//!   here counts a dict or weakref slot only at a positive offset, never more
//!   than CPython counts, so passing here means passing there.
//!
//! Once those hold, reading the slot values can still fail (a non-str slot
//! name, a property that changes `__slotnames__`): it fails with CPython's
//! error, which the writer treats as one raised by `__reduce_ex__`.
//!
//! Not followed: a program that replaces `copyreg.__newobj__` gets NEWOBJ
//! here where CPython would write a call to its replacement.

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use crate::attrs::{lookup, type_lookup};
use crate::pyrefs::PyRefs;

/// What `object.__reduce_ex__` would have returned, less the parts that are
/// the same for every plain instance.
pub(super) struct PlainReduction<'py> {
    pub cls: Bound<'py, PyType>,
    /// The state to BUILD with: the instance dict, or `(dict or None,
    /// slots)`; `None` when there is nothing to set.
    pub state: Option<Bound<'py, PyAny>>,
}

/// The names whose presence anywhere (MRO or instance dict) means the
/// instance does not reduce the plain way.
fn overriding_names<'py>(py: Python<'py>) -> [&'py Bound<'py, PyString>; 5] {
    [
        intern!(py, "__reduce_ex__"),
        intern!(py, "__reduce__"),
        intern!(py, "__getstate__"),
        intern!(py, "__getnewargs_ex__"),
        intern!(py, "__getnewargs__"),
    ]
}

/// The address of a type's `tp_getattro`, to tell CPython's own function
/// from an override (CPython's exported functions have one address each).
fn slot_address(slot: Option<ffi::getattrofunc>) -> usize {
    slot.map_or(0, |f| f as usize)
}

/// `(cls, state)` as `object.__reduce_ex__(protocol)` would compute it for
/// protocol >= 2, or `None` when `obj` is not a plain instance (see the
/// module docs): the caller then asks the object itself. `before_python`
/// runs first whenever Python code may run here (copyreg computing the
/// slot names, reading slot values through attribute lookups).
pub(super) fn plain_reduction<'py>(
    obj: &Bound<'py, PyAny>,
    refs: &PyRefs,
    before_python: &mut dyn FnMut(),
) -> PyResult<Option<PlainReduction<'py>>> {
    let py = obj.py();
    let tp = obj.get_type_ptr();
    // SAFETY: `tp` is the live type of `obj` (we hold a reference to `obj`)
    // and the GIL is held; only fields and flags are read.
    let plain_type = unsafe {
        let t = &*tp;
        let meta = &*ffi::Py_TYPE(tp as *mut ffi::PyObject);
        let excluded = ffi::Py_TPFLAGS_LIST_SUBCLASS | ffi::Py_TPFLAGS_DICT_SUBCLASS;
        t.tp_flags & ffi::Py_TPFLAGS_HEAPTYPE != 0
            && t.tp_flags & excluded == 0
            && t.tp_itemsize == 0
            && t.tp_new.is_some()
            && slot_address(t.tp_getattro) == ffi::PyObject_GenericGetAttr as *const () as usize
            && slot_address(meta.tp_getattro)
                == slot_address((*std::ptr::addr_of!(ffi::PyType_Type)).tp_getattro)
    };
    if !plain_type {
        return Ok(None);
    }
    let object = &refs.object_methods;
    // SAFETY: `tp` is live and the GIL is held; the borrowed results are
    // only compared by address, before any Python code runs.
    let inherited = unsafe {
        let is = |name: &Bound<'_, PyString>, expected: Option<&Py<PyAny>>| {
            type_lookup(tp, name) == expected.map(|e| e.as_ptr())
        };
        let [reduce_ex, reduce, getstate, getnewargs_ex, getnewargs] = overriding_names(py);
        is(reduce_ex, Some(&object.reduce_ex))
            && is(reduce, Some(&object.reduce))
            && is(getstate, object.getstate.as_ref())
            && is(getnewargs_ex, None)
            && is(getnewargs, None)
            && is(intern!(py, "__class__"), Some(&object.class))
            // CPython compares `type(obj).__reduce__` with object's, and a
            // data descriptor of that name on the metaclass would win there.
            && type_lookup(ffi::Py_TYPE(tp as *mut ffi::PyObject), reduce)
                == Some(object.reduce.as_ptr())
    };
    if !inherited {
        return Ok(None);
    }
    let dict = instance_dict(obj)?;
    if let Some(dict) = &dict {
        for name in overriding_names(py) {
            if dict.contains(name)? {
                return Ok(None);
            }
        }
    }
    // Past the checks that send an instance to its own reducer: from here
    // on, CPython's reduction is the one that would run, and it would get
    // the slot names (computing them for the class's first instance).
    let cls = obj.get_type();
    let Some(slotnames) = slotnames(&cls, before_python)? else {
        return Ok(None);
    };
    if !passes_size_check(tp, slotnames.as_ref()) {
        return Ok(None);
    }
    let mut state = dict.map(Bound::into_any);
    if let Some(names) = slotnames.filter(|names| !names.is_empty()) {
        before_python();
        let slots = slot_values(obj, &names)?;
        if !slots.is_empty() {
            let dict_part = state.unwrap_or_else(|| py.None().into_bound(py));
            state = Some(PyTuple::new(py, [dict_part, slots.into_any()])?.into_any());
        }
    }
    Ok(Some(PlainReduction { cls, state }))
}

/// The class's `__slotnames__` (`Some(None)` for a class without slots) as
/// CPython's `_PyType_GetSlotNames` gets it: from the class dict, else from
/// `copyreg._slotnames(cls)` (which caches it there), failing with CPython's
/// error when that returns something else than a list or None. `None` when
/// the class dict holds something else than a list or None (CPython raises
/// then; the slow path makes it do so).
fn slotnames<'py>(
    cls: &Bound<'py, PyType>,
    before_python: &mut dyn FnMut(),
) -> PyResult<Option<Option<Bound<'py, PyList>>>> {
    let py = cls.py();
    // SAFETY: a heap type (checked by the caller) always has its own dict,
    // alive as long as the class; PyDict_GetItem returns a borrowed entry.
    let found = unsafe {
        let dict = (*cls.as_type_ptr()).tp_dict;
        if dict.is_null() {
            return Ok(None);
        }
        let item = ffi::PyDict_GetItem(dict, intern!(py, "__slotnames__").as_ptr());
        if item.is_null() {
            before_python();
            return computed_slotnames(cls).map(Some);
        }
        Bound::from_borrowed_ptr(py, item)
    };
    if found.is_none() {
        return Ok(Some(None));
    }
    Ok(found.cast_into::<PyList>().ok().map(Some))
}

/// `copyreg._slotnames(cls)`, looked up when called, as CPython calls it.
#[cold]
fn computed_slotnames<'py>(cls: &Bound<'py, PyType>) -> PyResult<Option<Bound<'py, PyList>>> {
    let py = cls.py();
    let names = py
        .import(intern!(py, "copyreg"))?
        .getattr(intern!(py, "_slotnames"))?
        .call1((cls,))?;
    if names.is_none() {
        return Ok(None);
    }
    names.cast_into::<PyList>().map(Some).map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err("copyreg._slotnames didn't return a list or None")
    })
}

/// CPython refuses (with "cannot pickle 'X' object") an instance whose
/// C struct is larger than `object` plus its dict, weakref and slot
/// pointers: a C base class holds state the reduction cannot see. This
/// counts no more than CPython counts, so passing here implies passing there.
fn passes_size_check(tp: *mut ffi::PyTypeObject, slotnames: Option<&Bound<'_, PyList>>) -> bool {
    let word = std::mem::size_of::<*mut ffi::PyObject>() as ffi::Py_ssize_t;
    // SAFETY: `tp` is a live type and `PyBaseObject_Type` a static one; only
    // plain fields are read.
    unsafe {
        let t = &*tp;
        let mut allowed = (*std::ptr::addr_of!(ffi::PyBaseObject_Type)).tp_basicsize;
        if t.tp_dictoffset > 0 {
            allowed += word;
        }
        if t.tp_weaklistoffset > 0 {
            allowed += word;
        }
        if let Some(names) = slotnames {
            allowed += word * names.len() as ffi::Py_ssize_t;
        }
        t.tp_basicsize <= allowed
    }
}

/// The instance dict as the default `__getstate__` sees it: `None` when the
/// instance has none or it is empty (every version answers None for both).
fn instance_dict<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyDict>>> {
    let py = obj.py();
    #[cfg(Py_3_11)]
    {
        // SAFETY: reading a field of the live type of `obj`.
        if unsafe { (*obj.get_type_ptr()).tp_dictoffset } == 0 {
            return Ok(None);
        }
        // The same call CPython makes for a non-empty dict. For an empty
        // one it would not make it, but it then answers None as well.
        // SAFETY: `obj` is alive; a new reference or null with an error.
        let dict = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()),
            )?
        };
        let dict = dict.cast_into::<PyDict>()?;
        Ok((!dict.is_empty()).then_some(dict))
    }
    #[cfg(not(Py_3_11))]
    {
        // SAFETY: `obj` is alive; the pointer, when not null, points at the
        // instance's dict slot, which holds a borrowed dict or null.
        unsafe {
            let slot = crate::attrs::_PyObject_GetDictPtr(obj.as_ptr());
            if slot.is_null() || (*slot).is_null() {
                return Ok(None);
            }
            let dict = Bound::from_borrowed_ptr(py, *slot).cast_into::<PyDict>()?;
            Ok((!dict.is_empty()).then_some(dict))
        }
    }
}

/// The slot values that are set, by slot name, as the default `__getstate__`
/// collects them, failing where it fails: a name that is not a str (the
/// lookup's own TypeError), and a names list that changes size meanwhile (a
/// slot shadowed by a property can run any code; falling back to
/// `__reduce_ex__` would run the properties a second time).
fn slot_values<'py>(
    obj: &Bound<'py, PyAny>,
    names: &Bound<'py, PyList>,
) -> PyResult<Bound<'py, PyDict>> {
    let slots = PyDict::new(obj.py());
    let count = names.len();
    for i in 0..count {
        let name = names.get_item(i)?;
        if let Some(value) = lookup(obj, &name)? {
            slots.set_item(name, value)?;
        }
        if names.len() != count {
            return Err(PyRuntimeError::new_err(
                "__slotsname__ changed size during iteration",
            ));
        }
    }
    Ok(slots)
}
