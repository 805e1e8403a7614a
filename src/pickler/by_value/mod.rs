//! Pickling by value: the one place that decides what cannot go by name, and
//! the writer for what goes by value.
//!
//! A function or class goes by value when importing
//! `sys.modules[obj.__module__]` + `obj.__qualname__` would not give back the
//! very same object (lambdas, `<locals>`, `__main__`, run-time objects,
//! missing or wrong names), or when its module is registered
//! (`register_pickle_by_value`, `dumps(by_value=...)`). Everything else
//! goes by reference, through the stdlib-exact `save_global`.
//!
//! Every by-value object is written as `constructor(*args)` followed, once
//! it is in the memo, by `setter(obj, state)` (see `save_rebuilt`). While the
//! constructor arguments of any by-value object are being written, the
//! setter calls are queued ("deferred") and written only when the outermost
//! one is complete: the state of a method may refer to the class whose
//! namespace holds it, and a cell may hold the function it closes over.
//!
//! - `function.rs`: functions (code, globals the code uses, cells, metadata);
//! - `code.rs`: code objects and the bytecode scan for used global names;
//! - this file: the decision, classes, modules, cells, the deferral queue.

mod code;
mod function;
mod getters;

use crate::pickler::write_error::{WriteError, Written};
use std::collections::VecDeque;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PySet, PyString, PyTuple, PyType};
use rustc_hash::{FxHashMap, FxHashSet};

use super::reduce::{repr, GlobalPlace};
use super::writer::{PathStep, Writer};
use crate::opcodes::*;

/// Python objects the by-value writer needs, looked up on first use (so
/// that plain-data pickling never imports `dis` or anypickle's helpers).
pub(crate) struct ByValueRefs {
    /// Reconstructors (wire format: `anypickle._reconstruct.<name>`).
    function: Py<PyAny>,
    function_state: Py<PyAny>,
    cell: Py<PyAny>,
    cell_state: Py<PyAny>,
    code: Py<PyAny>,
    make_class: Py<PyAny>,
    class_state: Py<PyAny>,
    module: Py<PyAny>,
    module_state: Py<PyAny>,
    import_module: Py<PyAny>,
    mappingproxy: Py<PyAny>,
    /// Helpers in `anypickle._byvalue`.
    describe_class: Py<PyAny>,
    reduce_unfindable: Py<PyAny>,
    reduce_failed: Py<PyAny>,
    stable_constants: Py<PyAny>,
    registry: Py<PySet>,
    /// Class address → (version tag, abc token, describe_class result).
    class_cache: Py<PyDict>,
    abc_cache_token: Py<PyAny>,
    sys_modules: Py<PyDict>,
    /// "3.11": the bytecode version written into every code object.
    python_version: Py<PyString>,
    ops: code::NameOps,
    /// The deallocator of every class made by `type()` (CPython's
    /// subtype_dealloc), read from a class made for the purpose.
    python_class_dealloc: ffi::destructor,
    /// Attribute reads of functions and code objects.
    getters: getters::Getters,
}

static BY_VALUE_REFS: PyOnceLock<ByValueRefs> = PyOnceLock::new();

/// How many class descriptions are remembered (the cache is emptied when full).
const CLASS_CACHE_SIZE: usize = 512;

impl ByValueRefs {
    pub(crate) fn get(py: Python<'_>) -> PyResult<&ByValueRefs> {
        BY_VALUE_REFS.get_or_try_init(py, || Self::load(py))
    }

    fn load(py: Python<'_>) -> PyResult<ByValueRefs> {
        let rc = py.import("anypickle._reconstruct")?;
        let helpers = py.import("anypickle._byvalue")?;
        let get = |m: &Bound<'_, PyModule>, name: &str| -> PyResult<Py<PyAny>> {
            Ok(m.getattr(name)?.unbind())
        };
        Ok(ByValueRefs {
            function: get(&rc, "function")?,
            function_state: get(&rc, "function_state")?,
            cell: get(&rc, "cell")?,
            cell_state: get(&rc, "cell_state")?,
            code: get(&rc, "code")?,
            make_class: get(&rc, "make_class")?,
            class_state: get(&rc, "class_state")?,
            module: get(&rc, "module")?,
            module_state: get(&rc, "module_state")?,
            import_module: py.import("importlib")?.getattr("import_module")?.unbind(),
            mappingproxy: get(&rc, "mappingproxy")?,
            describe_class: get(&helpers, "describe_class")?,
            reduce_unfindable: get(&helpers, "reduce_unfindable")?,
            reduce_failed: get(&helpers, "reduce_failed")?,
            stable_constants: get(&helpers, "stable_constants")?,
            registry: helpers.getattr("_registry")?.cast_into()?.unbind(),
            class_cache: helpers.getattr("_describe_cache")?.cast_into()?.unbind(),
            abc_cache_token: py.import("abc")?.getattr("get_cache_token")?.unbind(),
            sys_modules: py.import("sys")?.getattr("modules")?.cast_into()?.unbind(),
            python_version: rc.getattr("PYTHON_VERSION")?.cast_into()?.unbind(),
            ops: code::NameOps::load(py)?,
            getters: getters::Getters::load(py, code::code_fields(py))?,
            python_class_dealloc: {
                let probe = py.get_type::<pyo3::types::PyType>().call1((
                    "_anypickle_probe",
                    PyTuple::empty(py),
                    PyDict::new(py),
                ))?;
                // SAFETY: `probe` is a class made by type(); reads its tp_dealloc.
                unsafe { (*(probe.as_ptr() as *mut ffi::PyTypeObject)).tp_dealloc }.ok_or_else(
                    || pyo3::exceptions::PyRuntimeError::new_err("a class without tp_dealloc"),
                )?
            },
        })
    }
}

/// What following a qualified name from a module gave.
enum Walk<'py> {
    /// The object at the end of the path, and the one it was found on.
    Found {
        parent: Bound<'py, PyAny>,
        found: Bound<'py, PyAny>,
    },
    /// Reached through a class that goes by value.
    ByValue,
    /// A name along the path is missing.
    Missing,
}

/// What an object's `__module__` says about pickling it.
enum ModuleOf<'py> {
    /// `__main__`, or a module registered for pickling by value.
    ByValue,
    /// Any other module name.
    Named(Bound<'py, PyString>),
    /// No `__module__`, or not a str.
    Unknown,
}

/// One `setter(obj, state)` call waiting for the outermost by-value
/// constructor to be complete.
pub(super) struct Deferred<'py> {
    setter: Bound<'py, PyAny>,
    obj: Bound<'py, PyAny>,
    state: Bound<'py, PyAny>,
}

/// What one call that writes objects by value keeps track of.
#[derive(Default)]
pub(in crate::pickler) struct ByValueState<'py> {
    /// How many constructors' arguments are being written now.
    open_constructors: usize,
    /// State setter calls waiting for the outermost constructor.
    deferred: VecDeque<Deferred<'py>>,
    /// Source globals dict address → (that dict, its base globals).
    globals_bases: FxHashMap<usize, (Bound<'py, PyDict>, Bound<'py, PyDict>)>,
    /// Objects whose constructor arguments are being written.
    rebuilding: FxHashSet<usize>,
    /// Classes written by value in this call (held by the memo).
    classes: FxHashSet<usize>,
    /// Cell address → its index in the closure it was met in.
    cell_index: FxHashMap<usize, usize>,
}

impl<'py> Writer<'py, '_> {
    pub(super) fn by_value_refs(&self) -> PyResult<&'py ByValueRefs> {
        ByValueRefs::get(self.py)
    }

    /// This call's by-value bookkeeping, made on first use.
    fn by_value_state(&mut self) -> &mut ByValueState<'py> {
        self.by_value.get_or_insert_with(Box::default)
    }

    /// Whether `cls` was written by value earlier in this call.
    pub(super) fn wrote_class_by_value(&self, cls: &Bound<'py, PyAny>) -> bool {
        let key = cls.as_ptr() as usize;
        self.by_value
            .as_ref()
            .is_some_and(|s| s.classes.contains(&key))
    }

    /// Whether `module_name` (or a parent package) is registered for
    /// pickling by value, globally or for this call.
    fn module_registered(&self, bv: &ByValueRefs, module_name: &str) -> PyResult<bool> {
        let within = |registered: &str| {
            module_name == registered
                || (module_name.starts_with(registered)
                    && module_name.as_bytes().get(registered.len()) == Some(&b'.'))
        };
        if self.by_value_modules.iter().any(|m| within(m)) {
            return Ok(true);
        }
        let registry = bv.registry.bind(self.py);
        if registry.is_empty() {
            return Ok(false);
        }
        for name in registry.iter() {
            if within(name.cast::<PyString>()?.to_str()?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The decision for functions and classes: where the object can be
    /// found again, as the same object, at its module and qualified name
    /// (so it goes by reference), or None (it goes by value).
    pub(super) fn place_by_reference(
        &self,
        obj: &Bound<'py, PyAny>,
    ) -> PyResult<Option<GlobalPlace<'py>>> {
        let bv = self.by_value_refs()?;
        let module_name = match self.module_of(obj)? {
            ModuleOf::ByValue | ModuleOf::Unknown => return Ok(None),
            ModuleOf::Named(name) => name,
        };
        let Some(qualname) = bv.getters.qualname.get_opt(obj)? else {
            return Ok(None);
        };
        let Ok(qualname) = qualname.cast_into::<PyString>() else {
            return Ok(None);
        };
        let qualname_str = qualname.to_str()?;
        if qualname_str.contains('<') {
            // `<locals>`, `<lambda>`, `<genexpr>`: never reachable by name.
            return Ok(None);
        }
        let path = if qualname_str.contains('.') {
            qualname_str
                .split('.')
                .map(|part| PyString::new(self.py, part))
                .collect()
        } else {
            vec![qualname.clone()]
        };
        let Ok(module) = crate::imports::import_module(&module_name) else {
            return Ok(None);
        };
        let walk = match self.walk_qualname(&module, &path)? {
            // A name missing: the module may still be being imported by
            // another thread. Wait for it and look again.
            Walk::Missing => {
                let Ok(module) = crate::imports::import_module_fully(&module_name) else {
                    return Ok(None);
                };
                let walk = self.walk_qualname(&module, &path)?;
                (walk, module)
            }
            walk => (walk, module),
        };
        Ok(match walk {
            (Walk::Found { parent, found }, module) if found.is(obj) => Some(GlobalPlace {
                module_name: module_name.into_any(),
                module,
                global_name: qualname.into_any(),
                path,
                parent,
            }),
            _ => None,
        })
    }

    /// Follow `path` from `module`.
    fn walk_qualname(
        &self,
        module: &Bound<'py, PyAny>,
        path: &[Bound<'py, PyString>],
    ) -> PyResult<Walk<'py>> {
        let mut parent = module.clone();
        let mut current = module.clone();
        for (i, part) in path.iter().enumerate() {
            // A method found through a class that itself goes by value (say,
            // one moved into `__main__`) must come along with that class.
            if i > 0 && current.is_instance_of::<PyType>() && self.module_goes_by_value(&current)? {
                return Ok(Walk::ByValue);
            }
            parent = current;
            match crate::attrs::lookup(&parent, part)? {
                Some(next) => current = next,
                None => return Ok(Walk::Missing),
            }
        }
        Ok(Walk::Found {
            parent,
            found: current,
        })
    }

    /// Whether `obj.__module__` is `__main__` or registered for by-value
    /// pickling (what makes everything defined in it go by value).
    fn module_goes_by_value(&self, obj: &Bound<'py, PyAny>) -> PyResult<bool> {
        Ok(matches!(self.module_of(obj)?, ModuleOf::ByValue))
    }

    /// `obj.__module__`, classified: `__main__` or registered, a plain
    /// module name, or missing / not a str.
    fn module_of(&self, obj: &Bound<'py, PyAny>) -> PyResult<ModuleOf<'py>> {
        let getters = &self.by_value_refs()?.getters;
        let Some(module_name) = getters.module.get_opt(obj)? else {
            return Ok(ModuleOf::Unknown);
        };
        let Ok(module_name) = module_name.cast_into::<PyString>() else {
            return Ok(ModuleOf::Unknown);
        };
        let module_str = module_name.to_str()?;
        if module_str == "__main__" || self.module_registered(self.by_value_refs()?, module_str)? {
            return Ok(ModuleOf::ByValue);
        }
        Ok(ModuleOf::Named(module_name))
    }

    /// A class (an instance of `type` or of a metaclass): by reference when
    /// it can be found again, else by value.
    pub(super) fn save_class(&mut self, cls: &Bound<'py, PyAny>) -> Written {
        let bv = self.by_value_refs()?;
        // SAFETY: `cls` is a type object (checked by the caller); reads its flags.
        let heap_type = unsafe {
            ffi::PyType_GetFlags(cls.as_ptr() as *mut ffi::PyTypeObject) & ffi::Py_TPFLAGS_HEAPTYPE
                != 0
        };
        // Static types (builtins, C extension types) and heap types made by C
        // extensions (their deallocator is not the one of classes made by
        // `type()`) can only go by name.
        // SAFETY: reads the type's tp_dealloc slot.
        let python_class = heap_type
            && unsafe { (*(cls.as_ptr() as *mut ffi::PyTypeObject)).tp_dealloc }
                .is_some_and(|d| std::ptr::fn_addr_eq(d, bv.python_class_dealloc));
        if !python_class {
            return self.save_global(cls, None);
        }
        if let Some(place) = self.place_by_reference(cls)? {
            return self.write_global(cls, place);
        }
        let py = self.py;
        let (args, state) = self.describe_class(bv, cls)?;
        let state = (!state.is_none()).then(|| (bv.class_state.bind(py).clone(), state));
        self.by_value_state().classes.insert(cls.as_ptr() as usize);
        let args: Vec<Bound<'py, PyAny>> = args.iter().collect();
        self.save_rebuilt(cls, bv.make_class.bind(py), &args, state)
    }

    /// `describe_class(cls)`, remembered while the class is unchanged.
    ///
    /// Describing a class walks its namespace in Python; the result only
    /// refers to the class's attributes (it copies nothing but sets), so it
    /// stays valid until the type is modified. CPython gives a type a new,
    /// never reused version tag whenever it (or a base) is modified, so
    /// (address, tag, `abc.get_cache_token()`) identifies an unchanged class.
    /// Descriptions holding a set snapshot are not remembered.
    fn describe_class(
        &self,
        bv: &ByValueRefs,
        cls: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyAny>)> {
        let py = self.py;
        let read_tag = || {
            // SAFETY: `cls` is a type object; reads one field of it.
            unsafe { (*(cls.as_ptr() as *mut ffi::PyTypeObject)).tp_version_tag }
        };
        let mut tag = read_tag();
        if tag == 0 {
            // Tags are assigned by the type attribute cache: a lookup that
            // misses in the metaclass and searches the class's MRO assigns one.
            cls.getattr_opt(intern!(py, "__anypickle_version_probe__"))?;
            tag = read_tag();
        }
        let cache = bv.class_cache.bind(py);
        let key = cls.as_ptr() as usize;
        let token = bv.abc_cache_token.bind(py).call0()?;
        if tag != 0 {
            if let Some(entry) = cache.get_item(key)? {
                let (cached_tag, cached_token, args, state): (
                    u32,
                    Bound<'py, PyAny>,
                    Bound<'py, PyTuple>,
                    Bound<'py, PyAny>,
                ) = entry.extract()?;
                if cached_tag == tag && cached_token.eq(&token)? {
                    return Ok((args, state));
                }
            }
        }
        let described = bv.describe_class.bind(py).call1((cls,))?;
        let (args, state, cacheable): (Bound<'py, PyTuple>, Bound<'py, PyAny>, bool) =
            described.extract()?;
        // Describing must not have modified the class (that resets the tag).
        if cacheable && tag != 0 && read_tag() == tag {
            if cache.len() >= CLASS_CACHE_SIZE {
                cache.clear();
            }
            cache.set_item(key, (tag, token, &args, &state))?;
        }
        Ok((args, state))
    }

    /// A closure cell: an empty cell, then its contents (if any) as state.
    pub(super) fn save_cell(&mut self, cell: &Bound<'py, PyAny>) -> Written {
        let py = self.py;
        let bv = self.by_value_refs()?;
        // SAFETY: `cell` is a cell object; PyCell_Get returns a new reference,
        // or null without an exception for an empty cell.
        let contents = unsafe { Bound::from_owned_ptr_or_opt(py, ffi::PyCell_Get(cell.as_ptr())) };
        let state = contents.map(|c| (bv.cell_state.bind(py).clone(), c));
        self.save_rebuilt(cell, bv.cell.bind(py), &[], state)
    }

    /// A module: `importlib.import_module(name)` when importing the name gives
    /// this very module back; by value (a new module object and its
    /// attributes) when it is registered or was made at run time.
    pub(super) fn save_module(&mut self, module: &Bound<'py, PyAny>) -> Written {
        let py = self.py;
        let bv = self.by_value_refs()?;
        let name = module.getattr(intern!(py, "__name__"))?;
        let name_str = name.cast::<PyString>()?.to_str()?.to_owned();
        let importable = name_str != "__main__"
            && !self.module_registered(bv, &name_str)?
            && bv
                .sys_modules
                .bind(py)
                .get_item(&name)?
                .is_some_and(|m| m.is(module));
        if importable {
            let rv = PyTuple::new(
                py,
                [
                    bv.import_module.bind(py).clone(),
                    PyTuple::new(py, [name])?.into_any(),
                ],
            )?;
            return self.save_reduce(&rv, Some(module));
        }
        let attrs = PyDict::new(py);
        for (key, value) in module
            .getattr(intern!(py, "__dict__"))?
            .cast::<PyDict>()?
            .iter()
        {
            let skip = key.cast::<PyString>().is_ok_and(|k| {
                matches!(
                    k.to_str(),
                    Ok("__builtins__" | "__loader__" | "__spec__" | "__cached__")
                )
            });
            if !skip {
                attrs.set_item(key, value)?;
            }
        }
        let state = Some((bv.module_state.bind(py).clone(), attrs.into_any()));
        self.save_rebuilt(module, bv.module.bind(py), &[name], state)
    }

    /// An object whose reduction named a global: by reference as the stdlib
    /// does, or, when that name does not lead back to it and anypickle knows
    /// how to rebuild it (TypeVar, NewType, type aliases, lru_cache wrappers),
    /// by value.
    pub(super) fn save_named(
        &mut self,
        obj: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
    ) -> Written {
        // In `__main__` (or a registered module) the name would resolve in
        // this process only: rebuild the object when anypickle knows how.
        if self.module_goes_by_value(obj)? {
            if let Some(rv) = self.reduce_unfindable(obj)? {
                return self.save_reduce_value(obj, &rv);
            }
            return self.save_global(obj, Some(name));
        }
        match self.save_global(obj, Some(name)) {
            Ok(()) => Ok(()),
            Err(err) => match self.reduce_unfindable(obj)? {
                Some(rv) => self.save_reduce_value(obj, &rv),
                None => Err(err),
            },
        }
    }

    /// `anypickle._byvalue.reduce_unfindable(obj)`: a by-value reduction of
    /// an object that pickles by name, or None.
    fn reduce_unfindable(&self, obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let rv = self
            .by_value_refs()?
            .reduce_unfindable
            .bind(self.py)
            .call1((obj,))?;
        Ok((!rv.is_none()).then_some(rv))
    }

    /// A `types.MappingProxyType` (which `__reduce_ex__` refuses): a proxy
    /// of a copy of what it shows, as `reduce_failed` would write it but
    /// without raising and discarding the TypeError first.
    pub(super) fn save_mappingproxy(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        let py = self.py;
        let shown = py.get_type::<PyDict>().call1((obj,))?;
        let args = PyTuple::new(py, [shown])?;
        let ctor = self.by_value_refs()?.mappingproxy.bind(py).clone();
        let rv = PyTuple::new(py, [ctor, args.into_any()])?;
        self.save_reduce_value(obj, rv.as_any())
    }

    /// `__reduce_ex__` raised `err`: rebuild the kinds of objects the stdlib
    /// cannot reduce but anypickle can (property, staticmethod, classmethod,
    /// cached_property), or give the error back.
    pub(super) fn save_after_failed_reduce(
        &mut self,
        obj: &Bound<'py, PyAny>,
        err: PyErr,
    ) -> Written {
        let py = self.py;
        if !err.is_instance_of::<PyTypeError>(py) {
            return Err(err.into());
        }
        let rv = self.by_value_refs()?.reduce_failed.bind(py).call1((obj,))?;
        if rv.is_none() {
            return Err(err.into());
        }
        self.save_reduce_value(obj, &rv)
    }

    /// A reconstructor (`anypickle._reconstruct.<name>`), by reference.
    ///
    /// Without a `persistent_id` or `reducer_override` hook this goes straight
    /// to `save_global`, as a Python function would: the Rust reconstructors
    /// are built-in functions, which `save` would send through the dispatch
    /// tables and `__reduce_ex__` (a Python-level call) to the same bytes.
    pub(super) fn save_reconstructor(&mut self, constructor: &Bound<'py, PyAny>) -> Written {
        if self.hooks.persistent_id.is_some() || self.hooks.reducer_override.is_some() {
            return self.save(constructor, false);
        }
        self.opcode_boundary()?;
        if let Some(idx) = self.memo.get(constructor) {
            return self.memo_get(idx);
        }
        self.save_global(constructor, None)
    }

    /// Write `constructor(*args)`, memoize the result as `obj`, and queue
    /// `setter(obj, state)` (see the module comment for why it waits).
    pub(super) fn save_rebuilt(
        &mut self,
        obj: &Bound<'py, PyAny>,
        constructor: &Bound<'py, PyAny>,
        args: &[Bound<'py, PyAny>],
        state: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    ) -> Written {
        if self.fast {
            return Err(self
                .refs
                .pickling_error(
                    self.py,
                    format!(
                        "can't pickle {} by value in fast mode (it needs the memo)",
                        repr(obj)
                    ),
                )
                .into());
        }
        let key = obj.as_ptr() as usize;
        if !self.by_value_state().rebuilding.insert(key) {
            return Err(self
                .refs
                .pickling_error(
                    self.py,
                    format!(
                        "can't pickle {} by value: it is needed to build itself (a class \
                     attribute or default that refers back to it in an unsupported way)",
                        repr(obj)
                    ),
                )
                .into());
        }
        self.by_value_state().open_constructors += 1;
        // Everything in the arguments is memoized, even when not shared, so
        // that e.g. one base globals dict serves every function that shared it.
        self.revisitable_open += 1;
        let written = (|| {
            self.save_reconstructor(constructor)?;
            self.save_fresh_tuple(args)?;
            self.out.byte(REDUCE)
        })();
        self.revisitable_open -= 1;
        let bookkeeping = self.by_value_state();
        bookkeeping.open_constructors -= 1;
        bookkeeping.rebuilding.remove(&key);
        written?;
        self.memo_put_always(obj)?;
        let bookkeeping = self.by_value_state();
        if let Some((setter, state)) = state {
            bookkeeping.deferred.push_back(Deferred {
                setter,
                obj: obj.clone(),
                state,
            });
        }
        if bookkeeping.open_constructors == 0 {
            self.flush_deferred()?;
        }
        Ok(())
    }

    /// Write a tuple the writer made itself (constructor arguments): nothing
    /// else can refer to it, so it is not memoized and never allocated.
    pub(super) fn save_fresh_tuple(&mut self, items: &[Bound<'py, PyAny>]) -> Written {
        let short = self.proto >= 2 && items.len() <= 3;
        if items.is_empty() && self.proto >= 1 {
            return self.out.byte(EMPTY_TUPLE);
        }
        if !short {
            self.out.byte(MARK)?;
        }
        for item in items {
            self.save(item, false)?;
        }
        match (short, items.len()) {
            (true, 1) => self.out.byte(TUPLE1),
            (true, 2) => self.out.byte(TUPLE2),
            (true, 3) => self.out.byte(TUPLE3),
            _ => self.out.byte(TUPLE),
        }
    }

    /// Write the queued `setter(obj, state)` calls, first queued first.
    fn flush_deferred(&mut self) -> Written {
        while let Some(d) = self.by_value_state().deferred.pop_front() {
            self.save_reconstructor(&d.setter)?;
            self.save(&d.obj, false)?;
            self.save(&d.state, false)
                .map_err(|e| self.state_error_path(e, &d))?;
            self.out.write(&[TUPLE2, REDUCE, POP])?;
        }
        Ok(())
    }

    /// Rewrite the path of an error from a by-value object's state in terms
    /// of the object: `['globals']['x']` → `.__globals__['x']`, a class's
    /// `['attrs']['x']` → `.x`, a cell's contents → `.__closure__[i]`.
    #[cold]
    fn state_error_path(&mut self, err: WriteError, d: &Deferred<'py>) -> WriteError {
        let Ok(bv) = self.by_value_refs() else {
            return err;
        };
        let py = self.py;
        let last_key = |path: &Vec<PathStep<'py>>| -> Option<String> {
            match path.last() {
                Some(PathStep::Key(k)) => k.cast::<PyString>().ok().map(|s| s.to_string()),
                _ => None,
            }
        };
        if d.setter.is(bv.cell_state.bind(py)) {
            let key = d.obj.as_ptr() as usize;
            let index = self.by_value.as_ref().and_then(|s| s.cell_index.get(&key));
            let label = match index {
                Some(i) => format!("__closure__[{i}]"),
                None => "cell_contents".to_owned(),
            };
            self.err_path.push(PathStep::Attr(label));
        } else if d.setter.is(bv.function_state.bind(py)) {
            if let Some(key) = last_key(&self.err_path) {
                let attr = match key.as_str() {
                    "globals" => "__globals__",
                    "defaults" => "__defaults__",
                    "kwdefaults" => "__kwdefaults__",
                    "annotations" => "__annotations__",
                    "dict" => "__dict__",
                    _ => return err,
                };
                self.err_path.pop();
                self.err_path.push(PathStep::Attr(attr.to_owned()));
            }
        } else {
            // Class and module state: `{"attrs": {name: value}}` / `{name: value}`.
            if last_key(&self.err_path).as_deref() == Some("attrs")
                && d.setter.is(bv.class_state.bind(py))
            {
                self.err_path.pop();
            }
            if let Some(name) = last_key(&self.err_path) {
                self.err_path.pop();
                self.err_path.push(PathStep::Attr(name));
            }
        }
        err
    }
}
