//! Module lookup shared by the writer (`save_global`) and the reader
//! (`find_class`).
//!
//! Both need the module a global lives in, and nearly always it is imported
//! already. `PyImport_Import` (what `_pickle.c` calls) goes through
//! `builtins.__import__` every time: a globals lookup, a call with a
//! `fromlist`, the import lock check. Looking in `sys.modules` first costs a
//! dict lookup; a pickle of a by-value class names a dozen globals, and that
//! lookup was a fifth of writing one. (`PyImport_GetModule` is no shortcut:
//! it asks the module's `__spec__` whether it is still initializing.)
//! Modules not imported yet (or set to None in `sys.modules`, which makes
//! import fail) take the full import.
//!
//! A module found in `sys.modules` may still be running its body, in
//! another thread or as a circular import. `__import__` waits for another
//! thread's import to finish; the shortcut does not. So a caller that does
//! not find the attribute it wants in the module `import_module` gave must
//! try again with `import_module_fully` before it reports failure (CPython's
//! `test_unpickle_module_race` checks exactly this).

use pyo3::ffi;
use pyo3::prelude::*;

/// `sys.modules[name]` when present, else `import_module_fully(name)`.
pub fn import_module<'py>(name: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = name.py();
    // SAFETY: the GIL is held; PyImport_GetModuleDict returns a borrowed
    // reference to `sys.modules` (the interpreter's, always alive), and
    // PyDict_GetItemWithError a borrowed reference or null, with an
    // exception set only on error (an unhashable name).
    let cached = unsafe {
        let modules = ffi::PyImport_GetModuleDict();
        ffi::PyDict_GetItemWithError(modules, name.as_ptr())
    };
    if !cached.is_null() {
        // SAFETY: a borrowed reference from a live dict; a new one is taken.
        let module = unsafe { Bound::from_borrowed_ptr(py, cached) };
        if !module.is_none() {
            return Ok(module);
        }
    } else if let Some(err) = PyErr::take(py) {
        return Err(err);
    }
    import_module_fully(name)
}

/// `__import__(name)`, returning the module named (not the top-level
/// package); waits while another thread is importing it.
pub fn import_module_fully<'py>(name: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held and `name` is alive; PyImport_Import returns a
    // new reference or null with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(name.py(), ffi::PyImport_Import(name.as_ptr())) }
}
