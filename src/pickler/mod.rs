//! The writing side: objects → pickle bytes, byte-identical to CPython.
//!
//! - `api`: the Python-facing `dumps`, `dump`, `Pickler`, memo proxy.
//! - `writer`: dispatch state machine (CPython's `save` order), memo policy,
//!   hooks, recursion budget.
//! - `atoms`, `containers`, `reduce`: the encoders per kind of object.
//! - `output`: the growable bytes buffer with protocol-4 framing.
//! - `memo`: object → memo index.

pub mod api;
mod atoms;
mod containers;
mod memo;
mod output;
mod reduce;
pub mod writer;
