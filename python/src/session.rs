//! `_native.Session`: one funded session of the process's funder, and the three ways to get one
//! (reserve, adopt a challenge, adopt a snapshot). Every decision is the engine's; this file
//! moves arguments in and answers out.

use std::sync::Arc;

use tokio::sync::watch;

use livepay_core::engine::{Adoption, Engine, ReserveOptions, Snapshot};
use livepay_core::{Budget, Clock as _, Config, Duration, PaymentType, StatusTable};
use livepay_hyper::SessionKey;
use pyo3::prelude::*;

use crate::errors::{Problem, invalid};
use crate::funding::{Ended, Shared, Slot, runtime, shared};

/// Where a session's funding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holding {
    /// In the funder, under this key.
    Funding(SessionKey),
    /// Not funded yet: an adoption waiting for its payer address.
    Pending,
    /// Funding stopped and the snapshot handed to the caller: another process owns it now.
    HandedOff,
    /// An adoption that could not be funded (its release says why).
    Unfunded,
    /// `stop_payments` is under way; a second call waits for its snapshot.
    Stopping(SessionKey),
}

/// One session funded by this process.
#[pyclass(module = "livepay._native", frozen)]
#[derive(Debug)]
pub(crate) struct Session {
    #[pyo3(get)]
    session_id: String,
    #[pyo3(get)]
    control_url: String,
    #[pyo3(get)]
    app_url: String,
    holding: Arc<watch::Sender<Holding>>,
    /// The snapshot `stop_payments` handed out, and when.
    handed: Arc<std::sync::Mutex<Option<(String, u64)>>>,
    /// Set when this object is dropped: an adoption funded after that is closed at once.
    dropped: Arc<std::sync::atomic::AtomicBool>,
    slot: Arc<Slot>,
    shared: Arc<Shared>,
}

/// The session configuration: the funder's, with the caller's interval and budget.
fn config_of(
    shared: &Shared,
    payment_type: PaymentType,
    interval: f64,
    max_payments: Option<u32>,
    max_funded_s: Option<f64>,
) -> Result<Config, Problem> {
    if !(0.1..=3_600.0).contains(&interval) {
        return Err(invalid("interval", "is out of range (0.1 to 3600 seconds)"));
    }
    let mut config = shared.base;
    config.payment_type = payment_type;
    config.interval = seconds(interval);
    config.seed = shared.next_seed();
    if max_payments == Some(0) {
        return Err(invalid("budget", "max_payments must be above zero"));
    }
    let max_funded_time = match max_funded_s {
        Some(s) if !(s > 0.0 && s <= 1e9) => {
            return Err(invalid("budget", "max_funded_s must be above zero seconds"));
        }
        Some(s) => Some(seconds(s)),
        None => None,
    };
    config.budget = Budget {
        max_funded_time,
        max_payments,
    };
    config
        .validate()
        .map_err(|e| invalid("interval", e.to_string()))?;
    Ok(config)
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn seconds(s: f64) -> Duration {
    Duration::from_millis((s * 1e3).round() as u64)
}

pub(crate) fn payment_type(name: &str) -> Result<PaymentType, Problem> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| invalid("type", "is not one of live, lv2v, fixed"))
}

fn options(
    runner_url: &str,
    signer_url: &str,
    headers: Vec<(String, String)>,
    payment_type: PaymentType,
    app: Option<String>,
) -> ReserveOptions {
    let mut options = ReserveOptions::new(
        runner_url,
        Some(signer_url.trim_end_matches('/').to_owned()),
        payment_type,
    );
    for (name, value) in headers {
        options = options.with_signer_header(name, value);
    }
    if let Some(app) = app {
        options = options.with_app(app);
    }
    options
}

/// Unix time now, ms.
fn unix_ms() -> u64 {
    #[allow(clippy::disallowed_methods)] // The one wall-clock read: the age of a caller's instant.
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Session {
    fn new(shared: Arc<Shared>, session_id: String, control_url: String, app_url: String) -> Self {
        Self {
            session_id,
            control_url,
            app_url,
            holding: Arc::new(watch::channel(Holding::Pending).0),
            handed: Arc::new(std::sync::Mutex::new(None)),
            dropped: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            slot: Slot::new(),
            shared,
        }
    }

    fn holding(&self) -> Holding {
        *self.holding.borrow()
    }

    fn set_holding(holding: &watch::Sender<Holding>, to: Holding) {
        holding.send_replace(to);
    }

    fn ended(&self) -> Option<Ended> {
        self.slot.ended.borrow().clone()
    }

    /// Funds `engine` as this session.
    fn fund(&self, engine: Engine) -> Result<(), Problem> {
        let key = self.shared.fund(engine, &self.slot)?;
        Self::set_holding(&self.holding, Holding::Funding(key));
        Ok(())
    }
}

/// `livepay.reserve`: the 402, the signer, the paid retry; then funding starts.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (runner_url, signer_url, signer_headers, payment_type, interval, max_payments, max_funded_s, app))]
pub(crate) fn reserve<'py>(
    py: Python<'py>,
    runner_url: String,
    signer_url: String,
    signer_headers: Vec<(String, String)>,
    payment_type: String,
    interval: f64,
    max_payments: Option<u32>,
    max_funded_s: Option<f64>,
    app: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let shared = shared()?;
    let kind = self::payment_type(&payment_type)?;
    let config = config_of(&shared, kind, interval, max_payments, max_funded_s)?;
    let options = options(&runner_url, &signer_url, signer_headers, kind, app);
    // The reservation runs in its own task, so that a cancelled `await` cannot drop it halfway:
    // before its paid request left, the cancel ends it at no cost; after, the session it paid
    // for is funded, then closed (stopped on the orchestrator), never left running on its
    // prepay.
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    let caller_gone = Arc::clone(&gone);
    let task = runtime().spawn(async move {
        let cancel = async move {
            let _ = gone_rx.await;
        };
        let reserved = livepay_hyper::reserve_until(&shared.http, &shared.clock, options, cancel)
            .await
            .map_err(Problem::from)?;
        let session = Session::new(
            Arc::clone(&shared),
            reserved.session_id.clone(),
            reserved.control_url.clone(),
            reserved.app_url.clone(),
        );
        let engine = Engine::new(&config, reserved, StatusTable::new()).map_err(|e| Problem::Config(e.to_string()))?;
        session.fund(engine)?;
        if caller_gone.load(std::sync::atomic::Ordering::Acquire)
            && let Holding::Funding(key) = session.holding()
        {
            tracing::info!(session = %session.session_id, "livepay: reservation cancelled after it was paid: stopping the session");
            let _ = shared.handle.close(key);
            return Err(Problem::Reserve(livepay_hyper::LiveError::Cancelled));
        }
        Ok(session)
    });
    let guard = CallerGuard { gone, _tx: gone_tx };
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let _guard = guard;
        match task.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Problem::Closed.into()),
        }
    })
}

/// Dropped with the awaiting future (a cancelled `await`): tells the detached task.
struct CallerGuard {
    gone: Arc<std::sync::atomic::AtomicBool>,
    _tx: tokio::sync::oneshot::Sender<()>,
}

impl Drop for CallerGuard {
    fn drop(&mut self) {
        self.gone.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// `livepay.adopt_challenge`: funds a session another client reserved. Returns at once; the
/// payer address, when this process has not learnt it, is asked for in the background (a
/// failure releases the session with the reason).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (control_url, app_url, session_id, payment_params, manifest_id, payment_url, signer_url, signer_headers, signer_state, payment_type, reserved_at, interval, max_payments, max_funded_s, app))]
pub(crate) fn adopt_challenge(
    control_url: String,
    app_url: String,
    session_id: Option<String>,
    payment_params: String,
    manifest_id: String,
    payment_url: String,
    signer_url: String,
    signer_headers: Vec<(String, String)>,
    signer_state: Option<String>,
    payment_type: String,
    reserved_at: Option<f64>,
    interval: f64,
    max_payments: Option<u32>,
    max_funded_s: Option<f64>,
    app: Option<String>,
) -> PyResult<Session> {
    let shared = shared()?;
    let kind = self::payment_type(&payment_type)?;
    let config = config_of(&shared, kind, interval, max_payments, max_funded_s)?;
    if !signer_url.starts_with("http://") && !signer_url.starts_with("https://") {
        return Err(invalid("signer_url", "is not an http(s) URL with a host").into());
    }
    let now = shared.clock.now();
    let minted_at = match reserved_at {
        None => None,
        Some(at) if !(at.is_finite() && at >= 0.0) => {
            return Err(invalid("reserved_at", "is not a unix time in seconds").into());
        }
        Some(at) => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let at_ms = (at * 1e3) as u64;
            let age = unix_ms().saturating_sub(at_ms);
            Some(
                now.checked_sub(Duration::from_millis(age))
                    .unwrap_or(livepay_core::Instant::from_ticks(0)),
            )
        }
    };
    let session_id = session_id
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| manifest_id.clone());
    let adoption = Adoption {
        session_id: session_id.clone(),
        app_url: app_url.clone(),
        control_url: control_url.clone(),
        payment_params,
        manifest_id,
        payment_url,
        signer_state,
        minted_at,
    };
    let options = options(&control_url, &signer_url, signer_headers, kind, app);
    // Checked here, before returning: a bad field is an exception, not a release later.
    livepay_core::engine::ReserveFlow::adopt(options.clone(), adoption.clone(), &Default::default(), now)
        .map_err(|e| Problem::from(livepay_hyper::LiveError::Reserve(e)))?;
    let session = Session::new(Arc::clone(&shared), session_id, control_url, app_url);
    let holding = Arc::clone(&session.holding);
    let slot = Arc::clone(&session.slot);
    let dropped = Arc::clone(&session.dropped);
    runtime().spawn(async move {
        let adopted = livepay_hyper::adopt(&shared.http, &shared.clock, options, adoption).await;
        let funded = adopted
            .map_err(|e| e.to_string())
            .and_then(|reserved| {
                Engine::new(&config, reserved, StatusTable::new()).map_err(|e| e.to_string())
            })
            .and_then(|engine| shared.fund(engine, &slot).map_err(|e| format!("{e:?}")));
        match funded {
            Ok(key) if dropped.load(std::sync::atomic::Ordering::Acquire) => {
                tracing::warn!("livepay: an adopted session was dropped before it was funded: closing it");
                let _ = shared.handle.close(key);
            }
            Ok(key) => Session::set_holding(&holding, Holding::Funding(key)),
            Err(why) => {
                tracing::warn!(%why, "livepay: an adopted session could not be funded");
                slot.ended
                    .send_replace(Some(Ended::Released(format!("not funded: {why}"))));
                Session::set_holding(&holding, Holding::Unfunded);
            }
        }
    });
    Ok(session)
}

/// `livepay.adopt_snapshot`: funds a session stopped elsewhere (`stop_payments`, a daemon's
/// handoff), taken `taken_at_ms` (unix ms).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (snapshot, taken_at_ms, signer_url, signer_headers, interval, max_payments, max_funded_s))]
pub(crate) fn adopt_snapshot(
    snapshot: &str,
    taken_at_ms: u64,
    signer_url: String,
    signer_headers: Vec<(String, String)>,
    interval: f64,
    max_payments: Option<u32>,
    max_funded_s: Option<f64>,
) -> PyResult<Session> {
    let shared = shared()?;
    let snapshot: Snapshot = serde_json::from_str(snapshot)
        .map_err(|e| invalid("snapshot", format!("is not a livepay snapshot: {e}")))?;
    snapshot
        .check()
        .map_err(|(field, why)| invalid("snapshot", format!("field {field}: {why}")))?;
    let kind = snapshot
        .payment
        .as_ref()
        .map_or(PaymentType::Live, |p| p.payment_type);
    if let Some(payment) = &snapshot.payment
        && payment.signer_url.trim_end_matches('/') != signer_url.trim_end_matches('/')
    {
        return Err(invalid(
            "signer_url",
            "differs from the snapshot's: the signer headers go only to the signer you name",
        )
        .into());
    }
    let now_ms = unix_ms();
    if taken_at_ms > now_ms.saturating_add(60_000) {
        return Err(invalid("taken_at_ms", "is in the future").into());
    }
    let config = config_of(&shared, kind, interval, max_payments, max_funded_s)?;
    let elapsed = Duration::from_millis(now_ms.saturating_sub(taken_at_ms));
    let session = Session::new(
        Arc::clone(&shared),
        snapshot.session_id.clone(),
        snapshot.control_url.clone(),
        snapshot.app_url.clone(),
    );
    let engine = Engine::resume(
        &config,
        snapshot,
        signer_headers,
        shared.clock.now(),
        elapsed,
        StatusTable::new(),
    )
    .map_err(|e| invalid("snapshot", e.to_string()))?;
    session.fund(engine)?;
    Ok(session)
}

/// A session nobody holds any more (its last Python reference gone, or a reservation whose
/// `await` was cancelled as it finished) can never be closed or watched: it is closed, so that
/// nothing pays for a stream no one can end (go-livepeer #4016's orphan, made worse by a funder).
impl Drop for Session {
    fn drop(&mut self) {
        self.dropped.store(true, std::sync::atomic::Ordering::Release);
        if self.slot.ended.borrow().is_some() {
            return;
        }
        // No log record here: a drop may run while the interpreter is finalizing.
        if let Holding::Funding(key) = *self.holding.borrow() {
            let _ = self.shared.handle.close(key);
        }
    }
}

#[pymethods]
impl Session {
    /// Whether the session is released (for any cause).
    #[getter]
    fn released(&self) -> bool {
        matches!(self.ended(), Some(Ended::Released(_)))
    }

    /// Why it was released; `None` while it is not.
    #[getter]
    fn release_reason(&self) -> Option<String> {
        match self.ended() {
            Some(Ended::Released(reason)) => Some(reason),
            _ => None,
        }
    }

    /// Whether funding was stopped here and the session handed off.
    #[getter]
    fn handed_off(&self) -> bool {
        self.holding() == Holding::HandedOff
    }

    /// The estimated runway, seconds (0 once released or handed off).
    #[getter]
    fn runway(&self) -> f64 {
        if self.ended().is_some() || self.holding() == Holding::HandedOff {
            return 0.0;
        }
        let view = *self.slot.view();
        let elapsed = view.taken.map_or(0, |t| {
            self.shared.clock.now().saturating_duration_since(t).as_millis()
        });
        #[allow(clippy::cast_precision_loss)]
        let left = u64::from(view.runway_ms).saturating_sub(elapsed) as f64;
        left / 1e3
    }

    /// Wei spent so far (an estimate never above what the signer billed); `None` until a
    /// payment's price was read.
    #[getter]
    fn spend_wei(&self) -> Option<u128> {
        self.slot.view().spend_wei
    }

    /// The core's counters as JSON text.
    fn stats_json(&self) -> String {
        let s = self.slot.view().stats;
        serde_json::json!({
            "payments_sent": s.payments_sent,
            "payments_accepted": s.payments_accepted,
            "cycles_skipped": s.cycles_skipped,
            "failures": s.failures,
            "lost_mints": s.lost_mints,
            "reposts": s.reposts,
            "reposts_credited": s.reposts_credited,
            "replays_refused": s.replays_refused,
            "resyncs": s.resyncs,
            "refreshes": s.refreshes,
            "at_risk": s.at_risk,
            "lapses": s.lapses,
            "billed_s": s.billed.as_millis() as f64 / 1e3,
            "surplus_s": s.surplus.as_millis() as f64 / 1e3,
            "events_dropped": self.slot.events_dropped.load(std::sync::atomic::Ordering::Relaxed),
        })
        .to_string()
    }

    /// The next event as JSON text; `None` once the release was yielded (or funding stopped).
    fn next_event<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let slot = Arc::clone(&self.slot);
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(crate::events::next(&slot).await) })
    }

    /// The release reason, once released.
    fn wait_released<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut ended = self.slot.ended.subscribe();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            loop {
                match ended.borrow_and_update().clone() {
                    Some(Ended::Released(reason)) => return Ok(reason),
                    Some(Ended::Stopped) => return Err(Problem::HandedOff.into()),
                    None => {}
                }
                if ended.changed().await.is_err() {
                    return Err(Problem::Closed.into());
                }
            }
        })
    }

    /// Stops funding without releasing; the snapshot (JSON text) and the unix ms it was taken.
    /// Idempotent: a second call returns the same snapshot. The stop runs in its own task, so a
    /// cancelled `await` still ends with funding stopped and the snapshot kept here.
    fn stop_payments<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let handed = self
            .handed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let key = match (self.holding(), self.ended(), handed) {
            (Holding::HandedOff, _, Some(snapshot)) => {
                return pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(snapshot) });
            }
            (_, Some(Ended::Released(reason)), _) => return Err(Problem::Released(reason).into()),
            (Holding::HandedOff, _, None) => return Err(Problem::HandedOff.into()),
            (Holding::Pending | Holding::Unfunded, _, _) => {
                return Err(Problem::Config("the adoption is not funded (yet)".into()).into());
            }
            (Holding::Stopping(_), _, _) => {
                // Another call's stop is under way (perhaps one whose `await` was cancelled):
                // its snapshot is this call's too.
                let mut holding = self.holding.subscribe();
                let handed = Arc::clone(&self.handed);
                let mut ended = self.slot.ended.subscribe();
                return pyo3_async_runtimes::tokio::future_into_py(py, async move {
                    let _ = holding.wait_for(|h| !matches!(h, Holding::Stopping(_))).await;
                    let taken = handed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    match (taken, ended.borrow_and_update().clone()) {
                        (Some(taken), _) => Ok(taken),
                        (None, Some(Ended::Released(reason))) => Err(Problem::Released(reason).into()),
                        (None, _) => Err(Problem::HandedOff.into()),
                    }
                });
            }
            (Holding::Funding(key), _, _) => key,
        };
        Session::set_holding(&self.holding, Holding::Stopping(key));
        let shared = Arc::clone(&self.shared);
        let holding = Arc::clone(&self.holding);
        let handed = Arc::clone(&self.handed);
        let task = runtime().spawn(async move {
            let stopped = shared.handle.stop(key).map_err(|_| Problem::Closed);
            let engine = match stopped {
                Ok(reply) => reply.await.map_err(|_| Problem::Closed),
                Err(e) => Err(e),
            };
            let mut engine = match engine {
                Ok(engine) => engine,
                Err(e) => {
                    Session::set_holding(&holding, Holding::Funding(key));
                    return Err(e);
                }
            };
            if let livepay_core::State::Released { reason } = engine.state() {
                Session::set_holding(&holding, Holding::Funding(key));
                return Err(Problem::Released(reason.to_string()));
            }
            // One generation newer than any this process made: the snapshot cannot be fed back
            // to an owner that kept an older one.
            let snapshot = engine.hand_off(shared.clock.now());
            let text = serde_json::to_string(&snapshot).map_err(|e| Problem::Config(e.to_string()))?;
            let taken = (text, unix_ms());
            *handed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(taken.clone());
            Session::set_holding(&holding, Holding::HandedOff);
            Ok(taken)
        });
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match task.await {
                Ok(result) => Ok(result?),
                Err(_) => Err(Problem::Closed.into()),
            }
        })
    }

    /// Stops funding, then the session on the orchestrator unless it is released; the reason.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        let mut holding = self.holding.subscribe();
        let mut ended = self.slot.ended.subscribe();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            if let Some(end) = ended.borrow_and_update().clone() {
                return Ok(match end {
                    Ended::Released(reason) => reason,
                    Ended::Stopped => "handed off".to_owned(),
                });
            }
            // An adoption still asking for its payer address is closed once it is funded.
            let now = *holding
                .wait_for(|h| !matches!(h, Holding::Pending | Holding::Stopping(_)))
                .await
                .map_err(|_| Problem::Closed)?;
            match now {
                Holding::HandedOff => return Ok("handed off".to_owned()),
                Holding::Funding(key) => shared.handle.close(key).map_err(|_| Problem::Closed)?,
                Holding::Pending | Holding::Unfunded | Holding::Stopping(_) => {}
            }
            loop {
                if let Some(end) = ended.borrow_and_update().clone() {
                    return Ok(match end {
                        Ended::Released(reason) => reason,
                        Ended::Stopped => "handed off".to_owned(),
                    });
                }
                if ended.changed().await.is_err() {
                    return Err(Problem::Closed.into());
                }
            }
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<livepay.Session {} {}>",
            self.session_id,
            match (self.ended(), self.holding()) {
                (Some(Ended::Released(_)), _) => "released",
                (_, Holding::HandedOff) => "handed off",
                (_, Holding::Pending | Holding::Unfunded) => "adopting",
                (_, Holding::Stopping(_)) => "stopping",
                _ => "funding",
            }
        )
    }
}
