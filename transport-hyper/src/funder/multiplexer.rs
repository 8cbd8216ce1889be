//! The [`Funder`](super::Funder)'s task loop: many [`Engine`]s multiplexed over one HTTP client,
//! one timer heap and the concurrency lanes. A pump: every engine decides; this moves bytes.
//!
//! After every input to an engine (a command, a timer, an answer, a store's or a credential
//! source's reply) the session is *serviced*: its outputs ([`Engine::poll_output`]) are drained
//! and carried out. A request goes out if the lane of its peer has room, and otherwise waits in
//! that lane's FIFO queue (its send instant, [`Engine::handle_sent`], is when it actually
//! leaves, so queue time never counts for billing or latency); a persist goes to the store and
//! its answer back to the engine; a cancel aborts the request or takes it out of its queue; the
//! timeout re-arms the session's timer; the end of the run ([`Output::Done`]) retires the
//! session and reports its [`Exit`] on the lossless exits channel.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::{AbortHandle, Abortable};
use futures::stream::FuturesUnordered;
use livepay_core::engine::{Answered, Credential, Engine, Output, Request, Reserved, origin};
use livepay_core::{Clock as _, Config, Event, Exit, Instant, Peer, RequestId, Stats};
use tokio::sync::{mpsc, oneshot};

use super::lanes::{LaneId, Lanes};
use super::timers::Timers;
use super::{Counters, FunderConfig, Order, Persisted, SessionKey, WriteAhead, bump, drop_one};
use crate::clock::TokioClock;
use crate::http::{HttpClient, HttpError};
use crate::session::CredentialSource;

/// One session held by the funder.
struct Entry {
    key: SessionKey,
    engine: Engine,
    /// The signer's lane.
    signer: LaneId,
    /// The orchestrator's lane.
    orchestrator: LaneId,
    /// The request in flight, its lane, and how to abandon it.
    in_flight: Option<(RequestId, LaneId, AbortHandle)>,
    /// A request waiting for room in its lane, and its ticket there.
    /// Boxed: a request is large and few sessions wait at a time.
    queued: Option<Box<(Request, LaneId, u64)>>,
    /// Whether the session was funding at the last look (for the `funding` gauge).
    funding: bool,
    /// The engine's counters at the last look (their growth is added to the funder's).
    stats: Stats,
    /// Where to hand the engine back after a `stop`.
    stop_waiter: Option<oneshot::Sender<Engine>>,
    /// A new state was refused ([`Persisted::Refused`]): the engine holds its POST for good, so
    /// a `stop` hands it back at once rather than after that POST (which never goes).
    refused: bool,
    /// Where fresh signer credentials come from, if they expire.
    credentials: Option<CredentialSource>,
}

impl Entry {
    const fn lane_of(&self, peer: Peer) -> LaneId {
        match peer {
            Peer::Signer => self.signer,
            Peer::Orchestrator => self.orchestrator,
        }
    }
}

/// Where a request came from: its session's slot and key, its id, its lane.
#[derive(Clone, Copy)]
struct Route {
    index: u32,
    key: SessionKey,
    id: RequestId,
    lane: LaneId,
}

/// A request future's end: its route and what came back (`None`: abandoned, [`Output::Cancel`]).
type RequestFuture =
    Pin<Box<dyn Future<Output = (Route, Option<Result<Answered<Bytes>, HttpError>>)> + Send>>;
/// What a session's engine waited for, outside the wire.
enum Gate {
    /// A fresh credential (or none).
    Credential(Option<Credential>),
    /// The signer state minted by this request was written ahead (`true`) or could not be.
    Persisted(RequestId, Persisted),
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
    /// Every session's end, exactly once: never dropped (unbounded, one message per session).
    pub(crate) exits: mpsc::UnboundedSender<(SessionKey, Exit)>,
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
    exits: mpsc::UnboundedSender<(SessionKey, Exit)>,
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
            exits,
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
            exits,
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
                let mut refused = None;
                if let Some(slot) = self.slot(index) {
                    slot.stop_waiter = Some(waiter);
                    slot.engine.stop(now);
                    refused = slot
                        .refused
                        .then(|| Exit::of(slot.engine.state(), slot.engine.stats()));
                }
                match refused {
                    // Nothing of it may go out any more: handed back as it is.
                    Some(exit) => self.retire(index, exit),
                    None => self.service(index),
                }
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
        engine.set_write_ahead(self.write_ahead.is_some());
        if credentials.is_some() {
            // The source's credential replaces the reservation's before the first signer request.
            engine.request_credential();
        }
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
            refused: false,
            credentials,
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
        self.service(index);
    }

    /// Fetches a credential for slot `index` from its source. Without a source, the engine is
    /// told at once that there is none.
    fn fetch_credential(&mut self, index: u32) {
        let now = self.clock.now();
        let Some(slot) = self.slot(index) else {
            return;
        };
        let key = slot.key;
        let Some(source) = slot.credentials.clone() else {
            slot.engine.handle_credential(now, None);
            return;
        };
        self.gates.push(Box::pin(async move {
            let credential = source.fetch().await;
            (index, key, Gate::Credential(credential))
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

    /// A request came back (or was abandoned): free its lane, hand the answer to its engine,
    /// let the lane's next waiters go, then service the session.
    fn on_answer(&mut self, (route, result): (Route, Option<Result<Answered<Bytes>, HttpError>>)) {
        let Route { index, key, id, lane } = route;
        let now = self.clock.now();
        self.lanes.release(lane);
        if self.lanes.peer(lane) == Peer::Signer {
            drop_one(&self.counters.signer_in_flight);
        }
        let mut answered = false;
        if let Some(result) = result
            && let Some(slot) = self.slot_of(index, key)
            && slot
                .in_flight
                .as_ref()
                .is_some_and(|(in_flight, ..)| *in_flight == id)
        {
            slot.in_flight = None;
            let handled = match &result {
                Ok(response) => {
                    let headers = response.header_pairs();
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
        if answered {
            self.service(index);
        }
    }

    /// A store or a credential source answered for a session: the engine takes the answer.
    fn on_gate(&mut self, (index, key, gate): Opened) {
        let now = self.clock.now();
        let Some(slot) = self.slot_of(index, key) else {
            return;
        };
        match gate {
            Gate::Credential(credential) => slot.engine.handle_credential(now, credential.as_ref()),
            Gate::Persisted(id, Persisted::Durable) => {
                let _ = slot.engine.handle_persisted(id, true);
            }
            Gate::Persisted(id, Persisted::Failed) => {
                let _ = slot.engine.handle_persisted(id, false);
                tracing::warn!(%key, "livepay: funder: a signer state could not be written ahead");
                bump(&self.counters.write_ahead_failures);
            }
            Gate::Persisted(_, Persisted::Refused) => {
                // The engine keeps holding the POST: it never goes out (see `Persisted`).
                slot.refused = true;
                tracing::warn!(%key, "livepay: funder: a signer state was refused: its payment is held for good");
                bump(&self.counters.write_aheads_refused);
            }
        }
        self.service(index);
    }

    /// Sends the requests waiting on `lane`, oldest first, while it has room.
    fn wake_waiters(&mut self, lane: LaneId) {
        loop {
            let slots = &self.slots;
            let live = |w: &super::lanes::Waiter| {
                slots
                    .get(w.index as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| {
                        s.key == w.key && s.queued.as_ref().is_some_and(|q| q.1 == lane && q.2 == w.ticket)
                    })
            };
            let Some(waiter) = self.lanes.next_waiter(lane, live) else {
                return;
            };
            let peer = self.lanes.peer(lane);
            let Some((request, lane, _)) = self.slot(waiter.index).and_then(|s| s.queued.take()).map(|q| *q)
            else {
                continue;
            };
            drop_one(queued_counter(&self.counters, peer));
            self.send(waiter.index, request, lane);
        }
    }

    /// Sends `request` of slot `index` now if its lane has room, or queues it on that lane.
    fn transmit(&mut self, index: u32, request: Request) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        let lane = slot.lane_of(request.peer());
        if self.lanes.has_room(lane) {
            self.send(index, request, lane);
        } else {
            let ticket = self.lanes.enqueue(lane, index, slot.key);
            slot.queued = Some(Box::new((request, lane, ticket)));
            bump(queued_counter(&self.counters, self.lanes.peer(lane)));
        }
    }

    /// Puts `request` of slot `index` on the wire, in `lane` (which has room).
    fn send(&mut self, index: u32, request: Request, lane: LaneId) {
        let now = self.clock.now();
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
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
        slot.engine.handle_sent(now, id);
        let (abort, registration) = AbortHandle::new_pair();
        slot.in_flight = Some((id, lane, abort));
        let (key, http) = (slot.key, Arc::clone(&self.http));
        let exchange = Abortable::new(async move { http.execute_owned(request).await }, registration);
        let route = Route { index, key, id, lane };
        self.in_flight
            .push(Box::pin(async move { (route, exchange.await.ok()) }));
    }

    /// The engine of slot `index` abandoned request `id`: abort it, or take it out of its queue.
    fn cancel(&mut self, index: u32, id: RequestId) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        if let Some((_, _, abort)) = slot.in_flight.take_if(|(in_flight, ..)| *in_flight == id) {
            // Its future ends at once, freeing its lane (`on_answer` with no answer).
            abort.abort();
        }
        if let Some(queued) = slot.queued.take_if(|queued| queued.0.id == id) {
            let lane = queued.1;
            drop_one(queued_counter(&self.counters, self.lanes.peer(lane)));
        }
    }

    /// After an input to slot `index`'s engine: carries out its outputs until its timer, adds
    /// its counters' growth, and retires it at the end of its run.
    fn service(&mut self, index: u32) {
        let now = self.clock.now();
        loop {
            let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
                return;
            };
            let key = slot.key;
            let Some(output) = slot.engine.poll_output(now) else {
                self.timers.set(index, key, None);
                break;
            };
            match output {
                Output::Transmit(request) => self.transmit(index, request),
                Output::Persist { id, snapshot } => match self.write_ahead.clone() {
                    Some(store) => {
                        let persisted = store.persist(key, *snapshot);
                        self.gates.push(Box::pin(async move {
                            let durable = persisted.await;
                            (index, key, Gate::Persisted(id, durable))
                        }));
                    }
                    None => {
                        let _ = slot.engine.handle_persisted(id, true);
                    }
                },
                Output::Checkpoint(snapshot) => {
                    if let Some(store) = &self.write_ahead {
                        store.checkpoint(key, *snapshot);
                    }
                }
                Output::NeedCredential => self.fetch_credential(index),
                Output::Cancel(id) => self.cancel(index, id),
                Output::Event(event) => emit(&self.events, &self.counters, key, event),
                Output::Timeout(at) => {
                    self.timers.set(index, key, Some(at));
                    break;
                }
                Output::Done(exit) => {
                    self.retire(index, exit);
                    return;
                }
            }
        }
        self.count(index);
    }

    /// Adds the growth of slot `index`'s counters to the funder's; updates the funding gauge.
    fn count(&mut self, index: u32) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        let stats = slot.engine.stats();
        self.counters.add_growth(&slot.stats, &stats);
        slot.stats = stats;
        let funding = slot.engine.state().is_funding();
        if funding != slot.funding {
            slot.funding = funding;
            if funding {
                bump(&self.counters.funding);
            } else {
                drop_one(&self.counters.funding);
            }
        }
    }

    /// Removes a session whose run ended, and reports its exit (never dropped).
    fn retire(&mut self, index: u32, exit: Exit) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(index);
        self.index.remove(&slot.key);
        self.timers.clear(index);
        self.counters.add_growth(&slot.stats, &exit.stats());
        drop_one(&self.counters.sessions);
        if slot.funding {
            drop_one(&self.counters.funding);
        }
        match exit {
            Exit::Released { .. } => bump(&self.counters.released),
            Exit::Stopped { .. } => bump(&self.counters.stopped),
        }
        // Nobody listening (the receiver was never taken) is not an error.
        let _ = self.exits.send((slot.key, exit));
        if let Some(waiter) = slot.stop_waiter {
            // The caller may have stopped listening; then the engine is simply dropped.
            let _ = waiter.send(slot.engine);
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
