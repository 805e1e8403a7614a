//! anypickle's Rust core, the extension module `anypickle._core`.
//!
//! This file only defines the module; see ARCHITECTURE.md for the parts.

use pyo3::prelude::*;

pub use anypickle_parser::opcodes;
mod attrs;
mod dict_walk;
mod entry;
mod fresh_memory;
mod imports;
pub mod pickler;
mod prefetch;
mod pyrefs;
mod reconstruct;
mod unpickler;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    entry::add_functions(m)?;
    m.add_function(wrap_pyfunction!(pickler::api::dump, m)?)?;
    m.add_class::<pickler::api::Pickler>()?;
    m.add_class::<pickler::api::PicklerMemoProxy>()?;
    m.add_function(wrap_pyfunction!(unpickler::api::load, m)?)?;
    m.add_class::<unpickler::api::Unpickler>()?;
    m.add_class::<unpickler::api::UnpicklerMemoProxy>()?;
    reconstruct::add_functions(m)?;
    m.add("DEFAULT_PAUSE_GC", unpickler::api::DEFAULT_PAUSE_GC)?;
    m.add("MAX_DEPTH", pickler::writer::MAX_DEPTH)?;
    m.add("DEFAULT_PROTOCOL", pickler::api::DEFAULT_PROTOCOL)?;
    m.add("HIGHEST_PROTOCOL", opcodes::HIGHEST_PROTOCOL)?;
    Ok(())
}
