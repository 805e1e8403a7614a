//! What can be wrong with a pickle stream, independent of any Python.

use std::fmt;

/// Why the parser stopped. Each kind maps to one exception class on the
/// Python side (see `src/unpickler/errors.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ended where an opcode was expected (CPython: `EOFError`).
    RanOutOfInput,
    /// The input ended inside an opcode's argument, or a length claims more
    /// bytes than the input holds.
    Truncated,
    /// A byte that is not an opcode.
    UnknownOpcode(u8),
    /// PROTO with a protocol this reader does not know.
    UnsupportedProtocol(u8),
    /// A framing rule was broken (strict, like `pickle.py`'s unframer).
    BadFrame(&'static str),
    /// A text argument (protocol 0) or a binary length is malformed.
    BadValue(String),
    /// A number is out of the range the opcode allows.
    Overflow(String),
    /// Text that must be in `encoding` is not: `bytes[start..end]` of the
    /// line `bytes` are invalid (maps to UnicodeDecodeError's fields).
    Decode {
        encoding: &'static str,
        bytes: Vec<u8>,
        start: usize,
        end: usize,
        reason: &'static str,
    },
}

/// A parse failure: what, where (byte offset of the opcode) and which opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    /// Offset of the opcode byte being parsed, from the start of the pickle.
    pub offset: u64,
    /// The opcode being parsed, if one was read.
    pub opcode: Option<u8>,
}

impl ParseError {
    /// The message, without the location suffix.
    pub fn message(&self) -> String {
        match &self.kind {
            ErrorKind::RanOutOfInput => "Ran out of input".to_owned(),
            ErrorKind::Truncated => "pickle data was truncated".to_owned(),
            ErrorKind::UnknownOpcode(b) if (0x20..0x7f).contains(b) => {
                format!("invalid load key, '{}'.", char::from(*b))
            }
            ErrorKind::UnknownOpcode(b) => format!("invalid load key, '\\x{b:02x}'."),
            ErrorKind::UnsupportedProtocol(p) => format!("unsupported pickle protocol: {p}"),
            ErrorKind::BadFrame(m) => (*m).to_owned(),
            ErrorKind::BadValue(m) | ErrorKind::Overflow(m) => m.clone(),
            ErrorKind::Decode {
                encoding,
                bytes,
                start,
                reason,
                ..
            } => format!(
                "'{encoding}' codec can't decode byte 0x{:02x} in position {start}: {reason}",
                bytes.get(*start).copied().unwrap_or(0)
            ),
        }
    }

    /// Where it happened, e.g. `"opcode BINUNICODE at offset 17"`.
    pub fn location(&self) -> String {
        location(self.opcode, self.offset)
    }
}

/// The location suffix every reader error carries.
pub fn location(opcode: Option<u8>, offset: u64) -> String {
    match opcode.and_then(crate::opcodes::name) {
        Some(name) => format!("opcode {name} at offset {offset}"),
        None => format!("at offset {offset}"),
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.location())
    }
}

impl std::error::Error for ParseError {}

/// A failure of the parser or of the source it reads from (a Python file's
/// `read` may raise).
#[derive(Debug)]
pub enum Error<E> {
    Parse(ParseError),
    Source(E),
}

impl<E> From<ParseError> for Error<E> {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}
