//! `_native.Simulation`: the project's faithful model of an orchestrator and its remote signer,
//! served on loopback for Python users' own tests (`livepay.testing.SimulatedOrchestrator`).

use std::sync::{Arc, Mutex};

use livepay_mock::faults::FaultPlan;
use livepay_mock::model::dialect::Dialect;
use livepay_mock::serve::{ServeConfig, ServedModel};
use pyo3::prelude::*;

use crate::errors::{Problem, invalid};

/// Wei per second of the simulated runner: 1 gwei, as `livepay serve-sim`.
const PRICE_WEI: u128 = 1_000_000_000;

/// A served model; stopped by `shutdown` (or when the interpreter exits).
#[pyclass(module = "livepay._native", frozen)]
#[derive(Debug)]
pub(crate) struct Simulation {
    served: Arc<Mutex<Option<ServedModel>>>,
    #[pyo3(get)]
    url: String,
    #[pyo3(get)]
    signer_url: String,
    #[pyo3(get)]
    runner_url: String,
    #[pyo3(get)]
    discovery_url: String,
}

impl Simulation {
    fn with<R>(&self, f: impl FnOnce(&ServedModel) -> R) -> Result<R, Problem> {
        let served = self
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        served
            .as_ref()
            .map(f)
            .ok_or_else(|| Problem::Config("the simulation was shut down".into()))
    }
}

/// Starts a model: `dialect` (go-livepeer, go-livepeer-next, livepeer-node), tickets worth
/// `ticket_seconds` of price, the fault `profile`, `seed`.
#[pyfunction]
#[pyo3(signature = (dialect, ticket_seconds, profile, seed, run_seconds))]
pub(crate) fn simulate<'py>(
    py: Python<'py>,
    dialect: &str,
    ticket_seconds: f64,
    profile: &str,
    seed: u64,
    run_seconds: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let dialect = Dialect::from_name(dialect).ok_or_else(|| {
        let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
        invalid("dialect", format!("is not one of {}", names.join(", ")))
    })?;
    if !(ticket_seconds.is_finite() && (0.001..=86_400.0).contains(&ticket_seconds)) {
        return Err(invalid("ticket_seconds", "is out of range (0.001 to 86400)").into());
    }
    if !(run_seconds.is_finite() && run_seconds > 0.0) {
        return Err(invalid("run_seconds", "must be above zero").into());
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let run = livepay_core::Duration::from_millis((run_seconds * 1e3) as u64);
    let plan = FaultPlan::load(profile)
        .map_err(|e| invalid("profile", e.to_string()))?
        .resolved(run);
    let mut model = dialect.model_config(livepay_mock::model::ModelConfig::default());
    for runner in &mut model.runners {
        runner.pricing = livepay_mock::model::Pricing::Live {
            wei_per_second: PRICE_WEI,
        };
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    {
        model.ticket_ev_wei = (ticket_seconds * PRICE_WEI as f64) as u128;
    }
    let config = ServeConfig {
        model,
        plan,
        seed,
        dialect,
        ..ServeConfig::default()
    };
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let served = ServedModel::start(config)
            .await
            .map_err(|e| Problem::Config(format!("cannot serve the model on loopback: {e}")))?;
        let url = served.orchestrator_url();
        Ok(Simulation {
            signer_url: served.signer_url(),
            runner_url: served.runner_url("live-runner"),
            discovery_url: format!("{url}/discovery"),
            url,
            served: Arc::new(Mutex::new(Some(served))),
        })
    })
}

#[pymethods]
impl Simulation {
    /// Releases `session_id` silently, as a crashed runner would: its next payment gets a 404.
    /// Whether it was live.
    fn release(&self, session_id: &str) -> PyResult<bool> {
        Ok(self.with(|s| {
            let now = s.now();
            s.with_world(|w| w.orchestrator_mut().release_one(now, session_id))
        })?)
    }

    /// The model's counters and sessions, as JSON text.
    fn state_json(&self) -> PyResult<String> {
        Ok(self.with(|s| {
            s.with_world(|w| {
                let o = w.orchestrator();
                let st = o.stats();
                let sessions: Vec<serde_json::Value> = o
                    .sessions()
                    .map(|h| {
                        serde_json::json!({
                            "id": h.id(),
                            "active": h.is_active(),
                            "payments": h.payments(),
                            "credited_wei": h.credited().to_string(),
                            "debited_wei": h.debited().to_string(),
                            "release": h.released().map(|(_, cause)| format!("{cause:?}")),
                        })
                    })
                    .collect();
                let sg = w.signer().stats();
                serde_json::json!({
                    "payments_accepted": st.payments_accepted,
                    "payments_rejected": st.payments_rejected,
                    "sessions_created": st.sessions_created,
                    "released_unpaid": st.released_unpaid,
                    "released_stopped": st.released_stopped,
                    "released_restart": st.released_restart,
                    "refreshes": st.refreshes,
                    "signer_calls": sg.calls,
                    "signer_mints": sg.mints,
                    "signer_482": sg.no_tickets_482,
                    "signer_480": sg.refresh_480,
                    "signer_400": sg.rejected_400,
                    "sessions": sessions,
                })
                .to_string()
            })
        })?)
    }

    /// Stops serving.
    fn shutdown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let served = self
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            if let Some(served) = served {
                served.shutdown().await;
            }
            Ok(())
        })
    }
}
