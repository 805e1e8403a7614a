//! BUILD: giving a new instance its state, as CPython's `load_build` does,
//! with what one load learns about the classes it builds kept in a cache.
//!
//! CPython's unpickler calls `__setstate__(state)` when the instance has
//! one; otherwise it stores the state dict's items in `inst.__dict__` (str
//! keys interned, as attribute names are) and sets the slot state as
//! attributes. Loading many instances of one class asks the same questions
//! of that class again and again (does it have a real instance dict? does
//! this key name a data descriptor?); `BuildCache` answers them from the
//! class's version tag, which CPython changes whenever the class or one of
//! its bases is modified.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::errors::{data, Class, Fail};
use super::objects::owned;
use crate::attrs;

/// BUILD: `__setstate__(state)` if the object has one, otherwise put the
/// state's items in its `__dict__` (string keys interned) and set the slot
/// state as attributes.
pub fn build<'py>(
    inst: &Bound<'py, PyAny>,
    state: Bound<'py, PyAny>,
    cache: &mut BuildCache<'py>,
) -> Result<(), Fail> {
    let py = inst.py();
    if let Some(setstate) = attrs::lookup(inst, intern!(py, "__setstate__"))? {
        setstate.call1((state,))?;
        return Ok(());
    }
    apply_state(inst, state, cache)
}

/// BUILD with a dict state given as the key/value pairs of the SETITEMS
/// that would have filled it (see `Machine::set_items_then_build`; every
/// key is an exact str). The same as filling a fresh dict and calling
/// `build`: a `__setstate__` gets that dict; otherwise each pair is stored
/// in order, and a key given twice ends with its last value at its first
/// place, as in the dict.
pub fn build_from_pairs<'py>(
    inst: &Bound<'py, PyAny>,
    pairs: &[Bound<'py, PyAny>],
    cache: &mut BuildCache<'py>,
) -> Result<(), Fail> {
    let py = inst.py();
    let filled = || -> PyResult<Bound<'py, PyDict>> {
        let state = PyDict::new(py);
        for pair in pairs.chunks_exact(2) {
            state.set_item(&pair[0], &pair[1])?;
        }
        Ok(state)
    };
    if let Some(setstate) = attrs::lookup(inst, intern!(py, "__setstate__"))? {
        setstate.call1((filled()?,))?;
        return Ok(());
    }
    if !cache.has_generic_dict(inst) {
        // `inst.__dict__` may be any mapping, whose `__setitem__` must see
        // what the dict would hold (a repeated key once, with its last value).
        return apply_state(inst, filled()?.into_any(), cache);
    }
    let mut target = DictTarget::generic(inst);
    for pair in pairs.chunks_exact(2) {
        target.set(pair[0].clone(), pair[1].clone(), cache)?;
    }
    Ok(())
}

/// BUILD without a `__setstate__`: a dict state (optionally paired with a
/// dict of slot values) goes into the instance.
fn apply_state<'py>(
    inst: &Bound<'py, PyAny>,
    state: Bound<'py, PyAny>,
    cache: &mut BuildCache<'py>,
) -> Result<(), Fail> {
    let (state, slotstate) = match state.cast::<PyTuple>() {
        Ok(t) if t.len() == 2 => (t.get_item(0)?, Some(t.get_item(1)?)),
        _ => (state, None),
    };
    if !state.is_none() {
        let Ok(state) = state.cast::<PyDict>() else {
            return data(Class::Unpickling, "state is not a dictionary");
        };
        let mut target = DictTarget::new(inst, cache)?;
        for_each_item(state, |key, value| target.set(key, value, cache))?;
    }
    if let Some(slotstate) = slotstate {
        let Ok(slotstate) = slotstate.cast::<PyDict>() else {
            return data(Class::Unpickling, "slot state is not a dictionary");
        };
        for_each_item(slotstate, |key, value| {
            let key = key.cast_into::<PyString>()?;
            // setattr interns the name; the cache remembers the interned copy.
            if key.is_exact_instance_of::<PyString>() {
                let interned = cache.key_slot(key.into_any())?.interned.clone();
                return inst.setattr(interned.cast_into::<PyString>()?, value);
            }
            inst.setattr(key, value)
        })?;
    }
    Ok(())
}

/// What BUILD learnt during one load: the interned copies of the str keys
/// it met, and facts about the class it built last.
///
/// Pickle interns every instance-dict key, as attribute names are. The
/// keys of many instances are usually the same memoized str objects, which
/// are not the interned ones: interning them again costs a lookup in the
/// interpreter's table of interned strings and a string comparison, per key
/// and instance. A small direct-mapped table, by the key object's address,
/// remembers the answer. It holds the key object itself, so its address
/// cannot be reused by another object while it is cached; strings are
/// immutable, so the answer cannot change.
///
/// Facts about a class are kept with the class's version tag and trusted
/// only while the class still has that tag: CPython gives a class a new
/// tag when it or any of its bases changes (`PyType_Modified`), and tags
/// are never reused within an interpreter, so a tag names one state of
/// one class.
#[derive(Default)]
pub struct BuildCache<'py> {
    /// Empty until the first BUILD of a load; then `KEY_SLOTS` slots.
    keys: Vec<Option<KeySlot<'py>>>,
    /// The class of the instance BUILD met last, held so its address
    /// stays its own.
    class: Option<ClassFacts<'py>>,
    /// Keys that interning replaced by another object, with that object
    /// (at most `MAX_INTERNED_ELSEWHERE` of them).
    interned_elsewhere: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
}

struct KeySlot<'py> {
    key: Bound<'py, PyAny>,
    interned: Bound<'py, PyAny>,
    /// A class version tag under which looking the key up on the class
    /// finds nothing the generic setattr would have to treat specially
    /// (see `DictTarget::set`); 0 when none is known.
    plain_under: u32,
}

struct ClassFacts<'py> {
    class: Bound<'py, PyAny>,
    version: u32,
    generic_dict: bool,
}

impl<'py> BuildCache<'py> {
    const KEY_SLOTS: usize = 16;
    const MAX_INTERNED_ELSEWHERE: usize = 256;

    /// The slot for `key` (an exact str), filled with its interned copy.
    fn key_slot(&mut self, key: Bound<'py, PyAny>) -> PyResult<&mut KeySlot<'py>> {
        if self.keys.is_empty() {
            self.keys.resize_with(Self::KEY_SLOTS, || None);
        }
        // Objects are 16-byte aligned: drop the bits that are always zero.
        let slot = (key.as_ptr() as usize >> 4) % Self::KEY_SLOTS;
        let hit = matches!(&self.keys[slot], Some(s) if s.key.is(&key));
        if !hit {
            let py = key.py();
            let mut ptr = key.clone().into_ptr();
            // SAFETY: `ptr` is a new reference to an exact str; interning
            // replaces it with a new reference to the interned copy.
            unsafe { ffi::PyUnicode_InternInPlace(&mut ptr) };
            let interned = owned(py, ptr)?;
            if !interned.is(&key) && self.interned_elsewhere.len() < Self::MAX_INTERNED_ELSEWHERE {
                self.interned_elsewhere
                    .push((key.clone(), interned.clone()));
            }
            self.keys[slot] = Some(KeySlot {
                key,
                interned,
                plain_under: 0,
            });
        }
        Ok(self.keys[slot].as_mut().expect("filled above"))
    }

    /// The keys whose interned copy turned out to be another object, with
    /// that copy (for the string table, see `StrCache::adopt_interned`).
    pub fn interned_elsewhere(&self) -> &[(Bound<'py, PyAny>, Bound<'py, PyAny>)] {
        &self.interned_elsewhere
    }

    /// Whether `inst` has the generic `__setattr__` and a real instance
    /// dict (see `has_generic_dict`), from the cache while its class keeps
    /// the version tag it had when this was worked out.
    fn has_generic_dict(&mut self, inst: &Bound<'py, PyAny>) -> bool {
        let tp = inst.get_type_ptr();
        if let Some(facts) = &self.class {
            if facts.class.as_ptr() == tp.cast() && version_tag(tp) == Some(facts.version) {
                return facts.generic_dict;
            }
        }
        let generic_dict = has_generic_dict(inst);
        // Read after the lookups, which give the class a tag if it had none.
        self.class = version_tag(tp).map(|version| ClassFacts {
            class: inst.get_type().into_any(),
            version,
            generic_dict,
        });
        generic_dict
    }
}

/// The version tag of a class, or `None` when it has no valid one (never
/// looked up, modified since, or the interpreter ran out of tags).
#[inline]
fn version_tag(tp: *mut ffi::PyTypeObject) -> Option<u32> {
    // SAFETY: reads two fields of a live type object with the GIL held.
    let (tag, flags) = unsafe { ((*tp).tp_version_tag, (*tp).tp_flags) };
    // Before 3.13 a modified class loses this flag (3.10 keeps its old tag
    // number until it is looked up again); 3.13 only sets the tag to 0.
    let valid = cfg!(Py_3_13) || flags & ffi::Py_TPFLAGS_VALID_VERSION_TAG != 0;
    (valid && tag != 0).then_some(tag)
}

/// Where BUILD puts the state's items: `inst.__dict__[key] = value`, as
/// CPython does.
///
/// For an instance with the generic `__setattr__` and a `__dict__`, an item
/// whose str key names no data descriptor on the type is stored with the
/// generic setattr instead, which writes to the same dict without making
/// CPython (3.11+) turn the instance's inline attribute values into a real
/// dict object first. The result is the same mapping, in the same order.
struct DictTarget<'a, 'py> {
    inst: &'a Bound<'py, PyAny>,
    generic_setattr: bool,
    dict: Option<Bound<'py, PyAny>>,
}

impl<'a, 'py> DictTarget<'a, 'py> {
    /// Fails like CPython when the instance has no `__dict__`.
    fn new(inst: &'a Bound<'py, PyAny>, cache: &mut BuildCache<'py>) -> PyResult<Self> {
        if cache.has_generic_dict(inst) {
            return Ok(Self::generic(inst));
        }
        let dict = inst.getattr(intern!(inst.py(), "__dict__"))?;
        Ok(DictTarget {
            inst,
            generic_setattr: false,
            dict: Some(dict),
        })
    }

    /// For an instance `has_generic_dict` already approved.
    fn generic(inst: &'a Bound<'py, PyAny>) -> Self {
        DictTarget {
            inst,
            generic_setattr: true,
            dict: None,
        }
    }

    /// Store one item; a str key is interned first.
    fn set(
        &mut self,
        key: Bound<'py, PyAny>,
        value: Bound<'py, PyAny>,
        cache: &mut BuildCache<'py>,
    ) -> PyResult<()> {
        if !key.is_exact_instance_of::<PyString>() {
            return self.dict_set(key, value);
        }
        let slot = cache.key_slot(key)?;
        let key = slot.interned.clone();
        if self.generic_setattr {
            // The version is read for every item: storing the one before
            // may have dropped an old value, whose finalizer can change the
            // class.
            let tp = self.inst.get_type_ptr();
            let version = version_tag(tp);
            let plain = if version.is_some() && version == Some(slot.plain_under) {
                true
            } else {
                let (plain, lasting) = classify_on_type(tp, &key);
                if plain && lasting {
                    slot.plain_under = version_tag(tp).unwrap_or(0);
                }
                plain
            };
            if plain {
                // SAFETY: generic setattr on a live instance with an exact
                // str name and a value, all alive for the call.
                let rc = unsafe {
                    ffi::PyObject_GenericSetAttr(self.inst.as_ptr(), key.as_ptr(), value.as_ptr())
                };
                if rc < 0 {
                    return Err(PyErr::fetch(self.inst.py()));
                }
                return Ok(());
            }
        }
        self.dict_set(key, value)
    }

    fn dict_set(&mut self, key: Bound<'py, PyAny>, value: Bound<'py, PyAny>) -> PyResult<()> {
        let dict = match &self.dict {
            Some(d) => d,
            None => self
                .dict
                .insert(self.inst.getattr(intern!(self.inst.py(), "__dict__"))?),
        };
        dict.set_item(key, value)
    }
}

/// Whether the generic setattr may store `name` straight into an instance
/// of `tp` (what it finds on the class, if anything, is not a data
/// descriptor), and whether that answer lasts as long as the class's
/// version tag: it does when nothing is found, or when what is found has
/// an immutable type (a data descriptor's `__set__` cannot be added to it
/// later without the class itself changing) and is not a module (whose
/// `__class__` may be set to a subclass).
fn classify_on_type(tp: *mut ffi::PyTypeObject, name: &Bound<'_, PyAny>) -> (bool, bool) {
    // SAFETY: `name` is an exact str (checked by the caller).
    let name = unsafe { name.cast_unchecked::<PyString>() };
    // SAFETY: `tp` is the live type of an instance; the borrowed result is
    // only read (its type's slots and flags) before any Python code runs.
    unsafe {
        match attrs::type_lookup(tp, name) {
            None => (true, true),
            Some(found) => {
                let found_type = ffi::Py_TYPE(found);
                let plain = (*found_type).tp_descr_set.is_none();
                // A module's class can be reassigned (to a ModuleType
                // subclass with `__set__`) although ModuleType is immutable.
                let lasting = (*found_type).tp_flags & ffi::Py_TPFLAGS_IMMUTABLETYPE != 0
                    && ffi::PyModule_Check(found) == 0;
                (plain, lasting)
            }
        }
    }
}

/// Whether `inst` has the generic `__setattr__` and `__getattribute__`
/// (no `__getattr__` either) and a real instance dict (the `__dict__`
/// found on its type is the builtin descriptor, not a property). Reads type
/// slots only; runs no Python code.
fn has_generic_dict(inst: &Bound<'_, PyAny>) -> bool {
    let py = inst.py();
    let tp = inst.get_type_ptr();
    // SAFETY: reads two slots of the instance's (live) type object, and the
    // type of the borrowed `__dict__` descriptor found on it.
    unsafe {
        (*tp).tp_dictoffset != 0
            && (*tp).tp_setattro.is_some_and(|f| {
                std::ptr::fn_addr_eq(f, ffi::PyObject_GenericSetAttr as ffi::setattrofunc)
            })
            // pickle reads `inst.__dict__` through `__getattribute__`.
            && (*tp).tp_getattro.is_some_and(|f| {
                std::ptr::fn_addr_eq(f, ffi::PyObject_GenericGetAttr as ffi::getattrofunc)
            })
            && attrs::type_lookup(tp, intern!(py, "__dict__"))
                .is_some_and(|d| ffi::Py_TYPE(d) == std::ptr::addr_of_mut!(ffi::PyGetSetDescr_Type))
    }
}

/// Visit a dict's items with strong references, tolerating mutation by the
/// callback (no panic, no dangling pointer; like CPython's PyDict_Next loop).
fn for_each_item<'py>(
    dict: &Bound<'py, PyDict>,
    mut f: impl FnMut(Bound<'py, PyAny>, Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    let py = dict.py();
    let mut pos: ffi::Py_ssize_t = 0;
    loop {
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: PyDict_Next is bounds-checked against the dict's current
        // size; the borrowed key/value are turned into strong references
        // before any Python code can run.
        let (key, value) = unsafe {
            if ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut key, &mut value) == 0 {
                return Ok(());
            }
            (
                Bound::from_borrowed_ptr(py, key),
                Bound::from_borrowed_ptr(py, value),
            )
        };
        f(key, value)?;
    }
}
