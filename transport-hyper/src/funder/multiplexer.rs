//! The [`Funder`](super::Funder)'s task loop: many [`Engine`]s multiplexed over one HTTP client,
//! one timer heap and the concurrency lanes.
//!
//! After every input to an engine (a command, a timer, an answer) the session is *serviced*: if
//! the engine has a request to make and nothing in flight, the request is taken
//! ([`Engine::poll_request`]) only when the lane of its peer ([`Engine::peek_peer`]) has room, and
//! otherwise the session queues on that lane until a request of the lane is answered. Then its
//! timer is re-armed, its events forwarded, the growth of its counters added to the funder's, and
//! the session retired once it is released, or reserved and idle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use livepay_core::engine::{Credential, Engine, Reserved, origin};
use livepay_core::{Clock as _, Config, Event, Instant, Peer, RequestId, State, Stats};
use tokio::sync::{mpsc, oneshot};

use super::lanes::{LaneId, Lanes};
use super::timers::Timers;
use super::{Counters, FunderConfig, Order, SessionKey, WriteAhead, bump, drop_one};
use crate::clock::TokioClock;
use crate::http::{HttpClient, HttpError, HttpResponse};
use crate::session::CredentialSource;

/// One session held by the funder.
struct Entry {
    key: SessionKey,
    engine: Engine,
    /// The signer's lane.
    signer: LaneId,
    /// The orchestrator's lane.
    orchestrator: LaneId,
    /// The request in flight and its lane.
    in_flight: Option<(RequestId, LaneId)>,
    /// The lane the session waits in for room, and its ticket there.
    queued: Option<(LaneId, u64)>,
    /// Whether the session was funding at the last look (for the `funding` gauge).
    funding: bool,
    /// The engine's counters at the last look (their growth is added to the funder's).
    stats: Stats,
    /// Where to hand the engine back after a `stop`.
    stop_waiter: Option<oneshot::Sender<Engine>>,
    /// Where fresh signer credentials come from, if they expire.
    credentials: Option<CredentialSource>,
    /// Whether a credential is being fetched or a new signer state made durable: the next
    /// request waits for it.
    waiting: bool,
}

impl Entry {
    const fn lane_of(&self, peer: Peer) -> LaneId {
        match peer {
            Peer::Signer => self.signer,
            Peer::Orchestrator => self.orchestrator,
        }
    }
}

/// What a request future returns: whose it was, which request, its lane, what came back.
type Landed = (
    u32,
    SessionKey,
    RequestId,
    LaneId,
    Result<HttpResponse, HttpError>,
);
type RequestFuture = Pin<Box<dyn Future<Output = Landed> + Send>>;
/// What a session's next request waited for.
enum Gate {
    /// A fresh credential (or none).
    Credential(Option<Credential>),
    /// A new signer state was written ahead (`true`) or could not be (`false`).
    Persisted(bool),
}
type Opened = (u32, SessionKey, Gate);
type GateFuture = Pin<Box<dyn Future<Output = Opened> + Send>>;

/// What the multiplexer is built from.
pub(crate) struct Setup {
    pub(crate) http: HttpClient,
    pub(crate) config: FunderConfig,
    /// Every session's configuration before its seed ([`FunderConfig::engine_config`]).
    pub(crate) engine_config: Config,
    pub(crate) clock: TokioClock,
    pub(crate) events: mpsc::Sender<(SessionKey, Event)>,
    pub(crate) write_ahead: Option<Arc<dyn WriteAhead>>,
}

/// The task's state. See the [module docs](self).
pub(crate) struct Multiplexer {
    config: FunderConfig,
    engine_config: Config,
    http: Arc<HttpClient>,
    clock: TokioClock,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    index: std::collections::HashMap<SessionKey, u32>,
    timers: Timers,
    in_flight: FuturesUnordered<RequestFuture>,
    gates: FuturesUnordered<GateFuture>,
    write_ahead: Option<Arc<dyn WriteAhead>>,
    lanes: Lanes,
    events: mpsc::Sender<(SessionKey, Event)>,
    counters: Arc<Counters>,
}

impl Multiplexer {
    pub(crate) fn new(setup: Setup, counters: Arc<Counters>) -> Self {
        let Setup {
            http,
            config,
            engine_config,
            clock,
            events,
            write_ahead,
        } = setup;
        Self {
            lanes: Lanes::new(config.per_signer_concurrency, config.per_orchestrator_concurrency),
            config,
            engine_config,
            http: Arc::new(http),
            clock,
            slots: Vec::new(),
            free: Vec::new(),
            index: std::collections::HashMap::new(),
            timers: Timers::new(),
            in_flight: FuturesUnordered::new(),
            gates: FuturesUnordered::new(),
            write_ahead,
            events,
            counters,
        }
    }

    /// Serves `commands` until the channel closes and no session remains.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Order>) {
        let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        let mut open = true;
        loop {
            if !open && self.index.is_empty() {
                break;
            }
            let next = self.timers.next_deadline();
            if next != armed {
                armed = next;
                let at = next.map_or_else(far, |at| self.clock.to_tokio(at));
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                Some(answer) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.on_answer(answer);
                }
                Some(opened) = self.gates.next(), if !self.gates.is_empty() => {
                    self.on_gate(opened);
                }
                command = commands.recv(), if open => match command {
                    Some(command) => self.on_command(command),
                    None => open = false,
                },
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.on_timers();
                }
            }
        }
    }

    fn slot(&mut self, index: u32) -> Option<&mut Entry> {
        self.slots.get_mut(index as usize).and_then(Option::as_mut)
    }

    /// The slot of `index` if it still holds session `key`.
    fn slot_of(&mut self, index: u32, key: SessionKey) -> Option<&mut Entry> {
        self.slot(index).filter(|s| s.key == key)
    }

    fn on_command(&mut self, command: Order) {
        let now = self.clock.now();
        let held = |this: &Self, key: &SessionKey| this.index.get(key).copied();
        match command {
            Order::Add {
                key,
                reserved,
                credentials,
            } => self.add(now, key, *reserved, credentials),
            Order::AddEngine {
                key,
                engine,
                credentials,
            } => self.add_engine(now, key, *engine, credentials),
            Order::Snapshot(key, reply) => {
                let snapshot = held(self, &key)
                    .and_then(|index| self.slot(index))
                    .map(|slot| slot.engine.snapshot(now));
                // The caller may have stopped listening.
                let _ = reply.send(snapshot);
            }
            Order::Close(key) => {
                if let Some(index) = held(self, &key) {
                    self.close(now, index);
                }
            }
            Order::CloseAll => {
                let all: Vec<u32> = self.index.values().copied().collect();
                for index in all {
                    self.close(now, index);
                }
            }
            Order::Stop(key, waiter) => {
                let Some(index) = held(self, &key) else {
                    return;
                };
                if let Some(slot) = self.slot(index) {
                    slot.stop_waiter = Some(waiter);
                    slot.engine.stop(now);
                }
                self.service(index);
            }
            Order::PaymentDue(key) => {
                let Some(index) = held(self, &key) else {
                    return;
                };
                if let Some(slot) = self.slot(index) {
                    slot.engine.payment_due(now);
                }
                self.service(index);
            }
            Order::Stats(key, reply) => {
                let stats = held(self, &key)
                    .and_then(|index| self.slot(index))
                    .map(|slot| slot.engine.stats());
                // The caller may have stopped listening.
                let _ = reply.send(stats);
            }
        }
    }

    fn add(
        &mut self,
        now: Instant,
        key: SessionKey,
        mut reserved: Reserved,
        credentials: Option<CredentialSource>,
    ) {
        if reserved.minted_at > now {
            // Reserved on another clock: the runway cannot have started later than now.
            tracing::warn!(%key, "livepay: funder: a reservation minted after now; counted from now");
            reserved.minted_at = now;
        }
        let mut config = self.engine_config;
        config.seed = livepay_core::rng::mix(self.config.seed ^ key.0);
        let engine = match Engine::new(&config, reserved, self.config.table) {
            Ok(engine) => engine,
            Err(error) => {
                tracing::warn!(%key, %error, "livepay: funder could not build a session");
                return;
            }
        };
        self.add_engine(now, key, engine, credentials);
    }

    /// Holds `engine` as session `key`, starts it and services it.
    fn add_engine(
        &mut self,
        now: Instant,
        key: SessionKey,
        mut engine: Engine,
        credentials: Option<CredentialSource>,
    ) {
        let protocol = engine.protocol();
        let signer = self.lanes.lane(Peer::Signer, protocol.signer_url());
        let orchestrator_origin = origin(protocol.payment_url())
            .or_else(|| origin(protocol.control_url()))
            .unwrap_or_default();
        let orchestrator = self.lanes.lane(Peer::Orchestrator, &orchestrator_origin);
        engine.start(now);
        let slot = Entry {
            key,
            engine,
            signer,
            orchestrator,
            in_flight: None,
            queued: None,
            funding: false,
            stats: Stats::default(),
            stop_waiter: None,
            credentials,
            waiting: false,
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
        // A fresh credential first, so that its expiry is known before the first signer request.
        self.fetch_credential(index);
        self.service(index);
    }

    /// Starts fetching a credential for slot `index`, if it has a source and is not already.
    fn fetch_credential(&mut self, index: u32) -> bool {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return false;
        };
        let Some(source) = slot.credentials.clone().filter(|_| !slot.waiting) else {
            return false;
        };
        slot.waiting = true;
        let key = slot.key;
        self.gates.push(Box::pin(async move {
            let credential = source.fetch().await;
            (index, key, Gate::Credential(credential))
        }));
        true
    }

    /// Slot `index`'s orchestrator answered a success: its store, if any, keeps a snapshot
    /// with no payment of unknown fate (a funding session's only).
    fn checkpoint(&mut self, index: u32) {
        let Some(store) = &self.write_ahead else {
            return;
        };
        let now = self.clock.now();
        if let Some(slot) = self.slots.get(index as usize).and_then(Option::as_ref)
            && slot.engine.state().is_funding()
        {
            store.checkpoint(slot.key, slot.engine.snapshot(now));
        }
    }

    /// Slot `index`'s engine holds a new signer state: with a write-ahead store, its next
    /// request (the POST that shows the state's tickets to the orchestrator) waits until the
    /// state is durable.
    fn write_ahead(&mut self, index: u32) {
        let Some(store) = self.write_ahead.clone() else {
            return;
        };
        let now = self.clock.now();
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        slot.waiting = true;
        let key = slot.key;
        let persisted = store.persist(key, slot.engine.snapshot(now));
        self.gates.push(Box::pin(async move {
            let durable = persisted.await;
            (index, key, Gate::Persisted(durable))
        }));
    }

    fn close(&mut self, now: Instant, index: u32) {
        if let Some(slot) = self.slot(index) {
            slot.engine.close(now);
        }
        self.service(index);
    }

    /// Lets every engine whose timer is due see the time.
    fn on_timers(&mut self) {
        let now = self.clock.now();
        for index in self.timers.take_due(now) {
            if let Some(slot) = self.slot(index) {
                slot.engine.handle_timeout(now);
            }
            self.service(index);
        }
    }

    /// A request came back: free its lane, hand the answer to its engine, let the lane's next
    /// waiters go, then service the session.
    fn on_answer(&mut self, (index, key, id, lane, result): Landed) {
        let now = self.clock.now();
        self.lanes.release(lane);
        if self.lanes.peer(lane) == Peer::Signer {
            drop_one(&self.counters.signer_in_flight);
        }
        let mut answered = false;
        let mut minted = false;
        let mut credited = false;
        let from_signer = self.lanes.peer(lane) == Peer::Signer;
        if let Some(slot) = self.slot_of(index, key)
            && slot.in_flight.is_some_and(|(in_flight, _)| in_flight == id)
        {
            slot.in_flight = None;
            let handled = match &result {
                Ok(response) => {
                    let headers = response.header_pairs();
                    let success = (200..300).contains(&response.status);
                    minted = from_signer && success;
                    credited = !from_signer && success;
                    slot.engine
                        .handle_response(now, id, &response.as_response(&headers))
                }
                Err(error) => {
                    tracing::debug!(%key, %error, "livepay: funder: no answer");
                    slot.engine.handle_failure(now, id, error.failure())
                }
            };
            debug_assert!(handled.is_ok(), "funder answered a request not in flight");
            answered = true;
        }
        self.wake_waiters(lane);
        if minted {
            self.write_ahead(index);
        } else if credited {
            self.checkpoint(index);
        }
        if answered {
            self.service(index);
        }
    }

    /// A credential came back for a session: the engine takes it, and its held signer request
    /// may go.
    fn on_gate(&mut self, (index, key, gate): Opened) {
        let now = self.clock.now();
        let Some(slot) = self.slot_of(index, key) else {
            return;
        };
        slot.waiting = false;
        match gate {
            Gate::Credential(credential) => slot.engine.handle_credential(now, credential.as_ref()),
            Gate::Persisted(true) => {}
            Gate::Persisted(false) => {
                // Availability over crash safety: the POST goes out, and a crash before the
                // next durable state would resume from the previous one.
                tracing::warn!(%key, "livepay: funder: a signer state could not be written ahead");
                bump(&self.counters.write_ahead_failures);
            }
        }
        self.service(index);
    }

    /// Services the sessions waiting on `lane`, oldest first, while it has room.
    fn wake_waiters(&mut self, lane: LaneId) {
        loop {
            let slots = &self.slots;
            let live = |w: &super::lanes::Waiter| {
                slots
                    .get(w.index as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| s.key == w.key && s.queued == Some((lane, w.ticket)))
            };
            let Some(waiter) = self.lanes.next_waiter(lane, live) else {
                return;
            };
            let peer = self.lanes.peer(lane);
            if let Some(slot) = self.slot(waiter.index) {
                slot.queued = None;
                drop_one(queued_counter(&self.counters, peer));
            }
            self.service(waiter.index);
        }
    }

    /// Sends the engine's next request if its lane has room, or queues the session on that lane.
    fn dispatch(&mut self, index: u32) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        if slot.in_flight.is_some() || slot.waiting {
            return;
        }
        let now = self.clock.now();
        if slot.engine.wants_credential(now) {
            // Before the signer is asked again (see `Engine::run`).
            if slot.credentials.is_none() {
                slot.engine.handle_credential(now, None);
            } else if self.fetch_credential(index) {
                return;
            }
        }
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        let wanted = slot.engine.peek_peer().map(|peer| slot.lane_of(peer));
        if let Some((lane, _)) = slot.queued {
            if wanted == Some(lane) {
                // Still waiting its turn.
                return;
            }
            // Its next request goes elsewhere now, or nowhere: its entry is stale.
            slot.queued = None;
            drop_one(queued_counter(&self.counters, self.lanes.peer(lane)));
        }
        let Some(lane) = wanted else {
            return;
        };
        if !self.lanes.has_room(lane) {
            let ticket = self.lanes.enqueue(lane, index, slot.key);
            slot.queued = Some((lane, ticket));
            bump(queued_counter(&self.counters, self.lanes.peer(lane)));
            return;
        }
        let Some(request) = slot.engine.poll_request(self.clock.now()) else {
            return;
        };
        let in_flight = self.lanes.acquire(lane) as u64;
        let c = &self.counters;
        match self.lanes.peer(lane) {
            Peer::Signer => {
                bump(&c.signer_in_flight);
                c.signer_in_flight_peak.fetch_max(in_flight, Ordering::Relaxed);
            }
            Peer::Orchestrator => {
                c.orchestrator_in_flight_peak
                    .fetch_max(in_flight, Ordering::Relaxed);
            }
        }
        let id = request.id;
        slot.engine.handle_sent(self.clock.now(), id);
        slot.in_flight = Some((id, lane));
        let (key, http) = (slot.key, Arc::clone(&self.http));
        self.in_flight.push(Box::pin(async move {
            let result = http.execute_owned(request).await;
            (index, key, id, lane, result)
        }));
    }

    /// After an input to slot `index`'s engine: sends or queues its request, re-arms its timer,
    /// forwards its events, adds its counters' growth, and retires it once it is released, or
    /// reserved and idle.
    fn service(&mut self, index: u32) {
        self.dispatch(index);
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        let key = slot.key;
        self.timers.set(index, key, slot.engine.poll_timeout());
        while let Some(event) = slot.engine.poll_event() {
            emit(&self.events, &self.counters, key, event);
        }
        let stats = slot.engine.stats();
        self.counters.add_growth(&slot.stats, &stats);
        slot.stats = stats;
        let state = slot.engine.state();
        let funding = state.is_funding();
        if funding != slot.funding {
            slot.funding = funding;
            if funding {
                bump(&self.counters.funding);
            } else {
                drop_one(&self.counters.funding);
            }
        }
        let idle = slot.in_flight.is_none()
            && slot.queued.is_none()
            && !slot.waiting
            && slot.engine.peek_peer().is_none();
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
        self.timers.clear(index);
        drop_one(&self.counters.sessions);
        if slot.funding {
            drop_one(&self.counters.funding);
        }
        if slot.engine.state().is_released() {
            bump(&self.counters.released);
        } else {
            bump(&self.counters.stopped);
            if let Some(waiter) = slot.stop_waiter {
                // The caller may have stopped listening; then the engine is simply dropped.
                let _ = waiter.send(slot.engine);
            }
        }
    }
}

/// Forwards `event` to the event channel, never waiting: a full channel drops it (and counts it).
fn emit(events: &mpsc::Sender<(SessionKey, Event)>, c: &Counters, key: SessionKey, event: Event) {
    match events.try_send((key, event)) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(_)) => bump(&c.events_dropped),
    }
}

fn queued_counter(c: &Counters, peer: Peer) -> &std::sync::atomic::AtomicU64 {
    match peer {
        Peer::Signer => &c.signer_queued,
        Peer::Orchestrator => &c.orchestrator_queued,
    }
}
