//! Reading a pickle from a Python file object.
//!
//! Like CPython's unpickler it reads exactly what each opcode needs
//! (`read(n)`, `readline()`), and a whole frame at once; when the file has
//! `peek`, it looks ahead without consuming and later reads only the bytes
//! it used. Either way it never consumes bytes past the STOP of the pickle
//! being read, so several pickles in one file load one by one.
//!
//! A length in the stream is a claim: large reads are done in chunks that
//! grow as data actually arrives, so a lying length costs at most the size
//! of the file.
//!
//! A big payload (a `bytes` or `str` of a megabyte or more) still in the
//! file is read, as CPython reads it, with the file's `readinto` when it
//! has one: straight into a bytearray of the payload's own, which the
//! reader then copies into the object it builds, instead of through `read`'s
//! bytes objects and this buffer (two copies more). Its range starts at
//! `LARGE_BASE`, past any offset of the buffer.

use std::ops::Range;

use anypickle_parser::Source;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyNotImplementedError, PyTypeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PySlice};

use super::objects;

/// How much to look ahead with `peek`.
const PREFETCH: usize = 8192 * 16;
/// First chunk of a large read; later chunks double.
const FIRST_CHUNK: usize = 1 << 20;
/// Drop consumed bytes from the buffer once this many have piled up.
const COMPACT_AT: usize = 1 << 16;
/// Payloads this long or longer, not yet in the buffer, are read into a
/// buffer of their own when the file has `readinto`.
const LARGE_TAKE: usize = 1 << 20;
/// Where the ranges of such a payload start (no buffer offset gets there:
/// `LARGE_BASE + n` fits a usize for every `n <= isize::MAX`).
const LARGE_BASE: usize = usize::MAX / 2;

pub struct FileSource<'py> {
    read: Bound<'py, PyAny>,
    readline: Bound<'py, PyAny>,
    peek: Option<Bound<'py, PyAny>>,
    readinto: Option<Bound<'py, PyAny>>,
    /// The big payload of the current opcode, read by `take_large`.
    large: Option<Bound<'py, PyByteArray>>,
    buf: Vec<u8>,
    /// Next unread byte in `buf`.
    pos: usize,
    /// `buf[..file_pos]` has been consumed from the file; the rest of
    /// `buf` came from `peek` and is still in the file.
    file_pos: usize,
    /// Offset in the pickle of `buf[0]`.
    base: u64,
}

impl<'py> FileSource<'py> {
    pub fn new(file: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = file.py();
        let read = file.getattr_opt(intern!(py, "read"))?;
        let readline = file.getattr_opt(intern!(py, "readline"))?;
        let (Some(read), Some(readline)) = (read, readline) else {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "file must have 'read' and 'readline' attributes",
            ));
        };
        Ok(FileSource {
            read,
            readline,
            peek: file.getattr_opt(intern!(py, "peek"))?,
            readinto: file.getattr_opt(intern!(py, "readinto"))?,
            large: None,
            buf: Vec::new(),
            pos: 0,
            file_pos: 0,
            base: 0,
        })
    }

    /// Append what a `read`-like call returned; return how many bytes.
    fn append(&mut self, data: Bound<'py, PyAny>, what: &str) -> PyResult<usize> {
        if let Ok(bytes) = data.cast::<PyBytes>() {
            self.buf.extend_from_slice(bytes.as_bytes());
            return Ok(bytes.as_bytes().len());
        }
        if data.is_none() {
            return Ok(0);
        }
        let buffer = PyBuffer::<u8>::get(&data).map_err(|_| {
            PyTypeError::new_err(format!(
                "a bytes-like object is required, not '{}' (from {what}())",
                objects::type_name(&data)
            ))
        })?;
        let v = buffer.to_vec(data.py())?;
        self.buf.extend_from_slice(&v);
        Ok(v.len())
    }

    /// Consume from the file the bytes used from a `peek`, and forget the
    /// rest of the look-ahead: the file is then exactly at `pos`.
    fn sync(&mut self) -> PyResult<()> {
        if self.pos > self.file_pos {
            let n = self.pos - self.file_pos;
            self.read.call1((n,))?;
            self.file_pos = self.pos;
        }
        if self.file_pos < self.buf.len() {
            self.buf.truncate(self.file_pos);
        }
        Ok(())
    }

    /// Make `n` unread bytes available; false if the file ends first.
    fn ensure(&mut self, n: usize) -> PyResult<bool> {
        if self.buf.len() - self.pos >= n {
            return Ok(true);
        }
        self.sync()?;
        if let Some(peek) = self.peek.clone().filter(|_| n < PREFETCH) {
            let Some(ahead) = self.call_peek(&peek)? else {
                return self.ensure(n);
            };
            self.append(ahead, "peek")?;
            if self.buf.len() - self.pos >= n {
                return Ok(true);
            }
            // Not enough looked ahead (the file is short): read for real.
            self.buf.truncate(self.file_pos);
        }
        let mut chunk = FIRST_CHUNK;
        while self.buf.len() - self.pos < n {
            let want = (n - (self.buf.len() - self.pos)).min(chunk);
            let got = self.append(self.read.call1((want,))?, "read")?;
            self.file_pos = self.buf.len();
            if got == 0 {
                return Ok(false);
            }
            chunk = chunk.saturating_mul(2);
        }
        Ok(true)
    }

    /// `peek(PREFETCH)`; a file whose `peek` raises NotImplementedError is
    /// read without looking ahead from then on (as CPython does).
    fn call_peek(&mut self, peek: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match peek.call1((PREFETCH,)) {
            Ok(ahead) => Ok(Some(ahead)),
            Err(e) if e.is_instance_of::<PyNotImplementedError>(peek.py()) => {
                self.peek = None;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `n` bytes, of which fewer than `n` are buffered, read with
    /// `readinto` into a bytearray of their own that grows (from what is
    /// buffered plus `FIRST_CHUNK`, doubling) as the bytes arrive. The
    /// bytearray is resized only while nothing else holds a view of it: a
    /// file that keeps the memoryview it was given makes the next resize
    /// fail with BufferError instead of writing into freed memory.
    fn take_large(
        &mut self,
        readinto: &Bound<'py, PyAny>,
        n: usize,
    ) -> PyResult<Option<Range<usize>>> {
        let py = readinto.py();
        // Unread buffered bytes are then all consumed from the file.
        self.sync()?;
        let have = self.buf.len() - self.pos;
        let mut cap = n.min(have + FIRST_CHUNK);
        // SAFETY: its first `have` bytes are copied in below, the rest are
        // written by `readinto` (`bytes` reads only the `filled` part).
        let target = unsafe { objects::unwritten_bytearray(py, cap)? };
        // SAFETY: the bytearray has `cap >= have` bytes and is ours alone.
        unsafe {
            let dst = ffi::PyByteArray_AsString(target.as_ptr()).cast::<u8>();
            std::ptr::copy_nonoverlapping(self.buf.as_ptr().add(self.pos), dst, have);
        }
        self.pos = self.buf.len();
        let mut filled = have;
        while filled < n {
            if filled == cap {
                cap = n.min(cap.saturating_mul(2));
                target.resize(cap)?;
                objects::advise_bytearray(&target);
            }
            let view = pyo3::types::PyMemoryView::from(target.as_any())?.get_item(PySlice::new(
                py,
                filled as isize,
                cap as isize,
                1,
            ))?;
            let got = readinto.call1((&view,))?;
            let got: isize = got.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "readinto() returned {}, not an int",
                    objects::type_name(&got)
                ))
            })?;
            if got < 0 || got as usize > cap - filled {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "readinto() returned {got} for a buffer of {} bytes",
                    cap - filled
                )));
            }
            if got == 0 {
                return Ok(None); // the file ended first: truncated
            }
            filled += got as usize;
        }
        self.base += (n - have) as u64;
        self.large = Some(target);
        Ok(Some(LARGE_BASE..LARGE_BASE + n))
    }

    /// Consume, from the file, every byte the parser used (call after STOP).
    pub fn finish(&mut self) -> PyResult<()> {
        self.sync()
    }
}

impl Source for FileSource<'_> {
    type Error = PyErr;

    fn begin_op(&mut self) -> PyResult<()> {
        self.large = None;
        if self.pos >= COMPACT_AT || (self.pos == self.buf.len() && self.pos > 0) {
            if self.pos > self.file_pos {
                self.sync()?;
            }
            let dropped = self.pos;
            self.buf.drain(..dropped);
            self.base += dropped as u64;
            self.pos = 0;
            self.file_pos -= dropped.min(self.file_pos);
        }
        Ok(())
    }

    fn peek_byte(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> PyResult<Option<u8>> {
        if !self.ensure(1)? {
            return Ok(None);
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }

    fn take(&mut self, n: usize) -> PyResult<Option<Range<usize>>> {
        if n >= LARGE_TAKE && self.buf.len() - self.pos < n {
            if let Some(readinto) = self.readinto.clone() {
                return self.take_large(&readinto, n);
            }
        }
        if !self.ensure(n)? {
            return Ok(None);
        }
        let start = self.pos;
        self.pos += n;
        Ok(Some(start..self.pos))
    }

    fn take_line(&mut self) -> PyResult<Option<Range<usize>>> {
        let find = |buf: &[u8], from: usize| buf[from..].iter().position(|&b| b == b'\n');
        if find(&self.buf, self.pos).is_none() {
            self.sync()?;
            if let Some(peek) = self.peek.clone() {
                if let Some(ahead) = self.call_peek(&peek)? {
                    self.append(ahead, "peek")?;
                }
            }
            if find(&self.buf, self.pos).is_none() {
                self.buf.truncate(self.file_pos);
                let line = self.readline.call0()?;
                self.append(line, "readline")?;
                self.file_pos = self.buf.len();
            }
        }
        Ok(find(&self.buf, self.pos).map(|i| {
            let start = self.pos;
            self.pos += i + 1;
            start..self.pos
        }))
    }

    fn fill(&mut self, n: u64) -> PyResult<bool> {
        match usize::try_from(n) {
            Ok(n) => self.ensure(n),
            Err(_) => Ok(false),
        }
    }

    fn bytes(&self, range: Range<usize>) -> &[u8] {
        if range.start < LARGE_BASE {
            return &self.buf[range];
        }
        let large = self
            .large
            .as_ref()
            .expect("a large range belongs to the current opcode");
        // SAFETY: the bytearray is held by `self` and is not resized while
        // the returned slice (borrowing `self`) lives; `take_large` filled
        // its first `range.end - LARGE_BASE` bytes.
        let all = unsafe { large.as_bytes() };
        &all[range.start - LARGE_BASE..range.end - LARGE_BASE]
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
}
