//! The writer's result type: `Result<(), WriteError>`, one machine word.
//!
//! A `PyResult<()>` is 72 bytes, so every writer function returned it
//! through memory, and a caller that kept a callee's result while doing
//! something else first (`depth -= 1`, `fast_leave`) copied it. Those
//! copies loaded, 16 bytes at a time, bytes the callee had just stored in
//! narrower pieces: the loads stalled on store forwarding, and perf put a
//! quarter of `save_nested`'s cycles on them. A boxed error makes the whole
//! result a nullable pointer, returned in a register; the box is made only
//! when an error happens.
//!
//! `?` converts both ways: a `PyErr` into a `WriteError` inside the writer,
//! and a `WriteError` back into a `PyErr` at the API (and in any writer
//! function that returns some other `PyResult`).

use pyo3::{CastError, CastIntoError, PyErr};

/// A Python exception raised while writing.
pub struct WriteError(Box<PyErr>);

/// What a writer step returns.
pub type Written = Result<(), WriteError>;

impl From<PyErr> for WriteError {
    #[cold]
    #[inline(never)]
    fn from(err: PyErr) -> Self {
        WriteError(Box::new(err))
    }
}

impl From<CastError<'_, '_>> for WriteError {
    #[cold]
    fn from(err: CastError<'_, '_>) -> Self {
        PyErr::from(err).into()
    }
}

impl From<CastIntoError<'_>> for WriteError {
    #[cold]
    fn from(err: CastIntoError<'_>) -> Self {
        PyErr::from(err).into()
    }
}

impl From<WriteError> for PyErr {
    #[cold]
    fn from(err: WriteError) -> Self {
        *err.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_is_one_word() {
        assert_eq!(std::mem::size_of::<Written>(), std::mem::size_of::<usize>());
    }
}
