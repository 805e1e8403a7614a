//! The reconstructors a by-value function is rebuilt with, in Rust.
//!
//! A by-value pickle names its reconstructors as
//! `anypickle._reconstruct.<name>` (the wire format, see that module). The
//! five that run once per function, code object or closure cell are defined
//! here and bound under those names by `_reconstruct.py`, which sets their
//! `__module__` so that they still pickle by reference to it. Each does what
//! its Python original did, call for call (the same constructors, the same
//! attribute assignments, so the same errors), without a Python frame, the
//! argument tuple re-packed for `CodeType`, or ten dict lookups per
//! function state. Engines that load with plain `pickle.loads` call these
//! too.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};

/// `sys.version_info[:2]` as written into every pickled code object ("3.11").
fn python_version(py: Python<'_>) -> &Bound<'_, PyString> {
    static VERSION: PyOnceLock<Py<PyString>> = PyOnceLock::new();
    VERSION
        .get_or_init(py, || {
            let v = py.version_info();
            PyString::new(py, &format!("{}.{}", v.major, v.minor)).unbind()
        })
        .bind(py)
}

/// Rebuild a code object from ``types.CodeType``'s positional arguments.
///
/// Bytecode is specific to one Python minor version, so a code object pickled
/// by another version raises ``VersionMismatchError`` rather than run.
///
/// Example:
///     >>> import anypickle, pickle
///     >>> from anypickle import _reconstruct
///     >>> add = pickle.loads(anypickle.dumps(compile("a + b", "<demo>", "eval")))
///     >>> eval(add, {"a": 2, "b": 3})
///     5
///     >>> try:
///     ...     _reconstruct.code("2.7")
///     ... except _reconstruct.VersionMismatchError as e:
///     ...     print(str(e)[:49])
///     this pickle holds bytecode compiled by Python 2.7
#[pyfunction]
#[pyo3(signature = (python_version, *fields))]
pub fn code<'py>(
    python_version: &Bound<'py, PyAny>,
    fields: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = python_version.py();
    let this = self::python_version(py);
    if python_version.ne(this)? {
        return Err(version_mismatch(python_version, this));
    }
    // SAFETY: PyCode_Type is a static type object; PyObject_Call takes
    // borrowed arguments and returns a new reference or null with an
    // exception set.
    unsafe {
        let code_type = (&raw mut ffi::PyCode_Type).cast::<ffi::PyObject>();
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyObject_Call(code_type, fields.as_ptr(), std::ptr::null_mut()),
        )
    }
}

#[cold]
fn version_mismatch(theirs: &Bound<'_, PyAny>, ours: &Bound<'_, PyString>) -> PyErr {
    let py = theirs.py();
    let theirs = match theirs.str() {
        Ok(s) => s.to_string(),
        Err(err) => return err,
    };
    let msg = format!(
        "this pickle holds bytecode compiled by Python {theirs}, which Python {ours} \
         cannot run; load it with Python {theirs}"
    );
    match py
        .import("anypickle._reconstruct")
        .and_then(|m| m.getattr("VersionMismatchError"))
        .and_then(|cls| cls.call1((msg,)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// Create a function from its code, its (still partial) globals and its cells:
/// ``types.FunctionType(code, base_globals, name, None, closure)``.
///
/// ``base_globals`` is shared by every function of one pickle that shared a
/// globals dict when pickled. Everything else arrives in ``function_state``.
///
/// Example:
///     >>> from anypickle import _reconstruct
///     >>> double = _reconstruct.function((lambda x: x * 2).__code__, {}, "double", None)
///     >>> double(21), double.__name__
///     (42, 'double')
#[pyfunction]
pub fn function<'py>(
    code: &Bound<'py, PyAny>,
    base_globals: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
    closure: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    // SAFETY: PyFunction_Type is a static type object, borrowed here.
    let function_type = unsafe {
        Bound::from_borrowed_ptr(py, (&raw mut ffi::PyFunction_Type).cast::<ffi::PyObject>())
    };
    function_type.call1((code, base_globals, name, py.None(), closure))
}

/// The keys of a function state, in the order they are applied.
#[derive(Clone, Copy)]
enum StateKey {
    Imports,
    Globals,
    Defaults,
    KwDefaults,
    Annotations,
    Doc,
    Module,
    Qualname,
    TypeParams,
    Dict,
}

const STATE_KEYS: usize = 10;

impl StateKey {
    fn of(key: &str) -> Option<StateKey> {
        Some(match key {
            "imports" => StateKey::Imports,
            "globals" => StateKey::Globals,
            "defaults" => StateKey::Defaults,
            "kwdefaults" => StateKey::KwDefaults,
            "annotations" => StateKey::Annotations,
            "doc" => StateKey::Doc,
            "module" => StateKey::Module,
            "qualname" => StateKey::Qualname,
            "type_params" => StateKey::TypeParams,
            "dict" => StateKey::Dict,
            _ => return None,
        })
    }
}

/// Fill in a function made by ``function`` (keys absent mean "default").
///
/// ``state`` may hold ``imports`` (modules to import first), ``globals``
/// (added to the function's globals), ``defaults``, ``kwdefaults``,
/// ``annotations``, ``doc``, ``module``, ``qualname``, ``type_params`` (set as
/// the matching dunder attributes) and ``dict`` (added to ``__dict__``), applied
/// in that order; other keys are ignored.
///
/// Example:
///     >>> from anypickle import _reconstruct
///     >>> f = _reconstruct.function((lambda x, y: x + y).__code__, {}, "add", None)
///     >>> _reconstruct.function_state(f, {"defaults": (10,), "qualname": "calc.add"})
///     >>> f(1), f.__qualname__
///     (11, 'calc.add')
#[pyfunction]
pub fn function_state<'py>(func: &Bound<'py, PyAny>, state: &Bound<'py, PyDict>) -> PyResult<()> {
    let py = func.py();
    // Gathered first, applied in the fixed order, whatever the dict's order.
    let mut values: [Option<Bound<'py, PyAny>>; STATE_KEYS] = Default::default();
    for (key, value) in state.iter() {
        let Ok(key) = key.cast::<PyString>() else {
            continue;
        };
        if let Some(k) = key.to_str().ok().and_then(StateKey::of) {
            values[k as usize] = Some(value);
        }
    }
    let [imports, globals, defaults, kwdefaults, annotations, doc, module, qualname, type_params, dict] =
        values;
    if let Some(names) = nonempty(imports)? {
        let import_module = import_module(py)?;
        for name in names.try_iter()? {
            import_module.call1((name?,))?;
        }
    }
    if let Some(globals) = nonempty(globals)? {
        update(&func.getattr(intern!(py, "__globals__"))?, &globals)?;
    }
    let attributes = [
        (defaults, intern!(py, "__defaults__")),
        (kwdefaults, intern!(py, "__kwdefaults__")),
        (annotations, intern!(py, "__annotations__")),
        (doc, intern!(py, "__doc__")),
        (module, intern!(py, "__module__")),
        (qualname, intern!(py, "__qualname__")),
        (type_params, intern!(py, "__type_params__")),
    ];
    for (value, name) in attributes {
        if let Some(value) = value {
            func.setattr(name, value)?;
        }
    }
    if let Some(attrs) = nonempty(dict)? {
        update(&func.getattr(intern!(py, "__dict__"))?, &attrs)?;
    }
    Ok(())
}

/// The value if present and true (Python's `if value:`).
fn nonempty(value: Option<Bound<'_, PyAny>>) -> PyResult<Option<Bound<'_, PyAny>>> {
    match value {
        Some(v) if v.is_truthy()? => Ok(Some(v)),
        _ => Ok(None),
    }
}

/// `target.update(source)`, straight through `PyDict_Update` for two dicts.
fn update(target: &Bound<'_, PyAny>, source: &Bound<'_, PyAny>) -> PyResult<()> {
    if let (Ok(target), Ok(source)) = (target.cast_exact::<PyDict>(), source.cast_exact::<PyDict>())
    {
        return target.update(source.as_mapping());
    }
    target
        .call_method1(intern!(target.py(), "update"), (source,))
        .map(drop)
}

/// `importlib.import_module`, looked up once.
fn import_module(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static IMPORT_MODULE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    IMPORT_MODULE
        .get_or_try_init(py, || {
            Ok(py.import("importlib")?.getattr("import_module")?.unbind())
        })
        .map(|f| f.bind(py))
}

/// An empty closure cell; its contents, if any, come from ``cell_state``.
///
/// Example:
///     >>> from anypickle import _reconstruct
///     >>> c = _reconstruct.cell()
///     >>> _reconstruct.cell_state(c, 42)
///     >>> c.cell_contents
///     42
#[pyfunction]
pub fn cell(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: PyCell_New(NULL) returns a new, empty cell or null with an
    // exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyCell_New(std::ptr::null_mut())) }
}

/// Fill a cell made by ``cell``: ``target.cell_contents = contents``.
///
/// Example:
///     >>> from anypickle import _reconstruct
///     >>> c = _reconstruct.cell()
///     >>> _reconstruct.cell_state(c, "x")
///     >>> c.cell_contents
///     'x'
#[pyfunction]
pub fn cell_state(target: &Bound<'_, PyAny>, contents: &Bound<'_, PyAny>) -> PyResult<()> {
    // SAFETY: `target` is checked to be a cell (a type that cannot be
    // subclassed); PyCell_Set takes a borrowed value and returns 0 or -1
    // with an exception set.
    unsafe {
        if ffi::PyCell_Check(target.as_ptr()) != 0 {
            if ffi::PyCell_Set(target.as_ptr(), contents.as_ptr()) == 0 {
                return Ok(());
            }
            return Err(PyErr::fetch(target.py()));
        }
    }
    target.setattr(intern!(target.py(), "cell_contents"), contents)
}

/// Adds the reconstructors to the extension module.
pub fn add_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(code, m)?)?;
    m.add_function(wrap_pyfunction!(function, m)?)?;
    m.add_function(wrap_pyfunction!(function_state, m)?)?;
    m.add_function(wrap_pyfunction!(cell, m)?)?;
    m.add_function(wrap_pyfunction!(cell_state, m)?)?;
    Ok(())
}
