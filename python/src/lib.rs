//! `livepay._native`: livepay's engine in-process for Python, on asyncio.
//!
//! One [`Funder`](livepay_hyper::Funder) per process funds every session (one pooled client,
//! one tokio task, the per-signer limits): no thread and no asyncio task per session. Each
//! awaitable is a tokio future bridged to asyncio by pyo3-async-runtimes, so the event loop
//! never waits on the network. The Python package (`livepay/__init__.py`) wraps this module
//! with the SDK's names, docstrings and `async with`.

#![deny(unsafe_code)]

mod errors;
mod events;
mod funding;
mod session;
mod testing;

use pyo3::prelude::*;

/// The bridge's cache of Python loggers and their levels, reset by [`reset_log_levels`].
static LOG_RESET: std::sync::OnceLock<pyo3_log::ResetHandle> = std::sync::OnceLock::new();

/// Forgets the cached logging levels: a level changed after livepay first logged takes
/// effect.
#[pyfunction]
fn reset_log_levels() {
    if let Some(handle) = LOG_RESET.get() {
        handle.reset();
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Log records go to Python's `logging`, under the logger `livepay` (tracing events become
    // `log` records; the core's texts hold no secret). Levels are cached: a record below the
    // logger's level costs no call into Python.
    if let Ok(logger) = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::LoggersAndLevels)
        && let Ok(handle) = logger.set_prefix("livepay").install()
    {
        let _ = LOG_RESET.set(handle);
    }
    m.add_function(wrap_pyfunction!(session::reserve, m)?)?;
    m.add_function(wrap_pyfunction!(session::adopt_challenge, m)?)?;
    m.add_function(wrap_pyfunction!(session::adopt_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(testing::simulate, m)?)?;
    m.add_function(wrap_pyfunction!(reset_log_levels, m)?)?;
    m.add_class::<session::Session>()?;
    m.add_class::<testing::Simulation>()?;
    Ok(())
}
