//! [`Funder`]: funds thousands of sessions from **one** tokio task.
//!
//! Each session is a core [`Engine`]. The task holds one shared pooled [`HttpClient`], one timer
//! queue ([`timers`]: a binary heap with lazy invalidation), one `FuturesUnordered` of requests in
//! flight, and the concurrency lanes ([`lanes`]); its loop is the [`multiplexer`]. It moves bytes
//! and nothing else: each engine builds every request, reads every answer and makes every
//! decision, including the sequence of requests and when each session first pays.
//!
//! The Funder's own part is no payment decision:
//!
//! - **concurrency limits**: at most [`FunderConfig::per_signer_concurrency`] signer requests in
//!   flight per signer URL, and at most [`FunderConfig::per_orchestrator_concurrency`] requests
//!   (payments, refreshes, stops) per orchestrator origin. A session whose next request
//!   ([`Engine::peek_peer`]) has no room waits in a FIFO queue of its lane, and the engine is only
//!   asked for the request ([`Engine::poll_request`]) once there is room, so that queue time never
//!   counts as time on the wire for billing or latency. The second limit keeps a `close_all` of
//!   thousands of sessions from opening thousands of connections;
//! - **spread phases**: the engines are configured to pay first at a seeded instant within
//!   [`FunderConfig::start_spread`] of being added ([`FirstPayment::Within`]), so that sessions
//!   added together do not reach the signer in lockstep for the rest of their lives.
//!
//! Reserve on the funder's clock ([`Funder::clock`], [`FunderHandle::clock`]): the runway of a
//! session counts from its [`Reserved::minted_at`], which is on the clock of the reservation.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use livepay_core::engine::{Engine, Reserved, Snapshot};
use livepay_core::{Config, ConfigError, Duration, Event, Exit, FirstPayment, Stats, StatusTable};
use tokio::sync::{mpsc, oneshot};

use crate::clock::TokioClock;
use crate::http::HttpClient;
use crate::session::CredentialSource;

pub(crate) mod lanes;
pub(crate) mod multiplexer;
pub(crate) mod timers;

/// Identifies one session of a [`Funder`]. Never reused by the same funder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(u64);

impl SessionKey {
    /// The key as a number (unique per funder, from 1).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session#{}", self.0)
    }
}

/// How a [`Funder`] works, with documented defaults.
#[derive(Debug, Clone, Copy)]
pub struct FunderConfig {
    /// Most signer requests in flight at once per signer URL; more sessions wait in a FIFO
    /// queue. Default 64. Zero is treated as one.
    pub per_signer_concurrency: usize,
    /// Most requests in flight at once per orchestrator origin (payment POSTs, refreshes, stops);
    /// more wait in a FIFO queue. Default 256, the default keep-alive pool size per host
    /// ([`HttpConfig::max_idle_per_host`](crate::HttpConfig::max_idle_per_host)), so that bursts
    /// reuse pooled connections instead of opening (and closing) new ones. Zero is treated as one.
    pub per_orchestrator_concurrency: usize,
    /// Seeds each session's generator (its first-payment phase and retry jitter): session `key`
    /// gets [`rng::mix`](livepay_core::rng::mix)`(seed ^ key)`.
    pub seed: u64,
    /// The configuration of every session. Each engine replaces its `payment_type` with the
    /// reservation's; the funder replaces its `seed` (see [`seed`](Self::seed)) and its
    /// `first_payment` (see [`start_spread`](Self::start_spread)).
    pub session_config: Config,
    /// How replies are classified.
    pub table: StatusTable,
    /// Each new session pays first at an instant drawn uniformly from `[added, added + spread)`
    /// ([`FirstPayment::Within`]). `None` (the default) spreads over one [`Config::interval`];
    /// `Some(ZERO)` pays at once ([`FirstPayment::Immediately`]). A spread must be shorter than
    /// `prepay - safety_margin` ([`Funder::new`] checks).
    pub start_spread: Option<Duration>,
    /// Capacity of the event channel ([`Funder::events`]). When it is full, events are dropped and
    /// counted in [`FunderStats::events_dropped`]; the funding task never waits on a reader.
    /// The end of each session is never an event only: [`Funder::exits`] carries it without
    /// loss. Default 4096.
    pub event_capacity: usize,
}

impl Default for FunderConfig {
    fn default() -> Self {
        Self {
            per_signer_concurrency: 64,
            per_orchestrator_concurrency: 256,
            seed: 0,
            session_config: Config::default(),
            table: StatusTable::new(),
            start_spread: None,
            event_capacity: 4096,
        }
    }
}

impl FunderConfig {
    /// The configuration every session starts from: [`session_config`](Self::session_config)
    /// with the first payment spread over [`start_spread`](Self::start_spread).
    pub fn engine_config(&self) -> Config {
        let mut config = self.session_config;
        config.first_payment = match self.start_spread {
            None => FirstPayment::Within(config.interval),
            Some(span) if span == Duration::from_ticks(0) => FirstPayment::Immediately,
            Some(span) => FirstPayment::Within(span),
        };
        config
    }
}

/// Counters of a [`Funder`], read with [`FunderHandle::stats`] or [`Funder::stats`]. The payment
/// counters are the sums of the engines' own [`Stats`] (each session's growth is added after every
/// step, and its final counters at its [`Exit`]), never recounted from events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunderStats {
    /// Sessions held now (added, not yet released or stopped).
    pub sessions: u64,
    /// Sessions funding now ([`State::Funding`](livepay_core::State::Funding) or
    /// [`State::Skipped`](livepay_core::State::Skipped)).
    pub funding: u64,
    /// Sessions added so far.
    pub added: u64,
    /// Sessions released so far (any reason).
    pub released: u64,
    /// Sessions that left without a release so far: stopped ([`FunderHandle::stop`]), or with
    /// nothing to fund (a fixed price: [`Event::FundingNotRequired`]).
    pub stopped: u64,
    /// Payments sent ([`Stats::payments_sent`]).
    pub payments_sent: u64,
    /// Payments credited ([`Stats::payments_accepted`]).
    pub payments: u64,
    /// Cycles the signer skipped (482, [`Stats::cycles_skipped`]).
    pub skipped: u64,
    /// Transient failures ([`Stats::failures`]).
    pub failures: u64,
    /// Payments minted but never credited ([`Stats::lost_mints`]).
    pub lost_mints: u64,
    /// Successful refreshes ([`Stats::refreshes`]).
    pub refreshes: u64,
    /// `AtRisk` episodes ([`Stats::at_risk`]).
    pub at_risk: u64,
    /// `Lapsed` episodes ([`Stats::lapses`]).
    pub lapses: u64,
    /// Service time bought after the reservations ([`Stats::billed`]), all sessions.
    pub billed: Duration,
    /// Events dropped: the event channel was full (or an engine's own queue overflowed,
    /// [`Stats::events_dropped`]).
    pub events_dropped: u64,
    /// Signer requests in flight now, all signers.
    pub signer_in_flight: u64,
    /// The most signer requests ever in flight at once for any one signer: never above
    /// [`FunderConfig::per_signer_concurrency`].
    pub signer_in_flight_peak: u64,
    /// Sessions waiting for a signer slot now.
    pub signer_queued: u64,
    /// The most requests ever in flight at once to any one orchestrator: never above
    /// [`FunderConfig::per_orchestrator_concurrency`].
    pub orchestrator_in_flight_peak: u64,
    /// Sessions waiting for an orchestrator slot now.
    pub orchestrator_queued: u64,
    /// New signer states a [`WriteAhead`] could not make durable (their POST went out all the
    /// same).
    pub write_ahead_failures: u64,
    /// New signer states a [`WriteAhead`] refused ([`Persisted::Refused`]): their POST never
    /// went out.
    pub write_aheads_refused: u64,
}

/// What a [`WriteAhead`] made of a new signer state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persisted {
    /// Durable: the POST carrying it goes out.
    Durable,
    /// The store gave up (a failing disk): the POST goes out all the same (availability over
    /// crash safety), counted in [`FunderStats::write_ahead_failures`].
    Failed,
    /// This process must never post the state (another process owns the session now): the
    /// engine is left holding its POST, which never goes out. Stop or drop the session
    /// ([`FunderHandle::stop`]); the engine is not told, because nothing it could do with the
    /// answer is allowed.
    Refused,
}

/// Makes each new signer state durable before the payment carrying it is posted
/// ([`Funder::with_write_ahead`]): after every signer 200, the funder hands the session's
/// [`Snapshot`] to [`persist`](Self::persist) and holds that session's next request (the POST)
/// until the future resolves. Other sessions go on meanwhile.
///
/// So a state the orchestrator has seen is never newer than the one persisted: a process
/// resumed from the store ([`Engine::resume`]) never sends an older state (a signer 400, or
/// duplicate ticket nonces), and reposts the payment whose POST the crash may have cut.
pub trait WriteAhead: Send + Sync {
    /// Persists `snapshot` of session `key`; the future says what became of it ([`Persisted`]).
    /// Keep it bounded, or resolve it [`Persisted::Refused`] when the session is given up.
    fn persist(&self, key: SessionKey, snapshot: Snapshot) -> BoxFuture<'static, Persisted>;

    /// Session `key`'s orchestrator credited a payment (or answered another request with a
    /// success): `snapshot` holds no payment of unknown fate any more. Store it without
    /// holding anything up, so that a restart does not repost a payment already credited
    /// (which the orchestrator refuses as a replay, costing a fresh signer ledger). The default
    /// does nothing.
    fn checkpoint(&self, key: SessionKey, snapshot: Snapshot) {
        let _ = (key, snapshot);
    }
}

/// The counters behind [`FunderStats`], shared by the task and the handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sessions: AtomicU64,
    pub(crate) funding: AtomicU64,
    pub(crate) added: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) stopped: AtomicU64,
    payments_sent: AtomicU64,
    payments: AtomicU64,
    skipped: AtomicU64,
    failures: AtomicU64,
    lost_mints: AtomicU64,
    refreshes: AtomicU64,
    at_risk: AtomicU64,
    lapses: AtomicU64,
    billed_micros: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) signer_in_flight: AtomicU64,
    pub(crate) signer_in_flight_peak: AtomicU64,
    pub(crate) signer_queued: AtomicU64,
    pub(crate) orchestrator_in_flight_peak: AtomicU64,
    pub(crate) orchestrator_queued: AtomicU64,
    pub(crate) write_ahead_failures: AtomicU64,
    pub(crate) write_aheads_refused: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> FunderStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FunderStats {
            sessions: get(&self.sessions),
            funding: get(&self.funding),
            added: get(&self.added),
            released: get(&self.released),
            stopped: get(&self.stopped),
            payments_sent: get(&self.payments_sent),
            payments: get(&self.payments),
            skipped: get(&self.skipped),
            failures: get(&self.failures),
            lost_mints: get(&self.lost_mints),
            refreshes: get(&self.refreshes),
            at_risk: get(&self.at_risk),
            lapses: get(&self.lapses),
            billed: Duration::from_micros(get(&self.billed_micros)),
            events_dropped: get(&self.events_dropped),
            signer_in_flight: get(&self.signer_in_flight),
            signer_in_flight_peak: get(&self.signer_in_flight_peak),
            signer_queued: get(&self.signer_queued),
            orchestrator_in_flight_peak: get(&self.orchestrator_in_flight_peak),
            orchestrator_queued: get(&self.orchestrator_queued),
            write_ahead_failures: get(&self.write_ahead_failures),
            write_aheads_refused: get(&self.write_aheads_refused),
        }
    }

    /// Adds what one engine's counters grew by from `before` to `after`.
    pub(crate) fn add_growth(&self, before: &Stats, after: &Stats) {
        let add = |counter: &AtomicU64, before: u32, after: u32| {
            if after > before {
                counter.fetch_add(u64::from(after - before), Ordering::Relaxed);
            }
        };
        add(&self.payments_sent, before.payments_sent, after.payments_sent);
        add(&self.payments, before.payments_accepted, after.payments_accepted);
        add(&self.skipped, before.cycles_skipped, after.cycles_skipped);
        add(&self.failures, before.failures, after.failures);
        add(&self.lost_mints, before.lost_mints, after.lost_mints);
        add(&self.refreshes, before.refreshes, after.refreshes);
        add(&self.at_risk, before.at_risk, after.at_risk);
        add(&self.lapses, before.lapses, after.lapses);
        add(&self.events_dropped, before.events_dropped, after.events_dropped);
        let billed = after.billed.as_micros().saturating_sub(before.billed.as_micros());
        if billed > 0 {
            self.billed_micros.fetch_add(billed, Ordering::Relaxed);
        }
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn drop_one(counter: &AtomicU64) {
    counter.fetch_sub(1, Ordering::Relaxed);
}

/// The [`Funder`] task is gone: [`Funder::run`] returned or was never started and was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunderClosed;

impl fmt::Display for FunderClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the funder task is gone")
    }
}

impl std::error::Error for FunderClosed {}

/// What a handle asks the task.
pub(crate) enum Order {
    Add {
        key: SessionKey,
        reserved: Box<Reserved>,
        credentials: Option<CredentialSource>,
    },
    AddEngine {
        key: SessionKey,
        engine: Box<Engine>,
        credentials: Option<CredentialSource>,
    },
    Snapshot(SessionKey, oneshot::Sender<Option<Snapshot>>),
    Close(SessionKey),
    CloseAll,
    Stop(SessionKey, oneshot::Sender<Engine>),
    PaymentDue(SessionKey),
    Stats(SessionKey, oneshot::Sender<Option<Stats>>),
}

/// A cheap, cloneable handle to a [`Funder`]: add, close and stop sessions, read counters.
/// [`Funder::run`] returns once every handle is dropped and no session remains.
#[derive(Clone)]
pub struct FunderHandle {
    commands: mpsc::UnboundedSender<Order>,
    next_key: Arc<AtomicU64>,
    counters: Arc<Counters>,
    clock: TokioClock,
}

impl fmt::Debug for FunderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunderHandle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl FunderHandle {
    fn send(&self, command: Order) -> Result<(), FunderClosed> {
        self.commands.send(command).map_err(|_| FunderClosed)
    }

    /// Adds a reserved session and funds it. Its runway counts from
    /// [`reserved.minted_at`](Reserved::minted_at), which must be on the funder's
    /// [`clock`](Self::clock): reserve with [`reserve`](crate::reserve)`(&http, &handle.clock(),
    /// …)`. (A `minted_at` later than the funder's now, from another clock, is taken as now.) Its
    /// first payment goes out within [`FunderConfig::start_spread`].
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn add(&self, reserved: Reserved) -> Result<SessionKey, FunderClosed> {
        let key = SessionKey(self.next_key.fetch_add(1, Ordering::Relaxed));
        self.send(Order::Add {
            key,
            reserved: Box::new(reserved),
            credentials: None,
        })?;
        Ok(key)
    }

    /// [`add`](Self::add), with expiring signer credentials: the funder asks `credentials` for a
    /// fresh one when the engine wants it ([`Engine::wants_credential`]: before the current one
    /// expires, and after a signer 401 or 403), and holds the session's next signer request
    /// until it has. Other sessions go on meanwhile. Sessions that share one signer account can
    /// share one source; a source that caches its token then serves them all from one fetch.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn add_with_credentials(
        &self,
        reserved: Reserved,
        credentials: CredentialSource,
    ) -> Result<SessionKey, FunderClosed> {
        let key = SessionKey(self.next_key.fetch_add(1, Ordering::Relaxed));
        self.send(Order::Add {
            key,
            reserved: Box::new(reserved),
            credentials: Some(credentials),
        })?;
        Ok(key)
    }

    /// Adds an engine built elsewhere, typically resumed from a [`Snapshot`]
    /// ([`Engine::resume`], on this funder's [`clock`](Self::clock)), with its own seed and
    /// configuration; the funder starts it ([`Engine::start`]) at once. `credentials` as in
    /// [`add_with_credentials`](Self::add_with_credentials).
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn add_engine(
        &self,
        engine: Engine,
        credentials: Option<CredentialSource>,
    ) -> Result<SessionKey, FunderClosed> {
        let key = SessionKey(self.next_key.fetch_add(1, Ordering::Relaxed));
        self.send(Order::AddEngine {
            key,
            engine: Box::new(engine),
            credentials,
        })?;
        Ok(key)
    }

    /// Session `key` as data now ([`Engine::snapshot`]); `None` when the funder no longer holds
    /// it. Use it to hand the session to another process, then [`stop`](Self::stop) it here.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn snapshot(&self, key: SessionKey) -> Result<oneshot::Receiver<Option<Snapshot>>, FunderClosed> {
        let (tx, rx) = oneshot::channel();
        self.send(Order::Snapshot(key, tx))?;
        Ok(rx)
    }

    /// Closes session `key` ([`Engine::close`]): funding stops and the engine stops the session
    /// on the orchestrator; `(key, StateChanged { to: Released(ClosedByClient) })` follows.
    /// Unknown keys are ignored.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn close(&self, key: SessionKey) -> Result<(), FunderClosed> {
        self.send(Order::Close(key))
    }

    /// Closes every session held now.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn close_all(&self) -> Result<(), FunderClosed> {
        self.send(Order::CloseAll)
    }

    /// Stops funding session `key` without releasing it ([`Engine::stop`]) and hands its engine
    /// back once any request in flight is answered, e.g. to fund it elsewhere (its protocol state
    /// is [`Engine::protocol`]). The receiver fails when the key is unknown or the session was
    /// released meanwhile.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn stop(&self, key: SessionKey) -> Result<oneshot::Receiver<Engine>, FunderClosed> {
        let (tx, rx) = oneshot::channel();
        self.send(Order::Stop(key, tx))?;
        Ok(rx)
    }

    /// Signals that session `key` owes a payment now ([`Engine::payment_due`]).
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn payment_due(&self, key: SessionKey) -> Result<(), FunderClosed> {
        self.send(Order::PaymentDue(key))
    }

    /// The counters of session `key` ([`Engine::stats`]) as the task answers; `None` when the
    /// funder does not hold it (unknown, released, stopped).
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn session_stats(&self, key: SessionKey) -> Result<oneshot::Receiver<Option<Stats>>, FunderClosed> {
        let (tx, rx) = oneshot::channel();
        self.send(Order::Stats(key, tx))?;
        Ok(rx)
    }

    /// The counters now.
    pub fn stats(&self) -> FunderStats {
        self.counters.snapshot()
    }

    /// The funder's clock: every engine runs on it, so reservations handed to
    /// [`add`](Self::add) must be made on it.
    pub fn clock(&self) -> TokioClock {
        self.clock
    }
}

/// Funds many sessions from one task. Build it, take a [`handle`](Self::handle) and the
/// [`events`](Self::events), then spawn (or await) [`run`](Self::run). Reserve on its
/// [`clock`](Self::clock).
///
/// ```no_run
/// # async fn demo(options: livepay_core::engine::ReserveOptions) -> Result<(), Box<dyn std::error::Error>> {
/// use livepay_hyper::{Funder, FunderConfig, HttpClient, HttpConfig, reserve};
///
/// let http = HttpClient::new(HttpConfig::default())?;
/// let mut funder = Funder::new(http.clone(), FunderConfig::default())?;
/// let handle = funder.handle();
/// let mut events = funder.events().expect("taken once");
/// tokio::spawn(funder.run());
/// let reserved = reserve(&http, &handle.clock(), options).await?;
/// let key = handle.add(reserved)?;
/// tokio::spawn(async move {
///     while let Some((key, event)) = events.recv().await {
///         println!("{key}: {event}");
///     }
/// });
/// // … later:
/// handle.close(key)?;
/// # Ok(()) }
/// ```
pub struct Funder {
    http: HttpClient,
    config: FunderConfig,
    engine_config: Config,
    clock: TokioClock,
    commands_tx: mpsc::UnboundedSender<Order>,
    commands: mpsc::UnboundedReceiver<Order>,
    events_tx: mpsc::Sender<(SessionKey, Event)>,
    events: Option<mpsc::Receiver<(SessionKey, Event)>>,
    exits_tx: mpsc::UnboundedSender<(SessionKey, Exit)>,
    exits: Option<mpsc::UnboundedReceiver<(SessionKey, Exit)>>,
    next_key: Arc<AtomicU64>,
    counters: Arc<Counters>,
    write_ahead: Option<Arc<dyn WriteAhead>>,
}

impl fmt::Debug for Funder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Funder")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Funder {
    /// A funder sending every request through `http` (its pools are shared by all sessions), on
    /// a new [`TokioClock`] (see [`clock`](Self::clock)).
    ///
    /// # Errors
    ///
    /// The session configuration, with its first payment spread over `start_spread`, is invalid
    /// ([`Config::validate`]).
    pub fn new(http: HttpClient, config: FunderConfig) -> Result<Self, ConfigError> {
        let engine_config = config.engine_config();
        engine_config.validate()?;
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(config.event_capacity.max(1));
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Ok(Self {
            http,
            config,
            engine_config,
            clock: TokioClock::new(),
            commands_tx,
            commands,
            events_tx,
            events: Some(events),
            exits_tx,
            exits: Some(exits),
            next_key: Arc::new(AtomicU64::new(1)),
            counters: Arc::new(Counters::default()),
            write_ahead: None,
        })
    }

    /// The same funder, writing each new signer state ahead of its POST through `store`
    /// ([`WriteAhead`]).
    #[must_use]
    pub fn with_write_ahead(mut self, store: Arc<dyn WriteAhead>) -> Self {
        self.write_ahead = Some(store);
        self
    }

    /// The same funder on `clock` (another zero), for a caller that needs instants before its
    /// own start, such as an adoption assumed a whole prepay old. Call it before
    /// [`handle`](Self::handle): handles carry the clock.
    #[must_use]
    pub const fn with_clock(mut self, clock: TokioClock) -> Self {
        self.clock = clock;
        self
    }

    /// A handle to add, close and stop sessions.
    pub fn handle(&self) -> FunderHandle {
        FunderHandle {
            commands: self.commands_tx.clone(),
            next_key: Arc::clone(&self.next_key),
            counters: Arc::clone(&self.counters),
            clock: self.clock,
        }
    }

    /// The stream of `(session, event)`, every event of every session in order; `None` after the
    /// first call. Not taking it costs nothing: events are then discarded.
    pub fn events(&mut self) -> Option<mpsc::Receiver<(SessionKey, Event)>> {
        self.events.take()
    }

    /// How every session ends, `(session, exit)`, exactly once each, however many end at once
    /// and however slow the reader: unlike [`events`](Self::events), nothing is ever dropped
    /// (one message per session, held until read). An [`Exit`] carries the release reason (or
    /// says the session was stopped) and the session's final [`Stats`]. Decide state, storage
    /// and metrics from this, never from events. `None` after the first call.
    pub fn exits(&mut self) -> Option<mpsc::UnboundedReceiver<(SessionKey, Exit)>> {
        self.exits.take()
    }

    /// The counters now.
    pub fn stats(&self) -> FunderStats {
        self.counters.snapshot()
    }

    /// The clock every engine of this funder runs on. Reserve on it
    /// ([`reserve`](crate::reserve)`(&http, &funder.clock(), …)`), so that each session's runway
    /// counts from its reservation's mint.
    pub fn clock(&self) -> TokioClock {
        self.clock
    }

    /// Drives every session until all [`FunderHandle`]s are dropped and no session remains;
    /// returns the final counters. Run it on one task (`tokio::spawn(funder.run())`).
    pub async fn run(self) -> FunderStats {
        let Self {
            http,
            config,
            engine_config,
            clock,
            commands_tx,
            commands,
            events_tx,
            events,
            exits_tx,
            exits,
            counters,
            write_ahead,
            ..
        } = self;
        // Only handles keep the command channel open from now on; an untaken event receiver
        // closes the channel, so events are discarded.
        drop(commands_tx);
        drop(events);
        drop(exits);
        let multiplexer = multiplexer::Multiplexer::new(
            multiplexer::Setup {
                http,
                config,
                engine_config,
                clock,
                events: events_tx,
                exits: exits_tx,
                write_ahead,
            },
            Arc::clone(&counters),
        );
        multiplexer.run(commands).await;
        counters.snapshot()
    }
}
