//! Encoders for atoms and byte-like payloads: bool, int, float, str, bytes,
//! bytearray and PickleBuffer — each exactly as CPython's `_pickle.c` writes it.

use super::write_error::Written;
use std::ffi::c_long;

use pyo3::exceptions::PyOverflowError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyBytes, PyString, PyTuple};

use super::output::FRAME_SIZE_TARGET;
use super::writer::Writer;
use crate::opcodes::*;

extern "C" {
    /// Public C API since Python 3.8 (not wrapped by pyo3-ffi).
    fn PyPickleBuffer_GetBuffer(obj: *mut ffi::PyObject) -> *const ffi::Py_buffer;
}

/// Where the bytes of a large payload come from when it bypasses the buffer
/// and goes straight to the file.
enum Payload<'a, 'py> {
    /// An object the file's `write` can take as it is (bytes, bytearray,
    /// PickleBuffer).
    Object(&'a Bound<'py, PyAny>),
    /// Only raw bytes: a bytes object is made for `write`.
    Copy,
}

impl<'py> Writer<'py, '_> {
    pub(super) fn save_bool(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        // SAFETY: comparing with the interpreter's singleton, no dereference.
        let is_true = obj.as_ptr() == unsafe { ffi::Py_True() };
        if self.proto >= 2 {
            self.out.byte(if is_true { NEWTRUE } else { NEWFALSE })
        } else {
            self.out.write(if is_true { b"I01\n" } else { b"I00\n" })
        }
    }

    #[inline]
    pub(super) fn save_long(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        let mut overflow = 0;
        // SAFETY: `obj` is an exact int; the GIL is held.
        let val: c_long = unsafe { ffi::PyLong_AsLongAndOverflow(obj.as_ptr(), &mut overflow) };
        if overflow == 0 {
            if let Ok(v) = i32::try_from(val) {
                return self.save_int32(v);
            }
        }
        if self.proto >= 2 {
            let bytes = if overflow == 0 {
                long_le_bytes(val as i64)
            } else {
                self.big_long_le_bytes(obj)?
            };
            if bytes.len() < 256 {
                self.out.write(&[LONG1, bytes.len() as u8])?;
            } else {
                let n = u32::try_from(bytes.len())
                    .map_err(|_| PyOverflowError::new_err("int too large to pickle"))?;
                let n = n.to_le_bytes();
                self.out.write(&[LONG4, n[0], n[1], n[2], n[3]])?;
            }
            self.out.write(&bytes)
        } else {
            // Protocols 0 and 1: the repr with Python 2's trailing 'L'.
            let repr = obj.repr()?;
            self.out.byte(LONG)?;
            self.out.write(repr.to_str()?.as_bytes())?;
            self.out.write(b"L\n")
        }
    }

    #[inline]
    fn save_int32(&mut self, v: i32) -> Written {
        if !self.bin {
            return self.out.write(format!("I{v}\n").as_bytes());
        }
        let b = v.to_le_bytes();
        if b[2] != 0 || b[3] != 0 {
            self.out.write(&[BININT, b[0], b[1], b[2], b[3]])
        } else if b[1] != 0 {
            self.out.write(&[BININT2, b[0], b[1]])
        } else {
            self.out.write(&[BININT1, b[0]])
        }
    }

    /// Minimal little-endian two's complement of an int beyond 64 bits.
    #[cold]
    fn big_long_le_bytes(&self, obj: &Bound<'py, PyAny>) -> PyResult<Vec<u8>> {
        let py = self.py;
        let nbits: usize = obj.call_method0(intern!(py, "bit_length"))?.extract()?;
        let nbytes = (nbits >> 3) + 1;
        if nbytes > 0x7fff_ffff {
            return Err(PyOverflowError::new_err("int too large to pickle"));
        }
        let kwargs = [(intern!(py, "signed"), true)].into_py_dict(py)?;
        let raw = obj.call_method(
            intern!(py, "to_bytes"),
            (nbytes, intern!(py, "little")),
            Some(&kwargs),
        )?;
        let mut bytes = raw.cast::<PyBytes>()?.as_bytes().to_vec();
        trim_sign_byte(&mut bytes);
        Ok(bytes)
    }

    #[inline]
    pub(super) fn save_float(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        if self.bin {
            // SAFETY: `obj` is an exact float.
            let x = unsafe { ffi::PyFloat_AS_DOUBLE(obj.as_ptr()) };
            let b = x.to_be_bytes();
            self.out
                .write(&[BINFLOAT, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        } else {
            // float.__repr__ is CPython's 'r' format with ".0" added.
            let repr = obj.repr()?;
            self.out.byte(FLOAT)?;
            self.out.write(repr.to_str()?.as_bytes())?;
            self.out.byte(b'\n')
        }
    }

    pub(super) fn save_bytes(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        let py = self.py;
        if self.proto < 3 {
            // No bytes opcode: reduce to codecs.encode(latin-1 text, "latin1")
            // (or bytes() when empty), readable by Python 2 as well.
            // SAFETY: `obj` is an exact bytes object.
            let bytes = unsafe { obj.cast_unchecked::<PyBytes>() };
            let rv = if bytes.as_bytes().is_empty() {
                PyTuple::new(
                    py,
                    [
                        py.get_type::<PyBytes>().into_any(),
                        PyTuple::empty(py).into_any(),
                    ],
                )?
            } else {
                let text = latin1_decode(py, bytes.as_bytes())?;
                let args = PyTuple::new(
                    py,
                    [
                        text.into_any(),
                        self.refs.latin1.bind(py).clone().into_any(),
                    ],
                )?;
                PyTuple::new(
                    py,
                    [self.refs.codecs_encode.bind(py).clone(), args.into_any()],
                )?
            };
            return self.save_reduce(&rv, Some(obj));
        }
        // SAFETY: `obj` is an exact bytes object.
        let data = unsafe { obj.cast_unchecked::<PyBytes>() }.as_bytes();
        self.save_bytes_data(obj, data)
    }

    /// SHORT_BINBYTES / BINBYTES / BINBYTES8 + payload, then memoize `obj`.
    fn save_bytes_data(&mut self, obj: &Bound<'py, PyAny>, data: &[u8]) -> Written {
        let size = data.len();
        let mut header = [0u8; 9];
        let header_len = if size <= 0xff {
            header[0] = SHORT_BINBYTES;
            header[1] = size as u8;
            2
        } else if size <= 0xffff_ffff {
            header[0] = BINBYTES;
            header[1..5].copy_from_slice(&(size as u32).to_le_bytes());
            5
        } else if self.proto >= 4 {
            header[0] = BINBYTES8;
            header[1..9].copy_from_slice(&(size as u64).to_le_bytes());
            9
        } else {
            return Err(PyOverflowError::new_err(
                "serializing a bytes object larger than 4 GiB requires pickle protocol 4 or higher",
            )
            .into());
        };
        self.write_payload(&header[..header_len], data, Payload::Object(obj))?;
        self.memo_put(obj)
    }

    fn save_bytearray_data(&mut self, obj: &Bound<'py, PyAny>, data: &[u8]) -> Written {
        let mut header = [0u8; 9];
        header[0] = BYTEARRAY8;
        header[1..9].copy_from_slice(&(data.len() as u64).to_le_bytes());
        self.write_payload(&header, data, Payload::Object(obj))?;
        self.memo_put(obj)
    }

    pub(super) fn save_bytearray(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        let py = self.py;
        // SAFETY: `obj` is an exact bytearray; the slice is used before any
        // Python code can run and resize it.
        let data = unsafe {
            let p = ffi::PyByteArray_AsString(obj.as_ptr()) as *const u8;
            let n = ffi::PyByteArray_Size(obj.as_ptr()) as usize;
            if n == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(p, n)
            }
        };
        if self.proto < 5 {
            let bytearray_type = py.get_type::<pyo3::types::PyByteArray>().into_any();
            let args = if data.is_empty() {
                PyTuple::empty(py)
            } else {
                // A fresh object, as CPython's PyBytes_FromObject makes: never
                // the interpreter's cached one-byte bytes, which the memo
                // would then match across different bytearrays.
                let copy = PyBytes::new_with(py, data.len(), |buf| {
                    buf.copy_from_slice(data);
                    Ok(())
                })?;
                PyTuple::new(py, [copy])?
            };
            let rv = PyTuple::new(py, [bytearray_type, args.into_any()])?;
            return self.save_reduce(&rv, Some(obj));
        }
        // Only the file path runs Python code while writing, and it hands
        // the file the bytearray object itself rather than this slice.
        self.save_bytearray_data(obj, data)
    }

    pub(super) fn save_picklebuffer(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        let py = self.py;
        if self.proto < 5 {
            // Python 3.13 fixed the grammar of this message.
            let msg = if self.refs.version >= (3, 13) {
                "PickleBuffer can only be pickled with protocol >= 5"
            } else {
                "PickleBuffer can only pickled with protocol >= 5"
            };
            return Err(self.refs.pickling_error(py, msg).into());
        }
        let (_, _, _, contiguous) = buffer_view(py, obj)?;
        if !contiguous {
            return Err(self
                .refs
                .pickling_error(
                    py,
                    "PickleBuffer can not be pickled when pointing to a non-contiguous buffer",
                )
                .into());
        }
        let in_band = match self.hooks.buffer_callback.clone() {
            Some(callback) => {
                self.before_python_code();
                callback.call1((obj,))?.is_truthy()?
            }
            None => true,
        };
        // Look at the view again: the callback may have released it.
        let (buf, len, readonly, _) = buffer_view(py, obj)?;
        if in_band {
            // SAFETY: the view is live while `obj` is held and not released;
            // no Python code runs before the slice is consumed, except on the
            // file path, which hands the file `obj` itself, not this slice.
            let data = if len == 0 {
                &[][..]
            } else {
                unsafe { std::slice::from_raw_parts(buf, len) }
            };
            if readonly {
                self.save_bytes_data(obj, data)
            } else {
                self.save_bytearray_data(obj, data)
            }
        } else {
            self.out.byte(NEXT_BUFFER)?;
            if readonly {
                self.out.byte(READONLY_BUFFER)?;
            }
            Ok(())
        }
    }

    pub(super) fn save_str(&mut self, obj: &Bound<'py, PyAny>) -> Written {
        // SAFETY: `obj` is an exact str.
        let s = unsafe { obj.cast_unchecked::<PyString>() };
        if self.proto >= 4 {
            if let Some(ascii) = short_ascii(s) {
                self.out.write_short_payload(SHORT_BINUNICODE, ascii)?;
                return self.memo_put(obj);
            }
        }
        if self.bin {
            let text = StrData::of(s);
            let size = text.utf8_len();
            let mut header = [0u8; 9];
            let header_len = if size <= 0xff && self.proto >= 4 {
                header[0] = SHORT_BINUNICODE;
                header[1] = size as u8;
                2
            } else if size <= 0xffff_ffff {
                header[0] = BINUNICODE;
                header[1..5].copy_from_slice(&(size as u32).to_le_bytes());
                5
            } else if self.proto >= 4 {
                header[0] = BINUNICODE8;
                header[1..9].copy_from_slice(&(size as u64).to_le_bytes());
                9
            } else {
                return Err(PyOverflowError::new_err(
                    "serializing a string larger than 4 GiB requires pickle protocol 4 or higher",
                )
                .into());
            };
            if let Some(utf8) = text.existing_utf8() {
                self.write_payload(&header[..header_len], utf8, Payload::Copy)?;
            } else if size >= FRAME_SIZE_TARGET {
                let encoded = text.encode_to_vec(size);
                self.write_payload(&header[..header_len], &encoded, Payload::Copy)?;
            } else {
                self.out.write(&header[..header_len])?;
                self.out.write_with(size, |dst| text.encode_into(dst))?;
            }
        } else {
            let text = StrData::of(s);
            self.out.byte(UNICODE)?;
            self.out.write(&text.raw_unicode_escape())?;
            self.out.byte(b'\n')?;
        }
        self.memo_put(obj)
    }

    /// CPython's `_Pickler_write_bytes`: a payload of 64 KiB or more is written
    /// outside any frame, and straight to the file when there is one.
    fn write_payload(&mut self, header: &[u8], data: &[u8], payload: Payload<'_, 'py>) -> Written {
        if data.len() < FRAME_SIZE_TARGET {
            return self.out.write_header_and_payload(header, data);
        }
        self.out.commit_frame();
        let framing = self.out.framing();
        self.out.set_framing(false);
        self.out.write(header)?;
        if let Some(write) = self.file_write.clone() {
            self.flush_to_file()?; // (enters pending memo entries first)
            match payload {
                Payload::Object(obj) => write.call1((obj,))?,
                Payload::Copy => write.call1((PyBytes::new(self.py, data),))?,
            };
        } else {
            self.out.write(data)?;
        }
        self.out.set_framing(framing);
        Ok(())
    }
}

/// The buffer behind a PickleBuffer: (data, length, readonly, contiguous).
fn buffer_view(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<(*const u8, usize, bool, bool)> {
    // SAFETY: `obj` is a PickleBuffer (exact type checked by the caller);
    // the GIL is held. A null view means a Python error is set.
    let view = unsafe { PyPickleBuffer_GetBuffer(obj.as_ptr()) };
    if view.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a non-null view stays valid while `obj` lives and is not released.
    unsafe {
        let v = &*view;
        let contiguous = v.suboffsets.is_null() && ffi::PyBuffer_IsContiguous(view, b'A' as _) != 0;
        Ok((
            v.buf as *const u8,
            v.len as usize,
            v.readonly != 0,
            contiguous,
        ))
    }
}

/// The minimal little-endian two's complement bytes of `v`, as CPython's
/// `save_long` computes them for LONG1.
fn long_le_bytes(v: i64) -> Vec<u8> {
    let nbits = 64 - v.unsigned_abs().leading_zeros() as usize;
    let nbytes = (nbits >> 3) + 1;
    let mut bytes: Vec<u8> = v.to_le_bytes().to_vec();
    bytes.resize(nbytes, if v < 0 { 0xff } else { 0 });
    trim_sign_byte(&mut bytes);
    bytes
}

/// Drop the top byte of a negative number when it only repeats the sign.
fn trim_sign_byte(bytes: &mut Vec<u8>) {
    let n = bytes.len();
    if n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
        bytes.pop();
    }
}

fn latin1_decode<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the pointer/length pair describes `data`; the GIL is held.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeLatin1(
                data.as_ptr() as *const _,
                data.len() as ffi::Py_ssize_t,
                std::ptr::null(),
            ),
        )
        .map(|o| o.cast_into_unchecked::<PyString>())
    }
}

/// The text of a compact ASCII str of at most 255 characters (the commonest
/// str, written as SHORT_BINUNICODE without `StrData`'s case analysis).
#[inline(always)]
fn short_ascii<'a>(s: &'a Bound<'_, PyString>) -> Option<&'a [u8]> {
    let p = s.as_ptr();
    // SAFETY: `s` is a live str; a compact ASCII str is always ready, and
    // its data is `length` bytes, alive as long as the str.
    unsafe {
        if ffi::PyUnicode_IS_COMPACT_ASCII(p) == 0 {
            return None;
        }
        let n = ffi::PyUnicode_GET_LENGTH(p) as usize;
        if n > 0xff {
            return None;
        }
        Some(std::slice::from_raw_parts(
            ffi::PyUnicode_DATA(p) as *const u8,
            n,
        ))
    }
}

/// A str's code units, read straight from CPython's compact representation
/// (so non-ASCII text is encoded once, without caching a UTF-8 copy in the
/// string as `PyUnicode_AsUTF8AndSize` would).
enum StrData<'a> {
    Ascii(&'a [u8]),
    /// Non-ASCII text whose UTF-8 form is cached in the str object.
    Utf8(&'a [u8]),
    Ucs1(&'a [u8]),
    Ucs2(&'a [u16]),
    Ucs4(&'a [u32]),
}

impl<'a> StrData<'a> {
    fn of(s: &'a Bound<'_, PyString>) -> StrData<'a> {
        let p = s.as_ptr();
        // SAFETY: `s` is a ready (compact or legacy-ready) str that outlives
        // the returned view; kind/data/length describe its code units.
        unsafe {
            #[cfg(not(Py_3_12))]
            {
                ffi::PyUnicode_READY(p);
            }
            let n = ffi::PyUnicode_GET_LENGTH(p) as usize;
            let data = ffi::PyUnicode_DATA(p);
            if n == 0 {
                return StrData::Ascii(&[]);
            }
            if ffi::PyUnicode_IS_ASCII(p) != 0 {
                return StrData::Ascii(std::slice::from_raw_parts(data as *const u8, n));
            }
            // A UTF-8 copy CPython already cached in the string (it never
            // caches one for text with lone surrogates): use it as it is.
            if ffi::PyUnicode_IS_COMPACT(p) != 0 {
                let compact = &*(p as *const ffi::PyCompactUnicodeObject);
                if !compact.utf8.is_null() {
                    return StrData::Utf8(std::slice::from_raw_parts(
                        compact.utf8 as *const u8,
                        compact.utf8_length as usize,
                    ));
                }
            }
            match ffi::PyUnicode_KIND(p) {
                1 => StrData::Ucs1(std::slice::from_raw_parts(data as *const u8, n)),
                2 => StrData::Ucs2(std::slice::from_raw_parts(data as *const u16, n)),
                _ => StrData::Ucs4(std::slice::from_raw_parts(data as *const u32, n)),
            }
        }
    }

    /// The UTF-8 bytes when they already exist (ASCII or cached).
    fn existing_utf8(&self) -> Option<&'a [u8]> {
        match self {
            StrData::Ascii(b) | StrData::Utf8(b) => Some(b),
            _ => None,
        }
    }

    fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            StrData::Ascii(b) | StrData::Ucs1(b) => b.iter().for_each(|&c| f(c as u32)),
            StrData::Utf8(b) => String::from_utf8_lossy(b).chars().for_each(|c| f(c as u32)),
            StrData::Ucs2(u) => u.iter().for_each(|&c| f(c as u32)),
            StrData::Ucs4(u) => u.iter().for_each(|&c| f(c)),
        }
    }

    /// Length in UTF-8 with lone surrogates encoded as themselves
    /// (CPython's "surrogatepass" fallback).
    fn utf8_len(&self) -> usize {
        match self {
            StrData::Ascii(b) | StrData::Utf8(b) => b.len(),
            StrData::Ucs1(b) => b.len() + b.iter().filter(|&&c| c >= 0x80).count(),
            _ => {
                let mut n = 0;
                self.for_each(|c| n += utf8_width(c));
                n
            }
        }
    }

    /// Encode into `dst`, which is exactly `utf8_len()` bytes long.
    fn encode_into(&self, dst: &mut [u8]) {
        let mut i = 0;
        self.for_each(|c| {
            if c < 0x80 {
                dst[i] = c as u8;
                i += 1;
            } else if c < 0x800 {
                dst[i] = 0xc0 | (c >> 6) as u8;
                dst[i + 1] = 0x80 | (c & 0x3f) as u8;
                i += 2;
            } else if c < 0x10000 {
                dst[i] = 0xe0 | (c >> 12) as u8;
                dst[i + 1] = 0x80 | ((c >> 6) & 0x3f) as u8;
                dst[i + 2] = 0x80 | (c & 0x3f) as u8;
                i += 3;
            } else {
                dst[i] = 0xf0 | (c >> 18) as u8;
                dst[i + 1] = 0x80 | ((c >> 12) & 0x3f) as u8;
                dst[i + 2] = 0x80 | ((c >> 6) & 0x3f) as u8;
                dst[i + 3] = 0x80 | (c & 0x3f) as u8;
                i += 4;
            }
        });
    }

    fn encode_to_vec(&self, size: usize) -> Vec<u8> {
        let mut v = vec![0u8; size];
        self.encode_into(&mut v);
        v
    }

    /// Protocol 0 text: raw-unicode-escape that also escapes the characters
    /// the line-based format cannot carry (backslash, \0, \n, \r, \x1a).
    fn raw_unicode_escape(&self) -> Vec<u8> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = Vec::new();
        self.for_each(|c| {
            if c >= 0x10000 {
                out.extend_from_slice(b"\\U");
                for shift in (0..8).rev() {
                    out.push(HEX[((c >> (shift * 4)) & 0xf) as usize]);
                }
            } else if c >= 256 || matches!(c, 0x5c | 0 | 0x0a | 0x0d | 0x1a) {
                out.extend_from_slice(b"\\u");
                for shift in (0..4).rev() {
                    out.push(HEX[((c >> (shift * 4)) & 0xf) as usize]);
                }
            } else {
                out.push(c as u8);
            }
        });
        out
    }
}

#[inline]
fn utf8_width(c: u32) -> usize {
    match c {
        0..=0x7f => 1,
        0x80..=0x7ff => 2,
        0x800..=0xffff => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bytes_match_cpython_layout() {
        assert_eq!(long_le_bytes(0x8000_0000), vec![0, 0, 0, 0x80, 0]);
        assert_eq!(
            long_le_bytes(-0x8000_0001),
            vec![0xff, 0xff, 0xff, 0x7f, 0xff]
        );
        assert_eq!(long_le_bytes(i64::MIN), vec![0, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(
            long_le_bytes(i64::MAX),
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        );
        assert_eq!(long_le_bytes(-(1 << 39)), vec![0, 0, 0, 0, 0x80]);
    }

    #[test]
    fn utf8_widths() {
        assert_eq!(utf8_width(0x7f), 1);
        assert_eq!(utf8_width(0xd800), 3);
        assert_eq!(utf8_width(0x10ffff), 4);
    }
}
