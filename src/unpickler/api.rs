//! The Python-facing reader: `loads`, `load`, and the `Unpickler` base
//! class with its memo proxy. Argument handling, hook lookup and the GC
//! pause live here; parsing is the parser crate's and executing the
//! machine's.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use anypickle_parser::{Parser, SliceSource, Source};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyIterator, PyTuple};
use pyo3::{ffi, PyTraverseError};

use super::errors::{data_error, Class, SourceError};
use super::file_source::FileSource;
use super::machine::{Config, Machine};
use super::memo::{Memo, StoredMemo};
use super::objects::{self, Py2Strings};
use crate::fresh_memory;

/// Whether loading pauses the cyclic GC when the caller does not say.
///
/// Creating many containers triggers collections that scan everything
/// created so far; pausing them while loading was measured to make
/// container-heavy loads faster on every supported version (see
/// bench/README.md), so it is on by default.
pub const DEFAULT_PAUSE_GC: bool = true;

/// Pauses the cyclic garbage collector while alive; restores the state it
/// found (on success, error or panic alike).
struct GcPause {
    was_enabled: bool,
}

impl GcPause {
    fn new(_py: Python<'_>, pause: Option<bool>) -> Option<GcPause> {
        if !pause.unwrap_or(DEFAULT_PAUSE_GC) {
            return None;
        }
        // SAFETY: the GIL is held (`_py`); PyGC_Disable returns the previous state.
        let was_enabled = unsafe { ffi::PyGC_Disable() } != 0;
        Some(GcPause { was_enabled })
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if self.was_enabled {
            // SAFETY: dropped in the scope that created it, with the GIL held.
            unsafe { ffi::PyGC_Enable() };
        }
    }
}

/// `fix_imports` is any object, read by truth value as the stdlib does.
fn truthy(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    obj.is_truthy()
}

/// Everything the stdlib lets a caller set about one load.
struct Options<'py, 'a> {
    fix_imports: bool,
    py2_strings: Py2Strings<'a>,
    buffers: Option<Bound<'py, PyIterator>>,
    pause_gc: Option<bool>,
}

impl<'py, 'a> Options<'py, 'a> {
    fn new(
        fix_imports: bool,
        encoding: &'a str,
        errors: &'a str,
        buffers: Option<&Bound<'py, PyAny>>,
        pause_gc: Option<bool>,
    ) -> PyResult<Self> {
        Ok(Options {
            fix_imports,
            py2_strings: Py2Strings::new(encoding, errors)?,
            buffers: match buffers.filter(|b| !b.is_none()) {
                Some(b) => Some(PyIterator::from_object(b)?),
                None => None,
            },
            pause_gc,
        })
    }
}

impl Default for Options<'_, '_> {
    /// The stdlib's defaults (a call that passes no keywords).
    fn default() -> Self {
        Options {
            fix_imports: true,
            py2_strings: Py2Strings::default(),
            buffers: None,
            pause_gc: None,
        }
    }
}

struct Hooks<'py> {
    find_class: Option<Bound<'py, PyAny>>,
    persistent_load: Option<Bound<'py, PyAny>>,
    proto_sink: Option<Arc<AtomicU8>>,
}

/// Parse and execute one pickle from `source`.
///
/// Inlined (with `run_plain`) into each caller, so that the source is built
/// inside the parser and a source that is dropped is never copied out: a
/// source moved through memory was copied with wide loads of bytes just
/// stored in narrow pieces, and those loads stalled on store forwarding
/// (perf: a sixth of a small `loads` outside the opcode loop).
#[inline(always)]
fn run<'py, S: Source>(
    py: Python<'py>,
    source: S,
    options: &Options<'py, '_>,
    hooks: Hooks<'py>,
    memo: &mut Memo<'py>,
) -> PyResult<(Bound<'py, PyAny>, S)>
where
    S::Error: SourceError,
{
    let _pause = GcPause::new(py, options.pause_gc);
    let config = Config {
        fix_imports: options.fix_imports,
        py2_strings: &options.py2_strings,
        buffers: options.buffers.clone(),
        find_class: hooks.find_class,
        persistent_load: hooks.persistent_load,
        proto_sink: hooks.proto_sink,
    };
    let mut parser = Parser::new(source);
    let value = Machine::new(py, memo, config).run(&mut parser)?;
    Ok((value, parser.into_source()))
}

/// Run with a fresh memo and no hooks (the `loads`/`load` functions).
#[inline(always)]
fn run_plain<'py, S: Source>(
    py: Python<'py>,
    source: S,
    options: &Options<'py, '_>,
) -> PyResult<(Bound<'py, PyAny>, S)>
where
    S::Error: SourceError,
{
    let hooks = Hooks {
        find_class: None,
        persistent_load: None,
        proto_sink: None,
    };
    run(py, source, options, hooks, &mut Memo::new())
}

/// loads(data, /, *, fix_imports=True, encoding="ASCII", errors="strict", buffers=None, pause_gc=None)
/// --
///
/// Return the object pickled in `data` (bytes or any bytes-like object).
///
/// Reads every protocol (0–5) and any pickle written by the stdlib,
/// cloudpickle, dill or anypickle. `encoding`/`errors` say how Python 2
/// `str` objects load (`encoding="bytes"` keeps them as bytes);
/// `fix_imports` maps Python 2 module names; `buffers` supplies the
/// out-of-band buffers of a protocol 5 pickle. `pause_gc` pauses the cyclic
/// garbage collector while loading (None: anypickle's default, on); the
/// caller's GC state is always restored.
///
/// Corrupt data raises `pickle.UnpicklingError` (or a subclass from
/// `anypickle._errors`) naming the opcode and byte offset; an empty input
/// raises EOFError.
///
/// Example:
///     >>> import anypickle, pickle
///     >>> anypickle.loads(pickle.dumps({"a": (1, 2.5)}))
///     {'a': (1, 2.5)}
#[pyfunction]
#[pyo3(signature = (data, /, *, fix_imports=true, encoding="ASCII", errors="strict", buffers=None, pause_gc=None))]
pub fn loads<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = truthy)] fix_imports: bool,
    encoding: &str,
    errors: &str,
    buffers: Option<&Bound<'py, PyAny>>,
    pause_gc: Option<bool>,
) -> PyResult<Bound<'py, PyAny>> {
    let options = Options::new(fix_imports, encoding, errors, buffers, pause_gc)?;
    load_data(py, data, &options)
}

/// `loads(data)` with every option at its default: the call the module's
/// fast entry makes (see `crate::entry`).
pub fn loads_with_defaults<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    load_data(py, data, &Options::default())
}

/// Load the pickle in `data`, a bytes-like object.
fn load_data<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    options: &Options<'py, '_>,
) -> PyResult<Bound<'py, PyAny>> {
    // A bytes object is immutable: parse it in place. Other buffers could be
    // changed by code the pickle runs, so the parser reads a private copy.
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return run_plain(py, SliceSource::new(bytes.as_bytes()), options).map(|(v, _)| v);
    }
    let buffer = PyBuffer::<u8>::get(data)?;
    if !buffer.is_c_contiguous() {
        return Err(pyo3::exceptions::PyBufferError::new_err(
            "memoryview: underlying buffer is not C-contiguous",
        ));
    }
    // SAFETY: the buffer is C-contiguous (checked above) and held until the
    // copy is made; no Python code runs while it is read.
    let view =
        unsafe { std::slice::from_raw_parts(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes()) };
    let copy = fresh_memory::copy_to_vec(view);
    run_plain(py, SliceSource::new(&copy), options).map(|(v, _)| v)
}

/// load(file, *, fix_imports=True, encoding="ASCII", errors="strict", buffers=None, pause_gc=None)
/// --
///
/// Read one pickle from the binary file `file` and return its object. Only
/// the bytes of that pickle are consumed, so pickles written one after
/// another load one by one. Other arguments as for `loads`.
///
/// Example:
///     >>> import io, anypickle
///     >>> f = io.BytesIO(anypickle.dumps(1) + anypickle.dumps("two"))
///     >>> anypickle.load(f), anypickle.load(f)
///     (1, 'two')
#[pyfunction]
#[pyo3(signature = (file, *, fix_imports=true, encoding="ASCII", errors="strict", buffers=None, pause_gc=None))]
pub fn load<'py>(
    py: Python<'py>,
    file: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = truthy)] fix_imports: bool,
    encoding: &str,
    errors: &str,
    buffers: Option<&Bound<'py, PyAny>>,
    pause_gc: Option<bool>,
) -> PyResult<Bound<'py, PyAny>> {
    let options = Options::new(fix_imports, encoding, errors, buffers, pause_gc)?;
    let (value, mut source) = run_plain(py, FileSource::new(file)?, &options)?;
    source.finish()?;
    Ok(value)
}

/// The base class of `anypickle.Unpickler`: state, `load` and the built-in
/// `find_class`; the Python subclass provides `__init__` (which calls
/// `_setup`) and documentation.
#[pyclass(subclass, dict, module = "anypickle._core", name = "Unpickler")]
pub struct Unpickler {
    /// False until `#[new]` has written the fields. On 3.11, `object_new` of a
    /// Python subclass allocates the instance dict after the object is tracked
    /// by the GC but before PyO3 writes these fields, so a collection there
    /// runs `__traverse__` over zeroed memory (iterating a zeroed hash map
    /// dereferences NULL). Zero reads as false, so traversal skips it.
    traversable: bool,
    file: Option<Py<PyAny>>,
    fix_imports: bool,
    encoding: String,
    errors: String,
    buffers: Option<Py<PyAny>>,
    pause_gc: Option<bool>,
    /// The protocol of the pickle being read (its last PROTO).
    proto: Arc<AtomicU8>,
    memo: StoredMemo,
}

#[pymethods]
impl Unpickler {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Unpickler {
            traversable: true,
            file: None,
            fix_imports: true,
            encoding: "ASCII".to_owned(),
            errors: "strict".to_owned(),
            buffers: None,
            pause_gc: None,
            proto: Arc::new(AtomicU8::new(0)),
            memo: StoredMemo::default(),
        }
    }

    /// Configure the unpickler (called by `anypickle.Unpickler.__init__`).
    #[pyo3(signature = (file, *, fix_imports=true, encoding="ASCII", errors="strict", buffers=None, pause_gc=None))]
    fn _setup(
        &mut self,
        file: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = truthy)] fix_imports: bool,
        encoding: &str,
        errors: &str,
        buffers: Option<&Bound<'_, PyAny>>,
        pause_gc: Option<bool>,
    ) -> PyResult<()> {
        FileSource::new(file)?;
        Py2Strings::new(encoding, errors)?;
        self.file = Some(file.clone().unbind());
        self.fix_imports = fix_imports;
        self.encoding = encoding.to_owned();
        self.errors = errors.to_owned();
        self.buffers = match buffers.filter(|b| !b.is_none()) {
            Some(b) => Some(PyIterator::from_object(b)?.into_any().unbind()),
            None => None,
        };
        self.pause_gc = pause_gc;
        self.memo.clear();
        Ok(())
    }

    /// Read one pickle from the file and return its object.
    fn load<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (file, fix_imports, encoding, errors, buffers, pause_gc, proto) = {
            let this = slf.borrow();
            let Some(file) = this.file.as_ref() else {
                let msg = format!(
                    "Unpickler.__init__() was not called by {}.__init__()",
                    slf.get_type().name()?
                );
                return Err(data_error(py, Class::Unpickling, &msg, None, 0));
            };
            (
                file.bind(py).clone(),
                this.fix_imports,
                this.encoding.clone(),
                this.errors.clone(),
                this.buffers.as_ref().map(|b| b.bind(py).clone()),
                this.pause_gc,
                this.proto.clone(),
            )
        };
        let options = Options::new(fix_imports, &encoding, &errors, buffers.as_ref(), pause_gc)?;
        proto.store(0, Ordering::Relaxed);
        let hooks = Hooks {
            find_class: find_class_override(slf)?,
            persistent_load: persistent_load_override(slf)?,
            proto_sink: Some(proto),
        };
        let source = FileSource::new(&file)?;
        // The memo is moved out while loading, so hooks that look at
        // `self.memo` cannot alias the machine's state.
        let mut memo = std::mem::take(&mut slf.borrow_mut().memo).into_memo(py);
        let result = run(py, source, &options, hooks, &mut memo);
        slf.borrow_mut().memo = memo.store();
        let (value, mut source) = result?;
        source.finish()?;
        Ok(value)
    }

    /// Return the object `module.name`, as `pickle.Unpickler.find_class`
    /// does (override it in a subclass to restrict what may be loaded).
    fn find_class<'py>(
        &self,
        module: Bound<'py, PyAny>,
        name: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let proto = self.proto.load(Ordering::Relaxed);
        objects::find_class(proto, self.fix_imports, module, name)
    }

    /// The memo, as a proxy with `copy()` and `clear()` like pickle's.
    #[getter]
    fn get_memo(slf: &Bound<'_, Self>) -> UnpicklerMemoProxy {
        UnpicklerMemoProxy {
            unpickler: slf.clone().unbind(),
        }
    }

    #[setter]
    fn set_memo(slf: &Bound<'_, Self>, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let Some(value) = value else {
            return Err(PyTypeError::new_err("attribute deletion is not supported"));
        };
        let py = value.py();
        // Build the new memo before borrowing `slf` mutably: the source may
        // be this very unpickler (`u.memo = u.memo`).
        let mut entries = Vec::new();
        if let Ok(proxy) = value.cast::<UnpicklerMemoProxy>() {
            let source = proxy.borrow().unpickler.clone_ref(py);
            for (idx, obj) in source.bind(py).borrow().memo.entries() {
                entries.push((idx, obj.bind(py).clone()));
            }
        } else if let Ok(dict) = value.cast::<PyDict>() {
            for (k, v) in dict.iter() {
                let idx: i64 = k
                    .extract()
                    .map_err(|_| PyTypeError::new_err("memo key must be integers"))?;
                let idx = u64::try_from(idx).map_err(|_| {
                    pyo3::exceptions::PyValueError::new_err("memo key must be positive integers.")
                })?;
                entries.push((idx, v));
            }
        } else {
            return Err(PyTypeError::new_err(format!(
                "'memo' attribute must be an UnpicklerMemoProxy object or dict, not {}",
                value.get_type().name()?
            )));
        }
        slf.borrow_mut().memo = StoredMemo::from_entries(entries);
        Ok(())
    }

    #[deleter]
    fn delete_memo(&self) -> PyResult<()> {
        Err(PyTypeError::new_err("attribute deletion is not supported"))
    }

    /// Resolve a persistent id. The base class has none: it raises
    /// UnpicklingError, as `pickle.Unpickler.persistent_load` does on 3.13.
    /// Override it (or set it on the instance) to load persistent ids.
    fn persistent_load(&self, py: Python<'_>, _pid: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(data_error(
            py,
            Class::Unpickling,
            NO_PERSISTENT_LOAD,
            None,
            0,
        ))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if !self.traversable {
            return Ok(());
        }
        if let Some(f) = &self.file {
            visit.call(f)?;
        }
        if let Some(b) = &self.buffers {
            visit.call(b)?;
        }
        self.memo.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.file = None;
        self.buffers = None;
        self.memo.clear();
    }
}

/// The message when a pickle has a persistent id and nothing resolves it.
pub const NO_PERSISTENT_LOAD: &str =
    "A load persistent id instruction was encountered, but no persistent_load function was specified.";

/// The `find_class` to call, or None when it is the built-in one (then the
/// machine calls it directly, without a Python call per global).
fn find_class_override<'py>(slf: &Bound<'py, Unpickler>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = slf.py();
    let method = slf.as_any().getattr(intern!(py, "find_class"))?;
    Ok((!is_own_builtin(slf, &method, "find_class")?).then_some(method))
}

/// The `persistent_load` to call, or None when it is the base class's
/// (which only raises; the machine raises the same error itself).
fn persistent_load_override<'py>(
    slf: &Bound<'py, Unpickler>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = slf.py();
    let method = slf.as_any().getattr(intern!(py, "persistent_load"))?;
    Ok((!is_own_builtin(slf, &method, "persistent_load")?).then_some(method))
}

/// Whether `method` is this object's own Rust method `name` (not overridden).
fn is_own_builtin(
    slf: &Bound<'_, Unpickler>,
    method: &Bound<'_, PyAny>,
    name: &str,
) -> PyResult<bool> {
    let py = slf.py();
    let Ok(builtin) = method.cast::<PyCFunction>() else {
        return Ok(false);
    };
    let bound_to_self = builtin
        .getattr_opt(intern!(py, "__self__"))?
        .is_some_and(|s| s.is(slf));
    Ok(bound_to_self && builtin.getattr(intern!(py, "__name__"))?.eq(name)?)
}

/// A view of an Unpickler's memo (`unpickler.memo`).
#[pyclass(module = "anypickle._core", name = "UnpicklerMemoProxy")]
pub struct UnpicklerMemoProxy {
    unpickler: Py<Unpickler>,
}

#[pymethods]
impl UnpicklerMemoProxy {
    /// Remove every entry.
    fn clear(&self, py: Python<'_>) {
        self.unpickler.bind(py).borrow_mut().memo.clear_entries();
    }

    /// A dict `{index: obj}` of the entries.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (idx, obj) in self.unpickler.bind(py).borrow().memo.entries() {
            out.set_item(idx, obj.bind(py))?;
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
        visit.call(&self.unpickler)
    }
}
