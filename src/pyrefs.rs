//! Python objects the writer needs again and again, looked up once.
//!
//! CPython's `_pickle` caches the same objects in its module state: copyreg's
//! dispatch table and extension registry, `codecs.encode` (protocol < 3
//! bytes), `functools.partial` (NEWOBJ_EX below protocol 4), `getattr`
//! (nested names below protocol 4) and the Python 3 → 2 name mappings.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule, PyString, PyType};

pub struct PyRefs {
    pub copyreg_dispatch_table: Py<PyDict>,
    pub extension_registry: Py<PyDict>,
    pub codecs_encode: Py<PyAny>,
    pub partial: Py<PyAny>,
    pub getattr: Py<PyAny>,
    pub name_mapping_3to2: Py<PyDict>,
    pub import_mapping_3to2: Py<PyDict>,
    pub pickling_error: Py<PyType>,
    pub pickle_buffer_type: Py<PyType>,
    /// The one "latin1" string every protocol < 3 bytes reduction shares.
    pub latin1: Py<PyString>,
    /// `sys.version_info[:2]`, for the few places CPython versions differ.
    pub version: (u8, u8),
    /// dataclasses' sentinel types: their instances (`MISSING`, `KW_ONLY`,
    /// the `_FIELD*` markers) are pickled by reference, so `is` checks in
    /// dataclass code still hold after loading. The stdlib would copy them.
    pub dataclasses: Py<PyModule>,
    /// `object`'s own reduction methods, to recognise instances that inherit
    /// them (see `pickler::plain_reduce`).
    pub object_methods: ObjectMethods,
    dataclass_field_marker: Py<PyType>,
    dataclass_singletons: [(Py<PyType>, Py<PyString>); 2],
}

/// Entries of `object.__dict__`.
pub struct ObjectMethods {
    pub reduce_ex: Py<PyAny>,
    pub reduce: Py<PyAny>,
    /// `object.__getstate__`, which exists from 3.11 on.
    pub getstate: Option<Py<PyAny>>,
    /// The `__class__` descriptor.
    pub class: Py<PyAny>,
}

impl ObjectMethods {
    fn load(py: Python<'_>) -> PyResult<Self> {
        let dict = py
            .import("builtins")?
            .getattr("object")?
            .getattr("__dict__")?;
        let entry = |name: &str| -> PyResult<Py<PyAny>> { Ok(dict.get_item(name)?.unbind()) };
        Ok(ObjectMethods {
            reduce_ex: entry("__reduce_ex__")?,
            reduce: entry("__reduce__")?,
            getstate: dict
                .call_method1("get", ("__getstate__",))?
                .extract::<Option<Py<PyAny>>>()?,
            class: entry("__class__")?,
        })
    }
}

static REFS: PyOnceLock<PyRefs> = PyOnceLock::new();

impl PyRefs {
    pub fn get(py: Python<'_>) -> PyResult<&PyRefs> {
        REFS.get_or_try_init(py, || Self::load(py))
    }

    fn load(py: Python<'_>) -> PyResult<PyRefs> {
        let copyreg = py.import("copyreg")?;
        let compat = py.import("_compat_pickle")?;
        let pickle = py.import("pickle")?;
        let info = py.version_info();
        let dataclasses = py.import("dataclasses")?;
        let dc_type = |name: &str| -> PyResult<Py<PyType>> {
            Ok(dataclasses.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(PyRefs {
            dataclasses: dataclasses.clone().unbind(),
            object_methods: ObjectMethods::load(py)?,
            dataclass_field_marker: dc_type("_FIELD_BASE")?,
            dataclass_singletons: [
                (
                    dc_type("_MISSING_TYPE")?,
                    PyString::intern(py, "MISSING").unbind(),
                ),
                (
                    dc_type("_KW_ONLY_TYPE")?,
                    PyString::intern(py, "KW_ONLY").unbind(),
                ),
            ],
            copyreg_dispatch_table: copyreg.getattr("dispatch_table")?.cast_into()?.unbind(),
            extension_registry: copyreg
                .getattr("_extension_registry")?
                .cast_into()?
                .unbind(),
            codecs_encode: py.import("codecs")?.getattr("encode")?.unbind(),
            partial: py.import("functools")?.getattr("partial")?.unbind(),
            getattr: py.import("builtins")?.getattr("getattr")?.unbind(),
            name_mapping_3to2: compat
                .getattr("REVERSE_NAME_MAPPING")?
                .cast_into()?
                .unbind(),
            import_mapping_3to2: compat
                .getattr("REVERSE_IMPORT_MAPPING")?
                .cast_into()?
                .unbind(),
            pickling_error: pickle.getattr("PicklingError")?.cast_into()?.unbind(),
            pickle_buffer_type: pickle.getattr("PickleBuffer")?.cast_into()?.unbind(),
            latin1: PyString::intern(py, "latin1").unbind(),
            version: (info.major, info.minor),
        })
    }

    /// The global name of a dataclasses sentinel, or None for any other object.
    pub fn sentinel_name<'py>(
        &self,
        obj: &Bound<'py, PyAny>,
        tp: *mut pyo3::ffi::PyTypeObject,
    ) -> Option<Bound<'py, PyString>> {
        let py = obj.py();
        if tp == self.dataclass_field_marker.as_ptr() as *mut pyo3::ffi::PyTypeObject {
            return obj
                .getattr(pyo3::intern!(py, "name"))
                .ok()
                .and_then(|n| n.cast_into::<PyString>().ok());
        }
        self.dataclass_singletons
            .iter()
            .find(|(t, _)| tp == t.as_ptr() as *mut pyo3::ffi::PyTypeObject)
            .map(|(_, name)| name.bind(py).clone())
    }

    /// A `pickle.PicklingError` with the given message.
    pub fn pickling_error(&self, py: Python<'_>, msg: impl Into<String>) -> PyErr {
        PyErr::from_type(self.pickling_error.bind(py).clone(), msg.into())
    }
}
