//! Turning reader failures into Python exceptions.
//!
//! Problems with the data raise `pickle.UnpicklingError` or one of the
//! subclasses in `anypickle._errors` (which also inherit the builtin the
//! stdlib would have raised); every message ends with the opcode and its
//! byte offset. Exceptions raised by code the pickle calls propagate as
//! they are.

use anypickle_parser::error::location;
use anypickle_parser::{Error, ErrorKind, ParseError};
use pyo3::exceptions::{PyEOFError, PyUnicodeDecodeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyType};

/// Which exception class a data problem raises.
#[derive(Debug, Clone, Copy)]
pub enum Class {
    Unpickling,
    Value,
    Overflow,
    Type,
    Key,
}

struct Classes {
    unpickling: Py<PyType>,
    value: Py<PyType>,
    overflow: Py<PyType>,
    type_: Py<PyType>,
    key: Py<PyType>,
    unicode: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let errors = py.import("anypickle._errors")?;
        let get = |name: &str| -> PyResult<Py<PyType>> {
            Ok(errors.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(Classes {
            unpickling: py
                .import("pickle")?
                .getattr("UnpicklingError")?
                .cast_into::<PyType>()?
                .unbind(),
            value: get("PickleValueError")?,
            overflow: get("PickleOverflowError")?,
            type_: get("PickleTypeError")?,
            key: get("PickleKeyError")?,
            unicode: get("PickleUnicodeDecodeError")?,
        })
    })
}

/// A failure while executing one opcode.
pub enum Fail {
    /// A problem with the data: the class and the message (without location).
    Data(Class, String),
    /// A UnicodeDecodeError from decoding a string in the stream.
    Decode(PyErr),
    /// An exception from Python code the pickle called: propagates as is.
    Py(PyErr),
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}

pub fn data<T>(class: Class, msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Data(class, msg.into()))
}

/// The exception for a data problem at the given opcode and offset.
pub fn data_error(
    py: Python<'_>,
    class: Class,
    msg: &str,
    opcode: Option<u8>,
    offset: u64,
) -> PyErr {
    let text = format!("{msg} ({})", location(opcode, offset));
    let classes = match classes(py) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let cls = match class {
        Class::Unpickling => &classes.unpickling,
        Class::Value => &classes.value,
        Class::Overflow => &classes.overflow,
        Class::Type => &classes.type_,
        Class::Key => &classes.key,
    };
    PyErr::from_type(cls.bind(py).clone(), text)
}

impl Fail {
    /// The Python exception, located at `opcode`/`offset` if it is about the data.
    pub fn into_pyerr(self, py: Python<'_>, opcode: Option<u8>, offset: u64) -> PyErr {
        match self {
            Fail::Py(e) => e,
            Fail::Data(class, msg) => data_error(py, class, &msg, opcode, offset),
            Fail::Decode(e) => relocate_decode_error(py, e, opcode, offset),
        }
    }
}

/// Re-raise a UnicodeDecodeError as `PickleUnicodeDecodeError` with the
/// location in its reason.
fn relocate_decode_error(py: Python<'_>, e: PyErr, opcode: Option<u8>, offset: u64) -> PyErr {
    if !e.is_instance_of::<PyUnicodeDecodeError>(py) {
        return e;
    }
    let convert = || -> PyResult<PyErr> {
        let value = e.value(py);
        let reason: String = value.getattr("reason")?.extract()?;
        let args = (
            value.getattr("encoding")?,
            value.getattr("object")?,
            value.getattr("start")?,
            value.getattr("end")?,
            format!("{reason} ({})", location(opcode, offset)),
        );
        let new = classes(py)?.unicode.bind(py).call1(args)?;
        new.setattr("__cause__", value)?;
        Ok(PyErr::from_value(new))
    };
    convert().unwrap_or_else(|err| err)
}

/// What a source error becomes in Python (a file's `read` raised, or never).
pub trait SourceError {
    fn into_pyerr(self) -> PyErr;
}

impl SourceError for PyErr {
    fn into_pyerr(self) -> PyErr {
        self
    }
}

impl SourceError for std::convert::Infallible {
    fn into_pyerr(self) -> PyErr {
        match self {}
    }
}

/// The exception for a parse failure.
pub fn parse_error<E: SourceError>(py: Python<'_>, e: Error<E>) -> PyErr {
    match e {
        Error::Source(e) => e.into_pyerr(),
        Error::Parse(e) => parse_error_to_py(py, &e),
    }
}

fn parse_error_to_py(py: Python<'_>, e: &ParseError) -> PyErr {
    let class = match e.kind {
        ErrorKind::RanOutOfInput => {
            return PyEOFError::new_err(format!("{} ({})", e.message(), e.location()));
        }
        ErrorKind::Truncated | ErrorKind::UnknownOpcode(_) | ErrorKind::BadFrame(_) => {
            Class::Unpickling
        }
        ErrorKind::UnsupportedProtocol(_) | ErrorKind::BadValue(_) => Class::Value,
        ErrorKind::Overflow(_) => Class::Overflow,
        ErrorKind::Decode {
            encoding,
            ref bytes,
            start,
            end,
            reason,
        } => {
            let located = format!("{reason} ({})", e.location());
            let args = (encoding, PyBytes::new(py, bytes), start, end, located);
            return match classes(py).and_then(|c| c.unicode.bind(py).call1(args)) {
                Ok(exc) => PyErr::from_value(exc),
                Err(err) => err,
            };
        }
    };
    data_error(py, class, &e.message(), e.opcode, e.offset)
}
