//! The output buffer of the writer, with protocol-4 framing.
//!
//! Small pickles are written into a scratch buffer (one per thread, reused
//! by every call, so a tiny `dumps` neither allocates nor zeroes a buffer)
//! and become one exactly sized bytes object at the end. Larger ones move to
//! a CPython bytes object
//! that only this writer references, grown in place with `_PyBytes_Resize`
//! (as `_pickle.c` does), so `dumps` hands the finished bytes to Python
//! without a second copy of the data.
//! Framing mirrors CPython's `_pickle.c` exactly, because deterministic mode
//! must produce the same bytes: a frame is opened by the first write after a
//! commit, committed once it holds at least `FRAME_SIZE_TARGET` bytes at an
//! opcode boundary, and large payloads are written outside any frame.

use super::write_error::Written;
use std::cell::Cell;
use std::ffi::c_int;

use pyo3::exceptions::PyMemoryError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::fresh_memory;
use crate::opcodes::FRAME;

/// A frame is committed once it holds this many bytes (CPython's target).
pub const FRAME_SIZE_TARGET: usize = 64 * 1024;
/// Frames smaller than this are unwrapped (the header would cost too much).
const FRAME_SIZE_MIN: usize = 4;
/// FRAME opcode plus its 8-byte length.
const FRAME_HEADER_SIZE: usize = 9;
/// The output grows by four times up to this capacity, then by two.
const FAST_GROWTH_LIMIT: usize = 8 << 20;
/// Pickles up to this size stay in the scratch buffer until they are finished.
const SCRATCH_CAPACITY: usize = 4096;

thread_local! {
    /// The scratch buffer between calls (empty while an Output holds it; a
    /// nested call, from a `__reduce__` that pickles, makes its own).
    static SPARE_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

extern "C" {
    /// Exported by CPython on every supported version (not wrapped publicly
    /// by pyo3-ffi). Resizes a bytes object that nothing else references.
    fn _PyBytes_Resize(bytes: *mut *mut ffi::PyObject, newsize: ffi::Py_ssize_t) -> c_int;
}

pub struct Output {
    /// Null while the pickle fits in `scratch`; then a bytes object of size
    /// `cap`, referenced only by us until `finish`.
    buffer: *mut ffi::PyObject,
    /// Where byte 0 of the output lives: the scratch buffer's data, or the
    /// bytes object's (kept here so that a write does not choose between them).
    data: *mut u8,
    /// Initialized memory of `SCRATCH_CAPACITY` bytes (its `len`).
    scratch: Vec<u8>,
    len: usize,
    cap: usize,
    /// A write of `n` bytes takes the fast path while `len + n <= room_end`:
    /// `room_end` is `cap`, or 0 while a frame must be opened before the
    /// next byte. One comparison per write thus covers both the room check
    /// and the lazy opening of frames.
    room_end: usize,
    /// True while protocol-4 framing is on (toggled off around big payloads).
    framing: bool,
    /// Offset of the open frame's header, if a frame is open.
    frame_start: Option<usize>,
    /// The `len` at which the open frame is full (`usize::MAX` while none
    /// is open): `frame_is_full` runs at every opcode boundary.
    frame_full_at: usize,
}

impl Output {
    pub fn new() -> Self {
        let mut scratch = SPARE_SCRATCH.take();
        if scratch.len() != SCRATCH_CAPACITY {
            scratch = vec![0; SCRATCH_CAPACITY];
        }
        // (Moving the vector below does not move its heap data.)
        let data = scratch.as_mut_ptr();
        Output {
            buffer: std::ptr::null_mut(),
            data,
            scratch,
            len: 0,
            cap: SCRATCH_CAPACITY,
            room_end: SCRATCH_CAPACITY,
            framing: false,
            frame_start: None,
            frame_full_at: usize::MAX,
        }
    }

    /// Whether protocol-4 framing is on.
    pub fn framing(&self) -> bool {
        self.framing
    }

    /// Turn framing on or off (a frame already open stays open).
    pub fn set_framing(&mut self, on: bool) {
        self.framing = on;
        self.update_room_end();
    }

    /// Re-derive `room_end` after `cap`, `framing` or the open frame changed.
    #[inline]
    fn update_room_end(&mut self) {
        self.room_end = if self.framing && self.frame_start.is_none() {
            0
        } else {
            self.cap
        };
    }

    /// Back to the (empty) scratch buffer, after the bytes object was handed
    /// out or lost.
    fn reset_to_scratch(&mut self) {
        self.buffer = std::ptr::null_mut();
        self.data = self.scratch.as_mut_ptr();
        self.len = 0;
        self.cap = SCRATCH_CAPACITY;
        self.update_room_end();
    }

    /// Resize the bytes object to `size` bytes (its data may move).
    fn resize(&mut self, size: usize) -> Written {
        // SAFETY: `buffer` is a live bytes object nothing else references
        // (it has not been handed to Python yet); the GIL is held whenever
        // an Output exists. On failure the object is freed and set to null.
        let rc = unsafe { _PyBytes_Resize(&mut self.buffer, size as ffi::Py_ssize_t) };
        if rc < 0 || self.buffer.is_null() {
            self.reset_to_scratch();
            // SAFETY: the GIL is held, see above.
            return Err(PyErr::fetch(unsafe { Python::assume_attached() }).into());
        }
        // SAFETY: `buffer` is a live bytes object.
        self.data = unsafe { ffi::PyBytes_AsString(self.buffer) } as *mut u8;
        self.cap = size;
        self.update_room_end();
        Ok(())
    }

    #[cold]
    fn grow(&mut self, required: usize) -> Written {
        // Below `FAST_GROWTH_LIMIT` the buffer quadruples: a buffer that is
        // not at the top of the heap is moved by each growth, and for a
        // 600 KB pickle doubling copied 1 MB per call, quadrupling 340 KB.
        // Bigger buffers are mapped memory, which `realloc` extends in place.
        let factor = if self.cap < FAST_GROWTH_LIMIT { 4 } else { 2 };
        let new_cap = required.max(self.cap.saturating_mul(factor));
        if new_cap > isize::MAX as usize / 2 {
            return Err(PyMemoryError::new_err("pickle output too large").into());
        }
        if !self.buffer.is_null() {
            self.resize(new_cap)?;
            self.advise_grown();
            return Ok(());
        }
        // Leave the scratch buffer for a heap bytes object.
        // SAFETY: the GIL is held whenever an Output exists; a null result
        // sets a Python error. The copy reads the `len` bytes written so far.
        unsafe {
            let buffer =
                ffi::PyBytes_FromStringAndSize(std::ptr::null(), new_cap as ffi::Py_ssize_t);
            if buffer.is_null() {
                return Err(PyErr::fetch(Python::assume_attached()).into());
            }
            let data = ffi::PyBytes_AsString(buffer) as *mut u8;
            std::ptr::copy_nonoverlapping(self.scratch.as_ptr(), data, self.len);
            self.buffer = buffer;
            self.data = data;
        }
        self.cap = new_cap;
        self.update_room_end();
        self.advise_grown();
        Ok(())
    }

    /// Advise a grown buffer for huge pages (see `fresh_memory`): the rest
    /// of a big pickle is copied into its unwritten part. The whole buffer
    /// is advised, not only that part, so its mapping stays in one piece
    /// and the next growth can still extend it in place.
    fn advise_grown(&mut self) {
        fresh_memory::advise_huge_pages(self.data, self.cap);
    }

    /// Make room for `n` more bytes, opening a frame first if framing is on
    /// and none is open. The fast path is one comparison (see `room_end`);
    /// `len + n` cannot overflow: `len` stays below `isize::MAX / 2` (see
    /// `grow`) and `n` is the length of a slice.
    #[inline(always)]
    fn room(&mut self, n: usize) -> Written {
        if self.len + n > self.room_end {
            self.make_room(n)?;
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn make_room(&mut self, n: usize) -> Written {
        if self.framing && self.frame_start.is_none() {
            self.open_frame(n)
        } else {
            self.reserve(n)
        }
    }

    /// Room for `n` more bytes in the buffer itself (no frame is opened).
    fn reserve(&mut self, n: usize) -> Written {
        if self.cap - self.len < n {
            self.grow(
                self.len
                    .checked_add(n)
                    .ok_or_else(|| PyMemoryError::new_err("pickle output too large"))?,
            )?;
        }
        Ok(())
    }

    /// Append raw bytes, opening a frame first if framing is on and none is open.
    #[inline(always)]
    pub fn write(&mut self, s: &[u8]) -> Written {
        self.room(s.len())?;
        // SAFETY: `room` guaranteed `cap - len >= s.len()`; the source is a
        // Rust slice that cannot overlap the writer's buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), self.data.add(self.len), s.len());
        }
        self.len += s.len();
        Ok(())
    }

    /// Append an opcode header and its (short) payload with one room check.
    ///
    /// Used for str and bytes payloads, which are mostly a few bytes long:
    /// those are copied inline rather than through a `memcpy` call (perf put
    /// about 6 % of a small dict's dumps in those calls).
    /// Kept apart from `write`, whose callers pass constant lengths the
    /// compiler already turns into plain stores.
    #[inline]
    pub fn write_header_and_payload(&mut self, header: &[u8], data: &[u8]) -> Written {
        let n = header.len() + data.len();
        self.room(n)?;
        // SAFETY: `room` guaranteed `cap - len >= n`; both sources are
        // Rust slices that cannot overlap the writer's buffer.
        unsafe {
            let dst = self.data.add(self.len);
            copy_short(header, dst);
            copy_short(data, dst.add(header.len()));
        }
        self.len += n;
        Ok(())
    }

    /// Append an opcode, a one-byte length and that many bytes of payload
    /// (SHORT_BINUNICODE and SHORT_BINBYTES), inline.
    #[inline(always)]
    pub fn write_short_payload(&mut self, opcode: u8, data: &[u8]) -> Written {
        debug_assert!(data.len() <= 0xff);
        let n = 2 + data.len();
        self.room(n)?;
        // SAFETY: `room` guaranteed `cap - len >= n`; `data` is a Rust slice
        // that cannot overlap the writer's buffer.
        unsafe {
            let dst = self.data.add(self.len);
            *dst = opcode;
            *dst.add(1) = data.len() as u8;
            copy_short(data, dst.add(2));
        }
        self.len += n;
        Ok(())
    }

    /// Append one opcode byte.
    #[inline(always)]
    pub fn byte(&mut self, b: u8) -> Written {
        self.room(1)?;
        // SAFETY: one byte of room was made above.
        unsafe { *self.data.add(self.len) = b };
        self.len += 1;
        Ok(())
    }

    /// Append `n` bytes produced by `fill`, which must write all of them.
    #[inline]
    pub fn write_with(&mut self, n: usize, fill: impl FnOnce(&mut [u8])) -> Written {
        self.room(n)?;
        // SAFETY: `n` bytes of room were made; they are zeroed first so
        // the slice handed to `fill` is initialized memory.
        let dst = unsafe {
            let p = self.data.add(self.len);
            std::ptr::write_bytes(p, 0, n);
            std::slice::from_raw_parts_mut(p, n)
        };
        fill(dst);
        self.len += n;
        Ok(())
    }

    fn open_frame(&mut self, then: usize) -> Written {
        self.reserve(FRAME_HEADER_SIZE + then)?;
        self.frame_start = Some(self.len);
        self.frame_full_at = self.len + FRAME_HEADER_SIZE + FRAME_SIZE_TARGET;
        self.update_room_end();
        // The header's room is left as it is: `commit_frame` writes the
        // header there or moves the frame's bytes over it, and nothing reads
        // it before (filling it was a `memset` call on every `dumps`).
        self.len += FRAME_HEADER_SIZE;
        Ok(())
    }

    /// True when the open frame is full and must be committed (called at
    /// every opcode boundary, like CPython's `_Pickler_OpcodeBoundary`).
    #[inline(always)]
    pub fn frame_is_full(&self) -> bool {
        self.len >= self.frame_full_at
    }

    /// Close the open frame: write its header, or drop the header when the
    /// frame is too small to deserve one.
    pub fn commit_frame(&mut self) {
        let Some(start) = self.frame_start.take() else {
            return;
        };
        self.frame_full_at = usize::MAX;
        self.update_room_end();
        let frame_len = self.len - start - FRAME_HEADER_SIZE;
        // SAFETY: `start + FRAME_HEADER_SIZE + frame_len == len <= cap`, so
        // every pointer below stays inside the written part of the buffer.
        unsafe {
            let header = self.data.add(start);
            if frame_len >= FRAME_SIZE_MIN {
                *header = FRAME;
                let size = (frame_len as u64).to_le_bytes();
                std::ptr::copy_nonoverlapping(size.as_ptr(), header.add(1), 8);
            } else {
                // Fewer than FRAME_SIZE_MIN bytes move back by the header's
                // length, so source and destination cannot overlap. They
                // move a byte at a time: they were just written a byte at a
                // time, and a wider load of them waits for the stores to
                // retire (perf put a fifth of `dumps(42)`'s `dump` on it; a
                // `memmove` call cost more still).
                const _: () = assert!(FRAME_SIZE_MIN <= FRAME_HEADER_SIZE + 1);
                for k in 0..frame_len.min(FRAME_SIZE_MIN - 1) {
                    *header.add(k) = *header.add(FRAME_HEADER_SIZE + k);
                }
                self.len -= FRAME_HEADER_SIZE;
            }
        }
    }

    /// Hand the written bytes to Python as a bytes object of exactly the
    /// written length, and leave this buffer empty and ready for more (more
    /// is written when flushing to a file chunk by chunk).
    pub fn take<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        debug_assert!(self.frame_start.is_none(), "a frame is still open");
        let len = self.len;
        if self.buffer.is_null() {
            self.len = 0;
            return Ok(PyBytes::new(py, &self.scratch[..len]));
        }
        if len != self.cap {
            // (On failure `resize` freed the buffer and went back to scratch.)
            self.resize(len)?;
        }
        let buffer = self.buffer;
        self.reset_to_scratch();
        // SAFETY: `buffer` is a new reference to a bytes object, now owned by
        // the returned Bound (and no longer by `self`).
        Ok(unsafe { Bound::from_owned_ptr(py, buffer).cast_into_unchecked::<PyBytes>() })
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.buffer.is_null() {
            // SAFETY: an Output only lives inside a dump call, with the GIL
            // held; we own this reference.
            unsafe { ffi::Py_DECREF(self.buffer) };
        }
        SPARE_SCRATCH.set(std::mem::take(&mut self.scratch));
    }
}

/// Copy `src` to `dst`, with overlapping word moves for up to 32 bytes.
/// (A plain byte loop would be turned back into a `memcpy` call.)
///
/// # Safety
/// `dst` must be valid for `src.len()` bytes of writes and must not overlap
/// `src`.
#[inline(always)]
unsafe fn copy_short(src: &[u8], dst: *mut u8) {
    let n = src.len();
    let p = src.as_ptr();
    // SAFETY (all arms): every read stays within `src` (offsets below `n`),
    // every write within the `n` bytes at `dst`; unaligned moves are used.
    unsafe {
        match n {
            0 => {}
            1 => *dst = *p,
            2..=3 => {
                let head = std::ptr::read_unaligned(p as *const u16);
                let tail = std::ptr::read_unaligned(p.add(n - 2) as *const u16);
                std::ptr::write_unaligned(dst as *mut u16, head);
                std::ptr::write_unaligned(dst.add(n - 2) as *mut u16, tail);
            }
            4..=7 => {
                let head = std::ptr::read_unaligned(p as *const u32);
                let tail = std::ptr::read_unaligned(p.add(n - 4) as *const u32);
                std::ptr::write_unaligned(dst as *mut u32, head);
                std::ptr::write_unaligned(dst.add(n - 4) as *mut u32, tail);
            }
            8..=16 => {
                let head = std::ptr::read_unaligned(p as *const u64);
                let tail = std::ptr::read_unaligned(p.add(n - 8) as *const u64);
                std::ptr::write_unaligned(dst as *mut u64, head);
                std::ptr::write_unaligned(dst.add(n - 8) as *mut u64, tail);
            }
            17..=32 => {
                let head = std::ptr::read_unaligned(p as *const u128);
                let tail = std::ptr::read_unaligned(p.add(n - 16) as *const u128);
                std::ptr::write_unaligned(dst as *mut u128, head);
                std::ptr::write_unaligned(dst.add(n - 16) as *mut u128, tail);
            }
            _ => std::ptr::copy_nonoverlapping(p, dst, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copy_short;

    #[test]
    fn copy_short_copies_every_length_exactly() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            let mut dst = [0u8; 48];
            // SAFETY: `dst` has room for 40 bytes and is a separate array.
            unsafe { copy_short(&src[..n], dst.as_mut_ptr()) };
            assert_eq!(&dst[..n], &src[..n], "length {n}");
            assert!(dst[n..].iter().all(|&b| b == 0), "wrote past length {n}");
        }
    }
}
