//! [`LiveSession`]: the user API. Reserve a live-runner session (the 402 flow), keep it funded
//! from one tokio task, watch it through events, its state and its counters, and close it.
//!
//! Every decision is the core's: the session is a [`livepay_core::engine::Engine`], its task
//! runs [`Engine::run`] over a [`HyperHttp`](crate::HyperHttp) and the [`TokioClock`], and every
//! command of this API (start, stop, close) is the engine's command. This module only moves the
//! engine between the session and its task and publishes what the engine reports.

use std::fmt;
use std::sync::Arc;

use futures::stream::{self, Stream, StreamExt};
use livepay_core::engine::Engine;
use livepay_core::{Clock as _, Command, Event, ReleaseReason, State, Stats, redact};
use tokio::runtime::Handle;
use tokio::sync::broadcast;

use crate::clock::TokioClock;
use crate::http::HttpClient;
use crate::hyper_http::HyperHttp;

mod error;
mod options;
mod task;

pub use error::{LiveError, WireProblem};
pub use options::{CredentialSource, DEFAULT_EVENT_CAPACITY, LiveOptions};
use task::{Shared, spawn_run};

/// A reserved live-runner session, kept funded in the background.
///
/// - [`reserve`](Self::reserve) runs the reservation (402 challenge, first mint, paid retry). For
///   a metered session (`live`, `lv2v`) it then funds the session from one tokio task, unless
///   [`LiveOptions::start_payments`] is `false`. Unpriced (offchain) and fixed-price sessions have
///   nothing to fund: no task runs until they are closed.
/// - [`start_payments`](Self::start_payments) and [`stop_payments`](Self::stop_payments) start
///   and pause funding; [`close`](Self::close) stops funding, then has the engine stop the
///   session on the orchestrator (for every kind of session, unfunded ones included).
/// - [`events`](Self::events), [`state`](Self::state), [`stats`](Self::stats) and
///   [`wait_released`](Self::wait_released) report what happens, including a release the
///   orchestrator decided (404: `Gone`).
///
/// Dropping a `LiveSession` stops funding at once without any network I/O (a request in flight
/// is abandoned); the orchestrator releases the session when its credit runs out. Call
/// [`close`](Self::close) to release it now.
///
/// `Send + Sync`; `Debug` shows the session id, its URLs (without user-info or query) and its
/// state, never a secret.
pub struct LiveSession {
    shared: Arc<Shared>,
    app_url: String,
    control_url: String,
    payment_url: Option<String>,
    metered: bool,
}

impl LiveSession {
    /// Reserves a session (`docs/protocol.md` §2.1, §2.3, with [`reserve`](crate::reserve)) and, for a metered
    /// one, starts funding it unless [`LiveOptions::start_payments`] is `false`. The runway
    /// counts from the reservation's mint ([`Reserved::minted_at`]).
    ///
    /// # Errors
    ///
    /// [`LiveError::NoRuntime`] outside a tokio runtime; [`LiveError::Config`] or
    /// [`LiveError::PaymentTypeMismatch`] for a bad configuration (before any request);
    /// [`LiveError::Http`] when the HTTP client cannot be built; [`LiveError::Reserve`] when the
    /// reservation is refused or its answers are unusable; [`LiveError::Unreachable`] when a
    /// reservation request gets no usable answer.
    ///
    /// [`Reserved::minted_at`]: livepay_core::engine::Reserved::minted_at
    pub async fn reserve(options: LiveOptions) -> Result<Self, LiveError> {
        Self::reserve_until(options, std::future::pending()).await
    }

    /// [`reserve`](Self::reserve), cancelled when `cancel` resolves if no payment has left yet
    /// ([`LiveError::Cancelled`]: nothing reserved, nothing paid). After the paid reservation
    /// has left, the reservation finishes: stop the session it returns
    /// ([`close`](Self::close)) rather than leave it running on its prepay.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve), and [`LiveError::Cancelled`].
    pub async fn reserve_until(
        options: LiveOptions,
        cancel: impl std::future::Future<Output = ()>,
    ) -> Result<Self, LiveError> {
        let handle = Handle::try_current().map_err(|_| LiveError::NoRuntime)?;
        let LiveOptions {
            reserve: reserve_options,
            mut config,
            http,
            client,
            start_payments,
            table,
            event_capacity,
            credentials,
        } = options;
        let mut reserve_options = reserve_options;
        // The reservation's signer calls need a credential too.
        let first_credential = match &credentials {
            Some(source) => source.fetch().await,
            None => None,
        };
        if let Some(credential) = &first_credential {
            reserve_options
                .signer_headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(&credential.name));
            reserve_options
                .signer_headers
                .push((credential.name.clone(), credential.value.clone()));
        }
        let payment_type = reserve_options.payment_type;
        if config.payment_type != payment_type {
            return Err(LiveError::PaymentTypeMismatch {
                reserve: payment_type,
                config: config.payment_type,
            });
        }
        // Whether the session will be funded is the reservation's answer; check the timings
        // now, before anything is paid.
        config.offchain = false;
        if reserve_options.signer_url.is_some() {
            config.validate()?;
        }
        let client = match client {
            Some(client) => client,
            None => HttpClient::new(http).map_err(LiveError::Http)?,
        };
        let clock = TokioClock::new();
        let reserved = crate::reserve_until(&client, &clock, reserve_options, cancel).await?;
        let session_id = reserved.session_id.clone();
        let app_url = reserved.app_url.clone();
        let control_url = reserved.control_url.clone();
        let mut engine = Engine::new(&config, reserved, table)?;
        engine.handle_credential(clock.now(), first_credential.as_ref());
        let metered = engine.is_metered();
        let payment_url = metered.then(|| engine.protocol().payment_url().to_owned());
        tracing::debug!(session = %session_id, metered, "livepay: funding engine ready");
        let shared = Arc::new(Shared::new(
            session_id,
            HyperHttp::new(client, clock).with_credentials(credentials),
            &engine,
            event_capacity,
        ));
        {
            let mut slot = shared.lock();
            if start_payments && metered {
                engine.start(clock.now());
                spawn_run(&handle, &shared, &mut slot, engine);
            } else {
                slot.engine = Some(engine);
            }
        }
        Ok(Self {
            shared,
            app_url,
            control_url,
            payment_url,
            metered,
        })
    }

    /// The session id (the challenge's manifest id, or the unpriced reservation's id).
    pub fn session_id(&self) -> &str {
        &self.shared.session_id
    }

    /// Where the app is served.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// The session's control URL.
    pub fn control_url(&self) -> &str {
        &self.control_url
    }

    /// Whether the session is funded after the reservation (`live`, `lv2v`); `false` for an
    /// unpriced (offchain) or fixed-price session ([`Engine::is_metered`]).
    pub fn is_metered(&self) -> bool {
        self.metered
    }

    /// The current state. An unfunded session stays [`State::Reserved`] until closed.
    pub fn state(&self) -> State {
        *self.shared.state.borrow()
    }

    /// The engine's counters ([`Engine::stats`]) as of its latest step: payments sent and
    /// credited, skipped cycles, failures, lost mints, refreshes, at-risk and lapse episodes, the
    /// service time bought.
    pub fn stats(&self) -> Stats {
        *self.shared.stats.borrow()
    }

    /// The engine's estimated runway now: the time until the orchestrator's credit for the
    /// session runs out, as [`Engine::runway`] gives it at this instant (never later than the
    /// truth, up to the orchestrator's billing tick). The engine's estimate of the credit's end
    /// ([`Engine::funded_until`]) is published with its counters after every step, so this is a
    /// cheap read and exact as of that step. Zero once the credit is estimated spent; a released
    /// session keeps the estimate it had, which no longer buys anything.
    pub fn runway(&self) -> livepay_core::Duration {
        let until = self.shared.funding.borrow().funded_until;
        until.saturating_duration_since(self.shared.http.clock().now())
    }

    /// What the session has cost so far, in wei, as of the engine's latest step
    /// ([`Engine::spend_wei`]): the reservation's prepay plus the service time billed since
    /// ([`Stats::billed`]), at the session price its minted payments state. `None` while that
    /// price is unknown: an unpriced session, or payments the engine cannot read (then price
    /// the bought time yourself, e.g. at the runner's discovered price).
    pub fn spend_wei(&self) -> Option<u128> {
        self.shared.funding.borrow().spend_wei
    }

    /// The session-scoped payment URL of the challenge (a refresh never changes it); `None` for
    /// an unfunded session.
    pub fn payment_url(&self) -> Option<String> {
        self.payment_url.clone()
    }

    /// The most recent problem seen on the wire (never a secret): a request that got no HTTP
    /// answer ([`WireProblem::Http`]), or an answer the engine found wrong
    /// ([`WireProblem::Protocol`]: an error status with its reason, a malformed body). `None`
    /// until something went wrong.
    pub fn last_problem(&self) -> Option<WireProblem> {
        self.shared.problem()
    }

    /// The session's events, in order: the first call gets every event since the reservation
    /// (its receiver was subscribed before funding started, so none is lost to the race with
    /// the funding task), later calls the events from then on. A subscriber that falls more
    /// than [`LiveOptions::event_capacity`] events behind skips the oldest (never an error). The
    /// stream ends once the session is closed or dropped and its task has ended.
    pub fn events(&self) -> impl Stream<Item = Event> + Send + Unpin + 'static + use<> {
        let first = self
            .shared
            .first_events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let receiver = first.unwrap_or_else(|| self.shared.events.subscribe());
        stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, receiver)),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "livepay: slow event subscriber skipped events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    /// Completes when the session is released, with the reason: closed, gone (the orchestrator
    /// released it, seen as a 404), rejected, budget exhausted. An unfunded or stopped session is
    /// only released by [`close`](Self::close), so this waits until then.
    pub async fn wait_released(&self) -> ReleaseReason {
        let mut receiver = self.shared.state.subscribe();
        if let Ok(State::Released { reason }) = receiver.wait_for(|s| s.is_released()).await.map(|s| *s) {
            return reason;
        }
        // The sender lives as long as `self`: not reached.
        std::future::pending().await
    }

    /// Starts (or resumes) funding ([`Engine::start`]). Idempotent; a no-op for an unfunded
    /// (offchain or fixed-price) session.
    ///
    /// # Errors
    ///
    /// [`LiveError::NoRuntime`] when a metered session's call is made outside a tokio runtime
    /// (the funding task runs on the caller's runtime); [`LiveError::AlreadyClosed`] once the
    /// session is released; [`LiveError::TaskLost`] if the funding task panicked.
    pub fn start_payments(&self) -> Result<(), LiveError> {
        if !self.metered {
            return Ok(());
        }
        let handle = Handle::try_current().map_err(|_| LiveError::NoRuntime)?;
        if let State::Released { reason } = self.state() {
            return Err(LiveError::AlreadyClosed { reason });
        }
        let mut slot = self.shared.lock();
        if let Some(commands) = &slot.commands
            && commands.send(Command::Start).is_ok()
        {
            return Ok(());
        }
        let mut engine = slot.engine.take().ok_or(LiveError::TaskLost)?;
        if let State::Released { reason } = engine.state() {
            slot.engine = Some(engine);
            return Err(LiveError::AlreadyClosed { reason });
        }
        engine.start(self.shared.http.clock().now());
        spawn_run(&handle, &self.shared, &mut slot, engine);
        Ok(())
    }

    /// Says the session will be closed `after` from now (a stream of known length, a
    /// `--duration`): funding stops building runway and lets the credit run out then
    /// ([`Engine::plan_end`]). Past it, funding goes on as before. A no-op when nothing is funded.
    pub fn plan_end(&self, after: std::time::Duration) {
        if !self.metered {
            return;
        }
        let now = self.shared.http.clock().now();
        let at =
            now + livepay_core::Duration::from_micros(u64::try_from(after.as_micros()).unwrap_or(u64::MAX));
        let mut slot = self.shared.lock();
        let sent = matches!(&slot.commands, Some(commands) if commands.send(Command::PlanEnd(at)).is_ok());
        if !sent && let Some(engine) = slot.engine.as_mut() {
            engine.plan_end(now, at);
            self.shared.publish_funding(engine);
        }
    }

    /// The server released the session, as something outside the payment path says (a job's
    /// events URL, a runner app forwarding the orchestrator's `released` event): funding stops at
    /// once, a request in flight is cancelled, nothing more is paid, and the session is released
    /// with [`ReleaseReason::ReleasedByServer`] ([`Engine::handle_release_signal`]). No stop is
    /// sent. A no-op once released.
    pub fn signal_released(&self) {
        signal_released(&self.shared);
    }

    /// Watches `events_url` (a job's events, or a runner app forwarding the orchestrator's) for
    /// a release, reading it every `every` with the orchestrator's TLS policy. The first answer
    /// that announces one ([`release_announced`](livepay_core::engine::release_announced))
    /// releases the session as [`signal_released`](Self::signal_released) does. The watcher
    /// ends then, when the session is released otherwise, or when the session is dropped; a
    /// failed read is retried at the next tick. Returns the watcher's task.
    ///
    /// # Errors
    ///
    /// [`LiveError::NoRuntime`] outside a tokio runtime.
    pub fn watch_events_url(
        &self,
        events_url: impl Into<String>,
        every: std::time::Duration,
    ) -> Result<tokio::task::JoinHandle<()>, LiveError> {
        let handle = Handle::try_current().map_err(|_| LiveError::NoRuntime)?;
        let url = events_url.into();
        let shared = Arc::downgrade(&self.shared);
        let every = every.max(std::time::Duration::from_millis(10));
        Ok(handle.spawn(async move {
            loop {
                let Some(alive) = shared.upgrade() else { return };
                if alive.state.borrow().is_released() {
                    return;
                }
                let request = livepay_core::engine::Request::get(
                    livepay_core::Endpoint::Events,
                    url.clone(),
                );
                let client = alive.http.client().clone();
                drop(alive);
                let announced = match client.execute_owned(request).await {
                    Ok(answer) => {
                        tracing::debug!(status = answer.status, "livepay: events URL answered");
                        livepay_core::engine::release_announced(answer.status, &answer.body)
                    }
                    Err(error) => {
                        tracing::debug!(%error, "livepay: events URL unreachable");
                        false
                    }
                };
                if announced {
                    if let Some(alive) = shared.upgrade() {
                        tracing::debug!(session = %alive.session_id, "livepay: release announced on the events URL");
                        signal_released(&alive);
                    }
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }))
    }

    /// Stops funding without releasing the session ([`Engine::stop`]: back to
    /// [`State::Reserved`]), and returns once the funding task has ended: no request is in flight
    /// then. A payment already under way completes first. A no-op when not funding.
    pub async fn stop_payments(&self) {
        let run = {
            let slot = self.shared.lock();
            match &slot.commands {
                Some(commands) if commands.send(Command::Stop).is_ok() => slot.runs,
                _ => return,
            }
        };
        self.run_ended(run).await;
    }

    /// Stops funding, then has the engine stop the session on the orchestrator
    /// ([`Engine::close`]) and reports it released. Nothing is sent when the session is already
    /// released; returns the reason it was released with.
    ///
    /// # Errors
    ///
    /// [`LiveError::StopFailed`] when the orchestrator did not acknowledge the stop (funding is
    /// stopped all the same); [`LiveError::NoRuntime`] outside a tokio runtime;
    /// [`LiveError::TaskLost`] if the funding task panicked.
    pub async fn close(self) -> Result<ReleaseReason, LiveError> {
        let run = {
            let mut slot = self.shared.lock();
            slot.stop_failed = None;
            let running = matches!(&slot.commands, Some(commands) if commands.send(Command::Close).is_ok());
            if !running {
                let handle = Handle::try_current().map_err(|_| LiveError::NoRuntime)?;
                let mut engine = slot.engine.take().ok_or(LiveError::TaskLost)?;
                if let State::Released { reason } = engine.state() {
                    slot.engine = Some(engine);
                    return Ok(reason);
                }
                engine.close(self.shared.http.clock().now());
                spawn_run(&handle, &self.shared, &mut slot, engine);
            }
            slot.runs
        };
        self.run_ended(run).await;
        let mut slot = self.shared.lock();
        let stop_failed = slot.stop_failed.take();
        match slot.engine.as_ref().map(Engine::state) {
            Some(State::Released { reason }) => match stop_failed {
                None => Ok(reason),
                Some((reply, problem)) => Err(LiveError::StopFailed { reply, problem }),
            },
            // A closed run always ends released; anything else means the task was lost.
            _ => Err(LiveError::TaskLost),
        }
    }

    /// Waits until funding run `run` has ended.
    async fn run_ended(&self, run: u64) {
        let mut receiver = self.shared.runs_ended.subscribe();
        // The sender lives in `self.shared`: `wait_for` cannot fail while `self` exists.
        let _ = receiver.wait_for(|&ended| ended >= run).await;
    }
}

/// [`LiveSession::signal_released`] on the session's shared state.
fn signal_released(shared: &Shared) {
    let mut slot = shared.lock();
    let sent = matches!(&slot.commands, Some(commands) if commands.send(Command::ServerReleased).is_ok());
    if !sent && let Some(engine) = slot.engine.as_mut() {
        engine.handle_release_signal(shared.http.clock().now());
        shared.publish_funding(engine);
        shared.state.send_replace(engine.state());
    }
}

impl Drop for LiveSession {
    /// Stops funding without network I/O: the task is aborted (a request in flight is abandoned)
    /// and no stop is sent.
    fn drop(&mut self) {
        let mut slot = self.shared.lock();
        slot.commands = None;
        if let Some(task) = slot.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for LiveSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSession")
            .field("session_id", &self.shared.session_id)
            .field("app_url", &redact::url(&self.app_url))
            .field("control_url", &redact::url(&self.control_url))
            .field("metered", &self.metered)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The user-facing types cross threads and tasks freely.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<LiveSession>();
    send_sync::<LiveOptions>();
    send_sync::<LiveError>();
};
