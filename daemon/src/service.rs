//! [`Service`]: the daemon's sessions on one [`Funder`], made durable through the store's
//! writer, resumed after a restart, reported to the API, the events streams and the metrics.
//!
//! Every new signer state is written ahead of its POST ([`WriteAhead`](livepay_hyper::WriteAhead)): the funder holds the
//! session's POST until the writer says the snapshot is durable. A restart resumes every session
//! not closed from its last snapshot ([`Engine::resume`]), so that the daemon never sends a
//! state older than one the orchestrator has seen, and reposts a payment whose POST a crash may
//! have cut.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use livepay_core::engine::spend::{Pricing, RunnerPrice, Spend};
use livepay_core::engine::{Engine, Snapshot};
use livepay_core::rng::SplitMix64;
use livepay_core::{Clock as _, Config, Duration, FirstPayment, State, StatusTable};
use livepay_hyper::{Funder, FunderConfig, FunderHandle, HttpClient, LiveError, SessionKey, reserve};
use tokio::sync::{broadcast, oneshot};

use crate::metrics::Metrics;
use crate::spec::{AdoptRequest, BadBody, CreateRequest, SessionSpec, SessionView};
use crate::store::{SessionRecord, Write, WriterHandle};

mod fleet;
mod persist;
mod pumps;
mod resume;
mod view;

use persist::{Persist, WRITE_AHEAD_POLL};
use view::render_view;

pub use fleet::{APP_GONE, FleetConfig, MAX_TAKEOVER};

/// How the daemon funds its sessions.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Every session's configuration before its own interval and budget.
    pub session_config: Config,
    /// ETH in US dollars, for spend in USD.
    pub eth_usd: Option<f64>,
    /// How long a `DELETE` waits for the session's stop.
    pub close_timeout: std::time::Duration,
    /// How long a new signer state may wait to be durable before its POST goes out anyway.
    pub write_ahead_timeout: std::time::Duration,
    /// Test hook: abort the process right after the n-th state written ahead, before its POST
    /// (as a `kill -9` between a signer answer and its POST would).
    pub abort_after_write_ahead: Option<u64>,
    /// Expiring signer credentials for every session (the daemon's signer account): fetched
    /// before each reservation, then by the funder before each expires and after a signer
    /// 401/403. Its header replaces a session's own header of the same name. Never stored.
    pub credentials: Option<livepay_hyper::CredentialSource>,
    /// Capacity of the funder's event channel ([`FunderConfig::event_capacity`]): what feeds
    /// the events streams. A full channel drops events; nothing that decides a session's end,
    /// its storage or a metric depends on them.
    pub event_capacity: usize,
    /// Leases: how long, how often renewed and claimed ([`FleetConfig`]).
    pub fleet: FleetConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            session_config: Config::default(),
            eth_usd: None,
            close_timeout: std::time::Duration::from_secs(15),
            write_ahead_timeout: std::time::Duration::from_secs(2),
            abort_after_write_ahead: None,
            credentials: None,
            event_capacity: FunderConfig::default().event_capacity,
            fleet: FleetConfig::default(),
        }
    }
}

/// Why an API call failed.
#[derive(Debug)]
pub enum ServiceError {
    /// The body is unusable.
    BadBody(BadBody),
    /// No such session.
    NotFound,
    /// The session exists already (a duplicate adopt).
    Duplicate,
    /// The reservation failed.
    Reserve(LiveError),
    /// The store could not make the session durable.
    Store(String),
    /// A new reservation could not be made durable: it was stopped (its id, and why).
    NotStored {
        /// The session id the orchestrator gave (now stopped).
        id: String,
        /// The store's failure.
        error: Box<ServiceError>,
    },
    /// The session could not be resumed from what was given.
    Resume(String),
    /// An adopted snapshot is not newer than the one held for its session (a replayed
    /// handoff): its generation, and the one held.
    Stale {
        /// The generation held here.
        held: u64,
        /// The generation given.
        given: u64,
    },
    /// The close did not finish in time.
    CloseTimeout,
    /// The funder is gone (the daemon is stopping).
    Stopping,
    /// The credential source gave no credential for the reservation.
    Credential,
    /// Another daemon of the fleet owns the session (its record is under a higher epoch).
    OwnedElsewhere,
}

/// A subscription to a session's event lines ([`Service::subscribe`]).
#[derive(Debug)]
pub enum Subscription {
    /// The session is funded: its lines as they come, ending with its end.
    Live(broadcast::Receiver<String>),
    /// The session had ended: the one final line (`{"type":"ended","reason":…}`).
    Ended(String),
}

/// The last line of a session's events stream: it ended (released, closed, handed off), why.
fn ended_line(reason: &str) -> String {
    serde_json::json!({ "type": "ended", "reason": reason }).to_string()
}

/// One session the daemon knows.
struct Entry {
    key: Option<SessionKey>,
    spec: SessionSpec,
    state: State,
    release: Option<String>,
    /// What the last snapshot said: runway (at `taken`), counters, spend.
    last: Option<Summary>,
    /// Event lines (JSON) for `GET …/events`; made on the first subscriber.
    events: Option<broadcast::Sender<String>>,
    /// Callers of `DELETE` waiting for the release.
    closing: Vec<oneshot::Sender<String>>,
    /// The generation of the snapshot this daemon funds or handed off ([`Snapshot::generation`]):
    /// an adopt must be newer.
    generation: u64,
    /// A handoff is under way: a `DELETE` waits for it rather than closing.
    handing_off: bool,
    /// The epoch under which this daemon holds the session's lease: every write carries it.
    epoch: u64,
    /// The app's lease: its length, and when it lapses (unix ms).
    app_lease: Option<fleet::AppLease>,
    /// The release reason to record instead of the engine's (the app went away).
    close_reason: Option<String>,
}

#[derive(Clone, Copy)]
struct Summary {
    runway_ms: u32,
    taken_ms: u64,
    stats: livepay_core::Stats,
    spend: Spend,
}

#[derive(Default)]
struct Registry {
    by_id: BTreeMap<String, Entry>,
    by_key: HashMap<SessionKey, String>,
    /// Ids being adopted (their record is being written).
    adopting: std::collections::HashSet<String>,
}

struct Shared {
    registry: Mutex<Registry>,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
    config: ServiceConfig,
    written_ahead: std::sync::atomic::AtomicU64,
    /// This daemon's owner id in the store's leases.
    owner: String,
    /// Until when this daemon's leases certainly hold (the last renewal's send time plus the
    /// lease, less a margin): past it, no new signer state is posted.
    lease_valid_until: Mutex<Option<tokio::time::Instant>>,
    health: Arc<crate::health::Health>,
    /// The funder's task, to stop funding when the daemon stops, and its end.
    funder_task: Mutex<Option<(tokio::task::AbortHandle, oneshot::Receiver<()>)>>,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // Every update is short and leaves the registry consistent: recover a poisoned lock.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id and epoch of the session funded as `key`, while this daemon holds it.
    fn held(&self, key: SessionKey) -> Option<(String, u64)> {
        let registry = self.registry();
        let id = registry.by_key.get(&key)?;
        let entry = registry.by_id.get(id)?;
        Some((id.clone(), entry.epoch))
    }

    /// Waits until this daemon's lease holds for session `key` under `epoch` (true), or the
    /// session is lost here (false): a renewal that fails past the lease drops every session
    /// ([`Service::fleet_round`]), so the wait ends either way.
    async fn until_leased(&self, key: SessionKey, epoch: u64) -> bool {
        loop {
            if self.held(key).is_none_or(|(_, held)| held != epoch) {
                return false;
            }
            if self.lease_holds() {
                return true;
            }
            tokio::time::sleep(WRITE_AHEAD_POLL).await;
        }
    }

    /// Whether this daemon's leases certainly hold now.
    fn lease_holds(&self) -> bool {
        self.lease_valid_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| tokio::time::Instant::now() < until)
    }

    /// Notes what a snapshot says of session `id` (metrics: counters, spend; the runway
    /// histogram only for the snapshot after a credited payment, so that API reads and
    /// write-aheads do not weigh on it).
    fn note(&self, id: &str, snapshot: &Snapshot, taken_ms: u64, credited: bool) {
        self.note_counting(id, snapshot, taken_ms, credited, true);
    }

    /// [`note`](Self::note); `count: false` only sets the baseline (a resumed or adopted
    /// session's counters were counted by the process that funded it before).
    fn note_counting(&self, id: &str, snapshot: &Snapshot, taken_ms: u64, credited: bool, count: bool) {
        let stats: livepay_core::Stats = snapshot.funding.stats.into();
        let mut registry = self.registry();
        let Some(entry) = registry.by_id.get_mut(id) else {
            return;
        };
        let spend = spend_of(
            snapshot,
            &self.config.session_config,
            &entry.spec,
            self.config.eth_usd,
        );
        let before = entry.last.map(|l| (l.stats, l.spend));
        entry.last = Some(Summary {
            runway_ms: snapshot.funding.runway_ms,
            taken_ms,
            stats,
            spend,
        });
        drop(registry);
        if !count {
            return;
        }
        if credited {
            self.metrics
                .observe_runway(f64::from(snapshot.funding.runway_ms) / 1e3);
        }
        let (old_stats, old_spend) = before.unwrap_or_default();
        self.metrics.observe_stats_growth(&old_stats, &stats);
        let (wei, usd) = spend.growth_since(&old_spend);
        if wei > 0 {
            self.metrics.add_spend_wei(wei);
        }
        if usd > 0.0 {
            self.metrics.add_spend_usd(usd);
        }
    }
}

/// What a snapshot's session has cost ([`Pricing::spend`], the core's reading).
fn spend_of(snapshot: &Snapshot, config: &Config, spec: &SessionSpec, eth_usd: Option<f64>) -> Spend {
    let pricing = Pricing {
        runner: spec.runner_price,
        eth_usd,
        prepay: config.prepay,
    };
    let billed = Duration::from_millis(snapshot.funding.stats.billed_ms);
    pricing.spend(
        snapshot.spend_wei(config.prepay),
        billed,
        snapshot.payment.is_some(),
    )
}

/// The runner's price per second as discovery states it ([`RunnerPrice::discovered`]): for
/// spend only. Nothing when discovery is unavailable or does not list the runner.
async fn discovered_price(http: &HttpClient, runner_url: &str, app: Option<&str>) -> RunnerPrice {
    let Some(origin) = livepay_core::engine::origin(runner_url) else {
        return RunnerPrice::default();
    };
    let Ok(runners) = livepay_hyper::discover(http, &origin, app).await else {
        return RunnerPrice::default();
    };
    runners
        .iter()
        .find(|r| r.url.trim_end_matches('/') == runner_url)
        .map(RunnerPrice::discovered)
        .unwrap_or_default()
}

/// Unix milliseconds now: the store's timestamps, and how long a snapshot has been waiting.
pub(crate) fn unix_ms() -> u64 {
    #[allow(clippy::disallowed_methods)] // The daemon is an adapter: it reads the wall clock.
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The daemon's sessions. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
    handle: FunderHandle,
    http: HttpClient,
    table: StatusTable,
    rng: Arc<Mutex<SplitMix64>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("sessions", &self.shared.registry().by_id.len())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Starts the funder, resumes every record not closed, and returns the service with the
    /// number of sessions resumed. Call from inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The session configuration is invalid.
    pub fn start(
        http: HttpClient,
        writer: WriterHandle,
        metrics: Arc<Metrics>,
        config: &ServiceConfig,
        records: Vec<SessionRecord>,
        owner: &str,
    ) -> Result<Self, livepay_core::ConfigError> {
        let seed = unix_ms() ^ u64::from(std::process::id());
        let shared = Arc::new(Shared {
            registry: Mutex::new(Registry::default()),
            writer,
            metrics,
            config: config.clone(),
            written_ahead: std::sync::atomic::AtomicU64::new(0),
            owner: owner.to_owned(),
            lease_valid_until: Mutex::new(None),
            health: crate::health::Health::new(),
            funder_task: Mutex::new(None),
        });
        let mut funder = Funder::new(
            http.clone(),
            FunderConfig {
                seed,
                session_config: config.session_config,
                event_capacity: config.event_capacity,
                ..FunderConfig::default()
            },
        )?
        .with_write_ahead(Arc::new(Persist(Arc::clone(&shared))));
        let events = funder.events();
        let exits = funder.exits();
        let handle = funder.handle();
        let health = Arc::clone(&shared.health);
        let funder_task = tokio::spawn(funder.run());
        let abort = funder_task.abort_handle();
        let ended = health.watch("funder", funder_task);
        *shared.funder_task.lock().unwrap_or_else(PoisonError::into_inner) = Some((abort, ended));
        let service = Self {
            shared,
            handle,
            http,
            table: StatusTable::new(),
            rng: Arc::new(Mutex::new(SplitMix64::new(seed))),
        };
        if let Some(events) = events {
            drop(health.watch("events pump", tokio::spawn(service.clone().pump_events(events))));
        }
        if let Some(exits) = exits {
            drop(health.watch("exits pump", tokio::spawn(service.clone().pump_exits(exits))));
        }
        service.remember_closed(records);
        Ok(service)
    }

    /// Stops funding every session, without stopping them: the daemon is stopping, and a
    /// restart within their runway resumes them from the store. Resolves once the funder's task
    /// has ended: nothing is paid, and nothing written ahead, after it.
    pub async fn stop_funding(&self) {
        let task = self
            .shared
            .funder_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((abort, ended)) = task {
            abort.abort();
            let _ = ended.await;
        }
    }

    /// Whether every funding task is alive ([`Health`](crate::health::Health)).
    pub fn health(&self) -> &Arc<crate::health::Health> {
        &self.shared.health
    }

    fn engine_config(&self, spec: &SessionSpec) -> Config {
        let mut config = spec.config(&self.shared.config.session_config);
        config.first_payment = FirstPayment::Within(config.interval);
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        config.seed = rng.next_u64();
        config
    }

    /// The engine of `snapshot` (taken `elapsed ago`) under `spec`: refused before anything is
    /// stored or funded.
    fn build(
        &self,
        spec: &SessionSpec,
        snapshot: &Snapshot,
        elapsed: Duration,
    ) -> Result<Engine, ServiceError> {
        let config = self.engine_config(spec);
        let now = self.handle.clock().now();
        Engine::resume(
            &config,
            snapshot.clone(),
            spec.signer_headers.clone(),
            now,
            elapsed,
            self.table,
        )
        .map_err(|e| ServiceError::Resume(e.to_string()))
    }

    /// Funds `engine` as `id`; without one, builds it from `snapshot` (taken `elapsed` ago).
    fn add(
        &self,
        id: &str,
        spec: SessionSpec,
        snapshot: &Snapshot,
        elapsed: Duration,
        built: Option<Engine>,
        epoch: u64,
    ) -> Result<(), ServiceError> {
        let engine = match built {
            Some(engine) => engine,
            None => self.build(&spec, snapshot, elapsed)?,
        };
        let metered = engine.session().is_metered();
        let mut registry = self.shared.registry();
        if registry.by_id.get(id).is_some_and(|e| e.key.is_some()) {
            return Err(ServiceError::Duplicate);
        }
        // Under the registry's lock: the write-ahead of the first mint finds the id.
        let key = self
            .handle
            .add_engine(engine, self.shared.config.credentials.clone())
            .map_err(|_| ServiceError::Stopping)?;
        registry.by_key.insert(key, id.to_owned());
        // The funder starts it at once; the pump then sees its own state changes.
        let state = if metered { State::Funding } else { State::Reserved };
        registry
            .by_id
            .insert(id.to_owned(), Entry::new(spec, Some(key), state, None));
        if let Some(entry) = registry.by_id.get_mut(id) {
            entry.generation = snapshot.generation;
            entry.epoch = epoch;
            entry.app_lease = fleet::AppLease::of(&entry.spec, unix_ms());
        }
        drop(registry);
        // Counted from here on: what the snapshot's counters say was counted where it was made.
        self.shared.note_counting(id, snapshot, unix_ms(), false, false);
        Ok(())
    }

    /// Stores `snapshot` of `id` durably (a new or adopted session), then funds it (`built`,
    /// when the engine exists already: a new reservation keeps its exact runway). The caller
    /// has claimed `id` ([`claim`](Self::claim)). A store that fails hands the engine back
    /// (unfunded), so that a new reservation can be stopped rather than orphaned.
    async fn store_and_add(
        &self,
        id: &str,
        spec: SessionSpec,
        snapshot: Snapshot,
        elapsed: Duration,
        built: Option<Engine>,
    ) -> Result<(), (ServiceError, Option<Engine>)> {
        // Built first: a snapshot the engine refuses is never stored (nor warned about at every
        // start).
        let built = match built {
            Some(engine) => engine,
            None => self.build(&spec, &snapshot, elapsed).map_err(|e| (e, None))?,
        };
        let texts = serde_json::to_string(&spec).and_then(|s| Ok((s, serde_json::to_string(&snapshot)?)));
        let (spec_text, snapshot_text) = match texts {
            Ok(texts) => texts,
            Err(e) => return Err((ServiceError::Store(e.to_string()), Some(built))),
        };
        let now_ms = unix_ms();
        let at_ms = now_ms.saturating_sub(elapsed.as_millis());
        // The next epoch of the id: a record closed here or elsewhere (a handoff) is adopted
        // under a higher one; an open record of another daemon refuses the put.
        let key = id.to_owned();
        let stored = self.shared.writer.with_store(move |store| store.get(&key)).await;
        let epoch = match stored {
            Ok(record) => record.map_or(1, |r| r.epoch.saturating_add(1)),
            Err(e) => return Err((ServiceError::Store(e.to_string()), Some(built))),
        };
        let ticket = self.shared.writer.submit(Write::Put {
            id: id.to_owned(),
            spec: spec_text,
            snapshot: snapshot_text,
            at_ms,
            epoch,
            lease_until_ms: now_ms.saturating_add(self.shared.config.fleet.lease_ms()),
            app_lease_until_ms: fleet::AppLease::of(&spec, now_ms).map(|a| a.until_ms),
        });
        match self.shared.writer.durable(ticket).await {
            Ok(()) => {}
            Err(crate::store::StoreError::Fenced { .. }) => {
                return Err((ServiceError::OwnedElsewhere, Some(built)));
            }
            Err(e) => return Err((ServiceError::Store(e.to_string()), Some(built))),
        }
        self.add(id, spec, &snapshot, elapsed, Some(built), epoch)
            .map_err(|e| (e, None))
    }

    /// Claims `id` for a new record, so that nothing else writes it meanwhile: `false` when a
    /// session of that id is funded here or being added (a colliding id must never overwrite
    /// another session's record). Release with [`unclaim`](Self::unclaim).
    fn claim(&self, id: &str) -> bool {
        let mut registry = self.shared.registry();
        let funded = registry.by_id.get(id).is_some_and(|e| e.key.is_some());
        !funded && registry.adopting.insert(id.to_owned())
    }

    fn unclaim(&self, id: &str) {
        self.shared.registry().adopting.remove(id);
    }

    /// Stops a reservation this daemon will not fund (its id collides, or it could not be made
    /// durable): the orchestrator would otherwise hold a paid session nobody funds or stops.
    async fn stop_unfunded(&self, mut engine: Engine) {
        let clock = self.handle.clock();
        let http = livepay_hyper::HyperHttp::new(self.http.clone(), clock);
        engine.close(clock.now());
        let exit = engine
            .run(&http, &clock, futures::stream::pending(), |_, _| {})
            .await;
        tracing::warn!(reason = ?exit.reason(), "livepay daemon: a reservation it could not fund was stopped");
    }

    /// `POST /v1/sessions`: reserves and funds a new session.
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn create(&self, request: &CreateRequest) -> Result<SessionView, ServiceError> {
        let now_ms = unix_ms();
        let (mut options, mut spec) = request
            .checked(&self.shared.config.session_config, now_ms)
            .map_err(ServiceError::BadBody)?;
        if let Some(source) = &self.shared.config.credentials {
            // The reservation's signer calls need one too; the funder fetches its own later.
            match source.fetch().await {
                Some(credential) => {
                    options
                        .signer_headers
                        .retain(|(name, _)| !name.eq_ignore_ascii_case(&credential.name));
                    options.signer_headers.push((credential.name, credential.value));
                }
                None => return Err(ServiceError::Credential),
            }
        }
        spec.runner_price = discovered_price(&self.http, &options.runner_url, request.app.as_deref()).await;
        let clock = self.handle.clock();
        let reserved = reserve(&self.http, &clock, options)
            .await
            .map_err(ServiceError::Reserve)?;
        let id = reserved.session_id.clone();
        let config = self.engine_config(&spec);
        let engine =
            Engine::new(&config, reserved, self.table).map_err(|e| ServiceError::Resume(e.to_string()))?;
        if !self.claim(&id) {
            // Another session here has this id (two orchestrators on one seed): its record
            // stays untouched, and this reservation is stopped rather than left paid.
            self.stop_unfunded(engine).await;
            return Err(ServiceError::Duplicate);
        }
        let snapshot = engine.snapshot(clock.now());
        let added = self
            .store_and_add(&id, spec, snapshot, Duration::from_ticks(0), Some(engine))
            .await;
        self.unclaim(&id);
        match added {
            Ok(()) => {}
            Err((error, Some(engine))) => {
                self.stop_unfunded(engine).await;
                // The writer retries the record it could not commit: close it behind, so that a
                // restart never resumes the stopped session.
                let epoch = self.shared.registry().by_id.get(&id).map_or(1, |e| e.epoch);
                self.shared.writer.submit(Write::Close {
                    id: id.clone(),
                    reason: "stopped: the reservation could not be stored".into(),
                    at_ms: unix_ms(),
                    epoch,
                });
                return Err(ServiceError::NotStored {
                    id,
                    error: Box::new(error),
                });
            }
            Err((error, None)) => return Err(error),
        }
        self.view(&id).await.ok_or(ServiceError::NotFound)
    }

    /// `POST /v1/sessions` with `adopt` or `snapshot`: funds a session reserved elsewhere.
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn adopt(&self, request: &AdoptRequest) -> Result<SessionView, ServiceError> {
        let (snapshot, elapsed_ms, spec) = request
            .checked(&self.shared.config.session_config, unix_ms())
            .map_err(ServiceError::BadBody)?;
        let id = snapshot.session_id.clone();
        // The id is claimed before its record is written, so that two adopts of one session
        // cannot both overwrite it; a closed or handed-off session may be adopted back.
        if !self.claim(&id) {
            return Err(ServiceError::Duplicate);
        }
        // Not newer than what this daemon holds for the session (it handed that off, or was
        // closed): a replay, which two owners would fund from one signer state.
        let held = self.shared.registry().by_id.get(&id).map(|e| e.generation);
        if let Some(held) = held
            && snapshot.generation <= held
        {
            self.unclaim(&id);
            return Err(ServiceError::Stale {
                held,
                given: snapshot.generation,
            });
        }
        let added = self
            .store_and_add(&id, spec, snapshot, Duration::from_millis(elapsed_ms), None)
            .await;
        self.unclaim(&id);
        // An adopted session that could not be stored is not stopped: its owner still has it.
        added.map_err(|(error, _)| error)?;
        self.view(&id).await.ok_or(ServiceError::NotFound)
    }

    /// Every session, in id order.
    pub async fn list(&self) -> Vec<SessionView> {
        let ids: Vec<String> = self.shared.registry().by_id.keys().cloned().collect();
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(view) = self.view(&id).await {
                views.push(view);
            }
        }
        views
    }

    /// Session `id` now.
    pub async fn view(&self, id: &str) -> Option<SessionView> {
        let known = self.shared.registry().by_id.get(id).map(|e| e.key);
        let Some(key) = known else {
            // Another daemon of the fleet funds it (or nobody does yet): what the store says.
            return self.stored_view(id).await;
        };
        // A live session is asked for its runway and counters; a released one shows the last.
        if let Some(key) = key
            && let Ok(reply) = self.handle.snapshot(key)
            && let Ok(Some(snapshot)) = reply.await
        {
            self.shared.note(id, &snapshot, unix_ms(), false);
        }
        let registry = self.shared.registry();
        let entry = registry.by_id.get(id)?;
        Some(render_view(
            id,
            &entry.spec,
            entry.state,
            entry.release.clone(),
            entry.last,
        ))
    }

    /// `DELETE /v1/sessions/{id}`: stops funding, then stops the session; the release reason.
    ///
    /// # Errors
    ///
    /// [`ServiceError::NotFound`], [`ServiceError::CloseTimeout`], [`ServiceError::Stopping`].
    pub async fn close(&self, id: &str) -> Result<String, ServiceError> {
        let known = self.shared.registry().by_id.contains_key(id);
        if !known {
            // Funded by another daemon of the fleet (or by nobody, its owner dead).
            return self.close_elsewhere(id).await;
        }
        self.close_local(id).await
    }

    /// `DELETE` of a session this daemon knows.
    async fn close_local(&self, id: &str) -> Result<String, ServiceError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut registry = self.shared.registry();
            let entry = registry.by_id.get_mut(id).ok_or(ServiceError::NotFound)?;
            if let Some(reason) = &entry.release {
                return Ok(reason.clone());
            }
            entry.closing.push(tx);
            if !entry.handing_off {
                let key = entry.key.ok_or(ServiceError::NotFound)?;
                self.handle.close(key).map_err(|_| ServiceError::Stopping)?;
            }
            // Handing off: the handoff answers the waiter as soon as it is done.
        }
        match tokio::time::timeout(self.shared.config.close_timeout, rx).await {
            Ok(Ok(reason)) => Ok(reason),
            Ok(Err(_)) => Err(ServiceError::Stopping),
            Err(_) => Err(ServiceError::CloseTimeout),
        }
    }

    /// `POST /v1/sessions/{id}/handoff`: stops funding here (no stop is sent) and returns the
    /// body another daemon adopts (`snapshot` and `taken_at_ms`).
    ///
    /// # Errors
    ///
    /// [`ServiceError::NotFound`] (also once released), [`ServiceError::Stopping`].
    pub async fn handoff(&self, id: &str) -> Result<serde_json::Value, ServiceError> {
        let key = {
            let mut registry = self.shared.registry();
            let entry = registry.by_id.get_mut(id).ok_or(ServiceError::NotFound)?;
            let key = entry
                .key
                .filter(|_| entry.release.is_none() && !entry.handing_off)
                .ok_or(ServiceError::NotFound)?;
            entry.handing_off = true;
            key
        };
        let stopped = match self.handle.stop(key) {
            Ok(engine) => engine.await.map_err(|_| ServiceError::NotFound),
            Err(_) => Err(ServiceError::Stopping),
        };
        let mut engine = match stopped {
            Ok(engine) => engine,
            Err(error) => {
                // Ended meanwhile (its exit answers any waiting `DELETE`): nothing to hand off.
                if let Some(entry) = self.shared.registry().by_id.get_mut(id) {
                    entry.handing_off = false;
                }
                return Err(error);
            }
        };
        let snapshot = engine.hand_off(self.handle.clock().now());
        drop(engine);
        let taken_at_ms = unix_ms();
        let reason = "handed off".to_owned();
        // The handoff's snapshot is what this store holds from now on: its generation refuses
        // the same snapshot replayed here, after a restart too.
        let epoch = self.shared.registry().by_id.get(id).map_or(0, |e| e.epoch);
        if let Ok(text) = serde_json::to_string(&snapshot) {
            self.shared.writer.submit(Write::Snapshot {
                id: id.to_owned(),
                snapshot: text,
                at_ms: taken_at_ms,
                epoch,
            });
        }
        let ticket = self.shared.writer.submit(Write::Close {
            id: id.to_owned(),
            reason: reason.clone(),
            at_ms: taken_at_ms,
            epoch,
        });
        let _ = self.shared.writer.durable(ticket).await;
        let mut registry = self.shared.registry();
        if let Some(entry) = registry.by_id.get_mut(id) {
            // Its streams end, saying so, and a `DELETE` that raced the handoff is answered now.
            if let Some(events) = entry.events.take() {
                let _ = events.send(ended_line(&reason));
            }
            for waiter in entry.closing.drain(..) {
                let _ = waiter.send(reason.clone());
            }
            entry.release = Some(reason);
            entry.state = State::Reserved;
            entry.key = None;
            entry.generation = snapshot.generation;
            entry.handing_off = false;
        }
        registry.by_key.remove(&key);
        Ok(serde_json::json!({ "snapshot": snapshot, "taken_at_ms": taken_at_ms }))
    }

    /// A stream of session `id`'s event lines (JSON), from now on.
    pub fn subscribe(&self, id: &str) -> Option<Subscription> {
        let mut registry = self.shared.registry();
        let entry = registry.by_id.get_mut(id)?;
        if entry.key.is_none()
            && let Some(reason) = &entry.release
        {
            // Ended before the subscriber came: it gets the end at once, not an endless stream.
            return Some(Subscription::Ended(ended_line(reason)));
        }
        Some(Subscription::Live(
            entry
                .events
                .get_or_insert_with(|| broadcast::channel(256).0)
                .subscribe(),
        ))
    }

    /// Ends every open events stream (at shutdown: a graceful shutdown waits for every
    /// connection, and a stream otherwise lasts until its session's release).
    pub fn end_streams(&self) {
        for entry in self.shared.registry().by_id.values_mut() {
            entry.events = None;
        }
    }

    /// The funder's counters (every session: payments, lapses, in-flight peaks).
    pub fn funder_stats(&self) -> livepay_hyper::FunderStats {
        self.handle.stats()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The number of sessions known (closed included).
    pub fn len(&self) -> usize {
        self.shared.registry().by_id.len()
    }

    /// Whether no session is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Entry {
    fn new(spec: SessionSpec, key: Option<SessionKey>, state: State, release: Option<String>) -> Self {
        Self {
            key,
            spec,
            state,
            release,
            last: None,
            events: None,
            closing: Vec::new(),
            generation: 0,
            handing_off: false,
            epoch: 0,
            app_lease: None,
            close_reason: None,
        }
    }
}

/// The API's name of `state`.
pub(crate) const fn state_name(state: State) -> &'static str {
    match state {
        State::Reserved => "reserved",
        State::Funding => "funding",
        State::Skipped => "skipped",
        State::Released { .. } => "released",
    }
}
