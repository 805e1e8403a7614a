//! anypickle's pickle parser: pure Rust, no Python.
//!
//! It turns pickle bytes into [`Op`]s, checking every length, count and
//! literal against the bytes actually present. The reader (`anypickle._core`)
//! executes these ops to build Python objects; the static inspector and the
//! restricted loader share this same parser, so no two parts of anypickle can
//! read the same bytes differently.

pub mod error;
pub mod op;
pub mod opcodes;
pub mod parser;
pub mod source;
pub mod text;

pub use error::{Error, ErrorKind, ParseError};
pub use op::Op;
pub use parser::Parser;
pub use source::{SliceSource, Source};
