//! The module's `loads` and `dumps`: entry points with a short way in for
//! the common call.
//!
//! A PyO3 function with keyword options extracts every parameter on every
//! call; for a tiny pickle that was a quarter of the call's own work. So the
//! functions the module exposes are plain `METH_FASTCALL` functions: a call
//! with the usual arguments (`loads(data)`; `dumps(obj)` with the protocol
//! and the `deterministic` and `fix_imports` flags, by position or keyword)
//! goes straight to the reader or writer with the other options at their
//! defaults. Any other call is handed on, arguments untouched, to
//! the PyO3 function with the full signature (`unpickler::api::loads`,
//! `pickler::api::dumps`), which checks them and reports errors as
//! documented. Both ways run the same code after argument handling.
//!
//! The C-level wrapper (catching panics, counting the attached thread) is
//! PyO3's own trampoline, the one its `#[pyfunction]` expansion uses.

use std::ffi::{CStr, CString};

use pyo3::ffi;
use pyo3::impl_::trampoline::{self, MethodDef};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyCFunction, PyString, PyTuple};
use pyo3::Borrowed;

use crate::pickler::api::{dumps_plain, DumpFlags};
use crate::unpickler::api::loads_with_defaults;

type FastFunc = trampoline::fastcall_cfunction_with_keywords::Func;

/// The full-signature functions, which take every call the short way does not.
struct Full {
    loads: Py<PyAny>,
    dumps: Py<PyAny>,
}

static FULL: pyo3::sync::PyOnceLock<Full> = pyo3::sync::PyOnceLock::new();

/// Add `loads` and `dumps` to the module `m`.
pub fn add_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let loads = wrap_pyfunction!(crate::unpickler::api::loads, m)?;
    let dumps = wrap_pyfunction!(crate::pickler::api::dumps, m)?;
    let public_loads = short_way_function(m, &loads, fast_function::<LoadsEntry>())?;
    let public_dumps = short_way_function(m, &dumps, fast_function::<DumpsEntry>())?;
    // The module is initialised once per process (PyO3 hands a second
    // import the same module object), so this is the only `set`.
    let _ = FULL.set(
        py,
        Full {
            loads: loads.into_any().unbind(),
            dumps: dumps.into_any().unbind(),
        },
    );
    m.add("loads", public_loads)?;
    m.add("dumps", public_dumps)?;
    Ok(())
}

fn fast_function<D: MethodDef<FastFunc>>() -> ffi::PyCFunctionFastWithKeywords {
    trampoline::fastcall_cfunction_with_keywords::<D>
}

/// A built-in function named and documented like `full` that calls `meth`.
fn short_way_function<'py>(
    m: &Bound<'py, PyModule>,
    full: &Bound<'py, PyCFunction>,
    meth: ffi::PyCFunctionFastWithKeywords,
) -> PyResult<Bound<'py, PyAny>> {
    let py = m.py();
    let name: String = full.getattr("__name__")?.extract()?;
    // The signature PyO3 derived from `#[pyo3(signature)]`, then the body of
    // the documentation: CPython splits "name(signature)\n--\n\n" off the
    // front again into `__text_signature__`.
    let signature: String = full.getattr("__text_signature__")?.extract()?;
    let body: String = full.getattr("__doc__")?.extract()?;
    let body = doc_body(&name, &body);
    let doc = leak_c_string(format!("{name}{signature}\n--\n\n{body}"))?;
    let name = leak_c_string(name)?;
    // The definition must outlive the function object; module functions
    // live as long as the process, so it is leaked once per module init.
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: meth,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: doc.as_ptr(),
    }));
    let module_name = PyString::new(py, m.name()?.to_str()?);
    // SAFETY: `def` is leaked (lives for the process), `m` and `module_name`
    // are live objects; PyCFunction_NewEx returns a new reference or NULL
    // with an exception set.
    unsafe {
        let ptr = ffi::PyCFunction_NewEx(def, m.as_ptr(), module_name.as_ptr());
        Bound::from_owned_ptr_or_err(py, ptr)
    }
}

/// `doc` without a leading hand-written "name(...)\n--\n\n" signature block.
fn doc_body<'d>(name: &str, doc: &'d str) -> &'d str {
    match doc.strip_prefix(name) {
        Some(rest) if rest.starts_with('(') => match rest.find("\n--\n\n") {
            Some(end) => &rest[end + "\n--\n\n".len()..],
            None => doc,
        },
        _ => doc,
    }
}

fn leak_c_string(text: String) -> PyResult<&'static CStr> {
    let c = CString::new(text)
        .map_err(|_| pyo3::exceptions::PyValueError::new_err("embedded NUL in a name"))?;
    Ok(Box::leak(c.into_boxed_c_str()))
}

/// Hand a call on to a full-signature function, arguments untouched.
///
/// # Safety
/// `args`, `nargs` and `kwnames` must be a valid vectorcall argument list.
unsafe fn hand_on(
    py: Python<'_>,
    pick: fn(&Full) -> &Py<PyAny>,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let full = FULL.get(py).ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err("anypickle._core is not set up")
    })?;
    // SAFETY: the caller passes a valid argument list; the function object
    // is alive (held by FULL). The result is a new reference, or NULL with
    // the exception set, which is returned as it is: the trampoline passes
    // NULL on (fetching and restoring the error would, for a panic in the
    // full function, resume the panic and report it twice).
    Ok(unsafe { ffi::PyObject_Vectorcall(pick(full).as_ptr(), args, nargs as usize, kwnames) })
}

/// `loads`: `loads(data)` the short way, anything else through the full function.
///
/// # Safety
/// Called by CPython as a `METH_FASTCALL | METH_KEYWORDS` function.
unsafe fn loads_entry(
    py: Python<'_>,
    _module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    if nargs == 1 && kwnames.is_null() {
        // SAFETY: CPython passes `nargs` live arguments, borrowed for the call.
        let data = unsafe { Borrowed::from_ptr(py, *args) };
        return loads_with_defaults(py, &data).map(Bound::into_ptr);
    }
    // SAFETY: forwarded as received.
    unsafe { hand_on(py, |f| &f.loads, args, nargs, kwnames) }
}

/// `dumps`: the short way for the object, optionally the protocol, and the
/// keywords `protocol`, `deterministic` and `fix_imports` given as exact
/// values; anything else through the full function.
///
/// # Safety
/// Called by CPython as a `METH_FASTCALL | METH_KEYWORDS` function.
unsafe fn dumps_entry(
    py: Python<'_>,
    _module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: CPython passes `nargs` positional arguments followed by one
    // value per name in `kwnames`, all live and borrowed for the call.
    let short = unsafe { dumps_arguments(py, &args, nargs, kwnames) };
    match short {
        Some(call) => {
            dumps_plain(&call.obj, call.protocol.as_deref(), call.flags).map(Bound::into_ptr)
        }
        // SAFETY: forwarded as received.
        None => unsafe { hand_on(py, |f| &f.dumps, args, nargs, kwnames) },
    }
}

/// A `dumps` call the short way can take.
struct ShortDumps<'a, 'py> {
    obj: Borrowed<'a, 'py, PyAny>,
    protocol: Option<Borrowed<'a, 'py, PyAny>>,
    flags: DumpFlags,
}

/// The call's arguments when the short way can take them: one or two
/// positional arguments and only the keywords it knows, each at most once,
/// with exact bools for the flags. `None` sends the call the full way,
/// which also reports every mistake.
///
/// # Safety
/// `args`, `nargs` and `kwnames` must be a valid vectorcall argument list.
unsafe fn dumps_arguments<'a, 'py>(
    py: Python<'py>,
    args: &'a *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> Option<ShortDumps<'a, 'py>> {
    // (`args` is taken by reference only to tie the borrowed arguments to
    // the caller's frame: they must not outlive the call.)
    let args = *args;
    if !(1..=2).contains(&nargs) {
        return None;
    }
    // SAFETY: as the caller promises.
    let arg = |i: usize| unsafe { Borrowed::from_ptr(py, *args.add(i)) };
    let mut call = ShortDumps {
        obj: arg(0),
        protocol: (nargs == 2).then(|| arg(1)),
        flags: DumpFlags::default(),
    };
    if kwnames.is_null() {
        return Some(call);
    }
    // SAFETY: `kwnames` is a tuple of str when not NULL.
    let names = unsafe { Borrowed::from_ptr(py, kwnames).cast_unchecked::<PyTuple>() };
    let mut seen_flags = [false; 2];
    for (i, name) in names.iter_borrowed().enumerate() {
        let value = arg(nargs as usize + i);
        let name = name.cast::<PyString>().ok()?;
        match name.to_str().ok()? {
            "protocol" if call.protocol.is_none() => call.protocol = Some(value),
            "deterministic" if !seen_flags[0] => {
                seen_flags[0] = true;
                call.flags.deterministic = exact_bool(&value)?;
            }
            "fix_imports" if !seen_flags[1] => {
                seen_flags[1] = true;
                call.flags.fix_imports = exact_bool(&value)?;
            }
            _ => return None,
        }
    }
    Some(call)
}

/// True or False; anything else is for the full function to judge.
fn exact_bool(value: &Bound<'_, PyAny>) -> Option<bool> {
    value.cast::<PyBool>().ok().map(|b| b.is_true())
}

struct LoadsEntry;
impl MethodDef<FastFunc> for LoadsEntry {
    const METH: FastFunc = loads_entry;
}

struct DumpsEntry;
impl MethodDef<FastFunc> for DumpsEntry {
    const METH: FastFunc = dumps_entry;
}
