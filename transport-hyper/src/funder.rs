//! [`Funder`]: funds thousands of sessions from **one** tokio task.
//!
//! One shared pooled [`HttpClient`], one timer queue (a binary heap of `(deadline, slot)` with
//! lazy invalidation), one [`FuturesUnordered`] of requests in flight, and for each session a
//! [`livepay_core::Session`] plus its protocol state ([`PaymentSession`]). The task carries out
//! the sessions' actions exactly as [`livepay_core::run`] does: [`Action::first_request`], then
//! whatever [`StatusTable::next`] says follows each reply. It decides nothing itself: every
//! decision, including the protocol's sequence of requests, is the core's.
//!
//! Two things are the Funder's own, and neither is a payment decision:
//!
//! - **concurrency limits**: at most [`FunderConfig::per_signer_concurrency`] signer requests in
//!   flight per signer URL, and at most [`FunderConfig::per_orchestrator_concurrency`] requests
//!   (payments, refreshes, stops) per orchestrator origin; further requests wait in a FIFO queue
//!   per signer or orchestrator (the session sees its action as in flight meanwhile). The second
//!   limit keeps a `close_all` of thousands of sessions from opening thousands of connections;
//! - **jittered phases**: each new session is started at a seeded, uniformly spread instant within
//!   one interval of being added ([`FunderConfig::start_spread`]), so that sessions added together
//!   do not hit the signer in lockstep for the rest of their lives.
//!
//! ```no_run
//! # async fn demo(reserved: livepay_core::client::PaymentSession) -> Result<(), Box<dyn std::error::Error>> {
//! use livepay_hyper::{Funder, FunderConfig, HttpClient, HttpConfig};
//!
//! let mut funder = Funder::new(HttpClient::new(HttpConfig::default())?, FunderConfig::default())?;
//! let handle = funder.handle();
//! let mut events = funder.events().expect("taken once");
//! tokio::spawn(funder.run());
//! let key = handle.add(reserved)?;
//! tokio::spawn(async move {
//!     while let Some((key, event)) = events.recv().await {
//!         println!("{key}: {event}");
//!     }
//! });
//! // … later:
//! handle.close(key)?;
//! # Ok(()) }
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use livepay_core::Clock as _;
use livepay_core::client::{Answer, PaymentSession, origin};
use livepay_core::{
    Action, Config, ConfigError, Duration, Endpoint, Event, Instant, Next, Session, State, StatusTable,
};
use tokio::sync::{mpsc, oneshot};

use crate::clock::TokioClock;
use crate::http::{HttpClient, HttpError, HttpResponse, Peer};

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
    /// Most signer requests in flight at once per signer URL; more `Pay` actions wait in a FIFO
    /// queue. Default 64. Zero is treated as one.
    pub per_signer_concurrency: usize,
    /// Most requests in flight at once per orchestrator origin (payment POSTs, refreshes, stops);
    /// more wait in a FIFO queue. Default 256, the default keep-alive pool size per host
    /// ([`HttpConfig::max_idle_per_host`](crate::HttpConfig::max_idle_per_host)), so that bursts
    /// reuse pooled connections instead of opening (and closing) new ones. Zero is treated as one.
    pub per_orchestrator_concurrency: usize,
    /// Seeds the start jitter and each session's retry jitter (mixed with its key).
    pub seed: u64,
    /// The configuration of every session. Its `payment_type` is replaced by each session's own
    /// ([`PaymentSession::payment_type`]) and its `seed` by one derived from
    /// [`seed`](Self::seed) and the session's key.
    pub session_config: Config,
    /// How replies are classified.
    pub table: StatusTable,
    /// Each new session is started at an instant drawn uniformly from `[added, added + spread)`.
    /// `None` (the default) spreads over one [`Config::interval`]; `Some(ZERO)` starts at once.
    pub start_spread: Option<Duration>,
    /// Capacity of the event channel ([`Funder::events`]). When it is full, events are dropped and
    /// counted in [`FunderStats::events_dropped`]; the funding task never waits on a reader.
    /// Default 4096.
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

/// Counters of a [`Funder`], read with [`FunderHandle::stats`] or [`Funder::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunderStats {
    /// Sessions held now (added, not yet released or stopped).
    pub sessions: u64,
    /// Sessions funding now ([`State::Funding`] or [`State::Skipped`]).
    pub funding: u64,
    /// Sessions added so far.
    pub added: u64,
    /// Sessions released so far (any reason).
    pub released: u64,
    /// Sessions that left without a release so far: stopped ([`FunderHandle::stop`]), or with
    /// nothing to fund (a fixed price: [`Event::FundingNotRequired`]).
    pub stopped: u64,
    /// Payments credited.
    pub payments: u64,
    /// Cycles the signer skipped (482).
    pub skipped: u64,
    /// Transient failures.
    pub failures: u64,
    /// `AtRisk` episodes.
    pub at_risk: u64,
    /// `Lapsed` episodes.
    pub lapses: u64,
    /// Events dropped because the event channel was full.
    pub events_dropped: u64,
    /// Signer requests in flight now, all signers.
    pub signer_in_flight: u64,
    /// The most signer requests ever in flight at once for any one signer: never above
    /// [`FunderConfig::per_signer_concurrency`].
    pub signer_in_flight_peak: u64,
    /// `Pay` actions waiting for a signer slot now.
    pub signer_queued: u64,
    /// The most requests ever in flight at once to any one orchestrator: never above
    /// [`FunderConfig::per_orchestrator_concurrency`].
    pub orchestrator_in_flight_peak: u64,
    /// Requests waiting for an orchestrator slot now.
    pub orchestrator_queued: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sessions: AtomicU64,
    funding: AtomicU64,
    added: AtomicU64,
    released: AtomicU64,
    stopped: AtomicU64,
    payments: AtomicU64,
    skipped: AtomicU64,
    failures: AtomicU64,
    at_risk: AtomicU64,
    lapses: AtomicU64,
    events_dropped: AtomicU64,
    signer_in_flight: AtomicU64,
    signer_in_flight_peak: AtomicU64,
    signer_queued: AtomicU64,
    orchestrator_in_flight_peak: AtomicU64,
    orchestrator_queued: AtomicU64,
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
            payments: get(&self.payments),
            skipped: get(&self.skipped),
            failures: get(&self.failures),
            at_risk: get(&self.at_risk),
            lapses: get(&self.lapses),
            events_dropped: get(&self.events_dropped),
            signer_in_flight: get(&self.signer_in_flight),
            signer_in_flight_peak: get(&self.signer_in_flight_peak),
            signer_queued: get(&self.signer_queued),
            orchestrator_in_flight_peak: get(&self.orchestrator_in_flight_peak),
            orchestrator_queued: get(&self.orchestrator_queued),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn drop_one(counter: &AtomicU64) {
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

enum Command {
    Add {
        key: SessionKey,
        payment: Box<PaymentSession>,
        reserved_at: Option<tokio::time::Instant>,
    },
    Close(SessionKey),
    CloseAll,
    Stop(SessionKey, oneshot::Sender<PaymentSession>),
    PaymentDue(SessionKey),
}

/// A cheap, cloneable handle to a [`Funder`]: add, close and stop sessions, read counters.
/// [`Funder::run`] returns once every handle is dropped and no session remains.
#[derive(Clone)]
pub struct FunderHandle {
    commands: mpsc::UnboundedSender<Command>,
    next_key: Arc<AtomicU64>,
    counters: Arc<Counters>,
}

impl fmt::Debug for FunderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunderHandle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl FunderHandle {
    fn send(&self, command: Command) -> Result<(), FunderClosed> {
        self.commands.send(command).map_err(|_| FunderClosed)
    }

    /// Adds a session whose reservation was paid just now and funds it from a jittered start
    /// ([`FunderConfig::start_spread`]).
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn add(&self, payment: PaymentSession) -> Result<SessionKey, FunderClosed> {
        self.add_inner(payment, None)
    }

    /// Like [`add`](Self::add), for a session whose reservation was paid at `reserved_at`: its
    /// runway (the prepay) is counted from then.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn add_reserved_at(
        &self,
        payment: PaymentSession,
        reserved_at: tokio::time::Instant,
    ) -> Result<SessionKey, FunderClosed> {
        self.add_inner(payment, Some(reserved_at))
    }

    fn add_inner(
        &self,
        payment: PaymentSession,
        reserved_at: Option<tokio::time::Instant>,
    ) -> Result<SessionKey, FunderClosed> {
        let key = SessionKey(self.next_key.fetch_add(1, Ordering::Relaxed));
        self.send(Command::Add {
            key,
            payment: Box::new(payment),
            reserved_at,
        })?;
        Ok(key)
    }

    /// Closes session `key` ([`Session::close`]): funding stops and the orchestrator is asked to
    /// stop it; `(key, StateChanged { to: Released(ClosedByClient) })` follows. Unknown keys are
    /// ignored.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn close(&self, key: SessionKey) -> Result<(), FunderClosed> {
        self.send(Command::Close(key))
    }

    /// Closes every session held now.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn close_all(&self) -> Result<(), FunderClosed> {
        self.send(Command::CloseAll)
    }

    /// Stops funding session `key` without releasing it ([`Session::stop`]) and hands its protocol
    /// state back once any request in flight is answered, e.g. to fund it elsewhere. The receiver
    /// fails when the key is unknown or the session was released meanwhile.
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn stop(&self, key: SessionKey) -> Result<oneshot::Receiver<PaymentSession>, FunderClosed> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stop(key, tx))?;
        Ok(rx)
    }

    /// Signals that session `key` owes a payment now ([`Session::payment_due`]).
    ///
    /// # Errors
    ///
    /// [`FunderClosed`] when the funder task is gone.
    pub fn payment_due(&self, key: SessionKey) -> Result<(), FunderClosed> {
        self.send(Command::PaymentDue(key))
    }

    /// The counters now.
    pub fn stats(&self) -> FunderStats {
        self.counters.snapshot()
    }
}

/// Funds many sessions from one task. Build it, take a [`handle`](Self::handle) and the
/// [`events`](Self::events), then spawn (or await) [`run`](Self::run).
pub struct Funder {
    http: Arc<HttpClient>,
    config: FunderConfig,
    clock: TokioClock,
    commands_tx: mpsc::UnboundedSender<Command>,
    commands: mpsc::UnboundedReceiver<Command>,
    events_tx: mpsc::Sender<(SessionKey, Event)>,
    events: Option<mpsc::Receiver<(SessionKey, Event)>>,
    next_key: Arc<AtomicU64>,
    counters: Arc<Counters>,
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
    /// A funder sending every request through `http` (its pools are shared by all sessions).
    ///
    /// # Errors
    ///
    /// The session configuration is invalid ([`Config::validate`]).
    pub fn new(http: HttpClient, config: FunderConfig) -> Result<Self, ConfigError> {
        config.session_config.validate()?;
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(config.event_capacity.max(1));
        Ok(Self {
            http: Arc::new(http),
            config,
            clock: TokioClock::new(),
            commands_tx,
            commands,
            events_tx,
            events: Some(events),
            next_key: Arc::new(AtomicU64::new(1)),
            counters: Arc::new(Counters::default()),
        })
    }

    /// A handle to add, close and stop sessions.
    pub fn handle(&self) -> FunderHandle {
        FunderHandle {
            commands: self.commands_tx.clone(),
            next_key: Arc::clone(&self.next_key),
            counters: Arc::clone(&self.counters),
        }
    }

    /// The stream of `(session, event)`, every event of every session in order; `None` after the
    /// first call. Not taking it costs nothing: events are then discarded.
    pub fn events(&mut self) -> Option<mpsc::Receiver<(SessionKey, Event)>> {
        self.events.take()
    }

    /// The counters now.
    pub fn stats(&self) -> FunderStats {
        self.counters.snapshot()
    }

    /// Drives every session until all [`FunderHandle`]s are dropped and no session remains;
    /// returns the final counters. Run it on one task (`tokio::spawn(funder.run())`).
    pub async fn run(self) -> FunderStats {
        let Self {
            http,
            config,
            clock,
            commands_tx,
            mut commands,
            events_tx,
            events,
            counters,
            ..
        } = self;
        // Only handles keep the command channel open from now on; an untaken event receiver
        // closes the channel, so events are discarded.
        drop(commands_tx);
        drop(events);
        let mut engine = Engine {
            spread: config.start_spread.unwrap_or(config.session_config.interval),
            config,
            http,
            clock,
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            timers: BinaryHeap::new(),
            in_flight: FuturesUnordered::new(),
            lanes: Vec::new(),
            lane_ids: HashMap::new(),
            events: events_tx,
            counters,
        };
        let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        let mut open = true;
        loop {
            if !open && engine.index.is_empty() {
                break;
            }
            let next = engine.next_deadline();
            if next != armed {
                armed = next;
                let at = next.map_or_else(far, |at| engine.clock.to_tokio(at));
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                Some(done) = engine.in_flight.next(), if !engine.in_flight.is_empty() => {
                    engine.on_answer(done);
                }
                command = commands.recv(), if open => match command {
                    Some(command) => engine.on_command(command),
                    None => open = false,
                },
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    engine.on_timers();
                }
            }
        }
        engine.counters.snapshot()
    }
}

/// One session held by the funder.
struct Slot {
    key: SessionKey,
    session: Session,
    payment: PaymentSession,
    /// The signer's lane.
    signer: usize,
    /// The orchestrator's lane.
    orchestrator: usize,
    /// When the jittered `start` is due; `None` once started (or never to be).
    start_at: Option<Instant>,
    /// The deadline of this slot's live heap entry.
    armed: Option<Instant>,
    /// Whether the session was funding at the last look (for the `funding` gauge).
    funding: bool,
    /// Where to hand the protocol state back after a `stop`.
    stop_waiter: Option<oneshot::Sender<PaymentSession>>,
}

/// One signer's or orchestrator's share of the concurrency limits: requests in flight, and those
/// waiting for a slot, oldest first.
struct Lane {
    peer: Peer,
    limit: usize,
    in_flight: usize,
    waiting: VecDeque<(u32, SessionKey, Endpoint)>,
}

/// What a request future returns: whose it was, which endpoint, what came back.
type Answered = (u32, SessionKey, Endpoint, Result<HttpResponse, HttpError>);
type RequestFuture = Pin<Box<dyn Future<Output = Answered> + Send>>;

struct Engine {
    config: FunderConfig,
    spread: Duration,
    http: Arc<HttpClient>,
    clock: TokioClock,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    index: HashMap<SessionKey, u32>,
    /// `(deadline, slot, key)`; an entry is live only while its slot still holds `key` and is
    /// armed for exactly `deadline` (lazy invalidation).
    timers: BinaryHeap<Reverse<(Instant, u32, SessionKey)>>,
    in_flight: FuturesUnordered<RequestFuture>,
    lanes: Vec<Lane>,
    /// Lane ids by peer and URL (the signer URL, the orchestrator's origin).
    lane_ids: HashMap<(Peer, String), usize>,
    events: mpsc::Sender<(SessionKey, Event)>,
    counters: Arc<Counters>,
}

/// Counts `event` and forwards it to the event channel, never waiting: a full channel drops it.
fn emit(events: &mpsc::Sender<(SessionKey, Event)>, c: &Counters, key: SessionKey, event: Event) {
    match event {
        Event::PaymentAccepted { .. } => bump(&c.payments),
        Event::CycleSkipped { .. } => bump(&c.skipped),
        Event::PaymentFailed { .. } => bump(&c.failures),
        Event::AtRisk { .. } => bump(&c.at_risk),
        Event::Lapsed { .. } => bump(&c.lapses),
        _ => {}
    }
    match events.try_send((key, event)) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(_)) => bump(&c.events_dropped),
    }
}

/// The first draw of the core's generator seeded with `z`: the mixing used for jitter and
/// per-session seeds.
fn mix(z: u64) -> u64 {
    livepay_core::rng::SplitMix64::new(z).next_u64()
}

impl Engine {
    fn slot(&mut self, index: u32) -> Option<&mut Slot> {
        self.slots.get_mut(index as usize).and_then(Option::as_mut)
    }

    /// The earliest live timer, discarding stale entries on top of the heap.
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, index, key))) = self.timers.peek() {
            let live = self
                .slots
                .get(index as usize)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.key == key && s.armed == Some(at));
            if live {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    fn on_command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::Add {
                key,
                payment,
                reserved_at,
            } => self.add(now, key, *payment, reserved_at),
            Command::Close(key) => {
                if let Some(index) = self.index.get(&key).copied() {
                    self.close(now, index);
                }
            }
            Command::CloseAll => {
                let held: Vec<u32> = self.index.values().copied().collect();
                for index in held {
                    self.close(now, index);
                }
            }
            Command::Stop(key, waiter) => {
                let Some(index) = self.index.get(&key).copied() else {
                    return;
                };
                if let Some(slot) = self.slot(index) {
                    slot.start_at = None;
                    slot.stop_waiter = Some(waiter);
                    slot.session.stop(now);
                }
                self.service(index);
            }
            Command::PaymentDue(key) => {
                let Some(index) = self.index.get(&key).copied() else {
                    return;
                };
                if let Some(slot) = self.slot(index) {
                    slot.session.payment_due(now);
                }
                self.service(index);
            }
        }
    }

    fn add(
        &mut self,
        now: Instant,
        key: SessionKey,
        payment: PaymentSession,
        reserved_at: Option<tokio::time::Instant>,
    ) {
        let mut config = self.config.session_config;
        config.payment_type = payment.payment_type();
        config.seed = mix(self.config.seed ^ mix(key.0));
        let reserved = reserved_at.map_or(now, |at| {
            let since = at.saturating_duration_since(self.clock.to_tokio(Instant::from_ticks(0)));
            Instant::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX)).min(now)
        });
        let session = match Session::new(&config, reserved) {
            Ok(session) => session,
            Err(error) => {
                tracing::warn!(%key, %error, "livepay: funder could not build a session");
                return;
            }
        };
        let spread = self.spread.as_micros();
        let offset = if spread == 0 {
            0
        } else {
            mix(self.config.seed.rotate_left(17) ^ key.0) % spread
        };
        let signer = self.lane(Peer::Signer, payment.signer_url());
        let orchestrator = self.lane(
            Peer::Orchestrator,
            &origin(payment.payment_url()).unwrap_or_else(|| payment.payment_url().to_owned()),
        );
        let slot = Slot {
            key,
            session,
            payment,
            signer,
            orchestrator,
            start_at: Some(now + Duration::from_micros(offset)),
            armed: None,
            funding: false,
            stop_waiter: None,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = Some(slot);
                index
            }
            None => {
                self.slots.push(Some(slot));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.index.insert(key, index);
        bump(&self.counters.added);
        bump(&self.counters.sessions);
        self.wake(now, index);
    }

    fn close(&mut self, now: Instant, index: u32) {
        if let Some(slot) = self.slot(index) {
            slot.start_at = None;
            slot.session.close(now);
        }
        self.service(index);
    }

    /// Runs every timer due by now.
    fn on_timers(&mut self) {
        let now = self.clock.now();
        let mut due = Vec::new();
        while let Some(at) = self.next_deadline() {
            if at > now {
                break;
            }
            if let Some(Reverse((_, index, _))) = self.timers.pop() {
                if let Some(slot) = self.slot(index) {
                    slot.armed = None;
                }
                due.push(index);
            }
        }
        for index in due {
            self.wake(now, index);
        }
    }

    /// Time passed for slot `index`: start it if its jittered start is due, let the session see
    /// the time, then carry out what it asks.
    fn wake(&mut self, now: Instant, index: u32) {
        let Some(slot) = self.slot(index) else {
            return;
        };
        if slot.start_at.is_some_and(|at| at <= now) {
            slot.start_at = None;
            slot.session.start(now);
        } else {
            slot.session.handle_timeout(now);
        }
        self.service(index);
    }

    /// Drains the session's outputs in the documented order (action, timeout, events), then
    /// retires it if it is released or stopped and idle.
    fn service(&mut self, index: u32) {
        let Some(slot) = self.slot(index) else {
            return;
        };
        let action = slot.session.poll_action();
        let key = slot.key;
        if let Some(action) = action {
            self.dispatch(index, key, action);
        }
        let Some(slot) = self.slot(index) else {
            return;
        };
        let timer = match (slot.session.poll_timeout(), slot.start_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if timer != slot.armed {
            slot.armed = timer;
            if let Some(at) = timer {
                self.timers.push(Reverse((at, index, key)));
            }
        }
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        while let Some(event) = slot.session.poll_event() {
            emit(&self.events, &self.counters, key, event);
        }
        let funding = slot.session.state().is_funding();
        if funding != slot.funding {
            slot.funding = funding;
            if funding {
                bump(&self.counters.funding);
            } else {
                drop_one(&self.counters.funding);
            }
        }
        let state = slot.session.state();
        let idle = !slot.session.has_action_in_flight() && slot.start_at.is_none();
        if idle && (state.is_released() || state == State::Reserved) {
            self.retire(index);
        }
    }

    /// Removes a released, or stopped and idle, session.
    fn retire(&mut self, index: u32) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(index);
        self.index.remove(&slot.key);
        drop_one(&self.counters.sessions);
        if slot.session.state().is_released() {
            bump(&self.counters.released);
        } else {
            bump(&self.counters.stopped);
            if let Some(waiter) = slot.stop_waiter {
                // The caller may have stopped listening; then the state is simply dropped.
                let _ = waiter.send(slot.payment);
            }
        }
    }

    /// The lane of `url` at `peer`, created on first use.
    fn lane(&mut self, peer: Peer, url: &str) -> usize {
        if let Some(&id) = self.lane_ids.get(&(peer, url.to_owned())) {
            return id;
        }
        let limit = match peer {
            Peer::Signer => self.config.per_signer_concurrency,
            Peer::Orchestrator => self.config.per_orchestrator_concurrency,
        };
        self.lanes.push(Lane {
            peer,
            limit: limit.max(1),
            in_flight: 0,
            waiting: VecDeque::new(),
        });
        self.lane_ids.insert((peer, url.to_owned()), self.lanes.len() - 1);
        self.lanes.len() - 1
    }

    /// Carries out `action`: its first request.
    fn dispatch(&mut self, index: u32, key: SessionKey, action: Action) {
        self.request(index, key, action.first_request());
    }

    /// Sends the request of `endpoint` for slot `index` now, or queues it when its lane is full.
    fn request(&mut self, index: u32, key: SessionKey, endpoint: Endpoint) {
        let Some(lane) = self.slot(index).map(|s| lane_of(s, endpoint)) else {
            return;
        };
        let lane = &mut self.lanes[lane];
        if lane.in_flight < lane.limit {
            self.launch(index, endpoint);
        } else {
            lane.waiting.push_back((index, key, endpoint));
            bump(queued_counter(&self.counters, lane.peer));
        }
    }

    /// Builds the request of `endpoint` from the protocol state and sends it.
    fn launch(&mut self, index: u32, endpoint: Endpoint) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        let key = slot.key;
        let (peer, request) = match endpoint {
            Endpoint::Signer => (Peer::Signer, Some(slot.payment.signer_request())),
            // `None` when nothing is minted (never after a signer 200 from the core's client):
            // answered below as the transport does, as no answer.
            Endpoint::Payment => (Peer::Orchestrator, slot.payment.payment_request()),
            Endpoint::Refresh => (Peer::Orchestrator, Some(slot.payment.refresh_request())),
            Endpoint::Stop => (Peer::Orchestrator, Some(slot.payment.stop_request())),
        };
        let lane = &mut self.lanes[lane_of(slot, endpoint)];
        lane.in_flight += 1;
        let in_flight = lane.in_flight as u64;
        let c = &self.counters;
        match peer {
            Peer::Signer => {
                bump(&c.signer_in_flight);
                c.signer_in_flight_peak.fetch_max(in_flight, Ordering::Relaxed);
            }
            Peer::Orchestrator => {
                c.orchestrator_in_flight_peak
                    .fetch_max(in_flight, Ordering::Relaxed);
            }
        }
        let http = Arc::clone(&self.http);
        self.in_flight.push(Box::pin(async move {
            let result = match request {
                Some(request) => http.execute(peer, &request).await,
                None => Err(HttpError::Io("no minted payment to send".to_owned())),
            };
            (index, key, endpoint, result)
        }));
    }

    /// A request came back: free its lane slot, update the protocol state, classify, and either
    /// go on with the payment POST or answer the session.
    fn on_answer(&mut self, (index, key, endpoint, result): Answered) {
        let now = self.clock.now();
        self.release_slot(index, endpoint);
        let table = self.config.table;
        let Some(slot) = self.slot(index).filter(|s| s.key == key) else {
            return;
        };
        let reply = match result {
            Ok(response) => {
                let payment = &mut slot.payment;
                let Answer { reply, error } = match endpoint {
                    Endpoint::Signer => payment.on_signer_response(response.status, &response.body),
                    Endpoint::Payment => payment.on_payment_response(response.status, &response.body),
                    Endpoint::Refresh => payment.on_refresh_response(response.status, &response.body),
                    Endpoint::Stop => payment.on_stop_response(response.status, &response.body),
                };
                if let Some(error) = error {
                    tracing::debug!(%key, %error, "livepay: funder answer");
                }
                reply
            }
            Err(error) => {
                tracing::debug!(%key, endpoint = endpoint.as_str(), %error, "livepay: funder no answer");
                error.reply()
            }
        };
        let outcome = match table.next(endpoint, reply) {
            Next::Request(following) => {
                self.request(index, key, following);
                return;
            }
            Next::Done(outcome) => outcome,
        };
        let answered = slot.session.handle_outcome(now, outcome);
        debug_assert!(answered.is_ok(), "funder paired an outcome with the wrong action");
        self.service(index);
    }

    /// A request of slot `index` finished: let the next queued request of its lane go.
    fn release_slot(&mut self, index: u32, endpoint: Endpoint) {
        let Some(id) = self.slot(index).map(|s| lane_of(s, endpoint)) else {
            return;
        };
        if endpoint == Endpoint::Signer {
            drop_one(&self.counters.signer_in_flight);
        }
        let lane = &mut self.lanes[id];
        lane.in_flight -= 1;
        while self.lanes[id].in_flight < self.lanes[id].limit {
            let lane = &mut self.lanes[id];
            let Some((next, key, endpoint)) = lane.waiting.pop_front() else {
                break;
            };
            drop_one(queued_counter(&self.counters, lane.peer));
            if self.slot(next).is_some_and(|s| s.key == key) {
                self.launch(next, endpoint);
            }
        }
    }
}

/// The lane a request of `endpoint` for `slot` goes through.
fn lane_of(slot: &Slot, endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::Signer => slot.signer,
        Endpoint::Payment | Endpoint::Refresh | Endpoint::Stop => slot.orchestrator,
    }
}

fn queued_counter(c: &Counters, peer: Peer) -> &AtomicU64 {
    match peer {
        Peer::Signer => &c.signer_queued,
        Peer::Orchestrator => &c.orchestrator_queued,
    }
}
