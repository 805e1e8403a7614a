//! The Python-facing writer: `dumps`, `dump`, and the `Pickler` base class
//! with its memo proxy. Argument checking and hook lookup live here; the
//! writing itself is `Writer`'s.

use std::cell::RefCell;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use pyo3::PyTraverseError;

use super::memo::Memo;
use super::write_error::WriteError;
use super::writer::{Hooks, Settings, Writer};
use crate::opcodes::HIGHEST_PROTOCOL;
use crate::pyrefs::PyRefs;

/// anypickle writes protocol 5 unless told otherwise.
pub const DEFAULT_PROTOCOL: u8 = 5;

/// Resolve the `protocol` argument as the stdlib does: None → default,
/// negative → highest, above the highest → ValueError.
fn resolve_protocol(protocol: Option<&Bound<'_, PyAny>>) -> PyResult<u8> {
    let Some(protocol) = protocol.filter(|p| !p.is_none()) else {
        return Ok(DEFAULT_PROTOCOL);
    };
    let p: i64 = if protocol.is_exact_instance_of::<pyo3::types::PyInt>() {
        // The usual `dumps(obj, 5)`, without the generic extraction (a
        // quarter of the call's cost outside the writer).
        let mut overflow = 0;
        // SAFETY: `protocol` is an exact int; the GIL is held.
        let v = unsafe { ffi::PyLong_AsLongAndOverflow(protocol.as_ptr(), &mut overflow) };
        if overflow == 0 {
            v as i64
        } else {
            protocol.extract()?
        }
    } else {
        protocol.extract()?
    };
    if p < 0 {
        Ok(HIGHEST_PROTOCOL)
    } else if p > HIGHEST_PROTOCOL as i64 {
        Err(PyValueError::new_err(format!(
            "pickle protocol must be <= {HIGHEST_PROTOCOL}"
        )))
    } else {
        Ok(p as u8)
    }
}

fn check_buffer_callback(proto: u8, callback: &Option<Bound<'_, PyAny>>) -> PyResult<()> {
    if callback.as_ref().is_some_and(|c| !c.is_none()) && proto < 5 {
        return Err(PyValueError::new_err("buffer_callback needs protocol >= 5"));
    }
    Ok(())
}

fn file_write<'py>(file: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    file.getattr_opt(intern!(file.py(), "write"))?
        .ok_or_else(|| PyTypeError::new_err("file must have a 'write' attribute"))
}

/// The `by_value=` argument (modules or module names) as module names.
fn by_value_names(by_value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match by_value.filter(|b| !b.is_none()) {
        None => Ok(Vec::new()),
        Some(modules) => modules
            .py()
            .import("anypickle._byvalue")?
            .getattr("module_names")?
            .call1((modules,))?
            .extract(),
    }
}

fn none_to_option(obj: Option<Bound<'_, PyAny>>) -> Option<Bound<'_, PyAny>> {
    obj.filter(|o| !o.is_none())
}

/// dumps(obj, protocol=None, *, fix_imports=True, buffer_callback=None, deterministic=True, by_value=None)
/// --
///
/// Return the pickle of `obj` as bytes.
///
/// Functions and classes that cannot be found again by name (lambdas, local
/// and `__main__` definitions, classes made at run time), and those of the
/// modules in `by_value` or registered with `register_pickle_by_value`, are
/// pickled by value: `pickle.loads` rebuilds them in a process that lacks
/// their code. Everything else is pickled by reference, as by the stdlib.
///
/// With deterministic=True (the default) the bytes are identical to
/// `pickle.dumps(obj, protocol)`. With deterministic=False only objects that
/// are really shared are memoized: faster, and `pickle.loads` gives back an
/// equal object with shared parts and cycles intact, but the bytes may
/// differ from the stdlib's. `protocol` defaults to 5; negative means the
/// highest.
///
/// Example:
///     >>> import anypickle, pickle
///     >>> anypickle.dumps([1, "two"], 4) == pickle.dumps([1, "two"], 4)
///     True
#[pyfunction]
#[pyo3(signature = (obj, protocol=None, *, fix_imports=true, buffer_callback=None, deterministic=true, by_value=None))]
pub fn dumps<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    fix_imports: bool,
    buffer_callback: Option<Bound<'py, PyAny>>,
    deterministic: bool,
    by_value: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let proto = resolve_protocol(protocol)?;
    check_buffer_callback(proto, &buffer_callback)?;
    let settings = Settings {
        proto,
        fix_imports,
        deterministic,
        fast: false,
        memo_private: true,
    };
    let hooks = Hooks {
        buffer_callback: none_to_option(buffer_callback),
        ..Hooks::default()
    };
    let by_value = by_value_names(by_value)?;
    write_bytes(obj, settings, |writer| {
        writer.hooks = hooks;
        writer.by_value_modules = by_value;
    })
}

/// The `dumps` flags the module's fast entry handles itself.
pub struct DumpFlags {
    pub deterministic: bool,
    pub fix_imports: bool,
}

impl Default for DumpFlags {
    fn default() -> Self {
        DumpFlags {
            deterministic: true,
            fix_imports: true,
        }
    }
}

/// `dumps(obj, protocol)` with these flags and no hooks, buffer callback or
/// `by_value`: the call the module's fast entry makes (see `crate::entry`).
pub fn dumps_plain<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    flags: DumpFlags,
) -> PyResult<Bound<'py, PyBytes>> {
    let settings = Settings {
        proto: resolve_protocol(protocol)?,
        fix_imports: flags.fix_imports,
        deterministic: flags.deterministic,
        fast: false,
        memo_private: true,
    };
    write_bytes(obj, settings, |_| {})
}

/// The pickle of `obj` as bytes; `setup` gives the writer its hooks and
/// `by_value` modules, if any.
///
/// Inlined into its two callers, and nothing of the call's state passes
/// through the thread-local's closures but references and a two-word result
/// (see `write_error`): structs moved through them (the hooks, a vector, a
/// `PyResult`) were copied with wide loads of bytes just stored in narrow
/// pieces, and those loads stalled on store forwarding (perf: a fifth of
/// `dumps(42)`).
#[inline(always)]
fn write_bytes<'py>(
    obj: &Bound<'py, PyAny>,
    settings: Settings,
    setup: impl FnOnce(&mut Writer<'py, '_>),
) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let refs = PyRefs::get(py)?;
    let bytes: Result<Bound<'py, PyBytes>, WriteError> = with_spare_memo(|memo| {
        let mut writer = Writer::new(py, refs, settings, memo, None);
        setup(&mut writer);
        writer.dump(obj)?;
        Ok(writer.take_bytes()?)
    });
    Ok(bytes?)
}

thread_local! {
    /// A memo kept between `dumps` calls so small calls allocate no table.
    static SPARE_MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// Run `f` with the thread's spare memo, or a fresh one when it is in use
/// (a `__reduce__` that calls `dumps` again).
#[inline(always)]
fn with_spare_memo<R>(f: impl FnOnce(&mut Memo) -> R) -> R {
    SPARE_MEMO.with(|cell| match cell.try_borrow_mut() {
        Ok(mut memo) => {
            let result = f(&mut memo);
            memo.reset_for_reuse();
            result
        }
        Err(_) => f(&mut Memo::default()),
    })
}

/// dump(obj, file, protocol=None, *, fix_imports=True, buffer_callback=None, deterministic=True, by_value=None)
/// --
///
/// Write the pickle of `obj` to the binary file `file` (anything with a
/// `write(bytes)` method). Arguments as for `dumps`.
///
/// Example:
///     >>> import io, anypickle
///     >>> f = io.BytesIO()
///     >>> anypickle.dump({"k": 1}, f)
///     >>> anypickle.loads(f.getvalue())
///     {'k': 1}
#[pyfunction]
#[pyo3(signature = (obj, file, protocol=None, *, fix_imports=true, buffer_callback=None, deterministic=true, by_value=None))]
pub fn dump<'py>(
    obj: &Bound<'py, PyAny>,
    file: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    fix_imports: bool,
    buffer_callback: Option<Bound<'py, PyAny>>,
    deterministic: bool,
    by_value: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    let py = obj.py();
    let proto = resolve_protocol(protocol)?;
    let write = file_write(file)?;
    check_buffer_callback(proto, &buffer_callback)?;
    let settings = Settings {
        proto,
        fix_imports,
        deterministic,
        fast: false,
        memo_private: true,
    };
    let hooks = Hooks {
        buffer_callback: none_to_option(buffer_callback),
        ..Hooks::default()
    };
    let by_value = by_value_names(by_value)?;
    let refs = PyRefs::get(py)?;
    with_spare_memo(|memo| {
        let mut writer = Writer::new(py, refs, settings, memo, Some(write));
        writer.hooks = hooks;
        writer.by_value_modules = by_value;
        writer.dump(obj)?;
        writer.flush_to_file()
    })
}

/// The base class of `anypickle.Pickler`: state and `dump`; the Python
/// subclass provides `__init__` (which calls `_setup`) and documentation.
#[pyclass(subclass, dict, module = "anypickle._core", name = "Pickler")]
pub struct Pickler {
    /// False until `#[new]` has written the fields. On 3.11, `object_new` of a
    /// Python subclass allocates the instance dict after the object is tracked
    /// by the GC but before PyO3 writes these fields, so a collection there
    /// runs `__traverse__` over zeroed memory (iterating a zeroed hash map
    /// dereferences NULL). Zero reads as false, so traversal skips it.
    traversable: bool,
    write: Option<Py<PyAny>>,
    proto: u8,
    fix_imports: bool,
    deterministic: bool,
    buffer_callback: Option<Py<PyAny>>,
    /// Modules pickled by value by this pickler (its `by_value=` argument).
    by_value: Vec<String>,
    /// Fast mode: no memo at all (no shared references, no cycles).
    #[pyo3(get, set)]
    fast: bool,
    memo: Memo,
}

#[pymethods]
impl Pickler {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Pickler {
            traversable: true,
            write: None,
            proto: DEFAULT_PROTOCOL,
            fix_imports: true,
            deterministic: true,
            buffer_callback: None,
            by_value: Vec::new(),
            fast: false,
            memo: Memo::default(),
        }
    }

    /// Configure the pickler (called by `anypickle.Pickler.__init__`).
    #[pyo3(signature = (file, protocol=None, *, fix_imports=true, buffer_callback=None, deterministic=true, by_value=None))]
    fn _setup(
        &mut self,
        file: &Bound<'_, PyAny>,
        protocol: Option<&Bound<'_, PyAny>>,
        fix_imports: bool,
        buffer_callback: Option<Bound<'_, PyAny>>,
        deterministic: bool,
        by_value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.by_value = by_value_names(by_value)?;
        let proto = resolve_protocol(protocol)?;
        let write = file_write(file)?;
        check_buffer_callback(proto, &buffer_callback)?;
        self.write = Some(write.unbind());
        self.proto = proto;
        self.fix_imports = fix_imports;
        self.deterministic = deterministic;
        self.buffer_callback = none_to_option(buffer_callback).map(Bound::unbind);
        self.fast = false;
        self.memo.clear();
        Ok(())
    }

    /// Write the pickle of `obj` to the file.
    fn dump(slf: &Bound<'_, Self>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let (write, settings, buffer_callback, by_value) = {
            let this = slf.borrow();
            let Some(write) = this.write.as_ref() else {
                return Err(PyRefs::get(py)?.pickling_error(
                    py,
                    format!(
                        "Pickler.__init__() was not called by {}.__init__()",
                        slf.get_type().name()?
                    ),
                ));
            };
            let settings = Settings {
                proto: this.proto,
                fix_imports: this.fix_imports,
                deterministic: this.deterministic,
                fast: this.fast,
                // The memo outlives the call (`memo`, a later `dump`).
                memo_private: false,
            };
            (
                write.bind(py).clone(),
                settings,
                this.buffer_callback.as_ref().map(|c| c.bind(py).clone()),
                this.by_value.clone(),
            )
        };
        let any = slf.as_any();
        // Like pickle.Pickler, a hook set to a non-callable (even None)
        // fails when it is used rather than being ignored.
        let hooks = Hooks {
            persistent_id: any.getattr_opt(intern!(py, "persistent_id"))?,
            reducer_override: any.getattr_opt(intern!(py, "reducer_override"))?,
            dispatch_table: any.getattr_opt(intern!(py, "dispatch_table"))?,
            buffer_callback,
        };
        // The memo is moved out while writing, so hooks that look at
        // `self.memo` or call `clear_memo()` cannot alias the writer's state.
        let refs = PyRefs::get(py)?;
        let mut memo = std::mem::take(&mut slf.borrow_mut().memo);
        let result = (|| {
            let mut writer = Writer::new(py, refs, settings, &mut memo, Some(write));
            writer.hooks = hooks;
            writer.by_value_modules = by_value;
            writer.dump(obj)?;
            writer.flush_to_file()
        })();
        slf.borrow_mut().memo = memo;
        result
    }

    /// Forget every object written so far (shared references across later
    /// `dump` calls are then written again).
    fn clear_memo(&mut self) {
        self.memo.clear();
    }

    /// The memo, as a proxy with `copy()` and `clear()` like pickle's.
    #[getter]
    fn get_memo(slf: &Bound<'_, Self>) -> PicklerMemoProxy {
        PicklerMemoProxy {
            pickler: slf.clone().unbind(),
        }
    }

    #[setter]
    fn set_memo(slf: &Bound<'_, Self>, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let Some(value) = value else {
            return Err(PyTypeError::new_err("attribute deletion is not supported"));
        };
        let py = value.py();
        // Build the new memo before borrowing `slf` mutably: the source may
        // be this very pickler (`p.memo = p.memo`).
        let mut memo = Memo::default();
        if let Ok(proxy) = value.cast::<PicklerMemoProxy>() {
            let source = proxy.borrow().pickler.clone_ref(py);
            for (idx, obj) in source.bind(py).borrow().memo.entries(py) {
                memo.set(&obj, idx);
            }
        } else if let Ok(dict) = value.cast::<PyDict>() {
            for (_, v) in dict.iter() {
                let pair = v
                    .cast::<PyTuple>()
                    .ok()
                    .filter(|t| t.len() == 2)
                    .ok_or_else(|| PyTypeError::new_err("'memo' values must be 2-item tuples"))?;
                let idx: usize = pair.get_item(0)?.extract()?;
                memo.set(&pair.get_item(1)?, idx);
            }
        } else {
            return Err(PyTypeError::new_err(format!(
                "'memo' attribute must be a PicklerMemoProxy object or dict, not {}",
                value.get_type().name()?
            )));
        }
        slf.borrow_mut().memo = memo;
        Ok(())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if !self.traversable {
            return Ok(());
        }
        if let Some(w) = &self.write {
            visit.call(w)?;
        }
        if let Some(c) = &self.buffer_callback {
            visit.call(c)?;
        }
        self.memo.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.write = None;
        self.buffer_callback = None;
        self.memo.clear();
    }
}

/// A view of a Pickler's memo (`pickler.memo`).
#[pyclass(module = "anypickle._core", name = "PicklerMemoProxy")]
pub struct PicklerMemoProxy {
    pickler: Py<Pickler>,
}

#[pymethods]
impl PicklerMemoProxy {
    /// Remove every entry.
    fn clear(&self, py: Python<'_>) {
        self.pickler.bind(py).borrow_mut().memo.clear();
    }

    /// A dict `{id(obj): (index, obj)}` of the entries.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (idx, obj) in self.pickler.bind(py).borrow().memo.entries(py) {
            out.set_item(obj.as_ptr() as usize, (idx, obj))?;
        }
        Ok(out)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let contents = self.copy(py)?;
        PyTuple::new(
            py,
            [
                py.get_type::<PyDict>().into_any(),
                PyTuple::new(py, [contents])?.into_any(),
            ],
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.pickler)
    }
}
