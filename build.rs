// Exposes `Py_3_12`-style cfgs so code can follow CPython's C API by version.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
