//! The executor: runs parsed ops against a stack, a mark stack and the memo.
//!
//! It never recurses, so nesting depth is bounded only by the input; all
//! its state is flat vectors that drop iteratively. Stack discipline follows
//! CPython's C unpickler: a MARK puts up a fence that pops cannot cross.

use std::cell::Cell;
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use anypickle_parser::{opcodes, Op, Parser, Source};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyIterator, PyList, PySet, PyString, PyTuple};

use super::build;
use super::errors::{data, parse_error, Class, Fail, SourceError};
use super::memo::Memo;
use super::objects::{self, Py2Strings};
use super::str_cache::StrCache;

/// How one load runs: the stdlib's options and the hooks in effect.
pub struct Config<'py, 'a> {
    pub fix_imports: bool,
    pub py2_strings: &'a Py2Strings<'a>,
    pub buffers: Option<Bound<'py, PyIterator>>,
    /// A Python-level `find_class` override; `None` runs the built-in one.
    pub find_class: Option<Bound<'py, PyAny>>,
    pub persistent_load: Option<Bound<'py, PyAny>>,
    /// Where to record each PROTO (an Unpickler object keeps the protocol
    /// for its own `find_class` method).
    pub proto_sink: Option<Arc<AtomicU8>>,
}

pub struct Machine<'py, 'a> {
    py: Python<'py>,
    stack: Vec<Bound<'py, PyAny>>,
    /// Stack lengths at each open MARK.
    marks: Vec<usize>,
    /// Items below this index belong to an enclosing MARK.
    fence: usize,
    proto: u8,
    memo: &'a mut Memo<'py>,
    config: Config<'py, 'a>,
    /// What BUILD learnt about keys and classes (see `BuildCache`).
    build_cache: build::BuildCache<'py>,
    /// Short strings shared with earlier loads (see `StrCache`).
    strs: StrCache,
}

type Step<'py> = Result<Option<Bound<'py, PyAny>>, Fail>;

/// Keep stacks (and the memo's vector) at most this large between calls.
pub(super) const SPARE_CAPACITY: usize = 4096;

/// The stack and the mark stack of a load, emptied.
type SpareStacks = (Vec<*mut ffi::PyObject>, Vec<usize>);

thread_local! {
    /// The stack and mark stack of the last load on this thread, emptied,
    /// so that a small `loads` allocates neither (a nested load finds them
    /// taken and allocates its own). One cell for both: each access to a
    /// thread-local costs a call in a shared library.
    static SPARE_STACKS: Cell<SpareStacks> = const { Cell::new((Vec::new(), Vec::new())) };
}

// The spare stack's allocation is reused for `Bound`s: same size and alignment.
const _: () = assert!(
    std::mem::size_of::<Bound<'static, PyAny>>() == std::mem::size_of::<*mut ffi::PyObject>()
        && std::mem::align_of::<Bound<'static, PyAny>>()
            == std::mem::align_of::<*mut ffi::PyObject>()
);

/// Reuse an empty vector's allocation for another element type of the same layout.
pub(super) fn reuse_allocation<A, B>(v: Vec<A>) -> Vec<B> {
    assert!(v.is_empty() && size_of::<A>() == size_of::<B>() && align_of::<A>() == align_of::<B>());
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: the vector is empty (no value is reinterpreted) and A and B
    // have the same size and alignment, so the allocation has exactly the
    // layout a Vec<B> of this capacity would have allocated.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<B>(), 0, v.capacity()) }
}

impl<'py, 'a> Machine<'py, 'a> {
    pub fn new(py: Python<'py>, memo: &'a mut Memo<'py>, config: Config<'py, 'a>) -> Self {
        let (stack, marks) = SPARE_STACKS.take();
        Machine {
            py,
            stack: reuse_allocation(stack),
            marks,
            fence: 0,
            proto: 0,
            memo,
            config,
            build_cache: build::BuildCache::default(),
            strs: StrCache::default(),
        }
    }

    /// Run ops until STOP and return the object on top of the stack.
    pub fn run<S: Source>(&mut self, parser: &mut Parser<S>) -> PyResult<Bound<'py, PyAny>>
    where
        S::Error: SourceError,
    {
        loop {
            let op = match parser.next_op() {
                Ok(op) => op,
                Err(e) => return Err(parse_error(self.py, e)),
            };
            let set_items = match op {
                Op::SetItems => Some(false),
                Op::SetItem => Some(true),
                _ => None,
            };
            let step = match set_items {
                // (No argument: `op` is not needed, the parser is free.)
                Some(single) => {
                    if parser.peek_opcode() == Some(opcodes::BUILD) {
                        self.set_items_then_build(parser, single)?;
                        continue;
                    }
                    self.exec(if single { Op::SetItem } else { Op::SetItems })
                }
                None => self.exec(op),
            };
            match step {
                Ok(None) => {
                    // At protocol 4+ most objects are followed by a MEMOIZE:
                    // stored here, without a dispatch of its own (an indirect
                    // jump the CPU often mispredicts). An empty stack or a
                    // MARK on top leaves it to `exec`, for its error.
                    if parser.peek_opcode() == Some(opcodes::MEMOIZE)
                        && self.stack.len() > self.fence
                    {
                        if let Err(e) = parser.take_peeked_opcode() {
                            return Err(parse_error(self.py, e));
                        }
                        if let Some(obj) = self.stack.last() {
                            let obj = obj.clone();
                            self.memo.put(self.memo.len() as u64, obj);
                        }
                    }
                }
                Ok(Some(value)) => return Ok(value),
                Err(fail) => {
                    return Err(fail.into_pyerr(self.py, parser.opcode(), parser.op_offset()))
                }
            }
        }
    }

    fn underflow<T>(&self) -> Result<T, Fail> {
        let msg = if self.marks.is_empty() {
            "unpickling stack underflow"
        } else {
            "unexpected MARK found"
        };
        data(Class::Unpickling, msg)
    }

    #[inline(always)]
    fn push(&mut self, obj: Bound<'py, PyAny>) -> Step<'py> {
        self.stack.push(obj);
        Ok(None)
    }

    #[inline(always)]
    fn pop(&mut self) -> Result<Bound<'py, PyAny>, Fail> {
        if self.stack.len() > self.fence {
            if let Some(obj) = self.stack.pop() {
                return Ok(obj);
            }
        }
        self.underflow()
    }

    #[inline(always)]
    fn top(&self) -> Result<&Bound<'py, PyAny>, Fail> {
        match self.stack.last() {
            Some(obj) if self.stack.len() > self.fence => Ok(obj),
            _ => self.underflow(),
        }
    }

    /// Close the innermost MARK and return where it was.
    fn pop_mark(&mut self) -> Result<usize, Fail> {
        let Some(mark) = self.marks.pop() else {
            return data(Class::Unpickling, "could not find MARK");
        };
        self.fence = self.marks.last().copied().unwrap_or(0);
        Ok(mark)
    }

    /// The items from `start` to the top, as a new tuple.
    fn pop_tuple(&mut self, start: usize) -> Result<Bound<'py, PyTuple>, Fail> {
        if start < self.fence || start > self.stack.len() {
            return self.underflow();
        }
        let n = self.stack.len() - start;
        // SAFETY: PyTuple_New(n) gives n empty slots; each is filled exactly
        // once with a reference we own (moved out of the stack).
        unsafe {
            let tuple = ffi::PyTuple_New(n as ffi::Py_ssize_t);
            let tuple = Bound::from_owned_ptr_or_err(self.py, tuple)?;
            for (i, item) in self.stack.drain(start..).enumerate() {
                ffi::PyTuple_SET_ITEM(tuple.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr());
            }
            Ok(tuple.cast_into_unchecked())
        }
    }

    /// The items from `start` to the top, as a new list.
    fn pop_list(&mut self, start: usize) -> Result<Bound<'py, PyList>, Fail> {
        if start < self.fence || start > self.stack.len() {
            return self.underflow();
        }
        let n = self.stack.len() - start;
        // SAFETY: PyList_New(n) gives n empty slots; each is filled exactly
        // once with a reference we own (moved out of the stack).
        unsafe {
            let list = ffi::PyList_New(n as ffi::Py_ssize_t);
            let list = Bound::from_owned_ptr_or_err(self.py, list)?;
            for (i, item) in self.stack.drain(start..).enumerate() {
                ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr());
            }
            Ok(list.cast_into_unchecked())
        }
    }

    fn find_class(
        &self,
        module: Bound<'py, PyAny>,
        name: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match &self.config.find_class {
            Some(hook) => hook.call1((module, name)),
            None => objects::find_class(self.proto, self.config.fix_imports, module, name),
        }
    }

    /// APPEND/APPENDS: the items from `x` go into the list at `x - 1`.
    fn append(&mut self, x: usize) -> Step<'py> {
        let len = self.stack.len();
        if x > len || x <= self.fence {
            return self.underflow();
        }
        if x == len {
            return Ok(None);
        }
        let target = self.stack[x - 1].clone();
        if let Ok(list) = target.cast_exact::<PyList>() {
            let items = self.pop_list(x)?;
            let end = list.len();
            // SAFETY: both are lists; PyList_SetSlice takes its own references.
            let rc = unsafe {
                ffi::PyList_SetSlice(
                    list.as_ptr(),
                    end as ffi::Py_ssize_t,
                    end as ffi::Py_ssize_t,
                    items.as_ptr(),
                )
            };
            if rc < 0 {
                return Err(PyErr::fetch(self.py).into());
            }
        } else if let Some(extend) = target.getattr_opt(intern!(self.py, "extend"))? {
            let items = self.pop_list(x)?;
            extend.call1((items,))?;
        } else {
            let append = target.getattr(intern!(self.py, "append"));
            let result = append.and_then(|append| {
                self.stack[x..]
                    .iter()
                    .try_for_each(|item| append.call1((item,)).map(drop))
            });
            self.stack.truncate(x);
            result?;
        }
        Ok(None)
    }

    /// SETITEM/SETITEMS: key/value pairs from `x` go into the mapping at `x - 1`.
    fn set_items(&mut self, x: usize) -> Step<'py> {
        let len = self.stack.len();
        if x > len || x <= self.fence {
            return self.underflow();
        }
        if x == len {
            return Ok(None);
        }
        if (len - x) % 2 != 0 {
            return data(Class::Unpickling, "odd number of items for SETITEMS");
        }
        // The stack is private to this machine (code run by __hash__ or
        // __setitem__ cannot reach it), so the items are used in place.
        let (below, items) = self.stack.split_at(x);
        let target = &below[x - 1];
        let result = if let Ok(dict) = target.cast_exact::<PyDict>() {
            items
                .chunks_exact(2)
                .try_for_each(|pair| dict.set_item(&pair[0], &pair[1]))
        } else {
            items
                .chunks_exact(2)
                .try_for_each(|pair| target.set_item(&pair[0], &pair[1]))
        };
        self.stack.truncate(x);
        result?;
        Ok(None)
    }

    /// SETITEMS (SETITEM when `single`) with a BUILD next. When the items go into a fresh state
    /// dict that nothing else holds (not memoized: `deterministic=False`
    /// output, or an instance of a class anypickle wrote by value) under
    /// the instance BUILD is for, the pairs are given to BUILD straight from
    /// the stack: the dict is never filled, which saves building and freeing
    /// it per instance. Same result, same calls, in the same order; BUILD's
    /// errors name BUILD. Anything else runs the two opcodes one by one.
    fn set_items_then_build<S: Source>(
        &mut self,
        parser: &mut Parser<S>,
        single: bool,
    ) -> PyResult<()>
    where
        S::Error: SourceError,
    {
        let py = self.py;
        let at_setitems = |fail: Fail| fail.into_pyerr(py, parser.opcode(), parser.op_offset());
        let x = if single {
            match self.stack.len().checked_sub(2) {
                Some(x) => x,
                None => return Err(at_setitems(self.underflow::<()>().unwrap_err())),
            }
        } else {
            self.pop_mark().map_err(at_setitems)?
        };
        if !self.fusable_state(x) {
            return self.set_items(x).map(drop).map_err(at_setitems);
        }
        // Consume the BUILD (a single byte already in memory).
        if let Err(e) = parser.take_peeked_opcode() {
            return Err(parse_error(py, e));
        }
        let inst = self.stack[x - 2].clone();
        let result = build::build_from_pairs(&inst, &self.stack[x..], &mut self.build_cache);
        self.stack.truncate(x - 1);
        result.map_err(|fail| fail.into_pyerr(py, parser.opcode(), parser.op_offset()))
    }

    /// Whether SETITEMS at `x` followed by BUILD can skip the state dict:
    /// BUILD would find an instance and this dict under it, the dict is an
    /// exact, empty dict that only the stack holds, and every key is an
    /// exact str (whose hashing and comparing run no code, so the order of
    /// what runs is unchanged).
    fn fusable_state(&self, x: usize) -> bool {
        let len = self.stack.len();
        if x < 2 || x - 1 <= self.fence || x >= len || (len - x) % 2 != 0 {
            return false;
        }
        let state = &self.stack[x - 1];
        // SAFETY: reads the reference count and size of a live object; the
        // GIL is held.
        let fresh = state.is_exact_instance_of::<PyDict>()
            && unsafe {
                ffi::Py_REFCNT(state.as_ptr()) == 1 && ffi::PyDict_Size(state.as_ptr()) == 0
            };
        fresh
            && self.stack[x..]
                .iter()
                .step_by(2)
                .all(|key| key.is_exact_instance_of::<PyString>())
    }

    /// ADDITEMS: the items from `x` go into the set at `x - 1`.
    fn add_items(&mut self, x: usize) -> Step<'py> {
        let len = self.stack.len();
        if x > len || x <= self.fence {
            return self.underflow();
        }
        if x == len {
            return Ok(None);
        }
        let (below, items) = self.stack.split_at(x);
        let target = &below[x - 1];
        let result = if let Ok(set) = target.cast::<PySet>() {
            items.iter().try_for_each(|item| set.add(item))
        } else {
            target.getattr(intern!(self.py, "add")).and_then(|add| {
                items
                    .iter()
                    .try_for_each(|item| add.call1((item,)).map(drop))
            })
        };
        self.stack.truncate(x);
        result?;
        Ok(None)
    }

    fn persistent_load(&self, pid: Bound<'py, PyAny>) -> Step<'py> {
        let Some(hook) = &self.config.persistent_load else {
            return data(Class::Unpickling, super::api::NO_PERSISTENT_LOAD);
        };
        Ok(Some(hook.call1((pid,))?))
    }

    #[inline(always)]
    fn exec(&mut self, op: Op<'_>) -> Step<'py> {
        let py = self.py;
        match op {
            Op::Int(v) => self.push(objects::int(py, v)?),
            Op::Float(v) => self.push(objects::float(py, v)?),
            Op::Str(bytes) => {
                let text = if self.strs.wants(bytes) {
                    self.strs
                        .get(py, bytes, || objects::ascii_to_str(py, bytes))?
                } else {
                    objects::utf8_str(py, bytes)?
                };
                self.push(text)
            }
            Op::Get(idx) => match self.memo.get(idx) {
                Some(obj) => {
                    let obj = obj.clone();
                    self.push(obj)
                }
                None => data(Class::Key, format!("Memo value not found at index {idx}")),
            },
            Op::Put(idx) => {
                let obj = self.top()?.clone();
                self.memo.put(idx, obj);
                Ok(None)
            }
            Op::Memoize => {
                let obj = self.top()?.clone();
                self.memo.put(self.memo.len() as u64, obj);
                Ok(None)
            }
            Op::Mark => {
                self.marks.push(self.stack.len());
                self.fence = self.stack.len();
                Ok(None)
            }
            Op::EmptyList => self.push(PyList::empty(py).into_any()),
            Op::EmptyDict => self.push(PyDict::new(py).into_any()),
            Op::EmptyTuple => self.push(PyTuple::empty(py).into_any()),
            Op::Appends => {
                let mark = self.pop_mark()?;
                self.append(mark)
            }
            Op::Append => {
                let x = self.stack.len().saturating_sub(1);
                if self.stack.is_empty() {
                    return self.underflow();
                }
                self.append(x)
            }
            Op::SetItems => {
                let mark = self.pop_mark()?;
                self.set_items(mark)
            }
            Op::SetItem => {
                if self.stack.len() < 2 {
                    return self.underflow();
                }
                self.set_items(self.stack.len() - 2)
            }
            Op::Tuple => {
                let mark = self.pop_mark()?;
                let t = self.pop_tuple(mark)?;
                self.push(t.into_any())
            }
            Op::Tuple1 | Op::Tuple2 | Op::Tuple3 => {
                let n = match op {
                    Op::Tuple1 => 1,
                    Op::Tuple2 => 2,
                    _ => 3,
                };
                if self.stack.len() < self.fence + n {
                    return self.underflow();
                }
                let t = self.pop_tuple(self.stack.len() - n)?;
                self.push(t.into_any())
            }
            Op::Bytes(bytes) => self.push(objects::bytes(py, bytes)?),
            Op::None => self.push(py.None().into_bound(py)),
            Op::Bool(b) => self.push(PyBool::new(py, b).to_owned().into_any()),
            Op::Long(bytes) => self.push(objects::int_from_le_bytes(py, bytes)?),
            Op::IntText(text) => self.push(objects::int_from_text(py, text)?),
            Op::ByteArray(bytes) => self.push(objects::bytearray(py, bytes)?),
            Op::RawUnicode(text) => self.push(objects::raw_unicode(py, text)?),
            Op::Py2Str(bytes) => self.push(self.config.py2_strings.load(py, bytes)?),
            Op::Py2StrEscaped(text) => {
                let bytes = match anypickle_parser::text::unescape_bytes(text) {
                    Ok(b) => b,
                    Err(msg) => return data(Class::Value, msg),
                };
                self.push(self.config.py2_strings.load(py, &bytes)?)
            }
            Op::List => {
                let mark = self.pop_mark()?;
                let list = self.pop_list(mark)?;
                self.push(list.into_any())
            }
            Op::Dict => {
                let mark = self.pop_mark()?;
                if (self.stack.len() - mark) % 2 != 0 {
                    return data(Class::Unpickling, "odd number of items for DICT");
                }
                let dict = PyDict::new(py);
                let result = self.stack[mark..]
                    .chunks_exact(2)
                    .try_for_each(|pair| dict.set_item(&pair[0], &pair[1]));
                self.stack.truncate(mark);
                result?;
                self.push(dict.into_any())
            }
            Op::EmptySet => self.push(PySet::empty(py)?.into_any()),
            Op::AddItems => {
                let mark = self.pop_mark()?;
                self.add_items(mark)
            }
            Op::FrozenSet => {
                let mark = self.pop_mark()?;
                let items = self.pop_tuple(mark)?;
                // SAFETY: plain C API call with the GIL held; `items` is alive.
                let set = unsafe { ffi::PyFrozenSet_New(items.as_ptr()) };
                // SAFETY: a new reference or NULL with an exception set.
                let set = unsafe { Bound::from_owned_ptr_or_err(py, set) }?;
                self.push(set)
            }
            Op::Stop => Ok(Some(self.pop()?)),
            Op::Pop => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.pop_mark()?;
                } else {
                    self.pop()?;
                }
                Ok(None)
            }
            Op::PopMark => {
                let mark = self.pop_mark()?;
                self.stack.truncate(mark);
                Ok(None)
            }
            Op::Dup => {
                let top = self.top()?.clone();
                self.push(top)
            }
            Op::Global { module, name } => {
                let module = PyString::new(py, module).into_any();
                let name = PyString::new(py, name).into_any();
                let cls = self.find_class(module, name)?;
                self.push(cls)
            }
            Op::StackGlobal => {
                let name = self.pop()?;
                let module = self.pop()?;
                if !module.is_exact_instance_of::<PyString>()
                    || !name.is_exact_instance_of::<PyString>()
                {
                    return data(Class::Unpickling, "STACK_GLOBAL requires str");
                }
                let cls = self.find_class(module, name)?;
                self.push(cls)
            }
            Op::Inst { module, name } => {
                let module = PyString::new(py, module).into_any();
                let name = PyString::new(py, name).into_any();
                let cls = self.find_class(module, name)?;
                let mark = self.pop_mark()?;
                let args = self.pop_tuple(mark)?;
                self.push(objects::instantiate(&cls, args)?)
            }
            Op::Obj => {
                let mark = self.pop_mark()?;
                if self.stack.len() <= mark {
                    return self.underflow();
                }
                let args = self.pop_tuple(mark + 1)?;
                let cls = self.pop()?;
                self.push(objects::instantiate(&cls, args)?)
            }
            Op::Ext(code) => {
                let obj = objects::extension(py, code, |m, n| self.find_class(m, n))?;
                self.push(obj)
            }
            Op::Reduce => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.push(objects::reduce(&callable, args)?)
            }
            Op::NewObj => {
                let args = self.pop()?;
                let cls = self.pop()?;
                self.push(objects::new_object("NEWOBJ", cls, args, None)?)
            }
            Op::NewObjEx => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                self.push(objects::new_object("NEWOBJ_EX", cls, args, Some(kwargs))?)
            }
            Op::Build => {
                let state = self.pop()?;
                let inst = self.top()?.clone();
                build::build(&inst, state, &mut self.build_cache)?;
                Ok(None)
            }
            Op::PersId(text) => {
                let pid = match objects::ascii_str(py, text) {
                    Ok(pid) => pid,
                    Err(_) => {
                        return data(
                            Class::Unpickling,
                            "persistent IDs in protocol 0 must be ASCII strings",
                        )
                    }
                };
                let obj = self.persistent_load(pid)?;
                self.stack.extend(obj);
                Ok(None)
            }
            Op::BinPersId => {
                let pid = self.pop()?;
                let obj = self.persistent_load(pid)?;
                self.stack.extend(obj);
                Ok(None)
            }
            Op::NextBuffer => {
                let Some(buffers) = self.config.buffers.as_mut() else {
                    return data(
                        Class::Unpickling,
                        "pickle stream refers to out-of-band data but no *buffers* \
                         argument was given",
                    );
                };
                match buffers.next() {
                    Some(buf) => self.push(buf?),
                    None => data(Class::Unpickling, "not enough out-of-band buffers"),
                }
            }
            Op::ReadOnlyBuffer => {
                let obj = self.pop()?;
                self.push(objects::readonly(obj)?)
            }
            Op::Proto(p) => {
                self.proto = p;
                if let Some(sink) = &self.config.proto_sink {
                    sink.store(p, Ordering::Relaxed);
                }
                Ok(None)
            }
            Op::Frame(_) => Ok(None),
        }
    }
}

impl Drop for Machine<'_, '_> {
    fn drop(&mut self) {
        // Keys BUILD found interned under another object: later loads get
        // the interned one from the string table.
        for (key, interned) in self.build_cache.interned_elsewhere() {
            self.strs.adopt_interned(key, interned);
        }
        let mut stack = std::mem::take(&mut self.stack);
        // Dropping the items may run finalizers that load (and take the
        // spares): the stacks go back only once they are empty.
        stack.clear();
        if stack.capacity() > SPARE_CAPACITY {
            stack = Vec::new();
        }
        let mut marks = std::mem::take(&mut self.marks);
        marks.clear();
        if marks.capacity() > SPARE_CAPACITY {
            marks = Vec::new();
        }
        SPARE_STACKS.set((reuse_allocation(stack), marks));
    }
}
