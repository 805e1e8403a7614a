//! Code objects by value, and the bytecode scan that finds the global names a
//! function's code (and the code nested in it) reads or writes.
//!
//! A code object is written as `code("3.11", *fields)`, the fields in the
//! order `types.CodeType` takes them on the running version. The version tag
//! makes another minor version refuse the bytecode with a clear message.

use crate::pickler::write_error::Written;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFrozenSet, PySet, PyString, PyTuple};
use rustc_hash::FxHashSet;

use super::super::writer::Writer;
use super::getters::Getters;
use crate::opcodes::REDUCE;

/// The opcodes whose argument indexes `co_names` as a global (or, in class
/// bodies, a global-or-local) name. Numbers differ per version: read from
/// `dis.opmap`.
pub(super) struct NameOps {
    load_global: u8,
    store_global: u8,
    delete_global: u8,
    load_name: u8,
    /// 3.12+: class bodies with annotations / type parameters.
    load_from_dict_or_globals: Option<u8>,
    extended_arg: u8,
    /// 3.11+: LOAD_GLOBAL's argument is `index << 1 | push_null`.
    load_global_shift: u32,
}

impl NameOps {
    pub(super) fn load(py: Python<'_>) -> PyResult<NameOps> {
        let opmap = py.import("dis")?.getattr("opmap")?;
        let op = |name: &str| -> PyResult<Option<u8>> {
            match opmap.get_item(name) {
                Ok(v) => Ok(Some(v.extract()?)),
                Err(_) => Ok(None),
            }
        };
        let need = |name: &str| -> PyResult<u8> {
            op(name)?.ok_or_else(|| {
                pyo3::exceptions::PyRuntimeError::new_err(format!("dis.opmap lacks {name}"))
            })
        };
        let version = py.version_info();
        Ok(NameOps {
            load_global: need("LOAD_GLOBAL")?,
            store_global: need("STORE_GLOBAL")?,
            delete_global: need("DELETE_GLOBAL")?,
            load_name: need("LOAD_NAME")?,
            load_from_dict_or_globals: op("LOAD_FROM_DICT_OR_GLOBALS")?,
            extended_arg: need("EXTENDED_ARG")?,
            load_global_shift: if (version.major, version.minor) >= (3, 11) {
                1
            } else {
                0
            },
        })
    }

    /// The `co_names` indexes of the global-name instructions in `code`.
    fn scan(&self, code: &[u8], mut found: impl FnMut(usize)) {
        let mut ext: u32 = 0;
        for unit in code.chunks_exact(2) {
            let (op, arg) = (unit[0], ext | unit[1] as u32);
            if op == self.extended_arg {
                ext = arg << 8;
                continue;
            }
            ext = 0;
            if op == self.load_global {
                found((arg >> self.load_global_shift) as usize);
            } else if op == self.store_global
                || op == self.delete_global
                || op == self.load_name
                || Some(op) == self.load_from_dict_or_globals
            {
                found(arg as usize);
            }
        }
    }
}

fn is_code(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: compares the type pointer with the static code type.
    unsafe { ffi::Py_TYPE(obj.as_ptr()) == std::ptr::addr_of_mut!(ffi::PyCode_Type) }
}

/// Global names used by a code object and everything nested in it, in first
/// use order, without repeats; plus every `co_names` entry (attribute names,
/// used to find submodules reached as `package.submodule.attr`).
pub(super) struct UsedNames<'py> {
    pub globals: Vec<Bound<'py, PyString>>,
    pub all_names: Vec<Bound<'py, PyString>>,
}

pub(super) fn used_names<'py>(
    ops: &NameOps,
    getters: &Getters,
    code: &Bound<'py, PyAny>,
) -> PyResult<UsedNames<'py>> {
    let mut used = UsedNames {
        globals: Vec::new(),
        all_names: Vec::new(),
    };
    let mut seen_globals = FxHashSet::default();
    let mut seen_names = FxHashSet::default();
    let mut pending = vec![code.clone()];
    while let Some(code) = pending.pop() {
        let names = getters.co_names.get(&code)?.cast_into::<PyTuple>()?;
        let bytecode = getters.co_code.get(&code)?.cast_into::<PyBytes>()?;
        let mut bad_index = false;
        ops.scan(bytecode.as_bytes(), |i| match names.get_item(i) {
            Ok(name) => {
                if let Ok(name) = name.cast_into::<PyString>() {
                    if seen_globals.insert(name.as_ptr() as usize) {
                        used.globals.push(name);
                    }
                }
            }
            Err(_) => bad_index = true,
        });
        if bad_index {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "code object refers to a name index outside co_names",
            ));
        }
        for name in names.iter() {
            if let Ok(name) = name.cast_into::<PyString>() {
                if seen_names.insert(name.as_ptr() as usize) {
                    used.all_names.push(name);
                }
            }
        }
        let consts = getters.co_consts.get(&code)?.cast_into::<PyTuple>()?;
        // Reverse, so that popping visits nested code in source order.
        for c in consts.iter().rev() {
            if is_code(&c) {
                pending.push(c);
            }
        }
    }
    Ok(used)
}

/// Whether a constant holds a set whose iteration order depends on hashing.
fn has_unordered(value: &Bound<'_, PyAny>) -> bool {
    if value.is_instance_of::<PyFrozenSet>() || value.is_instance_of::<PySet>() {
        return true;
    }
    match value.cast::<PyTuple>() {
        Ok(t) => t.iter().any(|v| has_unordered(&v)),
        Err(_) => false,
    }
}

/// `types.CodeType`'s positional parameters, by version.
const FIELDS_3_10: &[&str] = &[
    "co_argcount",
    "co_posonlyargcount",
    "co_kwonlyargcount",
    "co_nlocals",
    "co_stacksize",
    "co_flags",
    "co_code",
    "co_consts",
    "co_names",
    "co_varnames",
    "co_filename",
    "co_name",
    "co_firstlineno",
    "co_linetable",
    "co_freevars",
    "co_cellvars",
];
const FIELDS_3_11: &[&str] = &[
    "co_argcount",
    "co_posonlyargcount",
    "co_kwonlyargcount",
    "co_nlocals",
    "co_stacksize",
    "co_flags",
    "co_code",
    "co_consts",
    "co_names",
    "co_varnames",
    "co_filename",
    "co_name",
    "co_qualname",
    "co_firstlineno",
    "co_linetable",
    "co_exceptiontable",
    "co_freevars",
    "co_cellvars",
];

/// Where `co_consts` sits in both field lists.
const CONSTS_FIELD: usize = 7;

/// The attribute names to read, in `types.CodeType`'s order on this version.
pub(super) fn code_fields(py: Python<'_>) -> &'static [&'static str] {
    let names = if py.version_info() >= (3, 11) {
        FIELDS_3_11
    } else {
        FIELDS_3_10
    };
    debug_assert_eq!(names[CONSTS_FIELD], "co_consts");
    names
}

impl<'py> Writer<'py, '_> {
    /// A code object: `code(version, *fields)`; nested code objects in the
    /// constants follow the same path, and set constants are written in a
    /// fixed order so the bytes do not depend on PYTHONHASHSEED.
    pub(in super::super) fn save_code(&mut self, code: &Bound<'py, PyAny>) -> Written {
        let py = self.py;
        let bv = self.by_value_refs()?;
        let getters = &bv.getters.code_fields;
        let mut fields: Vec<Bound<'py, PyAny>> = Vec::with_capacity(getters.len() + 1);
        fields.push(bv.python_version.bind(py).clone().into_any());
        for (i, getter) in getters.iter().enumerate() {
            let mut value = getter.get(code)?;
            if i == CONSTS_FIELD && has_unordered(&value) {
                value = bv.stable_constants.bind(py).call1((value,))?;
            }
            fields.push(value);
        }
        // `code(*fields)` written directly: a code object cannot contain
        // itself, so none of save_reduce's checks apply.
        self.save_reconstructor(bv.code.bind(py))?;
        self.save_fresh_tuple(&fields)?;
        self.out.byte(REDUCE)?;
        self.memo_put(code)
    }
}
