//! The deterministic simulation harness: many sessions, each funded by a client policy (the real
//! livepay-core machine, or the livepeer-gateway 1.0.0 loop) against the fast model, under a
//! [`FaultPlan`] and a seed, over hours of virtual time.
//!
//! The client side is the core's: each policy is a [`Machine`](livepay_core::Machine) carried
//! out by a [`Sequencer`](livepay_core::Sequencer), which says which request comes next and reads every answer through
//! the [`StatusTable`](livepay_core::StatusTable). The simulation only plays the network and the servers: it draws each
//! request's fate, lets the fast model answer the request's endpoint (in types, turned into the
//! status a real server would send), and hands the [`Reply`](livepay_core::Reply) back when it arrives.
//!
//! Time jumps from event to event: each session moves to the earliest of its client's timeout,
//! the answer to its request in flight, and the end of a client suspend; the model's ticks are
//! run lazily up to each request. Sessions share no server-side state (balances are per sender
//! and manifest, the signer is stateless), so each runs on its own timeline, which keeps the
//! simulation exact and fast. Same seed and plan, same report, byte for byte.
//!
//! Over-payment is what the orchestrator *received* (credit) ÷ the service it debited: a
//! payment the signer minted and billed but the orchestrator never credited (a lost POST) is a
//! cost the client bore, yet buys nothing; it shows in [`PolicyReport::minted_per_debited`]. A
//! fault plan's windows are measured from each session's start, and a window at `"mid"` starts at
//! half [`SimConfig::duration`].
//!
//! [`cells`] runs a grid (session lengths × fault profiles × ticket EVs, both policies, the same
//! seeds in every cell) and [`check_criteria`] lists the cells that fail each of the criteria of
//! the project's cost-and-safety goal.
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

mod cells;
mod criteria;
mod fast;
mod policy;
mod report;
mod run;

pub use cells::{Cell, CellReport, CellsConfig, GRID_EVS, GRID_LENGTHS, cells};
pub use criteria::{Criterion, CriterionResult, Failure, check_criteria};
pub use fast::{FastConfig, FastLedger, Mint, PayAnswer, SignerAnswer};
pub use policy::{PolicyKind, Sdk10};
pub use report::{Comparison, PolicyReport, RunwayPoint};

use core::fmt;

use embassy_time::{Duration, Instant};
use livepay_core::{Config, ConfigError, PaymentType, Session};

use crate::faults::{FaultPlan, PlanError, WindowStart};
use report::Accumulator;
use run::run_session;

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
    /// The server side; its ticket EV is a dimension of the report
    /// ([`SimConfig::ev_seconds`], [`SimConfig::with_ev_seconds`]).
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
    /// Whether the client reads the tickets of the payments it delivers, as the engine does for
    /// a signer that mints `net.Payment` tickets ([`Session::handle_ticket_value`]). `false`
    /// measures the fallback: a signer whose payments cannot be read. Default `true`.
    ///
    /// [`Session::handle_ticket_value`]: livepay_core::Session::handle_ticket_value
    pub read_tickets: bool,
    /// Whether livepay is told when each session will end ([`Session::plan_end`] at its
    /// start, as `livepay fund --duration` does), so that it stops building runway. The
    /// baseline has no such input. Default `false`.
    ///
    /// [`Session::plan_end`]: livepay_core::Session::plan_end
    pub planned_end: bool,
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
            read_tickets: true,
            planned_end: false,
        }
    }
}

impl SimConfig {
    /// The ticket EV in seconds of price.
    pub fn ev_seconds(&self) -> f64 {
        self.model.ev_seconds()
    }

    /// This configuration with a ticket worth `seconds` of price.
    #[must_use]
    pub fn with_ev_seconds(mut self, seconds: f64) -> Self {
        self.model = self.model.with_ev_seconds(seconds);
        self
    }

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
    /// A [`CellsConfig`] grid is empty, or names a zero length or a non-positive EV.
    Grid(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(e) => write!(f, "simulation: livepay's {e}"),
            Self::NotLive => f.write_str("simulation: the client config must fund a metered `live` session"),
            Self::Zero(field) => write!(f, "simulation: `{field}` must not be zero"),
            Self::Plan(e) => write!(f, "simulation: {e}"),
            Self::Grid(why) => write!(f, "simulation: cells: {why}"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Client(e) => Some(e),
            Self::Plan(e) => Some(e),
            Self::NotLive | Self::Zero(_) | Self::Grid(_) => None,
        }
    }
}

/// The origin of simulated time; sessions start within the first interval.
const ORIGIN: Instant = Instant::from_ticks(0);

fn us(at: Instant) -> u64 {
    at.as_micros()
}

/// Bytes of the structures one session needs while it is simulated: the client machine and its
/// sequencer, the fast model, the fault and jitter streams, the payment held, and the result. A
/// finished session leaves only its contribution to the running totals.
pub fn session_footprint() -> usize {
    run::footprint::<Session>()
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

/// `config` with its plan's `"mid"` windows resolved against its duration.
fn resolved(config: &SimConfig) -> std::borrow::Cow<'_, SimConfig> {
    if config.plan.windows.iter().any(|w| w.start == WindowStart::Mid) {
        std::borrow::Cow::Owned(SimConfig {
            plan: config.plan.resolved(config.duration),
            ..config.clone()
        })
    } else {
        std::borrow::Cow::Borrowed(config)
    }
}

/// [`simulate`] after validation.
fn simulate_valid(config: &SimConfig, policy: PolicyKind) -> Result<PolicyReport, SimError> {
    let config = &*resolved(config);
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
        ev_seconds: config.ev_seconds(),
        policies: policies
            .iter()
            .map(|&p| simulate_valid(config, p))
            .collect::<Result<_, _>>()?,
    })
}

/// The instant of `micros` on the simulation clock, for reports.
pub(crate) fn secs(micros: u64) -> f64 {
    micros as f64 / 1e6
}

#[cfg(test)]
mod tests;
