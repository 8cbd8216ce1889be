//! The funding task of a [`LiveSession`](super::LiveSession): [`Engine::run`] over the session's
//! [`HyperHttp`], publishing what the engine reports after every step.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures::stream;
use livepay_core::Clock as _;
use livepay_core::engine::{Delivery, Engine, Http, Output, Request};
use livepay_core::{Command, Endpoint, Event, Instant, Reply, State, Stats};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc, watch};

use super::error::WireProblem;
use crate::http::HttpError;
use crate::hyper_http::HyperHttp;

/// What the session, its task and its subscribers share.
pub(super) struct Shared {
    pub(super) session_id: String,
    pub(super) http: HyperHttp,
    pub(super) events: broadcast::Sender<Event>,
    pub(super) state: watch::Sender<State>,
    pub(super) stats: watch::Sender<Stats>,
    /// The engine's credit estimate and spend, published with its counters.
    pub(super) funding: watch::Sender<Funding>,
    /// The number of the latest funding run that has ended.
    pub(super) runs_ended: watch::Sender<u64>,
    pub(super) last_problem: Mutex<Option<WireProblem>>,
    /// A receiver subscribed before funding started, for the first
    /// [`events`](super::LiveSession::events) call: it sees every event from the start.
    pub(super) first_events: Mutex<Option<broadcast::Receiver<Event>>>,
    slot: Mutex<Custody>,
}

/// What the engine estimates of the session's credit and cost, as of its latest step: the
/// session's [`runway`](super::LiveSession::runway) and
/// [`spend_wei`](super::LiveSession::spend_wei).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Funding {
    /// [`Engine::funded_until`]: the runway is the time from now until then.
    pub(super) funded_until: Instant,
    /// [`Engine::spend_wei`].
    pub(super) spend_wei: Option<u128>,
}

impl Funding {
    pub(super) fn of(engine: &Engine) -> Self {
        Self {
            funded_until: engine.funded_until(),
            spend_wei: engine.spend_wei(),
        }
    }
}

/// Who holds the engine: the session (idle) or a funding task (running).
pub(super) struct Custody {
    /// The engine, while no task runs.
    pub(super) engine: Option<Engine>,
    /// Commands to the running task; `None` while idle.
    pub(super) commands: Option<mpsc::UnboundedSender<Command>>,
    /// The running task, to abort on drop.
    pub(super) task: Option<tokio::task::AbortHandle>,
    /// Funding runs started so far; each task is one run.
    pub(super) runs: u64,
    /// A stop that failed during the latest runs, and what the wire said.
    pub(super) stop_failed: Option<(Reply, Option<WireProblem>)>,
}

impl Shared {
    pub(super) fn new(session_id: String, http: HyperHttp, engine: &Engine, event_capacity: usize) -> Self {
        let (events, first_events) = broadcast::channel(event_capacity.clamp(1, 1 << 16));
        Self {
            session_id,
            http,
            events,
            state: watch::Sender::new(engine.state()),
            stats: watch::Sender::new(engine.stats()),
            funding: watch::Sender::new(Funding::of(engine)),
            runs_ended: watch::Sender::new(0),
            last_problem: Mutex::new(None),
            first_events: Mutex::new(Some(first_events)),
            slot: Mutex::new(Custody {
                engine: None,
                commands: None,
                task: None,
                runs: 0,
                stop_failed: None,
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Custody> {
        // Every update under the lock is a single assignment or a `take`: a panic elsewhere cannot
        // leave the slot half-written, so recover a poisoned guard.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn problem(&self) -> Option<WireProblem> {
        self.last_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_problem(&self, problem: WireProblem) {
        tracing::debug!(session = %self.session_id, %problem, "livepay: wire problem");
        *self.last_problem.lock().unwrap_or_else(PoisonError::into_inner) = Some(problem);
    }

    fn publish(&self, event: Event) {
        tracing::debug!(session = %self.session_id, %event, "livepay: event");
        if let Event::StateChanged { to, .. } = event {
            self.state.send_replace(to);
        }
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    /// Publishes the engine's credit estimate and spend, when they changed.
    pub(super) fn publish_funding(&self, engine: &Engine) {
        self.funding
            .send_if_modified(|funding| replace(funding, Funding::of(engine)));
    }

    /// At every output of the pump (and once at the end of a run, `event` then `None`): records
    /// what the wire said, publishes the engine's counters, the output's event if any, and the
    /// state.
    fn step(&self, engine: &Engine, event: Option<Event>, wire: &Watched<'_>, seen: &mut Seen) {
        if let Some(delivered) = wire.take() {
            match delivered {
                Delivered::Failed { endpoint, error } => {
                    self.set_problem(WireProblem::Http { endpoint, error });
                }
                // The engine keeps its latest problem until the next one: it is this answer's
                // when the engine has recorded one more since the last look.
                Delivered::Answered => {
                    if let Some(problem) = engine.last_problem()
                        && engine.problems() != seen.problems
                    {
                        self.set_problem(WireProblem::Protocol(problem.clone()));
                    }
                }
            }
        }
        seen.problems = engine.problems();
        // Counters first: a subscriber that sees an event finds it counted (and its runway and
        // spend up to date).
        self.stats
            .send_if_modified(|stats| replace(stats, engine.stats()));
        self.publish_funding(engine);
        if let Some(event) = event {
            if let Event::StopFailed { reply } = event {
                // The stop's answer is this step's input: the problem just recorded is its own.
                seen.stop_failed = Some((reply, self.problem().filter(WireProblem::is_stop)));
            }
            self.publish(event);
        }
        self.state
            .send_if_modified(|state| replace(state, engine.state()));
    }
}

/// Sets `*old` to `new`; whether it changed.
fn replace<T: PartialEq>(old: &mut T, new: T) -> bool {
    let changed = *old != new;
    *old = new;
    changed
}

/// What the task has seen of the engine.
#[derive(Default)]
struct Seen {
    /// [`Engine::problems`] at the last look.
    problems: u64,
    stop_failed: Option<(Reply, Option<WireProblem>)>,
}

/// How the last request ended, as far as the problem report cares.
enum Delivered {
    Answered,
    Failed { endpoint: Endpoint, error: HttpError },
}

/// The session's [`HyperHttp`], keeping the detail of the last delivery for
/// [`LiveSession::last_problem`](super::LiveSession::last_problem).
struct Watched<'a> {
    http: &'a HyperHttp,
    last: Mutex<Option<Delivered>>,
}

impl Watched<'_> {
    fn take(&self) -> Option<Delivered> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Http for Watched<'_> {
    type Body = Bytes;

    async fn send(&self, request: Request) -> Delivery<Bytes> {
        let endpoint = request.endpoint;
        let exchange = self.http.exchange(request).await;
        let delivered = match &exchange.result {
            Ok(_) => Delivered::Answered,
            Err(error) => Delivered::Failed {
                endpoint,
                error: error.clone(),
            },
        };
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(delivered);
        exchange.map_err(|e| e.failure())
    }

    async fn refresh_credential(&self) -> Option<livepay_core::engine::Credential> {
        self.http.refresh_credential().await
    }
}

/// Hands `engine` to a new funding task on `handle`; the caller holds the slot's lock.
pub(super) fn spawn_run(handle: &Handle, shared: &Arc<Shared>, slot: &mut Custody, engine: Engine) {
    let (commands, receiver) = mpsc::unbounded_channel();
    slot.runs += 1;
    slot.commands = Some(commands);
    let task = handle.spawn(drive(Arc::clone(shared), engine, receiver, slot.runs));
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

/// The funding task: runs the engine until the session is idle or released, then hands the
/// engine back to the slot. A command that arrives as the run returns is applied and the engine
/// run again, so no command is lost.
async fn drive(
    shared: Arc<Shared>,
    mut engine: Engine,
    mut receiver: mpsc::UnboundedReceiver<Command>,
    run: u64,
) {
    let ended = RunEnded {
        shared: Arc::clone(&shared),
        run,
    };
    let wire = Watched {
        http: &shared.http,
        last: Mutex::new(None),
    };
    let clock = *shared.http.clock();
    let mut seen = Seen {
        problems: engine.problems(),
        stop_failed: None,
    };
    loop {
        let commands = stream::poll_fn(|cx| receiver.poll_recv(cx));
        let exit = engine
            .run(&wire, &clock, commands, |engine, output| {
                let event = match output {
                    Output::Event(event) => Some(*event),
                    _ => None,
                };
                shared.step(engine, event, &wire, &mut seen);
            })
            .await;
        let mut slot = shared.lock();
        let mut pending = false;
        while let Ok(command) = receiver.try_recv() {
            engine.apply(command, clock.now());
            pending = true;
        }
        if pending && !engine.state().is_released() {
            drop(slot);
            continue;
        }
        shared.step(&engine, None, &wire, &mut seen);
        tracing::debug!(session = %shared.session_id, ?exit, "livepay: funding run ended");
        if seen.stop_failed.is_some() {
            slot.stop_failed = seen.stop_failed.take();
        }
        slot.engine = Some(engine);
        slot.commands = None;
        slot.task = None;
        drop(slot);
        drop(ended);
        return;
    }
}
