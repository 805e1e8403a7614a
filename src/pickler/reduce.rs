//! The reduce protocol and globals: `save_reduce` (REDUCE, NEWOBJ,
//! NEWOBJ_EX, BUILD, state setters), `save_global` (GLOBAL, STACK_GLOBAL,
//! EXT1/2/4, and the getattr chains for nested names below protocol 4) and
//! `save_type`.

use super::write_error::{WriteError, Written};
use pyo3::exceptions::{PyAttributeError, PyRuntimeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use super::plain_reduce::PlainReduction;
use super::writer::{PathStep, Writer};
use crate::opcodes::*;

/// Where a global was found, as the same object: what `write_global` needs.
pub(super) struct GlobalPlace<'py> {
    /// The name the module is imported by.
    pub module_name: Bound<'py, PyAny>,
    pub module: Bound<'py, PyAny>,
    /// The (possibly dotted) name of the object in its module.
    pub global_name: Bound<'py, PyAny>,
    /// `global_name` split at the dots.
    pub path: Vec<Bound<'py, PyString>>,
    /// The object the last part of the path was looked up on.
    pub parent: Bound<'py, PyAny>,
}

/// The parts of a reduce tuple `(callable, args[, state[, listitems[,
/// dictitems[, state_setter]]]])`, with `None`s already turned into `Option`.
struct Reduction<'py> {
    callable: Bound<'py, PyAny>,
    args: Bound<'py, PyTuple>,
    state: Option<Bound<'py, PyAny>>,
    listitems: Option<Bound<'py, PyAny>>,
    dictitems: Option<Bound<'py, PyAny>>,
    state_setter: Option<Bound<'py, PyAny>>,
}

fn is_iterator(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: only reads the type's tp_iternext slot.
    unsafe { ffi::PyIter_Check(obj.as_ptr()) != 0 }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

pub(super) fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unrepresentable object>".into())
}

impl<'py> Writer<'py, '_> {
    fn parse_reduction(&self, rv: &Bound<'py, PyTuple>) -> PyResult<Reduction<'py>> {
        let py = self.py;
        let n = rv.len();
        if !(2..=6).contains(&n) {
            return Err(self.refs.pickling_error(
                py,
                "tuple returned by __reduce__ must contain 2 through 6 elements",
            ));
        }
        let opt = |i: usize| -> PyResult<Option<Bound<'py, PyAny>>> {
            if i < n {
                let v = rv.get_item(i)?;
                Ok(if v.is_none() { None } else { Some(v) })
            } else {
                Ok(None)
            }
        };
        let callable = rv.get_item(0)?;
        if !callable.is_callable() {
            return Err(self.refs.pickling_error(
                py,
                "first item of the tuple returned by __reduce__ must be callable",
            ));
        }
        let args = rv.get_item(1)?.cast_into::<PyTuple>().map_err(|_| {
            self.refs.pickling_error(
                py,
                "second item of the tuple returned by __reduce__ must be a tuple",
            )
        })?;
        let state = opt(2)?;
        let listitems = opt(3)?;
        if let Some(l) = &listitems {
            if !is_iterator(l) {
                return Err(self.refs.pickling_error(
                    py,
                    format!(
                        "fourth element of the tuple returned by __reduce__ must be an iterator, not {}",
                        type_name(l)
                    ),
                ));
            }
        }
        let dictitems = opt(4)?;
        if let Some(d) = &dictitems {
            if !is_iterator(d) {
                return Err(self.refs.pickling_error(
                    py,
                    format!(
                        "fifth element of the tuple returned by __reduce__ must be an iterator, not {}",
                        type_name(d)
                    ),
                ));
            }
        }
        let state_setter = opt(5)?;
        if let Some(s) = &state_setter {
            if !s.is_callable() {
                return Err(self.refs.pickling_error(
                    py,
                    format!(
                        "sixth element of the tuple returned by __reduce__ must be a function, not {}",
                        type_name(s)
                    ),
                ));
            }
        }
        Ok(Reduction {
            callable,
            args,
            state,
            listitems,
            dictitems,
            state_setter,
        })
    }

    /// An error from saving an object's state: a failing `__dict__` entry
    /// `['name']` reads better as the attribute `.name`.
    #[cold]
    fn state_error(&mut self, err: WriteError) -> WriteError {
        if let Some(PathStep::Key(k)) = self.err_path.last() {
            if let Ok(name) = k.cast::<PyString>() {
                let name = name.to_string();
                self.err_path.pop();
                self.err_path.push(PathStep::Attr(name));
            }
        }
        err
    }

    /// Write a reduction of `obj` (CPython's `save_reduce`). `obj` is None
    /// when the caller does not want the result memoized.
    pub(super) fn save_reduce(
        &mut self,
        rv: &Bound<'py, PyTuple>,
        obj: Option<&Bound<'py, PyAny>>,
    ) -> Written {
        let py = self.py;
        let r = self.parse_reduction(rv)?;

        let (mut use_newobj, mut use_newobj_ex) = (false, false);
        if self.proto >= 2 {
            if let Some(name) = r.callable.getattr_opt(intern!(py, "__name__"))? {
                if let Ok(name) = name.cast::<PyString>() {
                    use_newobj_ex = name.to_str().is_ok_and(|n| n == "__newobj_ex__");
                    use_newobj = !use_newobj_ex && name.to_str().is_ok_and(|n| n == "__newobj__");
                }
            }
        }

        let write_call = |w: &mut Self| -> Written {
            if use_newobj_ex {
                w.write_newobj_ex(&r.args)
            } else if use_newobj {
                w.write_newobj(&r.args, obj)
            } else {
                w.save(&r.callable, false)?;
                w.save(r.args.as_any(), false)?;
                w.out.byte(REDUCE)
            }
        };
        match obj {
            Some(o) => self.with_unmemoized(o, write_call)?,
            None => write_call(self)?,
        }

        if let Some(obj) = obj {
            // The state setter call below refers to `obj` by memo.
            let always = r.state_setter.is_some() && r.state.is_some();
            if self.memoize_constructed(obj, always)? {
                return Ok(());
            }
        }

        if let Some(items) = &r.listitems {
            self.batch_list(items)?;
        }
        if let Some(items) = &r.dictitems {
            self.batch_dict(items)?;
        }
        if let Some(state) = &r.state {
            match (&r.state_setter, obj) {
                (Some(setter), Some(obj)) => {
                    // state_setter(obj, state), then drop its result: the
                    // whole sequence leaves the stack as it found it.
                    self.save(setter, false)?;
                    self.save(obj, false)?;
                    self.save(state, false)?;
                    self.out.write(&[TUPLE2, REDUCE, POP])?;
                }
                (Some(_), None) => {
                    // Only the writer's own reductions (getattr chains) pass no
                    // object, and they carry no state.
                    return Err(self
                        .refs
                        .pickling_error(self.py, "a state_setter needs the reduced object")
                        .into());
                }
                (None, _) => {
                    self.save(state, false).map_err(|e| self.state_error(e))?;
                    self.out.byte(BUILD)?;
                }
            }
        }
        Ok(())
    }

    /// Memoize `obj` once its constructor call is written. If writing the
    /// arguments already memoized it (the object is recursive), drop the
    /// new copy and use the memoized one instead, and return true: the
    /// rest of the reduction was written with that copy.
    fn memoize_constructed(&mut self, obj: &Bound<'py, PyAny>, always: bool) -> PyResult<bool> {
        if let Some(idx) = self.memo.get(obj) {
            self.out.byte(POP)?;
            self.memo_get(idx)?;
            return Ok(true);
        }
        if always {
            self.memo_put_always(obj)?;
        } else {
            self.memo_put(obj)?;
        }
        Ok(false)
    }

    /// Write what `save_reduce` writes for `object.__reduce_ex__`'s result
    /// `(copyreg.__newobj__, (cls,), state)`: `cls () NEWOBJ`, then BUILD.
    pub(super) fn save_plain_reduction(
        &mut self,
        obj: &Bound<'py, PyAny>,
        r: PlainReduction<'py>,
    ) -> Written {
        let py = self.py;
        self.with_unmemoized(obj, |w| {
            w.save(r.cls.as_any(), false)?;
            w.save(PyTuple::empty(py).as_any(), false)?;
            w.out.byte(NEWOBJ)
        })?;
        if self.memoize_constructed(obj, false)? {
            return Ok(());
        }
        if let Some(state) = &r.state {
            // An instance of a class written by value has no stdlib bytes to
            // match: its state dict, when nothing else refers to it, goes
            // without a memo put, so that the reader can hand its items to
            // BUILD without filling a dict (see `set_items_then_build`).
            let fresh_state = state.is_exact_instance_of::<PyDict>()
                && self.hooks.persistent_id.is_none()
                && self.wrote_class_by_value(&r.cls)
                && self.is_never_met_again(state);
            if fresh_state {
                self.save_unmemoized_dict(state)
            } else {
                self.save(state, false)
            }
            .map_err(|e| self.state_error(e))?;
            self.out.byte(BUILD)?;
        }
        Ok(())
    }

    fn write_newobj_ex(&mut self, args: &Bound<'py, PyTuple>) -> Written {
        let py = self.py;
        if args.len() != 3 {
            return Err(self
                .refs
                .pickling_error(
                    py,
                    format!(
                        "length of the NEWOBJ_EX argument tuple must be exactly 3, not {}",
                        args.len()
                    ),
                )
                .into());
        }
        let cls = args.get_item(0)?;
        if !cls.is_instance_of::<PyType>() {
            return Err(self
                .refs
                .pickling_error(
                    py,
                    format!(
                        "first item from NEWOBJ_EX argument tuple must be a class, not {}",
                        type_name(&cls)
                    ),
                )
                .into());
        }
        let new_args = args.get_item(1)?;
        let Ok(new_args) = new_args.cast_into::<PyTuple>() else {
            return Err(self
                .refs
                .pickling_error(
                    py,
                    format!(
                        "second item from NEWOBJ_EX argument tuple must be a tuple, not {}",
                        type_name(&args.get_item(1)?)
                    ),
                )
                .into());
        };
        let kwargs = args.get_item(2)?;
        let Ok(kwargs) = kwargs.cast_into::<PyDict>() else {
            return Err(self
                .refs
                .pickling_error(
                    py,
                    format!(
                        "third item from NEWOBJ_EX argument tuple must be a dict, not {}",
                        type_name(&args.get_item(2)?)
                    ),
                )
                .into());
        };
        if self.proto >= 4 {
            self.save(&cls, false)?;
            self.save(new_args.as_any(), false)?;
            self.save(kwargs.as_any(), false)?;
            return self.out.byte(NEWOBJ_EX);
        }
        // Below protocol 4: partial(cls.__new__, cls, *args, **kwargs)().
        let mut partial_args = vec![cls.getattr(intern!(py, "__new__"))?, cls.clone()];
        partial_args.extend(new_args.iter());
        let callable = self
            .refs
            .partial
            .bind(py)
            .call(PyTuple::new(py, partial_args)?, Some(&kwargs))?;
        self.save(&callable, false)?;
        self.save(PyTuple::empty(py).as_any(), false)?;
        self.out.byte(REDUCE)
    }

    fn write_newobj(
        &mut self,
        args: &Bound<'py, PyTuple>,
        obj: Option<&Bound<'py, PyAny>>,
    ) -> Written {
        let py = self.py;
        if args.is_empty() {
            return Err(self
                .refs
                .pickling_error(py, "__newobj__ arglist is empty")
                .into());
        }
        let cls = args.get_item(0)?;
        if !cls.is_instance_of::<PyType>() {
            return Err(self
                .refs
                .pickling_error(py, "args[0] from __newobj__ args is not a type")
                .into());
        }
        if let Some(obj) = obj {
            let obj_class = match obj.getattr_opt(intern!(py, "__class__")) {
                Ok(Some(c)) => c,
                Ok(None) | Err(_) => obj.get_type().into_any(),
            };
            if !obj_class.is(&cls) {
                return Err(self
                    .refs
                    .pickling_error(py, "args[0] from __newobj__ args has the wrong class")
                    .into());
            }
        }
        self.save(&cls, false)?;
        let rest = args.get_slice(1, args.len());
        self.save(rest.as_any(), false)?;
        self.out.byte(NEWOBJ)
    }

    /// Types: the three singleton types reduce to `type(singleton)`; every
    /// other type is a global.
    pub(super) fn save_type(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        let py = self.py;
        // SAFETY: the singletons are immortal interpreter objects.
        let singleton = unsafe {
            let p = obj.as_ptr() as *mut ffi::PyTypeObject;
            if p == ffi::Py_TYPE(ffi::Py_None()) {
                Some(ffi::Py_None())
            } else if p == ffi::Py_TYPE(ffi::Py_Ellipsis()) {
                Some(ffi::Py_Ellipsis())
            } else if p == ffi::Py_TYPE(ffi::Py_NotImplemented()) {
                Some(ffi::Py_NotImplemented())
            } else {
                None
            }
        };
        match singleton {
            Some(s) => {
                // SAFETY: `s` is a valid borrowed pointer to a singleton.
                let s = unsafe { Bound::from_borrowed_ptr(py, s) };
                let rv = PyTuple::new(
                    py,
                    [
                        py.get_type::<PyType>().into_any(),
                        PyTuple::new(py, [s])?.into_any(),
                    ],
                )?;
                self.save_reduce(&rv, Some(obj))
            }
            None => self.save_class(obj),
        }
    }

    /// Write `obj` by reference to its module and qualified name, after
    /// checking that importing that name gives back the very same object.
    pub(super) fn save_global(
        &mut self,
        obj: &Bound<'py, PyAny>,
        name: Option<&Bound<'py, PyAny>>,
    ) -> Written {
        let py = self.py;
        let global_name = match name {
            Some(n) => n.clone(),
            None => match crate::attrs::lookup(obj, intern!(py, "__qualname__"))? {
                Some(q) => q,
                None => obj.getattr(intern!(py, "__name__"))?,
            },
        };
        let dotted_path = dotted_path(&global_name)?;
        let module_name = whichmodule(obj, &dotted_path)?;

        let import_failed = |_| {
            self.refs.pickling_error(
                py,
                format!(
                    "Can't pickle {}: import of module {} failed",
                    repr(obj),
                    repr(&module_name)
                ),
            )
        };
        let mut module = crate::imports::import_module(&module_name).map_err(import_failed)?;
        let mut lookup = get_deep_attribute(&module, &dotted_path);
        if !matches!(lookup, Ok(Some(_))) {
            // Perhaps still being imported by another thread: wait, look again.
            module = crate::imports::import_module_fully(&module_name).map_err(import_failed)?;
            lookup = get_deep_attribute(&module, &dotted_path);
        }
        let (found, parent) = match lookup {
            Ok(Some(pair)) => pair,
            _ => {
                return Err(self
                    .refs
                    .pickling_error(
                        py,
                        format!(
                            "Can't pickle {}: attribute lookup {} on {} failed",
                            repr(obj),
                            global_name,
                            module_name
                        ),
                    )
                    .into())
            }
        };
        if !found.is(obj) {
            return Err(self
                .refs
                .pickling_error(
                    py,
                    format!(
                        "Can't pickle {}: it's not the same object as {}.{}",
                        repr(obj),
                        module_name,
                        global_name
                    ),
                )
                .into());
        }
        self.write_global(
            obj,
            GlobalPlace {
                module_name,
                module,
                global_name,
                path: dotted_path,
                parent,
            },
        )
    }

    /// Write a reference to `obj`, found as the same object at `place`:
    /// an extension code, STACK_GLOBAL, GLOBAL or a getattr chain.
    pub(super) fn write_global(
        &mut self,
        obj: &Bound<'py, PyAny>,
        place: GlobalPlace<'py>,
    ) -> Written {
        let py = self.py;
        let GlobalPlace {
            module_name,
            module,
            global_name,
            path: dotted_path,
            parent,
        } = place;
        if self.proto >= 2 {
            if let Some(code) = self.extension_code(obj, &module_name, &global_name)? {
                return self.write_ext(code);
            }
        }

        let lastname = dotted_path
            .last()
            .cloned()
            .expect("a dotted path has at least one part");
        let in_module = parent.is(&module);
        let global_name = if in_module {
            lastname.clone().into_any()
        } else {
            global_name
        };
        if self.proto >= 4 {
            self.save(&module_name, false)?;
            self.save(&global_name, false)?;
            self.out.byte(STACK_GLOBAL)?;
        } else if !in_module {
            if self.refs.version >= (3, 13) {
                self.write_getattr_chain(&module_name, &dotted_path)?;
            } else {
                let args = PyTuple::new(py, [parent, lastname.into_any()])?;
                let rv = PyTuple::new(py, [self.refs.getattr.bind(py).clone(), args.into_any()])?;
                self.save_reduce(&rv, None)?;
            }
        } else {
            self.write_global_opcode(&module_name, &global_name)?;
        }
        self.memo_put(obj)
    }

    /// Python 3.13's form of a nested name below protocol 4:
    /// `getattr(getattr(GLOBAL module first, second), third)`.
    fn write_getattr_chain(
        &mut self,
        module_name: &Bound<'py, PyAny>,
        path: &[Bound<'py, PyString>],
    ) -> Written {
        let getattr = self.refs.getattr.bind(self.py).clone();
        for _ in 1..path.len() {
            self.save(&getattr, false)?;
            if self.proto < 2 {
                self.out.byte(MARK)?;
            }
        }
        self.write_global_opcode(module_name, path[0].as_any())?;
        for attr in &path[1..] {
            self.save(attr.as_any(), false)?;
            self.out
                .write(&[if self.proto < 2 { TUPLE } else { TUPLE2 }, REDUCE])?;
        }
        Ok(())
    }

    /// GLOBAL "module\nname\n", with Python 2 names below protocol 3.
    fn write_global_opcode(
        &mut self,
        module_name: &Bound<'py, PyAny>,
        global_name: &Bound<'py, PyAny>,
    ) -> Written {
        let (mut module_name, mut global_name) = (module_name.clone(), global_name.clone());
        if self.proto < 3 && self.fix_imports {
            (module_name, global_name) = self.fix_imports_3to2(module_name, global_name)?;
        }
        let module_bytes = self.encode_identifier(&module_name, "module")?;
        let global_bytes = self.encode_identifier(&global_name, "global")?;
        self.out.byte(GLOBAL)?;
        self.out.write(&module_bytes)?;
        self.out.byte(b'\n')?;
        self.out.write(&global_bytes)?;
        self.out.byte(b'\n')
    }

    /// UTF-8 for protocol 3, ASCII below it (Python 2 readers).
    fn encode_identifier(&self, name: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<u8>> {
        let py = self.py;
        let text = name.cast::<PyString>()?;
        let ok = match text.to_str() {
            Ok(s) if self.proto == 3 || s.is_ascii() => Some(s.as_bytes().to_vec()),
            _ => None,
        };
        ok.ok_or_else(|| {
            self.refs.pickling_error(
                py,
                format!(
                    "can't pickle {what} identifier '{}' using pickle protocol {}",
                    text, self.proto
                ),
            )
        })
    }

    /// Map a Python 3 (module, name) to its Python 2 spelling, if it has one.
    fn fix_imports_3to2(
        &self,
        module_name: Bound<'py, PyAny>,
        global_name: Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let py = self.py;
        let key = PyTuple::new(py, [&module_name, &global_name])?;
        if let Some(item) = self.refs.name_mapping_3to2.bind(py).get_item(key)? {
            let pair = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2)
                .ok_or_else(|| {
                    PyRuntimeError::new_err(format!(
                        "_compat_pickle.REVERSE_NAME_MAPPING values should be 2-tuples, not {}",
                        type_name(&item)
                    ))
                })?;
            let (m, g) = (pair.get_item(0)?, pair.get_item(1)?);
            if !m.is_instance_of::<PyString>() || !g.is_instance_of::<PyString>() {
                return Err(PyRuntimeError::new_err(format!(
                    "_compat_pickle.REVERSE_NAME_MAPPING values should be pairs of str, not ({}, {})",
                    type_name(&m),
                    type_name(&g)
                )));
            }
            return Ok((m, g));
        }
        if let Some(m) = self
            .refs
            .import_mapping_3to2
            .bind(py)
            .get_item(&module_name)?
        {
            if !m.is_instance_of::<PyString>() {
                return Err(PyRuntimeError::new_err(format!(
                    "_compat_pickle.REVERSE_IMPORT_MAPPING values should be strings, not {}",
                    type_name(&m)
                )));
            }
            return Ok((m, global_name));
        }
        Ok((module_name, global_name))
    }

    /// The copyreg extension code of (module, name), if one is registered.
    fn extension_code(
        &self,
        obj: &Bound<'py, PyAny>,
        module_name: &Bound<'py, PyAny>,
        global_name: &Bound<'py, PyAny>,
    ) -> PyResult<Option<u32>> {
        let py = self.py;
        let registry = self.refs.extension_registry.bind(py);
        if registry.is_empty() {
            return Ok(None);
        }
        let key = PyTuple::new(py, [module_name, global_name])?;
        let Some(code) = registry.get_item(key)? else {
            return Ok(None);
        };
        // Python 3.13 reports a bad registry entry with the builtin errors
        // the registry's own checks would raise; earlier versions with
        // PicklingError.
        let modern = self.refs.version >= (3, 13);
        if !code.is_instance_of::<pyo3::types::PyInt>() {
            let msg = format!(
                "Can't pickle {}: extension code {} isn't an integer",
                repr(obj),
                repr(&code)
            );
            return Err(if modern {
                pyo3::exceptions::PyTypeError::new_err(msg)
            } else {
                self.refs.pickling_error(py, msg)
            });
        }
        let value = match code.extract::<i64>() {
            Ok(v) => v,
            Err(e) if modern => return Err(e),
            Err(_) => -1,
        };
        if value <= 0 || value > 0x7fff_ffff {
            let msg = format!(
                "Can't pickle {}: extension code {value} is out of range",
                repr(obj)
            );
            return Err(if modern {
                PyRuntimeError::new_err(msg)
            } else {
                self.refs.pickling_error(py, msg)
            });
        }
        Ok(Some(value as u32))
    }

    fn write_ext(&mut self, code: u32) -> Written {
        let b = code.to_le_bytes();
        if code <= 0xff {
            self.out.write(&[EXT1, b[0]])
        } else if code <= 0xffff {
            self.out.write(&[EXT2, b[0], b[1]])
        } else {
            self.out.write(&[EXT4, b[0], b[1], b[2], b[3]])
        }
    }
}

/// `name.split(".")`, refusing names inside a function (`<locals>`).
fn dotted_path<'py>(name: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyString>>> {
    let py = name.py();
    if let Ok(s) = name.cast_exact::<PyString>() {
        // Most names have no dot: no `str.split` call and no new strings.
        if s.to_str()
            .is_ok_and(|t| !t.contains('.') && t != "<locals>")
        {
            return Ok(vec![s.clone()]);
        }
    }
    let parts = name.call_method1(intern!(py, "split"), (intern!(py, "."),))?;
    let parts = parts.cast_into::<PyList>()?;
    let mut out = Vec::with_capacity(parts.len());
    for part in parts.iter() {
        let part = part.cast_into::<PyString>()?;
        if part.to_str().is_ok_and(|p| p == "<locals>") {
            return Err(PyAttributeError::new_err(format!(
                "Can't pickle local object {}",
                repr(name)
            )));
        }
        out.push(part);
    }
    Ok(out)
}

/// Follow `path` from `obj`; returns (attribute, its parent), or None when
/// an attribute is missing.
fn get_deep_attribute<'py>(
    obj: &Bound<'py, PyAny>,
    path: &[Bound<'py, PyString>],
) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    let mut parent = obj.clone();
    let mut current = obj.clone();
    for name in path {
        parent = current;
        match crate::attrs::lookup(&parent, name)? {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    Ok(Some((current, parent)))
}

/// The module name of a global: its `__module__`, or the first module in
/// `sys.modules` (other than `__main__`) that holds it, or `__main__`.
fn whichmodule<'py>(
    obj: &Bound<'py, PyAny>,
    path: &[Bound<'py, PyString>],
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    if let Some(m) = crate::attrs::lookup(obj, intern!(py, "__module__"))? {
        if !m.is_none() {
            return Ok(m);
        }
    }
    let modules = py.import("sys")?.getattr(intern!(py, "modules"))?;
    let modules = modules.cast_into::<PyDict>()?.copy()?;
    for (name, module) in modules.iter() {
        if module.is_none() {
            continue;
        }
        if name
            .cast::<PyString>()
            .is_ok_and(|n| n.to_str().is_ok_and(|n| n == "__main__"))
        {
            continue;
        }
        if let Some((found, _)) = get_deep_attribute(&module, path)? {
            if found.is(obj) {
                return Ok(name);
            }
        }
    }
    Ok(intern!(py, "__main__").clone().into_any())
}
