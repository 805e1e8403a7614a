//! Fast reads of the attributes of functions and code objects.
//!
//! Writing a function by value reads about thirty attributes of it and of
//! its code object. Through `getattr` each read looks the name up along the
//! type's MRO, checks for a data descriptor, then calls it: on a thousand
//! lambdas that lookup was a third of the time. A `Getter` looks the
//! descriptor up once, when the by-value machinery loads, and calls its
//! `__get__` slot directly. For an object of exactly the type the descriptor
//! came from this is what `getattr` does (functions and code objects have no
//! `__getattr__` hook, and these names are data descriptors, which an
//! instance dict cannot shadow); for any other object it falls back to
//! `getattr`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

/// One attribute of one built-in type, read through the type's descriptor.
pub(super) struct Getter {
    owner: Py<PyType>,
    name: Py<PyString>,
    descr: Py<PyAny>,
    get: ffi::descrgetfunc,
}

impl Getter {
    /// The descriptor `name` from `owner.__dict__`, which must be a data
    /// descriptor (so nothing in an instance can take precedence over it).
    fn new(owner: &Bound<'_, PyType>, name: &str) -> PyResult<Getter> {
        let py = owner.py();
        let descr = owner
            .getattr("__dict__")?
            .get_item(name)
            .map_err(|_| missing(owner, name))?;
        // SAFETY: reads the slots of the descriptor's (live) type.
        let (get, set) = unsafe {
            let tp = ffi::Py_TYPE(descr.as_ptr());
            ((*tp).tp_descr_get, (*tp).tp_descr_set)
        };
        match (get, set) {
            (Some(get), Some(_)) => Ok(Getter {
                owner: owner.clone().unbind(),
                name: PyString::intern(py, name).unbind(),
                descr: descr.unbind(),
                get,
            }),
            _ => Err(missing(owner, name)),
        }
    }

    /// `getattr(obj, name)`.
    #[inline]
    pub(super) fn get<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = obj.py();
        let tp = obj.get_type_ptr();
        if tp != self.owner.as_ptr() as *mut ffi::PyTypeObject {
            return obj.getattr(self.name.bind(py));
        }
        // SAFETY: the descriptor's own `__get__` slot, called with an
        // instance of exactly the type it belongs to and that type; it
        // returns a new reference, or null with an exception set.
        unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                (self.get)(self.descr.as_ptr(), obj.as_ptr(), tp as *mut ffi::PyObject),
            )
        }
    }

    /// `getattr(obj, name, None)`, as an Option (objects of the owner type
    /// always have the attribute).
    #[inline]
    pub(super) fn get_opt<'py>(
        &self,
        obj: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if obj.get_type_ptr() != self.owner.as_ptr() as *mut ffi::PyTypeObject {
            return crate::attrs::lookup(obj, self.name.bind(obj.py()));
        }
        self.get(obj).map(Some)
    }
}

fn missing(owner: &Bound<'_, PyType>, name: &str) -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(format!(
        "{} has no data descriptor {name} on this Python version",
        owner.name().map(|n| n.to_string()).unwrap_or_default()
    ))
}

/// The attributes the by-value writer reads from functions and code objects.
pub(super) struct Getters {
    pub name: Getter,
    pub qualname: Getter,
    pub module: Getter,
    pub doc: Getter,
    pub dict: Getter,
    /// 3.12+.
    pub type_params: Option<Getter>,
    /// `types.CodeType`'s parameters, in its order on this version.
    pub code_fields: Vec<Getter>,
    pub co_names: Getter,
    pub co_code: Getter,
    pub co_consts: Getter,
    /// What a function's `__qualname__` defaults to: `co_qualname` on 3.11+,
    /// `co_name` before.
    pub co_implied_qualname: Getter,
}

impl Getters {
    pub(super) fn load(py: Python<'_>, code_fields: &[&str]) -> PyResult<Getters> {
        let types = py.import("types")?;
        let function: Bound<'_, PyType> = types.getattr("FunctionType")?.cast_into()?;
        let code: Bound<'_, PyType> = types.getattr("CodeType")?.cast_into()?;
        let on_311 = py.version_info() >= (3, 11);
        Ok(Getters {
            name: Getter::new(&function, "__name__")?,
            qualname: Getter::new(&function, "__qualname__")?,
            module: Getter::new(&function, "__module__")?,
            doc: Getter::new(&function, "__doc__")?,
            dict: Getter::new(&function, "__dict__")?,
            type_params: if function.getattr("__dict__")?.contains("__type_params__")? {
                Some(Getter::new(&function, "__type_params__")?)
            } else {
                None
            },
            code_fields: code_fields
                .iter()
                .map(|name| Getter::new(&code, name))
                .collect::<PyResult<_>>()?,
            co_names: Getter::new(&code, "co_names")?,
            co_code: Getter::new(&code, "co_code")?,
            co_consts: Getter::new(&code, "co_consts")?,
            co_implied_qualname: Getter::new(
                &code,
                if on_311 { "co_qualname" } else { "co_name" },
            )?,
        })
    }
}
