//! Python functions by value.
//!
//! Written as `function(code, base_globals, name, closure)` and then
//! `function_state(f, state)`. `base_globals` is one small dict per globals
//! dict met in this pickle (`__name__`, `__package__`), so functions that
//! shared globals share them again after loading; the state adds the globals
//! the code actually uses (found by scanning its bytecode, nested code
//! included), defaults, annotations and the rest. The cells in `closure` are
//! written empty and filled by their own deferred state.

use crate::pickler::write_error::Written;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyString, PyTuple};

use super::super::writer::Writer;
use super::code::used_names;
use super::ByValueRefs;

/// A borrowed pointer from a `PyFunction_Get*` accessor as an owned object.
fn owned<'py>(py: Python<'py>, ptr: *mut ffi::PyObject) -> Option<Bound<'py, PyAny>> {
    // SAFETY: the accessors return a borrowed reference or null; taking a
    // new reference keeps it valid while the function is mutated later.
    unsafe { Bound::from_borrowed_ptr_or_opt(py, ptr) }.filter(|o| !o.is_none())
}

impl<'py> Writer<'py, '_> {
    /// A `types.FunctionType` object: by reference when it can be found
    /// again, else by value.
    pub(in super::super) fn save_function(&mut self, func: &Bound<'py, PyAny>) -> Written {
        if let Some(place) = self.place_by_reference(func)? {
            return self.write_global(func, place);
        }
        let py = self.py;
        let bv = self.by_value_refs()?;
        let f = func.as_ptr();
        // SAFETY: `func` is exactly a function object (checked by the caller);
        // the accessors return borrowed references (code and globals are
        // never null).
        let (code, globals, closure, defaults, kwdefaults, annotations) = unsafe {
            (
                Bound::from_borrowed_ptr(py, ffi::PyFunction_GetCode(f)),
                Bound::from_borrowed_ptr(py, ffi::PyFunction_GetGlobals(f)),
                owned(py, ffi::PyFunction_GetClosure(f)),
                owned(py, ffi::PyFunction_GetDefaults(f)),
                owned(py, ffi::PyFunction_GetKwDefaults(f)),
                owned(py, ffi::PyFunction_GetAnnotations(f)),
            )
        };
        let globals = globals.cast_into::<PyDict>()?;
        let base_globals = self.base_globals(&globals)?;
        let get = &bv.getters;
        let name = get.name.get(func)?;

        let state = PyDict::new(py);
        self.add_used_globals(bv, &state, &code, &globals)?;
        if let Some(d) = defaults {
            state.set_item(intern!(py, "defaults"), d)?;
        }
        if let Some(d) = kwdefaults {
            state.set_item(intern!(py, "kwdefaults"), d)?;
        }
        if let Some(a) = annotations.filter(|a| a.len().is_ok_and(|n| n > 0)) {
            state.set_item(intern!(py, "annotations"), a)?;
        }
        let doc = get.doc.get(func)?;
        if !doc.is_none() {
            state.set_item(intern!(py, "doc"), doc)?;
        }
        // `FunctionType()` takes `__module__` from the globals' `__name__`.
        let module = get.module.get(func)?;
        let implied_module = globals.get_item(intern!(py, "__name__"))?;
        if !implied_module.is_some_and(|m| m.eq(&module).unwrap_or(false)) {
            state.set_item(intern!(py, "module"), module)?;
        }
        // ... and `__qualname__` from the code: `co_qualname` (3.11+) or
        // `co_name` (3.10; the `name` argument does not change it).
        let qualname = get.qualname.get(func)?;
        let implied_qualname = get.co_implied_qualname.get(&code)?;
        if !qualname.eq(&implied_qualname)? {
            state.set_item(intern!(py, "qualname"), qualname)?;
        }
        if let Some(type_params) = &get.type_params {
            let params = type_params.get(func)?;
            if params.len()? > 0 {
                state.set_item(intern!(py, "type_params"), params)?;
            }
        }
        let attrs = get.dict.get(func)?;
        if attrs.len()? > 0 {
            state.set_item(intern!(py, "dict"), attrs)?;
        }

        if let Some(cells) = closure.as_ref().and_then(|c| c.cast::<PyTuple>().ok()) {
            // Remembered only to name `__closure__[i]` if a cell's contents fail.
            for (i, cell) in cells.iter().enumerate() {
                self.by_value_state()
                    .cell_index
                    .insert(cell.as_ptr() as usize, i);
            }
        }
        let closure = closure.unwrap_or_else(|| py.None().into_bound(py));
        let args = [code, base_globals.into_any(), name, closure];
        // Most lambdas need nothing after creation: no setter call at all.
        let state =
            (!state.is_empty()).then(|| (bv.function_state.bind(py).clone(), state.into_any()));
        self.save_rebuilt(func, bv.function.bind(py), &args, state)
    }

    /// The globals dict a rebuilt function starts from: one per distinct
    /// source globals dict in this pickle, holding the names that relative
    /// imports and `__module__` need.
    fn base_globals(&mut self, globals: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyDict>> {
        let key = globals.as_ptr() as usize;
        if let Some(base) = self.by_value_state().globals_bases.get(&key) {
            return Ok(base.1.clone());
        }
        let py = self.py;
        let base = PyDict::new(py);
        for name in [intern!(py, "__name__"), intern!(py, "__package__")] {
            if let Some(value) = globals.get_item(name)? {
                base.set_item(name, value)?;
            }
        }
        // The source dict is kept alive by the entry so its address is not reused.
        self.by_value_state()
            .globals_bases
            .insert(key, (globals.clone(), base.clone()));
        Ok(base)
    }

    /// Put the globals the code uses into `state["globals"]`, and the
    /// submodules it reaches through a module global (`pkg.sub.attr` needs
    /// `pkg.sub` imported) into `state["imports"]`.
    fn add_used_globals(
        &mut self,
        bv: &ByValueRefs,
        state: &Bound<'py, PyDict>,
        code: &Bound<'py, PyAny>,
        globals: &Bound<'py, PyDict>,
    ) -> Written {
        let py = self.py;
        let used = used_names(&bv.ops, &bv.getters, code)?;
        if used.globals.is_empty() {
            return Ok(());
        }
        let subset = PyDict::new(py);
        let mut imports: Option<Bound<'py, PyList>> = None;
        for name in &used.globals {
            let Some(value) = globals.get_item(name)? else {
                continue;
            };
            if let Ok(module) = value.cast::<PyModule>() {
                self.find_submodules(bv, module, &used.all_names, &mut imports)?;
            }
            subset.set_item(name, value)?;
        }
        if !subset.is_empty() {
            state.set_item(intern!(py, "globals"), subset)?;
        }
        if let Some(imports) = imports {
            state.set_item(intern!(py, "imports"), PyTuple::new(py, imports.iter())?)?;
        }
        Ok(())
    }

    /// Submodules of `module` that are imported now and named in the code
    /// (`os.path`, `concurrent.futures`), one level and then deeper.
    fn find_submodules(
        &self,
        bv: &ByValueRefs,
        module: &Bound<'py, PyModule>,
        names: &[Bound<'py, PyString>],
        imports: &mut Option<Bound<'py, PyList>>,
    ) -> Written {
        let py = self.py;
        let sys_modules = bv.sys_modules.bind(py);
        let mut prefixes = vec![module.name()?.to_str()?.to_owned()];
        while let Some(prefix) = prefixes.pop() {
            for name in names {
                let candidate = format!("{prefix}.{}", name.to_str()?);
                if sys_modules.contains(&candidate)? {
                    let list = imports.get_or_insert_with(|| PyList::empty(py));
                    if !list.contains(&candidate)? {
                        list.append(&candidate)?;
                        prefixes.push(candidate);
                    }
                }
            }
        }
        Ok(())
    }
}
