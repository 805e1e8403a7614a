//! anypickle's Rust core, the extension module `anypickle._core`.
//!
//! This file only defines the module; see ARCHITECTURE.md for the parts.

use pyo3::prelude::*;

pub mod opcodes;
pub mod pickler;
mod pyrefs;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pickler::api::dumps, m)?)?;
    m.add_function(wrap_pyfunction!(pickler::api::dump, m)?)?;
    m.add_class::<pickler::api::Pickler>()?;
    m.add_class::<pickler::api::PicklerMemoProxy>()?;
    m.add("MAX_DEPTH", pickler::writer::MAX_DEPTH)?;
    m.add("DEFAULT_PROTOCOL", pickler::api::DEFAULT_PROTOCOL)?;
    m.add("HIGHEST_PROTOCOL", opcodes::HIGHEST_PROTOCOL)?;
    Ok(())
}
