//! [`LiveSession`]: the user API. Reserve a live-runner session (the 402 flow), keep it funded
//! from one tokio task, watch it through events and its state, and close it.
//!
//! Every funding decision is the core's: the task only runs [`livepay_core::run`] over a
//! [`HyperTransport`] and the [`TokioClock`], and forwards the commands of this API.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::stream::{self, Stream, StreamExt};
use livepay_core::client::{HttpRequest, ProtocolError, ReserveError, ReserveFlow, Reserved, origin};
use livepay_core::{
    Clock, Command, Endpoint, Event, Instant, NotFunded, Outcome, PaymentType, ReleaseReason, Reply, Session,
    State, StatusTable, Step,
};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc, watch};

use crate::clock::TokioClock;
use crate::http::{HttpClient, Peer};
use crate::transport::{HyperTransport, WireProblem};

mod error;
mod options;

pub use error::LiveError;
pub use options::{DEFAULT_EVENT_CAPACITY, LiveOptions};

/// A reserved live-runner session, kept funded in the background.
///
/// - [`reserve`](Self::reserve) runs the reservation (402 challenge, first mint, paid retry). For
///   a metered session (`live`, `lv2v`) it then funds the session from one tokio task, unless
///   [`LiveOptions::start_payments`] is `false`. Unpriced (offchain) and fixed-price sessions have
///   nothing to fund and no task.
/// - [`start_payments`](Self::start_payments) and [`stop_payments`](Self::stop_payments) start
///   and pause funding; [`close`](Self::close) stops funding, then asks the orchestrator to stop
///   the session.
/// - [`events`](Self::events), [`state`](Self::state) and [`wait_released`](Self::wait_released)
///   report what happens, including a release the orchestrator decided (404: `Gone`).
///
/// Dropping a `LiveSession` stops funding at once without any network I/O (a request in flight
/// is abandoned); the orchestrator releases the session when its credit runs out. Call
/// [`close`](Self::close) to release it now.
///
/// `Send + Sync`; `Debug` shows the session id, its URLs (without user-info or query) and its
/// state, never a secret.
pub struct LiveSession {
    shared: Arc<Shared>,
    funding: Funding,
    app_url: String,
    control_url: String,
}

/// What the session, its task and its subscribers share.
struct Shared {
    session_id: String,
    table: StatusTable,
    events: broadcast::Sender<Event>,
    state: watch::Sender<State>,
    /// The number of the latest funding run that has ended.
    runs_ended: watch::Sender<u64>,
}

enum Funding {
    /// Funded by a task running the core's driver.
    Metered(Arc<Metered>),
    /// Nothing to fund: only `close` sends a request.
    Unfunded { http: Box<HttpClient>, why: NotFunded },
}

struct Metered {
    transport: HyperTransport,
    clock: TokioClock,
    slot: Mutex<Slot>,
}

/// Who holds the machine: the session (idle) or a funding task (running).
struct Slot {
    /// The machine, while no task runs.
    session: Option<Session>,
    /// Commands to the running task; `None` while idle.
    commands: Option<mpsc::UnboundedSender<Command>>,
    /// The running task, to abort on drop.
    task: Option<tokio::task::AbortHandle>,
    /// Funding runs started so far; each task is one run.
    runs: u64,
    /// A stop that failed during the latest runs.
    stop_failed: Option<Reply>,
}

impl Metered {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // Every update under the lock is a single assignment or a `take`: a panic elsewhere cannot
        // leave the slot half-written, so recover a poisoned guard.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    fn publish(&self, event: Event) {
        tracing::debug!(session = %self.session_id, %event, "livepay: event");
        if let Event::StateChanged { to, .. } = event {
            self.state.send_replace(to);
        }
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }
}

impl LiveSession {
    /// Reserves a session (protocol.md §2.1, §2.3) and, for a metered one, starts funding it
    /// unless [`LiveOptions::start_payments`] is `false`.
    ///
    /// # Errors
    ///
    /// [`LiveError::NoRuntime`] outside a tokio runtime; [`LiveError::Config`] or
    /// [`LiveError::PaymentTypeMismatch`] for a bad configuration (before any request);
    /// [`LiveError::Http`] when the HTTP client cannot be built; [`LiveError::Reserve`] when the
    /// reservation is refused or its answers are unusable; [`LiveError::Unreachable`] when a
    /// reservation request gets no usable answer.
    pub async fn reserve(options: LiveOptions) -> Result<Self, LiveError> {
        let handle = Handle::try_current().map_err(|_| LiveError::NoRuntime)?;
        let LiveOptions {
            reserve,
            mut config,
            http,
            client,
            start_payments,
            table,
            event_capacity,
        } = options;
        let payment_type = reserve.payment_type;
        if config.payment_type != payment_type {
            return Err(LiveError::PaymentTypeMismatch {
                reserve: payment_type,
                config: config.payment_type,
            });
        }
        // Whether the session will be funded is the reservation's answer; check the timings
        // now, before anything is paid.
        config.offchain = false;
        if reserve.signer_url.is_some() {
            config.validate()?;
        }
        let http = match client {
            Some(client) => client,
            None => HttpClient::new(http).map_err(LiveError::Http)?,
        };
        let clock = TokioClock::new();
        let (reserved, minted_at) = reserve_over(&http, &clock, reserve).await?;
        let Reserved {
            session_id,
            app_url,
            control_url,
            payment,
        } = reserved;
        tracing::debug!(session = %session_id, metered = payment.is_some() && payment_type != PaymentType::Fixed, "livepay: reserved");
        let (events, _) = broadcast::channel(event_capacity.clamp(1, 1 << 16));
        let shared = Arc::new(Shared {
            session_id,
            table,
            events,
            state: watch::Sender::new(State::Reserved),
            runs_ended: watch::Sender::new(0),
        });
        let funding = match payment {
            Some(payment) if payment_type != PaymentType::Fixed => {
                // The signer's prepay runs from the first mint, not from the reservation's answer.
                let mut session = Session::new(&config, minted_at)?;
                let metered = Arc::new(Metered {
                    transport: HyperTransport::new(http, payment),
                    clock,
                    slot: Mutex::new(Slot {
                        session: None,
                        commands: None,
                        task: None,
                        runs: 0,
                        stop_failed: None,
                    }),
                });
                let mut slot = metered.lock();
                if start_payments {
                    session.start(clock.now());
                    spawn_run(&handle, &shared, &metered, &mut slot, session);
                } else {
                    slot.session = Some(session);
                }
                drop(slot);
                Funding::Metered(metered)
            }
            Some(_) => Funding::Unfunded {
                http: Box::new(http),
                why: NotFunded::FixedPrice,
            },
            None => Funding::Unfunded {
                http: Box::new(http),
                why: NotFunded::Offchain,
            },
        };
        Ok(Self {
            shared,
            funding,
            app_url,
            control_url,
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
    /// unpriced (offchain) or fixed-price session.
    pub fn is_metered(&self) -> bool {
        matches!(self.funding, Funding::Metered(_))
    }

    /// The current state. An unfunded session stays [`State::Reserved`] until closed.
    pub fn state(&self) -> State {
        *self.shared.state.borrow()
    }

    /// The session-scoped payment URL of the challenge, as the funding transport holds it (a
    /// refresh never changes it); `None` for an unfunded session.
    pub fn payment_url(&self) -> Option<String> {
        match &self.funding {
            Funding::Metered(metered) => Some(metered.transport.session().payment_url().to_owned()),
            Funding::Unfunded { .. } => None,
        }
    }

    /// The most recent problem seen on the wire while funding (never a secret); `None` for an
    /// unfunded session.
    pub fn last_problem(&self) -> Option<WireProblem> {
        match &self.funding {
            Funding::Metered(metered) => metered.transport.last_problem(),
            Funding::Unfunded { .. } => None,
        }
    }

    /// The session's events from now on, in order. A subscriber that falls more than
    /// [`LiveOptions::event_capacity`] events behind skips the oldest (never an error). The
    /// stream ends once the session is closed or dropped and its task has ended.
    pub fn events(&self) -> impl Stream<Item = Event> + Send + Unpin + 'static + use<> {
        let receiver = self.shared.events.subscribe();
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

    /// Starts (or resumes) funding. Idempotent; a no-op for an unfunded (offchain or fixed-price)
    /// session.
    ///
    /// # Errors
    ///
    /// [`LiveError::NoRuntime`] when a metered session's call is made outside a tokio runtime
    /// (the funding task runs on the caller's runtime); [`LiveError::AlreadyClosed`] once the
    /// session is released; [`LiveError::TaskLost`] if the funding task panicked.
    pub fn start_payments(&self) -> Result<(), LiveError> {
        let Funding::Metered(metered) = &self.funding else {
            return Ok(());
        };
        let handle = Handle::try_current().map_err(|_| LiveError::NoRuntime)?;
        if let State::Released { reason } = self.state() {
            return Err(LiveError::AlreadyClosed { reason });
        }
        let mut slot = metered.lock();
        if let Some(commands) = &slot.commands
            && commands.send(Command::Start).is_ok()
        {
            return Ok(());
        }
        let mut session = slot.session.take().ok_or(LiveError::TaskLost)?;
        if let State::Released { reason } = session.state() {
            slot.session = Some(session);
            return Err(LiveError::AlreadyClosed { reason });
        }
        session.start(metered.clock.now());
        spawn_run(&handle, &self.shared, metered, &mut slot, session);
        Ok(())
    }

    /// Stops funding without releasing the session (back to [`State::Reserved`]), and returns
    /// once the funding task has ended: no request is in flight then. A payment already under way
    /// completes first. A no-op when not funding.
    pub async fn stop_payments(&self) {
        let Funding::Metered(metered) = &self.funding else {
            return;
        };
        let run = {
            let slot = metered.lock();
            match &slot.commands {
                Some(commands) if commands.send(Command::Stop).is_ok() => slot.runs,
                _ => return,
            }
        };
        self.run_ended(run).await;
    }

    /// Stops funding, then asks the orchestrator to stop the session (`POST {control_url}/stop`)
    /// and reports it released. Skips the request when the session is already released, and
    /// returns the reason it was released with.
    ///
    /// # Errors
    ///
    /// [`LiveError::StopFailed`] when the orchestrator did not acknowledge the stop (funding is
    /// stopped all the same); [`LiveError::NoRuntime`] outside a tokio runtime;
    /// [`LiveError::TaskLost`] if the funding task panicked.
    pub async fn close(self) -> Result<ReleaseReason, LiveError> {
        let metered = match &self.funding {
            Funding::Metered(metered) => metered,
            Funding::Unfunded { http, why } => return self.close_unfunded(http, *why).await,
        };
        let run = {
            let mut slot = metered.lock();
            slot.stop_failed = None;
            let running = matches!(&slot.commands, Some(commands) if commands.send(Command::Close).is_ok());
            if running {
                slot.runs
            } else {
                let handle = Handle::try_current().map_err(|_| LiveError::NoRuntime)?;
                let mut session = slot.session.take().ok_or(LiveError::TaskLost)?;
                if let State::Released { reason } = session.state() {
                    slot.session = Some(session);
                    return Ok(reason);
                }
                session.close(metered.clock.now());
                spawn_run(&handle, &self.shared, metered, &mut slot, session);
                slot.runs
            }
        };
        self.run_ended(run).await;
        let mut slot = metered.lock();
        let stop_failed = slot.stop_failed.take();
        match slot.session.as_ref().map(Session::state) {
            Some(State::Released { reason }) => match stop_failed {
                None => Ok(reason),
                Some(reply) => Err(LiveError::StopFailed {
                    reply,
                    problem: metered.transport.last_problem().filter(is_stop_problem),
                }),
            },
            // A closed run always ends released; anything else means the task was lost.
            _ => Err(LiveError::TaskLost),
        }
    }

    /// Close without a funding task: `POST {control_url}/stop` directly, classified by the table.
    async fn close_unfunded(&self, http: &HttpClient, why: NotFunded) -> Result<ReleaseReason, LiveError> {
        if let State::Released { reason } = self.state() {
            return Ok(reason);
        }
        Handle::try_current().map_err(|_| LiveError::NoRuntime)?;
        let request = HttpRequest::post(format!("{}/stop", self.control_url.trim_end_matches('/')));
        let (reply, problem) = match http.execute(Peer::Orchestrator, &request).await {
            Ok(response) if (200..300).contains(&response.status) => (Reply::Status(response.status), None),
            Ok(response) => {
                let error = ProtocolError::Status {
                    endpoint: Endpoint::Stop,
                    status: response.status,
                    message: livepay_core::wire::error_message(&response.body).to_owned(),
                };
                let problem = WireProblem::Protocol {
                    endpoint: Endpoint::Stop,
                    message: error.to_string(),
                };
                (Reply::Status(response.status), Some(problem))
            }
            Err(error) => (
                error.reply(),
                Some(WireProblem::Http {
                    endpoint: Endpoint::Stop,
                    error,
                }),
            ),
        };
        tracing::debug!(session = %self.shared.session_id, ?why, %reply, "livepay: stop answered");
        let stopped = matches!(
            self.shared.table.classify(Endpoint::Stop, reply),
            Step::Done(Outcome::Stopped | Outcome::Gone { .. })
        );
        // As the core does: report the failed stop, then the release.
        if !stopped {
            self.shared.publish(Event::StopFailed { reply });
        }
        let reason = ReleaseReason::ClosedByClient;
        self.shared.publish(Event::StateChanged {
            from: self.state(),
            to: State::Released { reason },
        });
        if stopped {
            Ok(reason)
        } else {
            Err(LiveError::StopFailed { reply, problem })
        }
    }

    /// Waits until funding run `run` has ended.
    async fn run_ended(&self, run: u64) {
        let mut receiver = self.shared.runs_ended.subscribe();
        // The sender lives in `self.shared`: `wait_for` cannot fail while `self` exists.
        let _ = receiver.wait_for(|&ended| ended >= run).await;
    }
}

fn is_stop_problem(problem: &WireProblem) -> bool {
    matches!(
        problem,
        WireProblem::Http {
            endpoint: Endpoint::Stop,
            ..
        } | WireProblem::Protocol {
            endpoint: Endpoint::Stop,
            ..
        }
    )
}

impl Drop for LiveSession {
    /// Stops funding without network I/O: the task is aborted (a request in flight is abandoned)
    /// and no stop is sent.
    fn drop(&mut self) {
        if let Funding::Metered(metered) = &self.funding {
            let mut slot = metered.lock();
            slot.commands = None;
            if let Some(task) = slot.task.take() {
                task.abort();
            }
        }
    }
}

impl fmt::Debug for LiveSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSession")
            .field("session_id", &self.shared.session_id)
            .field("app_url", &crate::redact_url(&self.app_url))
            .field("control_url", &crate::redact_url(&self.control_url))
            .field("metered", &self.is_metered())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Hands `session` to a new funding task on `handle`; the caller holds the slot's lock.
fn spawn_run(
    handle: &Handle,
    shared: &Arc<Shared>,
    metered: &Arc<Metered>,
    slot: &mut Slot,
    session: Session,
) {
    let (commands, receiver) = mpsc::unbounded_channel();
    slot.runs += 1;
    slot.commands = Some(commands);
    let task = handle.spawn(drive(
        Arc::clone(shared),
        Arc::clone(metered),
        session,
        receiver,
        slot.runs,
    ));
    slot.task = Some(task.abort_handle());
}

/// Marks run `run` ended however the task ends (returned, aborted, panicked), so that no caller
/// waits for it forever.
struct RunEnded {
    shared: Arc<Shared>,
    run: u64,
}

impl Drop for RunEnded {
    fn drop(&mut self) {
        let run = self.run;
        self.shared
            .runs_ended
            .send_modify(|ended| *ended = (*ended).max(run));
    }
}

/// The funding task: runs the core's driver until the session is idle or released, then hands
/// the machine back to the slot. A command that arrives as the driver returns is applied and the
/// driver run again, so no command is lost.
async fn drive(
    shared: Arc<Shared>,
    metered: Arc<Metered>,
    mut session: Session,
    mut receiver: mpsc::UnboundedReceiver<Command>,
    run: u64,
) {
    let ended = RunEnded {
        shared: Arc::clone(&shared),
        run,
    };
    let mut stop_failed = None;
    loop {
        let commands = stream::poll_fn(|cx| receiver.poll_recv(cx));
        let exit = livepay_core::run(
            &mut session,
            &metered.transport,
            &metered.clock,
            &shared.table,
            commands,
            |event| {
                if let Event::StopFailed { reply } = event {
                    stop_failed = Some(reply);
                }
                shared.publish(event);
            },
        )
        .await;
        let mut slot = metered.lock();
        let mut pending = false;
        while let Ok(command) = receiver.try_recv() {
            apply(&mut session, command, metered.clock.now());
            pending = true;
        }
        if pending && !session.state().is_released() {
            drop(slot);
            continue;
        }
        while let Some(event) = session.poll_event() {
            shared.publish(event);
        }
        tracing::debug!(session = %shared.session_id, ?exit, "livepay: funding run ended");
        shared.state.send_replace(session.state());
        if stop_failed.is_some() {
            slot.stop_failed = stop_failed;
        }
        slot.session = Some(session);
        slot.commands = None;
        slot.task = None;
        drop(slot);
        drop(ended);
        return;
    }
}

/// A command that reached the task after the driver returned, applied as the driver would.
fn apply(session: &mut Session, command: Command, now: Instant) {
    match command {
        Command::Start => session.start(now),
        Command::Stop => session.stop(now),
        Command::Close => session.close(now),
        Command::PaymentDue => session.payment_due(now),
    }
}

/// The reservation flow over `http`, keeping the HTTP error of a request that got no answer
/// (the core's flow only sees a [`Reply`]). Returns the reservation and when its payment was
/// minted: the signer's prepay runs from then.
///
/// The payer address is cached per signer in `http` (protocol.md §2.1): a known one skips
/// `sign-orchestrator-info`, and a successful flow caches the one it used. A failed flow that
/// used the cached address drops it, so a stale address costs one failed reservation at most.
async fn reserve_over(
    http: &HttpClient,
    clock: &TokioClock,
    mut options: livepay_core::client::ReserveOptions,
) -> Result<(Reserved, Instant), LiveError> {
    let signer_url = options.signer_url.clone();
    let mut from_cache = None;
    if options.payer_address.is_none()
        && let Some(cached) = signer_url.as_deref().and_then(|s| http.cached_payer(s))
    {
        options.payer_address = Some(cached.clone());
        from_cache = Some(cached);
    }
    let signer_origin = signer_url.as_deref().and_then(origin);
    let mut flow = ReserveFlow::new(options)?;
    let mut minted_at = clock.now();
    let mut failure = None;
    while let Some(request) = flow.poll_request() {
        let peer = if signer_origin.is_some() && origin(&request.url) == signer_origin {
            Peer::Signer
        } else {
            Peer::Orchestrator
        };
        if peer == Peer::Signer && request.url.ends_with("/generate-live-payment") {
            minted_at = clock.now();
        }
        match http.execute(peer, &request).await {
            Ok(response) => flow.handle_response(response.status, &response.body),
            Err(error) => {
                tracing::debug!(%error, "livepay: reservation request failed");
                flow.handle_failure(error.reply());
                failure = Some(error);
            }
        }
    }
    let payer = flow.payer_address().map(str::to_owned);
    let result = flow.result();
    if let Some(signer_url) = &signer_url {
        match (&result, payer) {
            (Ok(_), Some(payer)) => http.cache_payer(signer_url, payer),
            (Err(_), _) => {
                if let Some(cached) = &from_cache {
                    http.forget_payer(signer_url, cached);
                }
            }
            (Ok(_), None) => {}
        }
    }
    match result {
        Ok(reserved) => Ok((reserved, minted_at)),
        Err(ReserveError::Unreachable { endpoint, reply }) => Err(match failure {
            Some(error) => LiveError::Unreachable { endpoint, error },
            None => LiveError::Reserve(ReserveError::Unreachable { endpoint, reply }),
        }),
        Err(error) => Err(LiveError::Reserve(error)),
    }
}

/// The user-facing types cross threads and tasks freely.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<LiveSession>();
    send_sync::<LiveOptions>();
    send_sync::<LiveError>();
};
