//! The deterministic simulation harness: many sessions, each funded by a client policy (the real
//! livepay-core machine, or the livepeer-gateway 1.0.0 loop) against the fast model, under a
//! [`FaultPlan`] and a seed, over hours of virtual time.
//!
//! The client side is the core's: each policy is a [`Machine`](livepay_core::Machine) carried
//! out by a [`Sequencer`], which says which request comes next and reads every answer through
//! the [`StatusTable`]. The simulation only plays the network and the servers: it draws each
//! request's fate, lets the fast model answer the request's endpoint (in types, turned into the
//! status a real server would send), and hands the [`Reply`] back when it arrives.
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
//! let report = simulate(&config, PolicyKind::Livepay)?;
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

use core::fmt;

use embassy_time::{Duration, Instant};
use livepay_core::{
    Call, Config, ConfigError, Endpoint, Event, PaymentType, Reply, RequestId, Sequencer, Session, State,
    StatusTable,
};

use crate::faults::{Fate, FaultPlan, PlanError};
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
    /// livepay's configuration (its `seed` is replaced per session). It must be valid
    /// ([`Config::validate`]) and for a metered `live` session, the only kind the fast model
    /// bills.
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

impl SimConfig {
    /// Checks that every part of the configuration can be simulated; [`simulate`] and
    /// [`compare`] check it first.
    ///
    /// # Errors
    ///
    /// The first problem found, named: an invalid livepay configuration, one the fast model does
    /// not bill (not a metered `live` session), a zero baseline interval, client timeout or
    /// model parameter, or an invalid fault plan.
    pub fn validate(&self) -> Result<(), SimError> {
        self.client.validate().map_err(SimError::Client)?;
        if self.client.offchain || self.client.payment_type != PaymentType::Live {
            return Err(SimError::NotLive);
        }
        let zero = Duration::from_ticks(0);
        for (value, field) in [
            (self.sdk_interval, "sdk_interval"),
            (self.client_timeout, "client_timeout"),
            (self.model.tick, "model.tick"),
        ] {
            if value == zero {
                return Err(SimError::Zero(field));
            }
        }
        for (value, field) in [
            (self.model.price_wei, "model.price_wei"),
            (self.model.ticket_ev_wei, "model.ticket_ev_wei"),
        ] {
            if value == 0 {
                return Err(SimError::Zero(field));
            }
        }
        self.plan.validate().map_err(SimError::Plan)
    }
}

/// Why a [`SimConfig`] cannot be simulated.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// livepay's configuration ([`SimConfig::client`]) is invalid.
    Client(ConfigError),
    /// livepay's configuration is not for a metered `live` session (offchain, `fixed` or
    /// `lv2v`): the fast model bills `live` sessions only.
    NotLive,
    /// A duration or model parameter that must not be zero is; names the field.
    Zero(&'static str),
    /// The fault plan is invalid.
    Plan(PlanError),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(e) => write!(f, "simulation: livepay's {e}"),
            Self::NotLive => f.write_str("simulation: the client config must fund a metered `live` session"),
            Self::Zero(field) => write!(f, "simulation: `{field}` must not be zero"),
            Self::Plan(e) => write!(f, "simulation: {e}"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Client(e) => Some(e),
            Self::Plan(e) => Some(e),
            Self::NotLive | Self::Zero(_) => None,
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

/// A request on its way: when its answer arrives, which request it answers, and what it is.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    arrives: Instant,
    id: RequestId,
    reply: Reply,
}

/// Bytes of the structures one session needs while it is simulated: the client machine and its
/// sequencer, the fast model, the fault and jitter streams, and the result. A finished session
/// leaves only its contribution to the running totals.
pub fn session_footprint() -> usize {
    std::mem::size_of::<Sequencer<Session>>()
        + std::mem::size_of::<FastLedger>()
        + std::mem::size_of::<SessionResult>()
        + 3 * std::mem::size_of::<SplitMix64>()
        + std::mem::size_of::<Option<InFlight>>()
        + std::mem::size_of::<Option<u64>>()
}

/// Simulates every session of `config` under `policy`.
///
/// # Errors
///
/// `config` cannot be simulated ([`SimConfig::validate`]).
pub fn simulate(config: &SimConfig, policy: PolicyKind) -> Result<PolicyReport, SimError> {
    config.validate()?;
    simulate_valid(config, policy)
}

/// [`simulate`] after validation.
fn simulate_valid(config: &SimConfig, policy: PolicyKind) -> Result<PolicyReport, SimError> {
    let mut acc = Accumulator::new(policy, config);
    for index in 0..config.sessions {
        let result = match policy {
            PolicyKind::Livepay => run_session(config, index, &mut acc.histogram, |now, seed| {
                let mut client = config.client;
                client.seed = seed;
                Session::new(&client, now).map_err(SimError::Client)
            })?,
            PolicyKind::Sdk10 => run_session(config, index, &mut acc.histogram, |_, _| {
                Ok(Sdk10::new(config.sdk_interval))
            })?,
        };
        acc.add(&result);
    }
    Ok(acc.finish())
}

/// Simulates `config` under each policy, same seeds and faults.
///
/// # Errors
///
/// `config` cannot be simulated ([`SimConfig::validate`]).
pub fn compare(config: &SimConfig, policies: &[PolicyKind]) -> Result<Comparison, SimError> {
    config.validate()?;
    Ok(Comparison {
        profile: config.plan.name.clone(),
        seed: config.seed,
        sessions: config.sessions,
        hours: config.duration.as_secs() as f64 / 3_600.0,
        policies: policies
            .iter()
            .map(|&p| simulate_valid(config, p))
            .collect::<Result<_, _>>()?,
    })
}

/// One session's servers and network: the fast model, the fault stream, the minted payment the
/// client holds, and what happened on the server side.
struct SessionWorld<'c> {
    config: &'c SimConfig,
    histogram: &'c mut RunwayHistogram,
    model: FastLedger,
    faults: SplitMix64,
    jitter: SplitMix64,
    /// The value of the tickets the signer minted last and the client has not posted yet.
    minted: Option<u64>,
    result: SessionResult,
    trace: bool,
}

impl SessionWorld<'_> {
    /// Runs every orchestrator tick due up to `at`.
    fn catch_up(&mut self, at: Instant) {
        let (plan, jitter) = (&self.config.plan, &mut self.jitter);
        self.model
            .catch_up(&self.config.model, us(at), || plan.tick_jitter_us(jitter));
    }

    /// Sends the request of `call` at `now`: draws its fate; if it is delivered, the server
    /// answers it half its latency later. Returns when the answer arrives and what it is.
    fn send(&mut self, call: Call, now: Instant) -> InFlight {
        // A payment POST carries the minted tickets away, whatever becomes of it.
        let posted = match call.endpoint {
            Endpoint::Payment => self.minted.take(),
            _ => None,
        };
        let fate = self.config.plan.fate(
            call.endpoint,
            ORIGIN,
            now,
            self.config.client_timeout,
            &mut self.faults,
        );
        let (arrives, reply) = match fate {
            Fate::Failed { after, reply } => (now + after, reply),
            Fate::Delivered { latency } => {
                let status = self.serve(call.endpoint, now + latency / 2, posted);
                (now + latency, Reply::Status(status))
            }
        };
        InFlight {
            arrives,
            id: call.id,
            reply,
        }
    }

    /// The servers' answer to a request to `endpoint` that reaches them at `served` (a payment
    /// POST carrying the tickets `posted`): the fast model answers in types; each becomes the
    /// status the real server sends.
    fn serve(&mut self, endpoint: Endpoint, served: Instant, posted: Option<u64>) -> u16 {
        let config = self.config;
        match endpoint {
            Endpoint::Signer => {
                if self.faults.chance(config.plan.storm_rate(ORIGIN, served)) {
                    return 480;
                }
                match self.model.generate(&config.model, us(served)) {
                    SignerAnswer::Minted { ev } => {
                        self.minted = Some(ev);
                        self.catch_up(served);
                        if self.model.released_at().is_some() {
                            self.result.minted_after_release += 1;
                        }
                        200
                    }
                    SignerAnswer::NoTickets => 482,
                    SignerAnswer::RefreshRequired => 480,
                    SignerAnswer::TooManyTickets => 400,
                }
            }
            Endpoint::Payment => {
                // The sequence only posts after a mint; tickets worth nothing credit nothing.
                let ev = posted.unwrap_or(0);
                self.catch_up(served);
                let runway = self.model.runway_us(&config.model, us(served));
                let (plan, jitter) = (&config.plan, &mut self.jitter);
                let paid = self
                    .model
                    .pay(&config.model, us(served), ev, || plan.tick_jitter_us(jitter));
                if !paid {
                    return 404;
                }
                let r = &mut self.result;
                r.min_runway_us = Some(r.min_runway_us.map_or(runway, |m| m.min(runway)));
                self.histogram.record(runway);
                if self.trace {
                    self.result.trace.push(RunwayPoint {
                        t_s: us(served) as f64 / 1e6,
                        runway_s: self.model.runway_us(&config.model, us(served)) as f64 / 1e6,
                    });
                }
                200
            }
            Endpoint::Refresh => {
                let (plan, jitter) = (&config.plan, &mut self.jitter);
                self.model
                    .refresh(&config.model, us(served), || plan.tick_jitter_us(jitter))
            }
            Endpoint::Stop => {
                let (plan, jitter) = (&config.plan, &mut self.jitter);
                self.model
                    .stop(&config.model, us(served), || plan.tick_jitter_us(jitter))
            }
        }
    }
}

/// Runs one session from its reservation to the end of the run.
fn run_session<P: Policy>(
    config: &SimConfig,
    index: u32,
    histogram: &mut RunwayHistogram,
    new_policy: impl FnOnce(Instant, u64) -> Result<P, SimError>,
) -> Result<SessionResult, SimError> {
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
        minted: None,
        result: SessionResult::default(),
        trace: index < config.trace_sessions,
    };
    let mut calls = Sequencer::new(new_policy(start, phases.next_u64())?, StatusTable::new());
    calls.machine_mut().start(start);
    let mut now = start;
    let mut in_flight: Option<InFlight> = None;
    loop {
        let client = calls.machine_mut();
        while let Some(event) = client.poll_event() {
            if let Event::Lapsed { .. } = event
                && world.result.lapsed_at.is_none()
            {
                world.result.lapsed_at = Some(us(now));
            }
        }
        if let State::Released { .. } = client.state() {
            world.result.client_end_at = Some(us(now));
            break;
        }
        if in_flight.is_none()
            && let Some(call) = calls.poll_call()
        {
            in_flight = Some(world.send(call, now));
        }
        let timer = calls.machine().poll_timeout();
        let (wake, answer) = match (in_flight, timer) {
            (Some(f), Some(t)) if t < f.arrives => (t, false),
            (Some(f), _) => (f.arrives, true),
            (None, Some(t)) => (t, false),
            (None, None) => break,
        };
        // A suspended client does nothing until it resumes.
        let wake = config.plan.resume_at(ORIGIN, wake).max(now);
        if wake >= end {
            break;
        }
        now = wake;
        match in_flight.take() {
            Some(f) if answer => {
                let answered = calls.handle_reply(now, f.id, f.reply);
                debug_assert!(answered.is_ok(), "{answered:?}");
            }
            other => {
                in_flight = other;
                calls.machine_mut().handle_timeout(now);
            }
        }
    }
    world.catch_up(end);
    let model = world.model;
    let mut result = world.result;
    result.count(&calls.machine().stats());
    result.released_at = model.dropped_at().filter(|&at| at < us(end));
    result.debited = model.debited;
    result.minted = model.minted;
    Ok(result)
}

/// The instant of `micros` on the simulation clock, for reports.
pub(crate) fn secs(micros: u64) -> f64 {
    us(at_us(micros)) as f64 / 1e6
}

#[cfg(test)]
mod tests;
