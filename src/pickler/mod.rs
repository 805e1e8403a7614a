//! The writing side: objects → pickle bytes, byte-identical to CPython.
//!
//! - `api`: the Python-facing `dumps`, `dump`, `Pickler`, memo proxy.
//! - `writer`: dispatch state machine (CPython's `save` order), memo policy,
//!   hooks, recursion budget.
//! - `atoms`, `containers`, `reduce`: the encoders per kind of object.
//! - `plain_reduce`: `object.__reduce_ex__` for plain instances, in Rust.
//! - `output`: the growable bytes buffer with protocol-4 framing.
//! - `write_error`: the writer's one-word result type.
//! - `memo`: object → memo index, over `ptr_table` (an address-ordered
//!   hash table).
//! - `by_value`: what goes by value, and functions, classes, code objects,
//!   cells and modules written by value.

pub mod api;
mod atoms;
mod by_value;
mod containers;
mod memo;
mod output;
mod plain_reduce;
mod ptr_table;
mod reduce;
pub(crate) mod write_error;
pub mod writer;
