//! The deterministic simulation harness: many sessions, each funded by a client policy (the real
//! livepay-core machine, or the livepeer-gateway 1.0.0 loop) against the fast model, under a
//! [`FaultPlan`] and a seed, over hours of virtual time.
//!
//! Time jumps from event to event: each session moves to the earliest of its client's timeout,
//! the answer to its request in flight, and the end of a client suspend; the model's ticks are
//! run lazily up to each request. Sessions share no server-side state (balances are per sender
//! and manifest, the signer is stateless), so each runs on its own timeline, which keeps the
//! simulation exact and fast. Same seed and plan, same report, byte for byte.
//!
//! ```
//! use livepay_mock::faults::FaultPlan;
//! use livepay_mock::sim::{PolicyKind, SimConfig, simulate};
//! use embassy_time::Duration;
//!
//! let config = SimConfig {
//!     sessions: 10,
//!     duration: Duration::from_secs(3_600),
//!     plan: FaultPlan::profile("partition-8s")?,
//!     ..SimConfig::default()
//! };
//! let report = simulate(&config, PolicyKind::Livepay);
//! assert_eq!(report.drops, 0);
//! assert!(report.overpayment < 1.05);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod fast;
mod policy;
mod report;

pub use fast::{FastConfig, FastLedger, SignerAnswer};
pub use policy::{PolicyKind, Sdk10};
pub use report::{Comparison, PolicyReport, RunwayPoint};

use embassy_time::{Duration, Instant};
use livepay_core::{Action, Config, Endpoint, Event, Next, Outcome, Reply, State, StatusTable};

use crate::faults::{Fate, FaultPlan};
use livepay_core::rng::SplitMix64;
use policy::Policy;
use report::{Accumulator, RunwayHistogram, SessionResult};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// How many sessions.
    pub sessions: u32,
    /// How long each is funded.
    pub duration: Duration,
    /// Seed for everything random (phases, faults, jitter).
    pub seed: u64,
    /// The faults.
    pub plan: FaultPlan,
    /// The server side.
    pub model: FastConfig,
    /// livepay's configuration (its `seed` is replaced per session).
    pub client: Config,
    /// The baseline's interval.
    pub sdk_interval: Duration,
    /// Per-request timeout of both clients (the upstream SDK's 5 s).
    pub client_timeout: Duration,
    /// Record the true runway at every payment of the first this-many sessions (for plots).
    pub trace_sessions: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            sessions: 100,
            duration: Duration::from_secs(3_600),
            seed: 1,
            plan: FaultPlan::clean(),
            model: FastConfig::default(),
            client: Config::default(),
            sdk_interval: Duration::from_secs(3),
            client_timeout: Duration::from_secs(5),
            trace_sessions: 0,
        }
    }
}

/// The origin of simulated time; sessions start within the first interval.
const ORIGIN: Instant = Instant::from_ticks(0);

fn us(at: Instant) -> u64 {
    at.as_micros()
}

fn at_us(micros: u64) -> Instant {
    Instant::from_micros(micros)
}

/// A per-session seed, independent of the policy, so both policies meet the same schedule of
/// phases and partitions and draw faults from the same stream.
fn session_seed(seed: u64, index: u32) -> u64 {
    SplitMix64::new(seed ^ (u64::from(index) << 32 | u64::from(index))).next_u64()
}

/// Bytes of the structures one session needs while it is simulated: the client machine, the
/// fast model, the fault and jitter streams, and the result. A finished session leaves only its
/// contribution to the running totals.
pub fn session_footprint() -> usize {
    std::mem::size_of::<livepay_core::Session>()
        + std::mem::size_of::<FastLedger>()
        + std::mem::size_of::<SessionResult>()
        + 3 * std::mem::size_of::<SplitMix64>()
        + std::mem::size_of::<Option<(Instant, Outcome)>>()
}

/// Simulates every session of `config` under `policy`.
pub fn simulate(config: &SimConfig, policy: PolicyKind) -> PolicyReport {
    let mut acc = Accumulator::new(policy, config);
    for index in 0..config.sessions {
        let result = match policy {
            PolicyKind::Livepay => run_session(config, index, &mut acc.histogram, |now, seed| {
                let mut client = config.client;
                client.seed = seed;
                policy::livepay(&client, now)
            }),
            PolicyKind::Sdk10 => run_session(config, index, &mut acc.histogram, |_, _| {
                Sdk10::new(config.sdk_interval)
            }),
        };
        acc.add(&result);
    }
    acc.finish()
}

/// Simulates `config` under each policy, same seeds and faults.
pub fn compare(config: &SimConfig, policies: &[PolicyKind]) -> Comparison {
    Comparison {
        profile: config.plan.name.clone(),
        seed: config.seed,
        sessions: config.sessions,
        hours: config.duration.as_secs() as f64 / 3_600.0,
        policies: policies.iter().map(|&p| simulate(config, p)).collect(),
    }
}

/// One session's world: the fast model, the fault stream, and what happened.
struct SessionWorld<'c> {
    config: &'c SimConfig,
    histogram: &'c mut RunwayHistogram,
    model: FastLedger,
    faults: SplitMix64,
    jitter: SplitMix64,
    table: StatusTable,
    result: SessionResult,
    trace: bool,
}

impl SessionWorld<'_> {
    fn fate(&mut self, endpoint: Endpoint, at: Instant) -> Fate {
        self.config
            .plan
            .fate(endpoint, ORIGIN, at, self.config.client_timeout, &mut self.faults)
    }

    fn tick_jitter(plan: &FaultPlan, rng: &mut SplitMix64) -> impl FnMut() -> i64 {
        move || plan.tick_jitter_us(rng)
    }

    /// Carries out `action` sent at `now`; returns when its answer arrives and what it is.
    fn execute(&mut self, action: Action, now: Instant) -> (Instant, Outcome) {
        let config = self.config;
        match action {
            Action::Pay { .. } => {
                self.result.signer_calls += 1;
                let latency = match self.fate(Endpoint::Signer, now) {
                    Fate::Failed { after, reply } => {
                        return (now + after, self.classify(Endpoint::Signer, reply));
                    }
                    Fate::Delivered { latency } => latency,
                };
                let served = now + latency / 2;
                let answered = now + latency;
                // The model answers in types; what each answer means is the core's table's call,
                // exactly as for a real signer's status.
                let (status, ev) = if self.faults.chance(config.plan.storm_rate(ORIGIN, served)) {
                    (480, 0)
                } else {
                    match self.model.generate(&config.model, us(served)) {
                        SignerAnswer::Minted { ev } => (200, ev),
                        SignerAnswer::NoTickets => (482, 0),
                        SignerAnswer::RefreshRequired => (480, 0),
                        SignerAnswer::TooManyTickets => (400, 0),
                    }
                };
                if let Next::Done(outcome) = self.table.next(Endpoint::Signer, Reply::Status(status)) {
                    return (answered, outcome);
                }
                let mut jitter = self.jitter;
                self.model.catch_up(
                    &config.model,
                    us(served),
                    Self::tick_jitter(&config.plan, &mut jitter),
                );
                if self.model.released_at().is_some() {
                    self.result.minted_after_release += 1;
                }
                self.jitter = jitter;
                let sent = answered;
                let latency = match self.fate(Endpoint::Payment, sent) {
                    Fate::Failed { after, reply } => {
                        return (sent + after, self.classify(Endpoint::Payment, reply));
                    }
                    Fate::Delivered { latency } => latency,
                };
                let served = sent + latency / 2;
                let mut jitter = self.jitter;
                let mut tick_jitter = Self::tick_jitter(&config.plan, &mut jitter);
                self.model.catch_up(&config.model, us(served), &mut tick_jitter);
                let runway = self.model.runway_us(&config.model, us(served));
                let paid = self.model.pay(&config.model, us(served), ev, &mut tick_jitter);
                drop(tick_jitter);
                self.jitter = jitter;
                if paid {
                    let r = &mut self.result;
                    r.min_runway_us = Some(r.min_runway_us.map_or(runway, |m| m.min(runway)));
                    self.histogram.record(runway);
                    if self.trace {
                        self.result.trace.push(RunwayPoint {
                            t_s: us(served) as f64 / 1e6,
                            runway_s: self.model.runway_us(&config.model, us(served)) as f64 / 1e6,
                        });
                    }
                }
                let status = if paid { 200 } else { 404 };
                (
                    sent + latency,
                    self.classify(Endpoint::Payment, Reply::Status(status)),
                )
            }
            Action::Refresh => {
                let latency = match self.fate(Endpoint::Refresh, now) {
                    Fate::Failed { after, reply } => {
                        return (now + after, self.classify(Endpoint::Refresh, reply));
                    }
                    Fate::Delivered { latency } => latency,
                };
                let mut jitter = self.jitter;
                let status = self.model.refresh(
                    &config.model,
                    us(now + latency / 2),
                    Self::tick_jitter(&config.plan, &mut jitter),
                );
                self.jitter = jitter;
                (
                    now + latency,
                    self.classify(Endpoint::Refresh, Reply::Status(status)),
                )
            }
            Action::Stop => {
                let latency = match self.fate(Endpoint::Stop, now) {
                    Fate::Failed { after, reply } => {
                        return (now + after, self.classify(Endpoint::Stop, reply));
                    }
                    Fate::Delivered { latency } => latency,
                };
                let mut jitter = self.jitter;
                let status = self.model.stop(
                    &config.model,
                    us(now + latency / 2),
                    Self::tick_jitter(&config.plan, &mut jitter),
                );
                self.jitter = jitter;
                (
                    now + latency,
                    self.classify(Endpoint::Stop, Reply::Status(status)),
                )
            }
        }
    }

    fn classify(&mut self, endpoint: Endpoint, reply: Reply) -> Outcome {
        match self.table.next(endpoint, reply) {
            Next::Done(outcome) => outcome,
            // Only a signer 200 leads to another request, and `execute` follows that itself.
            Next::Request(_) => Outcome::Transient { endpoint, reply },
        }
    }

    fn record(&mut self, outcome: Outcome) {
        let r = &mut self.result;
        match outcome {
            Outcome::Paid => r.accepted += 1,
            Outcome::Skipped => r.skipped += 1,
            Outcome::Refreshed => r.refreshes += 1,
            Outcome::Transient { .. } => r.failed += 1,
            _ => {}
        }
    }
}

/// Runs one session from its reservation to the end of the run.
fn run_session<P: Policy>(
    config: &SimConfig,
    index: u32,
    histogram: &mut RunwayHistogram,
    new_policy: impl FnOnce(Instant, u64) -> P,
) -> SessionResult {
    let seed = session_seed(config.seed, index);
    let mut phases = SplitMix64::new(seed);
    let start = ORIGIN + Duration::from_micros(phases.next_u64() % config.sdk_interval.as_micros().max(1));
    let end = ORIGIN + config.duration;
    let mut jitter = SplitMix64::new(phases.next_u64());
    let first_jitter = config.plan.tick_jitter_us(&mut jitter);
    let mut world = SessionWorld {
        config,
        histogram,
        model: FastLedger::reserve(&config.model, us(start), first_jitter),
        faults: SplitMix64::new(phases.next_u64()),
        jitter,
        table: StatusTable::new(),
        result: SessionResult::default(),
        trace: index < config.trace_sessions,
    };
    let mut client = new_policy(start, phases.next_u64());
    client.start(start);
    let mut now = start;
    let mut in_flight: Option<(Instant, Outcome)> = None;
    loop {
        while let Some(event) = client.poll_event() {
            match event {
                Event::Lapsed { .. } if world.result.lapsed_at.is_none() => {
                    world.result.lapsed_at = Some(us(now));
                }
                Event::AtRisk { .. } => world.result.at_risk += 1,
                _ => {}
            }
        }
        if let State::Released { .. } = client.state() {
            world.result.client_end_at = Some(us(now));
            break;
        }
        if in_flight.is_none()
            && let Some(action) = client.poll_action()
        {
            in_flight = Some(world.execute(action, now));
        }
        let timer = client.poll_timeout();
        let (wake, answer) = match (in_flight, timer) {
            (Some((at, _)), Some(t)) if t < at => (t, false),
            (Some((at, _)), _) => (at, true),
            (None, Some(t)) => (t, false),
            (None, None) => break,
        };
        // A suspended client does nothing until it resumes.
        let wake = config.plan.resume_at(ORIGIN, wake).max(now);
        if wake >= end {
            break;
        }
        now = wake;
        if answer {
            let (_, outcome) = in_flight.take().unwrap_or((now, Outcome::Skipped));
            world.record(outcome);
            client.handle_outcome(now, outcome);
        } else {
            client.handle_timeout(now);
        }
    }
    let mut jitter = world.jitter;
    world.model.catch_up(
        &config.model,
        us(end),
        SessionWorld::tick_jitter(&config.plan, &mut jitter),
    );
    let model = world.model;
    let mut result = world.result;
    result.released_at = model.dropped_at().filter(|&at| at < us(end));
    result.debited = model.debited;
    result.minted = model.minted;
    result
}

/// The instant of `micros` on the simulation clock, for reports.
pub(crate) fn secs(micros: u64) -> f64 {
    us(at_us(micros)) as f64 / 1e6
}

#[cfg(test)]
mod tests;
