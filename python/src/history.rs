//! `htsr.history(...)`: a store's history read from Python, through the daemon that holds the store when one runs
//! (so a notebook reads while training goes on), else from the store itself. The rows are
//! `htsr-watch export --format csv`'s, byte for byte.

use pyo3::exceptions::{
    PyConnectionError, PyFileNotFoundError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use htsr_api::{ErrorKind, RowFormat};
use htsr_client::Target;

fn py_error(e: htsr_api::Error) -> PyErr {
    let m = e.message;
    match e.kind {
        ErrorKind::NotFound => PyFileNotFoundError::new_err(m),
        ErrorKind::Connection => PyConnectionError::new_err(m),
        ErrorKind::Denied => PyPermissionError::new_err(m),
        ErrorKind::Invalid | ErrorKind::Unsupported => PyValueError::new_err(m),
        _ => PyOSError::new_err(m),
    }
}

/// The history of `source` (a watched directory, a store directory, or a daemon's `http://HOST:PORT`) as CSV bytes:
/// every (run, step, layer) of `run` (or of every run), with the columns of `htsr.history_columns()`.
#[pyfunction]
#[pyo3(signature = (source, run=None, token=None))]
fn history_csv<'py>(
    py: Python<'py>,
    source: &str,
    run: Option<String>,
    token: Option<String>,
) -> PyResult<Bound<'py, PyBytes>> {
    let target = Target::from_arg(source).map_err(py_error)?;
    let bytes = py
        .detach(|| -> htsr_api::Result<Vec<u8>> {
            let opened = htsr_client::open(&target, token, None)?;
            if let Some(r) = &run {
                if opened.history.run_summary(r)?.is_none() {
                    return Err(htsr_api::Error::new(
                        ErrorKind::NotFound,
                        format!("no run {r:?} in {}", opened.history.source()),
                    ));
                }
            }
            let mut out = Vec::new();
            opened
                .history
                .export(run.as_deref(), RowFormat::Csv, &mut out)?;
            Ok(out)
        })
        .map_err(py_error)?;
    Ok(PyBytes::new(py, &bytes))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(history_csv, m)?)?;
    Ok(())
}
