//! The reader: executes the parser's ops to build Python objects.
//!
//! - `api`: `loads`, `load`, `Unpickler` (Python-facing; options, hooks, GC pause)
//! - `machine`: the opcode loop over the stack, marks and memo
//! - `objects`: building objects (strings, ints, globals, REDUCE/NEWOBJ)
//! - `build`: BUILD, with what one load learns about its classes cached
//! - `str_cache`: short strings shared from one load to the next
//! - `memo`: index → object, safe against lying indices
//! - `file_source`: reading from Python file objects without over-reading
//! - `errors`: mapping failures to `pickle.UnpicklingError` and subclasses

pub mod api;
mod build;
mod errors;
mod file_source;
mod machine;
mod memo;
mod objects;
mod str_cache;
