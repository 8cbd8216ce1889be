//! The process's one [`Funder`]: every session of the process is an engine in it, funded by one
//! tokio task on one pooled client. The pumps here move its two outputs to each session's slot:
//! events (lossy: a bounded queue per session, counted when full) and exits (lossless: the
//! release reason, which `wait_released` and the events' last item are made of). Nothing here
//! reads a status or decides a payment: the engines do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use livepay_core::engine::{Engine, Snapshot};
use livepay_core::{Clock as _, Config, Duration, Event, Exit, Instant, Stats};
use livepay_hyper::{Funder, FunderConfig, FunderHandle, HttpClient, HttpConfig, SessionKey, TokioClock};
use tokio::sync::{mpsc, watch};

use crate::errors::Problem;
use crate::events::EventItem;

/// Events a session's queue holds for a reader that is behind; more are dropped (and counted).
pub(crate) const EVENT_QUEUE: usize = 1_024;

/// What a session's properties read without a round trip to the funder: the last snapshot's
/// figures, refreshed by the event pump after every event of the session.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct View {
    /// The runway at `taken`, ms.
    pub(crate) runway_ms: u32,
    /// When the figures were taken, on the funder's clock.
    pub(crate) taken: Option<Instant>,
    pub(crate) stats: Stats,
    pub(crate) spend_wei: Option<u128>,
}

/// How a session's funding ended here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Released, with the core's reason as text.
    Released(String),
    /// Stopped without a release (its snapshot handed to the caller).
    Stopped,
}

/// One session's end of the pumps.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) view: Mutex<View>,
    pub(crate) events_tx: mpsc::Sender<EventItem>,
    /// The reader's end, and whether it has yielded the release yet.
    pub(crate) events_rx: tokio::sync::Mutex<(mpsc::Receiver<EventItem>, bool)>,
    pub(crate) ended: watch::Sender<Option<Ended>>,
    pub(crate) events_dropped: std::sync::atomic::AtomicU64,
}

impl Slot {
    pub(crate) fn new() -> Arc<Self> {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        Arc::new(Self {
            view: Mutex::new(View::default()),
            events_tx,
            events_rx: tokio::sync::Mutex::new((events_rx, false)),
            ended: watch::channel(None).0,
            events_dropped: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn view(&self) -> MutexGuard<'_, View> {
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `item` for the reader; a full queue drops it (the funder never waits on Python).
    fn push(&self, item: EventItem) {
        if self.events_tx.try_send(item).is_err() {
            self.events_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn note(&self, snapshot: &Snapshot, at: Instant, prepay: Duration) {
        let mut view = self.view();
        view.runway_ms = snapshot.funding.runway_ms;
        view.taken = Some(at);
        view.stats = snapshot.funding.stats.into();
        view.spend_wei = snapshot.spend_wei(prepay);
    }
}

/// The funder of this process and the slots of its sessions.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) handle: FunderHandle,
    pub(crate) http: HttpClient,
    pub(crate) clock: TokioClock,
    /// The configuration every session starts from (its interval and budget are the caller's).
    pub(crate) base: Config,
    slots: Mutex<HashMap<SessionKey, Arc<Slot>>>,
    /// The process that made it: a child of `fork` has no funder thread.
    pid: u32,
    seeds: std::sync::atomic::AtomicU64,
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The runtime every future of the package runs on (pyo3-async-runtimes' own).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// The process's funder, started on first use.
///
/// # Errors
///
/// [`Problem::Forked`] in a child of `fork` (the funder's threads stayed in the parent);
/// [`Problem::Config`] if the client cannot be built.
pub(crate) fn shared() -> Result<Arc<Shared>, Problem> {
    if let Some(shared) = SHARED.get() {
        if shared.pid != std::process::id() {
            return Err(Problem::Forked);
        }
        return Ok(Arc::clone(shared));
    }
    let built = start()?;
    Ok(Arc::clone(SHARED.get_or_init(|| built)))
}

fn start() -> Result<Arc<Shared>, Problem> {
    let runtime = runtime();
    let _entered = runtime.enter();
    let http = HttpClient::new(HttpConfig::default()).map_err(|e| Problem::Config(e.to_string()))?;
    // The clock's zero an hour back where the host's monotonic clock allows: an adoption whose
    // reservation instant is unknown is then taken a whole prepay before now, never "at zero".
    let epoch = tokio::time::Instant::now();
    let clock = TokioClock::with_epoch(
        epoch
            .checked_sub(std::time::Duration::from_secs(3_600))
            .unwrap_or(epoch),
    );
    let config = FunderConfig::default();
    let base = config.engine_config();
    let mut funder = Funder::new(http.clone(), config)
        .map_err(|e| Problem::Config(e.to_string()))?
        .with_clock(clock);
    let handle = funder.handle();
    let events = funder.events();
    let exits = funder.exits();
    let shared = Arc::new(Shared {
        handle,
        http,
        clock,
        base,
        slots: Mutex::new(HashMap::new()),
        pid: std::process::id(),
        seeds: std::sync::atomic::AtomicU64::new(1),
    });
    runtime.spawn(async move {
        let stats = funder.run().await;
        tracing::debug!(?stats, "livepay: the funder stopped");
    });
    if let (Some(events), Some(exits)) = (events, exits) {
        runtime.spawn(pump(Arc::clone(&shared), events, exits));
    }
    Ok(shared)
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, HashMap<SessionKey, Arc<Slot>>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, key: SessionKey) -> Option<Arc<Slot>> {
        self.slots().get(&key).cloned()
    }

    /// A fresh seed for one engine's generator (its first-payment phase and retry jitter).
    pub(crate) fn next_seed(&self) -> u64 {
        livepay_core::rng::mix(self.seeds.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }

    /// Funds `engine`, its events and its end going to `slot`.
    ///
    /// # Errors
    ///
    /// [`Problem::Closed`] when the funder is gone.
    pub(crate) fn fund(&self, engine: Engine, slot: &Arc<Slot>) -> Result<SessionKey, Problem> {
        let snapshot = engine.snapshot(self.clock.now());
        slot.note(&snapshot, self.clock.now(), self.base.prepay);
        // Under the slots' lock: the first event of the session finds its slot.
        let mut slots = self.slots();
        let key = self
            .handle
            .add_engine(engine, None)
            .map_err(|_| Problem::Closed)?;
        slots.insert(key, Arc::clone(slot));
        Ok(key)
    }
}

/// The funder's two outputs, in order: a session's events are sent before its exit, so
/// preferring events (`biased`) hands every event of a session to its reader before the end.
async fn pump(
    shared: Arc<Shared>,
    mut events: mpsc::Receiver<(SessionKey, Event)>,
    mut exits: mpsc::UnboundedReceiver<(SessionKey, Exit)>,
) {
    loop {
        tokio::select! {
            biased;
            event = events.recv() => match event {
                Some((key, event)) => on_event(&shared, key, event).await,
                None => break,
            },
            exit = exits.recv() => match exit {
                Some((key, exit)) => on_exit(&shared, key, &exit),
                None => break,
            },
        }
    }
}

async fn on_event(shared: &Shared, key: SessionKey, event: Event) {
    let Some(slot) = shared.slot(key) else {
        return;
    };
    // The figures the properties read, after every change, and before the event: a reader
    // that saw the event reads counters that count it (CI once read `payments_accepted` 0
    // right after its `payment_accepted`).
    if let Ok(reply) = shared.handle.snapshot(key)
        && let Ok(Some(snapshot)) = reply.await
    {
        slot.note(&snapshot, shared.clock.now(), shared.base.prepay);
    }
    slot.push(EventItem::Event(event));
}

fn on_exit(shared: &Shared, key: SessionKey, exit: &Exit) {
    let Some(slot) = shared.slots().remove(&key) else {
        return;
    };
    {
        let mut view = slot.view();
        view.stats = exit.stats();
        view.taken = Some(shared.clock.now());
        if exit.reason().is_some() {
            view.runway_ms = 0;
        }
    }
    let ended = match exit.reason() {
        Some(reason) => Ended::Released(reason.to_string()),
        None => Ended::Stopped,
    };
    if let Ended::Released(reason) = &ended {
        tracing::info!(%reason, "livepay: session released");
    }
    // The events' reader yields the release after the queue's last event (never dropped).
    slot.ended.send_replace(Some(ended));
}
