//! Building Python objects from opcode arguments: numbers and strings,
//! globals (`find_class`), and the object protocol (REDUCE, NEWOBJ, BUILD,
//! OBJ/INST), following CPython's C unpickler.

use std::ffi::{c_char, c_int, CString};
use std::ptr;

use pyo3::exceptions::{PyAttributeError, PyTypeError, PyUnicodeDecodeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString, PyTuple, PyType};

use super::errors::{data, Class, Fail};
use crate::attrs;
use crate::fresh_memory;

unsafe extern "C" {
    // Not in pyo3-ffi; part of the stable C API since 3.8.
    fn PySys_Audit(event: *const c_char, format: *const c_char, ...) -> c_int;
}

/// Python objects the reader needs again and again, looked up once.
pub struct Refs {
    name_mapping_2to3: Py<PyDict>,
    import_mapping_2to3: Py<PyDict>,
    inverted_registry: Py<PyDict>,
    extension_cache: Py<PyDict>,
}

static REFS: PyOnceLock<Refs> = PyOnceLock::new();

impl Refs {
    pub fn get(py: Python<'_>) -> PyResult<&Refs> {
        REFS.get_or_try_init(py, || {
            let compat = py.import("_compat_pickle")?;
            let copyreg = py.import("copyreg")?;
            let dict = |m: &Bound<'_, PyModule>, name: &str| -> PyResult<Py<PyDict>> {
                Ok(m.getattr(name)?.cast_into::<PyDict>()?.unbind())
            };
            Ok(Refs {
                name_mapping_2to3: dict(&compat, "NAME_MAPPING")?,
                import_mapping_2to3: dict(&compat, "IMPORT_MAPPING")?,
                inverted_registry: dict(&copyreg, "_inverted_registry")?,
                extension_cache: dict(&copyreg, "_extension_cache")?,
            })
        })
    }
}

/// Take ownership of a new reference returned by the C API.
pub(super) fn owned<'py>(py: Python<'py>, ptr: *mut ffi::PyObject) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `ptr` is a new reference (or NULL with an exception set) from a
    // C API call made with the GIL held.
    unsafe { Bound::from_owned_ptr_or_err(py, ptr) }
}

#[inline]
pub fn int<'py>(py: Python<'py>, v: i64) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: plain C API call with the GIL held.
    owned(py, unsafe { ffi::PyLong_FromLongLong(v) })
}

#[inline]
pub fn float<'py>(py: Python<'py>, v: f64) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: plain C API call with the GIL held.
    owned(py, unsafe { ffi::PyFloat_FromDouble(v) })
}

/// A bytes object holding a copy of `data`. A big one is made empty,
/// advised for huge pages, then filled (see `fresh_memory`): the copy into
/// fresh memory is where a big payload's load spends its time.
#[inline]
pub fn bytes<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if data.len() < fresh_memory::HUGE_PAGE_THRESHOLD {
        return Ok(PyBytes::new(py, data).into_any());
    }
    // SAFETY: C API calls with the GIL held; a bytes object made from NULL
    // has `len` writable bytes, all of which are written before any Python
    // code can see the object.
    unsafe {
        let obj = owned(
            py,
            ffi::PyBytes_FromStringAndSize(ptr::null(), data.len() as isize),
        )?;
        fill_fresh(ffi::PyBytes_AsString(obj.as_ptr()).cast(), data);
        Ok(obj)
    }
}

/// A bytearray holding a copy of `data`, made as `bytes` makes a big one.
#[inline]
pub fn bytearray<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if data.len() < fresh_memory::HUGE_PAGE_THRESHOLD {
        return Ok(PyByteArray::new(py, data).into_any());
    }
    // SAFETY: the copy writes every byte before the bytearray is returned;
    // the new allocation cannot overlap `data`.
    unsafe {
        let obj = unwritten_bytearray(py, data.len())?;
        let dst = ffi::PyByteArray_AsString(obj.as_ptr()).cast::<u8>();
        ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
        Ok(obj.into_any())
    }
}

/// A bytearray of `len` bytes that are not written yet, advised for huge
/// pages when big (see `fresh_memory`).
///
/// # Safety
/// Every byte must be written before the bytearray is read, by Rust or by
/// Python code it is handed to (other than code given it to fill it).
pub(super) unsafe fn unwritten_bytearray(
    py: Python<'_>,
    len: usize,
) -> PyResult<Bound<'_, PyByteArray>> {
    // SAFETY: a bytearray made from NULL has `len` writable bytes; the
    // caller writes them before they are read.
    let obj = unsafe {
        owned(
            py,
            ffi::PyByteArray_FromStringAndSize(ptr::null(), len as isize),
        )?
        .cast_into_unchecked::<PyByteArray>()
    };
    advise_bytearray(&obj);
    Ok(obj)
}

/// Advise a bytearray's buffer for huge pages, as a fresh or just grown one.
pub(super) fn advise_bytearray(obj: &Bound<'_, PyByteArray>) {
    // SAFETY: the data pointer and length of a live bytearray.
    let data = unsafe { ffi::PyByteArray_AsString(obj.as_ptr()) }.cast::<u8>();
    fresh_memory::advise_huge_pages(data, obj.len());
}

/// Copy `data` into the fresh, unwritten buffer at `dst`.
///
/// # Safety
/// `dst` must be valid for `data.len()` bytes of writes and not overlap `data`.
unsafe fn fill_fresh(dst: *mut u8, data: &[u8]) {
    fresh_memory::advise_huge_pages(dst, data.len());
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
}

/// INT/LONG text that is not a plain i64: `int(text, 0)`, as CPython does.
pub fn int_from_text<'py>(py: Python<'py>, text: &[u8]) -> Result<Bound<'py, PyAny>, Fail> {
    let Ok(c) = CString::new(text) else {
        return data(Class::Value, "invalid literal for int(): embedded NUL");
    };
    let mut end: *mut c_char = std::ptr::null_mut();
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let r = owned(py, unsafe {
        ffi::PyLong_FromString(c.as_ptr(), &mut end, 0)
    });
    r.map_err(|e| {
        if e.is_instance_of::<PyValueError>(py) {
            Fail::Data(Class::Value, e.value(py).to_string())
        } else {
            Fail::Py(e)
        }
    })
}

/// LONG1/LONG4: a two's-complement little-endian integer.
pub fn int_from_le_bytes<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if bytes.len() <= 8 {
        let Some(&last) = bytes.last() else {
            return int(py, 0);
        };
        let mut buf = if last & 0x80 != 0 {
            [0xffu8; 8]
        } else {
            [0u8; 8]
        };
        buf[..bytes.len()].copy_from_slice(bytes);
        return int(py, i64::from_le_bytes(buf));
    }
    let from_bytes = py
        .get_type::<pyo3::types::PyInt>()
        .getattr(intern!(py, "from_bytes"))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "signed"), true)?;
    from_bytes.call(
        (PyBytes::new(py, bytes), intern!(py, "little")),
        Some(&kwargs),
    )
}

/// BINUNICODE and friends: UTF-8 with lone surrogates allowed.
#[inline]
pub fn utf8_str<'py>(py: Python<'py>, bytes: &[u8]) -> Result<Bound<'py, PyAny>, Fail> {
    if bytes.is_ascii() {
        return Ok(ascii_to_str(py, bytes)?);
    }
    // SAFETY: the pointer and length describe `bytes`, alive for the call.
    let ptr = unsafe {
        ffi::PyUnicode_DecodeUTF8(
            bytes.as_ptr().cast(),
            bytes.len() as ffi::Py_ssize_t,
            c"surrogatepass".as_ptr(),
        )
    };
    owned(py, ptr).map_err(Fail::Decode)
}

/// A str from bytes already known to be ASCII: one allocation and a copy,
/// without going through the UTF-8 decoder. The empty and one-character
/// strings are CPython's shared ones, as its decoders return them: no
/// allocation at all (keys like "a" or "x" are common in records).
#[inline]
pub fn ascii_to_str<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if bytes.len() <= 1 {
        // SAFETY: the pointer and length describe `bytes`; for these lengths
        // CPython returns a new reference to its cached string.
        return owned(py, unsafe {
            ffi::PyUnicode_FromStringAndSize(bytes.as_ptr().cast(), bytes.len() as ffi::Py_ssize_t)
        });
    }
    // SAFETY: PyUnicode_New(n, 127) returns a compact ASCII str with room for
    // n bytes (plus the NUL it already wrote); we fill exactly those n bytes
    // before anyone else can see the object.
    unsafe {
        let s = owned(py, ffi::PyUnicode_New(bytes.len() as ffi::Py_ssize_t, 127))?;
        let data = ffi::PyUnicode_1BYTE_DATA(s.as_ptr());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        Ok(s)
    }
}

/// Text that must be ASCII (PERSID).
pub fn ascii_str<'py>(py: Python<'py>, bytes: &[u8]) -> Result<Bound<'py, PyAny>, Fail> {
    // SAFETY: the pointer and length describe `bytes`, alive for the call.
    let ptr = unsafe {
        ffi::PyUnicode_DecodeASCII(
            bytes.as_ptr().cast(),
            bytes.len() as ffi::Py_ssize_t,
            c"strict".as_ptr(),
        )
    };
    owned(py, ptr).map_err(Fail::Decode)
}

/// UNICODE (protocol 0): raw-unicode-escape text.
pub fn raw_unicode<'py>(py: Python<'py>, text: &[u8]) -> Result<Bound<'py, PyAny>, Fail> {
    match anypickle_parser::text::decode_raw_unicode_escape(text) {
        Ok(points) => {
            // SAFETY: `points` holds `len` UCS4 code points (all <= 0x10FFFF).
            let ptr = unsafe {
                ffi::PyUnicode_FromKindAndData(
                    4,
                    points.as_ptr().cast(),
                    points.len() as ffi::Py_ssize_t,
                )
            };
            Ok(owned(py, ptr)?)
        }
        Err(reason) => {
            let args = (
                "rawunicodeescape",
                PyBytes::new(py, text),
                0,
                text.len(),
                reason,
            );
            Err(Fail::Decode(PyErr::from_value(
                py.get_type::<PyUnicodeDecodeError>().call1(args)?,
            )))
        }
    }
}

/// How Python 2 `str` objects (STRING, BINSTRING, SHORT_BINSTRING) load:
/// as bytes (`encoding="bytes"`) or decoded with `encoding`/`errors`.
pub struct Py2Strings<'a> {
    encoding: &'a str,
    errors: &'a str,
    /// NUL-terminated copies for the C API, made at the first Python 2 string
    /// (most pickles have none, and a call should not pay for them).
    c_names: std::cell::OnceCell<(CString, CString)>,
}

impl Default for Py2Strings<'_> {
    /// The stdlib's default: decode with ASCII, strictly.
    fn default() -> Self {
        Py2Strings {
            encoding: "ASCII",
            errors: "strict",
            c_names: std::cell::OnceCell::new(),
        }
    }
}

impl<'a> Py2Strings<'a> {
    pub fn new(encoding: &'a str, errors: &'a str) -> PyResult<Self> {
        if encoding.as_bytes().contains(&0) || errors.as_bytes().contains(&0) {
            return Err(PyValueError::new_err("embedded null character"));
        }
        Ok(Py2Strings {
            encoding,
            errors,
            c_names: std::cell::OnceCell::new(),
        })
    }

    pub fn load<'py>(&self, py: Python<'py>, bytes: &[u8]) -> Result<Bound<'py, PyAny>, Fail> {
        if self.encoding == "bytes" {
            return Ok(PyBytes::new(py, bytes).into_any());
        }
        let (encoding, errors) = self.c_names.get_or_init(|| {
            // Checked in `new`: neither contains a NUL.
            let c = |s: &str| CString::new(s).unwrap_or_default();
            (c(self.encoding), c(self.errors))
        });
        // SAFETY: pointer/length describe `bytes`; the C strings are NUL-terminated.
        let ptr = unsafe {
            ffi::PyUnicode_Decode(
                bytes.as_ptr().cast(),
                bytes.len() as ffi::Py_ssize_t,
                encoding.as_ptr(),
                errors.as_ptr(),
            )
        };
        owned(py, ptr).map_err(Fail::Decode)
    }
}

fn audit_find_class(module: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>) -> PyResult<()> {
    // SAFETY: "OO" takes two borrowed object pointers, alive for the call.
    let rc = unsafe {
        PySys_Audit(
            c"pickle.find_class".as_ptr(),
            c"OO".as_ptr(),
            module.as_ptr(),
            name.as_ptr(),
        )
    };
    if rc < 0 {
        Err(PyErr::fetch(module.py()))
    } else {
        Ok(())
    }
}

/// Map a Python 2 (module, name) to its Python 3 home, as `_compat_pickle` says.
fn fix_import<'py>(
    module: Bound<'py, PyAny>,
    name: Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let py = module.py();
    let refs = Refs::get(py)?;
    let key = PyTuple::new(py, [&module, &name])?;
    if let Some(item) = refs.name_mapping_2to3.bind(py).get_item(&key)? {
        let pair = item.cast::<PyTuple>().ok().filter(|t| t.len() == 2);
        let Some(pair) = pair else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "_compat_pickle.NAME_MAPPING values should be 2-tuples, not {}",
                item.get_type().name()?
            )));
        };
        return Ok((pair.get_item(0)?, pair.get_item(1)?));
    }
    if let Some(item) = refs.import_mapping_2to3.bind(py).get_item(&module)? {
        return Ok((item, name));
    }
    Ok((module, name))
}

/// The stdlib's `Unpickler.find_class`: audit, map Python 2 names below
/// protocol 3, import, then a plain attribute (protocol < 4) or a dotted
/// path that may not go through `<locals>` (protocol 4+).
pub fn find_class<'py>(
    proto: u8,
    fix_imports: bool,
    module: Bound<'py, PyAny>,
    name: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    audit_find_class(&module, &name)?;
    let (module, name) = if proto < 3 && fix_imports {
        fix_import(module, name)?
    } else {
        (module, name)
    };
    let py = name.py();
    let name_str = name.cast::<PyString>()?;
    // Protocol 4+: the parts of a dotted path (None for a single name).
    let parts: Option<Vec<Bound<'py, PyString>>> = if proto < 4 {
        None
    } else {
        match name_str.to_str() {
            Ok(text) if !text.contains('.') => (text == "<locals>").then(|| vec![name_str.clone()]),
            Ok(text) => Some(text.split('.').map(|p| PyString::new(py, p)).collect()),
            // Not valid UTF-8 (a lone surrogate): split as Python does.
            Err(_) => Some(
                name_str
                    .call_method1(intern!(py, "split"), (".",))?
                    .extract()?,
            ),
        }
    };
    if let Some(parts) = &parts {
        if parts
            .iter()
            .any(|p| p.to_str().is_ok_and(|t| t == "<locals>"))
        {
            let m = crate::imports::import_module(&module)?;
            return Err(PyAttributeError::new_err(format!(
                "Can't get local attribute {} on {}",
                name.repr()?,
                m.repr()?
            )));
        }
    }
    // The attribute, or None when it is missing.
    let lookup = |m: &Bound<'py, PyAny>| -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some((first, rest)) = parts.as_deref().and_then(<[_]>::split_first) else {
            return module_attr(m, name_str);
        };
        let Some(mut obj) = module_attr(m, first)? else {
            return Ok(None);
        };
        for part in rest {
            match obj.getattr_opt(part)? {
                Some(next) => obj = next,
                None => return Ok(None),
            }
        }
        Ok(Some(obj))
    };
    let m = crate::imports::import_module(&module)?;
    if let Some(found) = lookup(&m)? {
        return Ok(found);
    }
    // Perhaps still being imported by another thread: wait for it, look again.
    let m = crate::imports::import_module_fully(&module)?;
    lookup(&m)?.ok_or_else(|| cant_get(&name, &m))
}

/// `getattr(module, name)`, or None when it is missing.
///
/// For a plain module (exactly `ModuleType`) and a name that is not a dunder,
/// straight from the module's dict: the generic getattr would first look the
/// name up along `ModuleType`'s MRO, whose dicts hold only dunder names and
/// cannot change, and the type's attribute cache never helps a name loaded
/// from a pickle (it caches interned names only). A name the dict lacks
/// takes the full getattr (a module `__getattr__` may supply it).
fn module_attr<'py>(
    module: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = module.py();
    // SAFETY: PyModule_Type is a static type object, only compared.
    let plain_module = unsafe {
        ffi::Py_TYPE(module.as_ptr()) == (&raw mut ffi::PyModule_Type).cast::<ffi::PyTypeObject>()
    };
    if plain_module && !starts_with_two_underscores(name) {
        // SAFETY: `module` is a live module object, whose dict
        // PyModule_GetDict returns borrowed (never null for ModuleType);
        // PyDict_GetItemWithError returns a borrowed reference, or null with
        // an exception set only on error.
        let found = unsafe {
            let dict = ffi::PyModule_GetDict(module.as_ptr());
            ffi::PyDict_GetItemWithError(dict, name.as_ptr())
        };
        if !found.is_null() {
            // SAFETY: a borrowed reference from a live dict; a new one is taken.
            return Ok(Some(unsafe { Bound::from_borrowed_ptr(py, found) }));
        }
        if let Some(err) = PyErr::take(py) {
            return Err(err);
        }
    }
    module.getattr_opt(name)
}

/// Whether `name` starts with `__`, read without converting it to UTF-8
/// (which would fail on a lone surrogate, and cache a copy in a non-ASCII str).
fn starts_with_two_underscores(name: &Bound<'_, PyString>) -> bool {
    let p = name.as_ptr();
    // SAFETY: `p` is a live str; both indices are checked against its
    // length first, so PyUnicode_ReadChar cannot fail.
    unsafe {
        ffi::PyUnicode_GET_LENGTH(p) >= 2
            && ffi::PyUnicode_ReadChar(p, 0) == u32::from(b'_')
            && ffi::PyUnicode_ReadChar(p, 1) == u32::from(b'_')
    }
}

fn cant_get(name: &Bound<'_, PyAny>, m: &Bound<'_, PyAny>) -> PyErr {
    let repr = |o: &Bound<'_, PyAny>| o.repr().map(|r| r.to_string()).unwrap_or_default();
    PyAttributeError::new_err(format!("Can't get attribute {} on {}", repr(name), repr(m)))
}

/// EXT1/2/4: the object registered under an extension code (copyreg),
/// cached as CPython caches it.
pub fn extension<'py>(
    py: Python<'py>,
    code: u32,
    find: impl FnOnce(Bound<'py, PyAny>, Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>>,
) -> Result<Bound<'py, PyAny>, Fail> {
    let refs = Refs::get(py)?;
    let key = pyo3::types::PyInt::new(py, code);
    if let Some(obj) = refs.extension_cache.bind(py).get_item(&key)? {
        return Ok(obj);
    }
    let Some(pair) = refs.inverted_registry.bind(py).get_item(&key)? else {
        return data(Class::Value, format!("unregistered extension code {code}"));
    };
    let pair = pair.cast_into::<PyTuple>().ok().filter(|t| t.len() == 2);
    let strings = pair.and_then(|t| {
        let (m, n) = (t.get_item(0).ok()?, t.get_item(1).ok()?);
        (m.is_instance_of::<PyString>() && n.is_instance_of::<PyString>()).then_some((m, n))
    });
    let Some((module, name)) = strings else {
        return data(
            Class::Value,
            format!("_inverted_registry[{code}] isn't a 2-tuple of strings"),
        );
    };
    let obj = find(module, name)?;
    refs.extension_cache.bind(py).set_item(key, &obj)?;
    Ok(obj)
}

pub(super) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// REDUCE: `callable(*args)`.
pub fn reduce<'py>(
    callable: &Bound<'py, PyAny>,
    args: Bound<'py, PyAny>,
) -> Result<Bound<'py, PyAny>, Fail> {
    let Ok(args) = args.cast_into::<PyTuple>() else {
        return data(Class::Type, "REDUCE argument must be a tuple");
    };
    Ok(callable.call1(args)?)
}

/// NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)` through the
/// type's `tp_new` slot, with CPython's checks.
pub fn new_object<'py>(
    op: &str,
    cls: Bound<'py, PyAny>,
    args: Bound<'py, PyAny>,
    kwargs: Option<Bound<'py, PyAny>>,
) -> Result<Bound<'py, PyAny>, Fail> {
    let py = cls.py();
    let Ok(cls) = cls.cast_into::<PyType>() else {
        return data(
            Class::Unpickling,
            format!("{op} class argument must be a type"),
        );
    };
    // SAFETY: `cls` is a type object; reading its tp_new slot is what
    // CPython's own unpickler does.
    let tp_new = unsafe { (*cls.as_type_ptr()).tp_new };
    let Some(tp_new) = tp_new else {
        return data(
            Class::Unpickling,
            format!("{op} class argument '{}' doesn't have __new__", cls.name()?),
        );
    };
    let Ok(args) = args.cast_into::<PyTuple>() else {
        return data(
            Class::Unpickling,
            format!("{op} args argument must be a tuple"),
        );
    };
    let kwargs = match kwargs {
        None => None,
        Some(k) => match k.cast_into::<PyDict>() {
            Ok(d) => Some(d),
            Err(e) => {
                let got = type_name(e.into_inner().as_any());
                return data(
                    Class::Unpickling,
                    format!("{op} kwargs argument must be a dict, not {got}"),
                );
            }
        },
    };
    let kw_ptr = kwargs.as_ref().map_or(std::ptr::null_mut(), |k| k.as_ptr());
    // SAFETY: tp_new of `cls`, called with the type, an args tuple and a
    // kwargs dict or NULL, exactly as type_call would.
    let obj = unsafe { tp_new(cls.as_type_ptr(), args.as_ptr(), kw_ptr) };
    Ok(owned(py, obj)?)
}

/// OBJ / INST: call the class, or `cls.__new__(cls)` when there are no
/// arguments and no `__getinitargs__` (old-style instances).
pub fn instantiate<'py>(
    cls: &Bound<'py, PyAny>,
    args: Bound<'py, PyTuple>,
) -> Result<Bound<'py, PyAny>, Fail> {
    let py = cls.py();
    if args.is_empty()
        && cls.is_instance_of::<PyType>()
        && attrs::lookup(cls, intern!(py, "__getinitargs__"))?.is_none()
    {
        return Ok(cls.call_method1(intern!(py, "__new__"), (cls,))?);
    }
    Ok(cls.call1(args)?)
}

/// READONLY_BUFFER: a read-only view of a writable buffer; read-only
/// buffers stay as they are.
pub fn readonly<'py>(obj: Bound<'py, PyAny>) -> Result<Bound<'py, PyAny>, Fail> {
    let py = obj.py();
    // SAFETY: plain C API call with the GIL held; `obj` is alive.
    let view = match owned(py, unsafe { ffi::PyMemoryView_FromObject(obj.as_ptr()) }) {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<PyTypeError>(py) => {
            return data(
                Class::Type,
                format!("READONLY_BUFFER needs a buffer, not {}", type_name(&obj)),
            );
        }
        Err(e) => return Err(e.into()),
    };
    if view.getattr(intern!(py, "readonly"))?.is_truthy()? {
        return Ok(obj);
    }
    Ok(view.call_method0(intern!(py, "toreadonly"))?)
}
