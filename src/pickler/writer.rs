//! The writer: turns one object graph into pickle opcodes.
//!
//! `Writer::save` is CPython's `save()` in the same dispatch order (see
//! `../shared/NOTES.md`), so that deterministic output is byte-identical:
//! persistent_id → atoms → memo → str/bytes → built-in containers →
//! reducer_override → types and functions as globals → dispatch tables →
//! `__reduce_ex__`/`__reduce__`. The per-kind encoders live in `atoms.rs`,
//! `containers.rs` and `reduce.rs`; this file owns the state, the memo
//! decisions, the hooks and the recursion budget.

use super::write_error::{WriteError, Written};
use pyo3::exceptions::{PyRecursionError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use rustc_hash::FxHashSet;

use super::by_value::ByValueState;
use super::memo::Memo;
use super::output::Output;
use super::plain_reduce::plain_reduction;
use crate::opcodes::*;
use crate::pyrefs::PyRefs;

/// Deepest nesting of containers/reductions the writer follows before it
/// raises `RecursionError`. The native stack never limits it: deep levels run
/// on heap-allocated stack segments (see `RED_ZONE`).
pub const MAX_DEPTH: usize = 300_000;
/// Grow onto a new stack segment when less than this much stack is left...
const RED_ZONE: usize = 256 * 1024;
/// ...and make each new segment this large.
const STACK_SEGMENT: usize = 8 * 1024 * 1024;
/// The room left on the stack is measured at every this many levels of
/// nesting, not at each (the measure reads a thread-local, which in a shared
/// library is a call; a record costs two). The levels in between take a few
/// KiB of stack at most, far inside `RED_ZONE`.
const STACK_CHECK_EVERY: usize = 8;
/// CPython's nesting depth after which fast mode starts checking for cycles.
const FAST_NESTING_LIMIT: usize = 50;
/// An object whose reference count is at most this has no holder but the
/// one container we reached it through and the writer's own reference
/// (`save` always holds one). Such an object is not in the memo (the memo
/// holds a reference of its own), and, unless that container can be written
/// again (see `revisitable_open`), it will not be met again in this call.
pub(super) const UNSHARED_REFCOUNT: ffi::Py_ssize_t = 2;

/// User hooks, resolved once per `dump` call.
#[derive(Default)]
pub struct Hooks<'py> {
    pub persistent_id: Option<Bound<'py, PyAny>>,
    pub reducer_override: Option<Bound<'py, PyAny>>,
    pub dispatch_table: Option<Bound<'py, PyAny>>,
    pub buffer_callback: Option<Bound<'py, PyAny>>,
}

/// Settings of one dump call.
#[derive(Clone, Copy)]
pub struct Settings {
    pub proto: u8,
    pub fix_imports: bool,
    pub deterministic: bool,
    pub fast: bool,
    /// Nobody sees the memo after this call (`dumps` and `dump`, not a
    /// `Pickler`): an unshared object's put is written and the object waits
    /// in the memo's pending list until Python code is about to run.
    pub memo_private: bool,
}

pub struct Writer<'py, 'm> {
    pub(super) py: Python<'py>,
    pub(super) refs: &'py PyRefs,
    pub(super) proto: u8,
    /// Binary opcodes (protocol >= 1).
    pub(super) bin: bool,
    pub(super) fix_imports: bool,
    deterministic: bool,
    pub(super) fast: bool,
    memo_private: bool,
    /// How many times Python code may have run during this call (counted by
    /// `before_python_code`): a judgement made from reference counts holds
    /// only while this stays the same.
    pub(super) python_epoch: u64,
    pub(super) out: Output,
    pub(super) memo: &'m mut Memo,
    pub(super) hooks: Hooks<'py>,
    /// `file.write` when dumping to a file; `None` for `dumps`.
    pub(super) file_write: Option<Bound<'py, PyAny>>,
    depth: usize,
    /// How many objects on the current path are written before they are
    /// memoized (tuples, frozensets, reductions during their arguments) and
    /// could be reached again through a cycle. While any is open, every
    /// object is stored in the memo (counted where unshared objects may be
    /// left out of it: non-deterministic mode or a private memo).
    pub(super) revisitable_open: usize,
    fast_nesting: usize,
    fast_memo: FxHashSet<usize>,
    /// By value: modules named in this call's `by_value=` argument.
    pub(super) by_value_modules: Vec<String>,
    /// By value: what this call keeps track of, made at the first object
    /// written by value (most calls write none and so pay nothing for it).
    pub(super) by_value: Option<Box<ByValueState<'py>>>,
    /// Where a failure happened: path steps pushed while the error unwinds
    /// (innermost first); turned into "(at obj[0].attr)" by `dump`.
    pub(super) err_path: Vec<PathStep<'py>>,
}

/// One step of the path from the dumped object to the part that failed.
pub(super) enum PathStep<'py> {
    /// `[3]`: an item of a list or tuple.
    Index(usize),
    /// `['key']`: a dict value.
    Key(Bound<'py, PyAny>),
    /// `.name`: an attribute (instance state, function parts).
    Attr(String),
}

/// The Python type of `obj`, for identity comparisons with the built-in types.
#[inline(always)]
pub(super) fn type_of(obj: &Bound<'_, PyAny>) -> *mut ffi::PyTypeObject {
    obj.get_type_ptr()
}

/// The address of one of the interpreter's static type objects.
macro_rules! builtin_type {
    ($name:ident) => {
        std::ptr::addr_of_mut!(ffi::$name)
    };
}

#[inline(always)]
fn refcount(obj: &Bound<'_, PyAny>) -> ffi::Py_ssize_t {
    // SAFETY: reads the reference count of a live object; the GIL is held.
    unsafe { ffi::Py_REFCNT(obj.as_ptr()) }
}
pub(super) use builtin_type;

/// `Writer::before_python_code` on the two fields it touches (for code
/// that holds other parts of the writer borrowed).
#[inline]
fn python_code_ahead(epoch: &mut u64, memo: &mut Memo) {
    *epoch += 1;
    memo.store_pending();
}

/// Whether a container's item, just fetched by a new reference while the
/// container still holds it, has no other holder: then it is not in the
/// memo. Taken at fetch time because writing something else first (a dict
/// key) may run code that drops the container's reference.
#[inline(always)]
pub(super) fn is_unshared_item(item: &Bound<'_, PyAny>) -> bool {
    refcount(item) <= UNSHARED_REFCOUNT
}

impl<'py, 'm> Writer<'py, 'm> {
    /// A writer for one dump call. Infallible and inlined, so that the
    /// (large) struct is built where it lives instead of being copied out of
    /// a `Result`: this is on the per-call path of every `dumps`.
    #[inline(always)]
    pub fn new(
        py: Python<'py>,
        refs: &'py PyRefs,
        settings: Settings,
        memo: &'m mut Memo,
        file_write: Option<Bound<'py, PyAny>>,
    ) -> Self {
        Writer {
            py,
            refs,
            proto: settings.proto,
            bin: settings.proto >= 1,
            fix_imports: settings.fix_imports,
            deterministic: settings.deterministic,
            fast: settings.fast,
            memo_private: settings.memo_private,
            python_epoch: 0,
            out: Output::new(),
            memo,
            // Set by the caller when there are hooks (see `by_value_modules`).
            hooks: Hooks::default(),
            file_write,
            depth: 0,
            revisitable_open: 0,
            fast_nesting: 0,
            fast_memo: FxHashSet::default(),
            // Set by the caller when `by_value=` names modules (passing the
            // vector in made every call copy it, see `write_error`).
            by_value_modules: Vec::new(),
            by_value: None,
            err_path: Vec::new(),
        }
    }

    /// Write a whole pickle of `obj`: PROTO header, the object, STOP.
    pub fn dump(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        self.err_path.clear();
        let result = self.dump_inner(obj);
        self.out.set_framing(false);
        result.map_err(|e| self.locate_error(e.into()))
    }

    /// Record that an error came out of the part of the current object
    /// reached through `step` (only on the error path: costs nothing otherwise).
    #[cold]
    pub(super) fn at(&mut self, err: impl Into<WriteError>, step: PathStep<'py>) -> WriteError {
        self.err_path.push(step);
        err.into()
    }

    /// Name where a refusal happened: a `PicklingError` or a "cannot pickle"
    /// `TypeError` from
    /// deep inside the object becomes a `pickle.PicklingError` (also a
    /// `TypeError` when it was one) whose message ends with the path, e.g.
    /// "cannot pickle '_thread.lock' object (at obj.handlers[0].__closure__[1])".
    /// Other exceptions (the user's own) propagate unchanged.
    #[cold]
    fn locate_error(&mut self, err: PyErr) -> PyErr {
        let py = self.py;
        if self.err_path.is_empty() {
            return err;
        }
        // A TypeError counts when it is a refusal ("cannot pickle 'X' object",
        // from object.__reduce_ex__ and most C types), not any TypeError a
        // user's reducer raised.
        let is_type_error = err.is_instance_of::<pyo3::exceptions::PyTypeError>(py)
            && err
                .value(py)
                .str()
                .is_ok_and(|m| m.to_str().is_ok_and(|m| m.starts_with("cannot pickle")));
        if !is_type_error && !err.is_instance(py, self.refs.pickling_error.bind(py)) {
            return err;
        }
        let mut path = String::from("obj");
        for step in self.err_path.iter().rev() {
            match step {
                PathStep::Index(i) => path.push_str(&format!("[{i}]")),
                PathStep::Key(k) => {
                    let key = k
                        .repr()
                        .map(|r| r.to_string())
                        .unwrap_or_else(|_| "?".into());
                    path.push_str(&format!("[{key}]"));
                }
                PathStep::Attr(a) => {
                    path.push('.');
                    path.push_str(a);
                }
            }
        }
        self.err_path.clear();
        let message = format!("{} (at {path})", err.value(py));
        let class = if is_type_error {
            py.import("anypickle._errors")
                .and_then(|m| m.getattr("PicklingTypeError"))
                .ok()
        } else {
            Some(self.refs.pickling_error.bind(py).clone().into_any())
        };
        let Some(class) = class else { return err };
        match class.call1((message,)) {
            Ok(new) => {
                let new_err = PyErr::from_value(new);
                new_err.set_cause(py, Some(err));
                new_err
            }
            Err(_) => err,
        }
    }

    fn dump_inner(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if self.proto >= 2 {
            self.out.write(&[PROTO, self.proto])?;
            if self.proto >= 4 {
                self.out.set_framing(true);
            }
        }
        // Own a reference, like every other object `save` sees: the
        // non-deterministic memo decision counts on it.
        let obj = obj.clone();
        self.save(&obj, false)?;
        self.out.byte(STOP)?;
        self.out.commit_frame();
        Ok(())
    }

    /// The finished pickle (for `dumps`).
    pub fn take_bytes(&mut self) -> PyResult<Bound<'py, PyBytes>> {
        self.out.take(self.py)
    }

    /// Send what is buffered to the file (for `Pickler.dump`).
    pub fn flush_to_file(&mut self) -> PyResult<()> {
        let Some(write) = self.file_write.clone() else {
            return Ok(());
        };
        self.before_python_code();
        let chunk = self.out.take(self.py)?;
        write.call1((chunk,))?;
        Ok(())
    }

    /// CPython's `_Pickler_OpcodeBoundary`: commit a full frame, and when
    /// writing to a file, hand it over so memory stays bounded.
    #[inline(always)]
    pub(super) fn opcode_boundary(&mut self) -> Written {
        if self.out.frame_is_full() {
            self.out.commit_frame();
            if self.file_write.is_some() {
                self.flush_to_file()?;
            }
        }
        Ok(())
    }

    /// Pickle one object (CPython's `save`). `pers_save` is true for the
    /// persistent id itself, which must not be passed to `persistent_id`.
    #[inline]
    pub(super) fn save(&mut self, obj: &Bound<'py, PyAny>, pers_save: bool) -> Written {
        self.save_object(obj, pers_save, false)
    }

    /// `save`; `unmemoized` tells that `obj` is known not to be in the memo
    /// (see `save_item`), which spares the lookup.
    fn save_object(
        &mut self,
        obj: &Bound<'py, PyAny>,
        pers_save: bool,
        unmemoized: bool,
    ) -> Written {
        self.opcode_boundary()?;
        if !pers_save && self.hooks.persistent_id.is_some() && self.save_pers(obj)? {
            return Ok(());
        }
        let tp = type_of(obj);
        if obj.is_none() {
            return self.out.byte(NONE);
        }
        if tp == builtin_type!(PyBool_Type) {
            return self.save_bool(obj);
        }
        if tp == builtin_type!(PyLong_Type) {
            return self.save_long(obj);
        }
        if tp == builtin_type!(PyFloat_Type) {
            return self.save_float(obj);
        }
        if !unmemoized {
            if let Some(idx) = self.memo.get(obj) {
                return self.memo_get(idx);
            }
        }
        if tp == builtin_type!(PyBytes_Type) {
            return self.save_bytes(obj);
        }
        if tp == builtin_type!(PyUnicode_Type) {
            return self.save_str(obj);
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(PyRecursionError::new_err(format!(
                "maximum nesting depth ({MAX_DEPTH}) exceeded while pickling an object"
            ))
            .into());
        }
        let result = if self.depth % STACK_CHECK_EVERY == 0 {
            stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, || self.save_nested(obj, tp))
        } else {
            self.save_nested(obj, tp)
        };
        self.depth -= 1;
        result
    }

    /// `save` for a container's item, with the commonest atoms (int, float)
    /// handled inline: they need no memo, hook or recursion bookkeeping.
    /// `unshared` comes from `is_unshared_item`, taken when the item was
    /// fetched: the memo lookup is skipped for such an item.
    #[inline(always)]
    pub(super) fn save_item(&mut self, obj: &Bound<'py, PyAny>, unshared: bool) -> Written {
        if self.hooks.persistent_id.is_none() && !self.out.frame_is_full() {
            let tp = type_of(obj);
            if tp == builtin_type!(PyLong_Type) {
                return self.save_long(obj);
            }
            if tp == builtin_type!(PyFloat_Type) {
                return self.save_float(obj);
            }
            if obj.is_none() {
                return self.out.byte(NONE);
            }
            if tp == builtin_type!(PyBool_Type) {
                return self.save_bool(obj);
            }
            // Strings without the rest of `save_object`'s dispatch: a
            // record's keys are memo gets.
            if tp == builtin_type!(PyUnicode_Type) {
                if !unshared {
                    if let Some(idx) = self.memo.get(obj) {
                        return self.memo_get(idx);
                    }
                }
                return self.save_str(obj);
            }
        }
        self.save_object(obj, false, unshared)
    }

    /// Everything past the atoms: containers, hooks and the reduce protocol.
    fn save_nested(&mut self, obj: &Bound<'py, PyAny>, tp: *mut ffi::PyTypeObject) -> Written {
        if tp == builtin_type!(PyDict_Type) {
            return self.save_dict(obj);
        }
        if tp == builtin_type!(PySet_Type) {
            return self.save_set(obj);
        }
        if tp == builtin_type!(PyFrozenSet_Type) {
            return self.save_frozenset(obj);
        }
        if tp == builtin_type!(PyList_Type) {
            return self.save_list(obj);
        }
        if tp == builtin_type!(PyTuple_Type) {
            // SAFETY: the exact type was checked just above.
            return self.save_tuple(unsafe { obj.cast_unchecked::<PyTuple>() });
        }
        if tp == builtin_type!(PyByteArray_Type) {
            return self.save_bytearray(obj);
        }
        if tp == self.refs.pickle_buffer_type.as_ptr() as *mut ffi::PyTypeObject {
            return self.save_picklebuffer(obj);
        }

        // From here on, every branch but the writer's own reduction of plain
        // instances may run Python code: each first enters the pending memo
        // entries (`before_python_code`).
        if let Some(reducer_override) = self.hooks.reducer_override.clone() {
            self.before_python_code();
            let rv = reducer_override.call1((obj,))?;
            if !rv.is(self.py.NotImplemented()) {
                return self.save_reduce_value(obj, &rv);
            }
        }
        if tp == builtin_type!(PyType_Type) {
            self.before_python_code();
            return self.save_type(obj);
        }
        if tp == builtin_type!(PyFunction_Type) {
            self.before_python_code();
            return self.save_function(obj);
        }

        let py = self.py;
        let obj_type = obj.get_type();
        let reduce_func = match self.hooks.dispatch_table.clone() {
            Some(table) => {
                self.before_python_code();
                match table.get_item(&obj_type) {
                    Ok(f) => Some(f),
                    Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(py) => None,
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                // Hashing and comparing a class runs Python code only when
                // its metaclass is not `type`.
                if type_of(obj_type.as_any()) != builtin_type!(PyType_Type) {
                    self.before_python_code();
                }
                self.refs
                    .copyreg_dispatch_table
                    .bind(py)
                    .get_item(&obj_type)?
            }
        };
        let rv = if let Some(f) = reduce_func {
            self.before_python_code();
            Some(f.call1((obj,))?)
        } else if obj.is_instance_of::<pyo3::types::PyType>() {
            // A metaclass instance: PyType_Check, a flag test, like CPython's
            // PyType_IsSubtype (no __subclasscheck__ call).
            self.before_python_code();
            return self.save_class(obj);
        } else if tp == builtin_type!(PyCode_Type) {
            self.before_python_code();
            return self.save_code(obj);
        } else if tp == builtin_type!(PyCell_Type) {
            self.before_python_code();
            return self.save_cell(obj);
        } else if obj.is_instance_of::<pyo3::types::PyModule>() {
            self.before_python_code();
            return self.save_module(obj);
        } else if let Some(name) = self.refs.sentinel_name(obj, tp) {
            // By reference to the real sentinel, even for a copy of it (which
            // other picklers leave behind in classes they reloaded in place).
            self.before_python_code();
            let real = self.refs.dataclasses.bind(py).getattr(&name)?;
            return self.save_global(&real, Some(&name.into_any()));
        } else if tp == builtin_type!(PyDictProxy_Type) {
            self.before_python_code();
            return self.save_mappingproxy(obj);
        } else if self.proto >= 2 {
            // Most instances: `object.__reduce_ex__` computed without
            // calling it (see `plain_reduce`); an error goes where an error
            // from the call would have gone. It runs Python code only where
            // it says so first.
            let refs = self.refs;
            let (epoch, memo) = (&mut self.python_epoch, &mut *self.memo);
            match plain_reduction(obj, refs, &mut || python_code_ahead(epoch, memo)) {
                Ok(Some(r)) => return self.save_plain_reduction(obj, r),
                Ok(None) => {
                    self.before_python_code();
                    self.call_reducer(obj, &obj_type)?
                }
                Err(err) => {
                    self.before_python_code();
                    return self.save_after_failed_reduce(obj, err);
                }
            }
        } else {
            self.before_python_code();
            self.call_reducer(obj, &obj_type)?
        };
        match rv {
            Some(rv) => self.save_reduce_value(obj, &rv),
            // The reducer failed and the by-value fallback wrote the object.
            None => Ok(()),
        }
    }

    /// Call the object's `__reduce_ex__(protocol)`, or its `__reduce__`.
    /// `None` when the reducer failed and the object was written another way
    /// (see `save_after_failed_reduce`).
    fn call_reducer(
        &mut self,
        obj: &Bound<'py, PyAny>,
        obj_type: &Bound<'py, pyo3::types::PyType>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = self.py;
        let rv = if let Some(reduce_ex) = crate::attrs::lookup(obj, intern!(py, "__reduce_ex__"))? {
            reduce_ex.call1((self.proto,))
        } else if let Some(reduce) = crate::attrs::lookup(obj, intern!(py, "__reduce__"))? {
            reduce.call0()
        } else {
            return Err(self.refs.pickling_error(
                py,
                format!(
                    "can't pickle '{}' object: {}",
                    obj_type.name()?,
                    obj.repr()?
                ),
            ));
        };
        match rv {
            Ok(rv) => Ok(Some(rv)),
            Err(err) => Ok(self.save_after_failed_reduce(obj, err).map(|()| None)?),
        }
    }

    /// Act on what a reducer returned: a global name or a reduce tuple.
    pub(super) fn save_reduce_value(
        &mut self,
        obj: &Bound<'py, PyAny>,
        rv: &Bound<'py, PyAny>,
    ) -> Written {
        if rv.is_instance_of::<pyo3::types::PyString>() {
            return self.save_named(obj, rv);
        }
        match rv.cast::<PyTuple>() {
            Ok(t) => self.save_reduce(t, Some(obj)),
            Err(_) => Err(self
                .refs
                .pickling_error(self.py, "__reduce__ must return a string or tuple")
                .into()),
        }
    }

    /// Call `persistent_id`; write the id and return true when it gives one.
    fn save_pers(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<bool> {
        let Some(func) = self.hooks.persistent_id.clone() else {
            return Ok(false);
        };
        self.before_python_code();
        let pid = func.call1((obj,))?;
        if pid.is_none() {
            return Ok(false);
        }
        if self.bin {
            self.save(&pid, true)?;
            self.out.byte(BINPERSID)?;
        } else {
            let text = pid.str()?;
            let text = text.to_str().ok().filter(|s| s.is_ascii()).ok_or_else(|| {
                self.refs.pickling_error(
                    self.py,
                    "persistent IDs in protocol 0 must be ASCII strings",
                )
            })?;
            self.out.byte(PERSID)?;
            self.out.write(text.as_bytes())?;
            self.out.byte(b'\n')?;
        }
        Ok(true)
    }

    /// Write a memo lookup for index `idx` (GET / BINGET / LONG_BINGET).
    #[inline(always)]
    pub(super) fn memo_get(&mut self, idx: usize) -> Written {
        // The common case inline: a record's keys are memo gets.
        if self.bin && idx < 256 {
            return self.out.write(&[BINGET, idx as u8]);
        }
        self.memo_get_wide(idx)
    }

    /// `memo_get` past index 255, or at protocol 0.
    fn memo_get_wide(&mut self, idx: usize) -> Written {
        if !self.bin {
            self.out.write(format!("g{idx}\n").as_bytes())
        } else if idx < 256 {
            self.out.write(&[BINGET, idx as u8])
        } else if idx <= u32::MAX as usize {
            let b = (idx as u32).to_le_bytes();
            self.out.write(&[LONG_BINGET, b[0], b[1], b[2], b[3]])
        } else {
            Err(self
                .refs
                .pickling_error(self.py, "memo id too large for LONG_BINGET")
                .into())
        }
    }

    /// Memoize `obj` as CPython does, except for an object that cannot be
    /// met again unless Python code leads back to it (nothing but the
    /// container we reached it through refers to it, and no container on the
    /// path can itself be written a second time, see `revisitable_open`):
    /// non-deterministic mode writes no put for it, and with a private memo
    /// its put is written but the object waits in the memo's pending list,
    /// entered in the table by `before_python_code` (the stream is the same;
    /// a push instead of a table insert, which is a cache miss).
    #[inline(always)]
    pub(super) fn memo_put(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if self.is_never_met_again(obj) {
            if !self.deterministic || self.fast {
                return Ok(());
            }
            if self.memo_private {
                let idx = self.memo.put_pending(obj);
                return self.write_put(idx);
            }
        }
        self.memo_put_always(obj)
    }

    /// Enter the objects `memo_put` left pending in the memo table: called
    /// before anything that can run Python code (a reducer, a hook, an
    /// import, `file.write`), which could reach one of them again through
    /// its container and hand it back to be written, where CPython writes
    /// a memo get.
    #[inline]
    pub(super) fn before_python_code(&mut self) {
        python_code_ahead(&mut self.python_epoch, self.memo);
    }

    /// Nothing but the container we reached `obj` through refers to it, and
    /// no container on the path can be written a second time.
    #[inline]
    pub(super) fn is_never_met_again(&self, obj: &Bound<'py, PyAny>) -> bool {
        self.revisitable_open == 0 && refcount(obj) <= UNSHARED_REFCOUNT
    }

    /// Run `write_parts` for an object that is memoized only after its
    /// parts are written. If something else refers to it, a cycle may lead
    /// back to it before it is in the memo, so in non-deterministic mode
    /// everything below it is memoized.
    pub(super) fn with_unmemoized<R, E>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        write_parts: impl FnOnce(&mut Self) -> Result<R, E>,
    ) -> Result<R, E> {
        let guard = (!self.deterministic || self.memo_private) && refcount(obj) > UNSHARED_REFCOUNT;
        if guard {
            self.revisitable_open += 1;
        }
        let result = write_parts(self);
        if guard {
            self.revisitable_open -= 1;
        }
        result
    }

    /// Memoize `obj` unconditionally (the writer itself will refer to it
    /// again, e.g. for a `state_setter` call).
    pub(super) fn memo_put_always(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if self.fast {
            return Ok(());
        }
        let idx = self.memo.put(obj);
        self.write_put(idx)
    }

    /// Write a memo put for index `idx` (MEMOIZE / PUT / BINPUT / LONG_BINPUT).
    #[inline(always)]
    fn write_put(&mut self, idx: usize) -> Written {
        if self.proto >= 4 {
            self.out.byte(MEMOIZE)
        } else {
            self.write_indexed_put(idx)
        }
    }

    /// `write_put` below protocol 4, where the put names its index.
    fn write_indexed_put(&mut self, idx: usize) -> Written {
        if !self.bin {
            self.out.write(format!("p{idx}\n").as_bytes())
        } else if idx < 256 {
            self.out.write(&[BINPUT, idx as u8])
        } else if idx <= u32::MAX as usize {
            let b = (idx as u32).to_le_bytes();
            self.out.write(&[LONG_BINPUT, b[0], b[1], b[2], b[3]])
        } else {
            Err(self
                .refs
                .pickling_error(self.py, "memo id too large for LONG_BINPUT")
                .into())
        }
    }

    /// Fast mode (no memo) cannot detect cycles through the memo; past a
    /// nesting of 50 it tracks the containers it is inside of instead.
    #[inline(always)]
    pub(super) fn fast_enter(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if !self.fast {
            return Ok(());
        }
        self.fast_enter_counted(obj)
    }

    fn fast_enter_counted(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        self.fast_nesting += 1;
        if self.fast_nesting >= FAST_NESTING_LIMIT && !self.fast_memo.insert(obj.as_ptr() as usize)
        {
            return Err(PyValueError::new_err(format!(
                "fast mode: can't pickle cyclic objects including object type {} at {:p}",
                obj.get_type().name()?,
                obj.as_ptr()
            ))
            .into());
        }
        Ok(())
    }

    #[inline(always)]
    pub(super) fn fast_leave(&mut self, obj: &Bound<'py, PyAny>) {
        if !self.fast {
            return;
        }
        if self.fast_nesting >= FAST_NESTING_LIMIT {
            self.fast_memo.remove(&(obj.as_ptr() as usize));
        }
        self.fast_nesting = self.fast_nesting.saturating_sub(1);
    }
}
