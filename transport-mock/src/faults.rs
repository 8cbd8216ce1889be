//! A seeded, composable fault plan: per-endpoint latency distributions, error rates and lost
//! answers, time windows of failures, partitions, refresh storms, client suspends and server tick
//! jitter. Plans come from named profiles ([`FaultPlan::profile`]) or TOML files
//! ([`FaultPlan::from_toml`]).
//!
//! ```toml
//! name = "flaky-signer"
//! [signer]
//! latency = { kind = "long-tail", median_ms = 300, p99_ms = 4000 }
//! error_5xx = 0.10
//! timeout = 0.02
//! [payment]
//! lost_answer = 0.01        # processed by the server, but the answer never arrives
//! [[partitions]]
//! every_s = 600
//! duration_s = 8
//! [[windows]]
//! endpoints = ["payment"]   # signer, payment (first POSTs and replays), refresh, stop
//! start = "mid"             # seconds from the session start, or "mid": half the run
//! duration_s = 60
//! kind = "error-5xx"        # 503s with probability `rate`; or "refuse": every connection refused
//! rate = 0.5
//! ```
//!
//! The plan is pure data; [`FaultPlan::fate`] turns it into the fate of one request, drawing from
//! a caller-owned seeded generator, so the same seed gives the same faults. A window that starts
//! at `"mid"` must be resolved against the run's length first ([`FaultPlan::resolved`]); the
//! simulation and the served model do so.

use std::fmt;

use embassy_time::{Duration, Instant};
use livepay_core::{Endpoint, Reply};
use serde::{Deserialize, Serialize};

use livepay_core::rng::SplitMix64;

/// How long a request takes to be answered when nothing goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Latency {
    /// Always the same.
    Fixed {
        /// Milliseconds (fractions allowed).
        ms: f64,
    },
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound, ms.
        min_ms: f64,
        /// Upper bound, ms.
        max_ms: f64,
    },
    /// Log-normal, given by its median and 99th percentile: most requests are quick, a few are
    /// very slow.
    LongTail {
        /// Median, ms.
        median_ms: f64,
        /// 99th percentile, ms.
        p99_ms: f64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        // A request on loopback to a real go-livepeer node: a few milliseconds.
        Self::Uniform {
            min_ms: 2.0,
            max_ms: 5.0,
        }
    }
}

/// The standard normal's 99th percentile.
const Z_99: f64 = 2.326_347_874;

impl Latency {
    fn sample(self, rng: &mut SplitMix64) -> Duration {
        let ms = match self {
            Self::Fixed { ms } => ms,
            Self::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * rng.next_f64(),
            Self::LongTail { median_ms, p99_ms } => {
                let sigma = (p99_ms / median_ms).ln() / Z_99;
                // Box–Muller; `1 - u` keeps the logarithm finite.
                let (u1, u2) = (1.0 - rng.next_f64(), rng.next_f64());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median_ms * (sigma * z).exp()
            }
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let micros = (ms.max(0.0) * 1_000.0).round() as u64;
        Duration::from_micros(micros)
    }
}

/// Faults of one endpoint. Rates are probabilities per request, checked in this order:
/// refused, timeout, 5xx, 408, 429, lost answer.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointFaults {
    /// Latency of answered requests.
    pub latency: Latency,
    /// Connection refused at once.
    pub refused: f64,
    /// No answer until the client's deadline.
    pub timeout: f64,
    /// A 503 from the server (the request is not processed).
    pub error_5xx: f64,
    /// A 408.
    pub error_408: f64,
    /// A 429.
    pub error_429: f64,
    /// The server processes the request, but its answer never reaches the client, which sees a
    /// timeout at its deadline (a reset after the request was sent, a proxy dropping the answer).
    pub lost_answer: f64,
}

/// A window in which every request fails with a refused connection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Partition {
    /// Once, from `at_s` for `duration_s` seconds.
    Once {
        /// Start, seconds from the beginning of the run.
        at_s: f64,
        /// Length, seconds.
        duration_s: f64,
    },
    /// Every `every_s` seconds, starting `offset_s` into each period, for `duration_s` seconds.
    Every {
        /// Period, seconds.
        every_s: f64,
        /// Length, seconds.
        duration_s: f64,
        /// Where in each period the outage starts, seconds.
        #[serde(default)]
        offset_s: f64,
    },
}

/// A window in which the signer answers 480 (refresh required) with probability `rate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshStorm {
    /// Start, seconds.
    pub at_s: f64,
    /// Length, seconds.
    pub duration_s: f64,
    /// Probability of a 480 per signer call in the window.
    pub rate: f64,
}

/// The client process is suspended (laptop lid, VM pause, GC pause): nothing runs on the client
/// from `at_s` for `duration_s`, while the orchestrator keeps ticking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSuspend {
    /// Start, seconds.
    pub at_s: f64,
    /// Length, seconds.
    pub duration_s: f64,
}

/// An endpoint a [`Window`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowEndpoint {
    /// Signer `generate-live-payment`.
    Signer,
    /// Orchestrator session payment: first POSTs and replays alike (the server cannot tell them
    /// apart).
    Payment,
    /// Orchestrator refresh-payment.
    Refresh,
    /// Orchestrator stop.
    Stop,
}

impl WindowEndpoint {
    fn covers(self, endpoint: Endpoint) -> bool {
        matches!(
            (self, endpoint),
            (Self::Signer, Endpoint::Signer)
                | (Self::Payment, Endpoint::Payment | Endpoint::Repost)
                | (Self::Refresh, Endpoint::Refresh)
                | (Self::Stop, Endpoint::Stop)
        )
    }
}

/// When a [`Window`] starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowStart {
    /// Seconds from the session's start (TOML: a number).
    Seconds(f64),
    /// Half the run's length (TOML: `"mid"`), resolved by [`FaultPlan::resolved`].
    Mid,
}

impl Serialize for WindowStart {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Seconds(s) => serializer.serialize_f64(s),
            Self::Mid => serializer.serialize_str("mid"),
        }
    }
}

impl<'de> Deserialize<'de> for WindowStart {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Name(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) => Ok(Self::Seconds(s)),
            Raw::Name(name) if name == "mid" => Ok(Self::Mid),
            Raw::Name(name) => Err(serde::de::Error::custom(format!(
                "window start `{name}`: expected seconds or \"mid\""
            ))),
        }
    }
}

/// What a [`Window`] does to the requests it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowKind {
    /// A 503 with probability [`Window::rate`], after the request's latency; the server does not
    /// process it. TOML: `"error-5xx"`.
    #[serde(rename = "error-5xx")]
    Error5xx,
    /// Every connection refused at once: the server never sees the request.
    Refuse,
}

/// A span of time in which some endpoints fail: for example 50 % of payment POSTs answering 503
/// for 60 s from the session's start, or the signer refusing connections for 20 s mid-run.
/// Measured from each session's start (in the served model, from its start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The endpoints it covers (at least one).
    pub endpoints: Vec<WindowEndpoint>,
    /// When it starts.
    pub start: WindowStart,
    /// How long it lasts, seconds.
    pub duration_s: f64,
    /// What it does.
    pub kind: WindowKind,
    /// For [`WindowKind::Error5xx`]: the probability of a 503 per request. Default 1.
    #[serde(default = "one")]
    pub rate: f64,
}

fn one() -> f64 {
    1.0
}

impl Window {
    /// Whether it covers `endpoint` at `t` seconds from the session's start (an unresolved `Mid`
    /// window covers nothing).
    fn active(&self, endpoint: Endpoint, t: f64) -> bool {
        let WindowStart::Seconds(start) = self.start else {
            return false;
        };
        t >= start && t < start + self.duration_s && self.endpoints.iter().any(|e| e.covers(endpoint))
    }
}

/// A complete, named fault plan. `Default` is [`FaultPlan::clean`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// A name for reports.
    pub name: String,
    /// Signer `generate-live-payment`.
    pub signer: EndpointFaults,
    /// Orchestrator session payment.
    pub payment: EndpointFaults,
    /// Orchestrator refresh-payment.
    pub refresh: EndpointFaults,
    /// Orchestrator stop.
    pub stop: EndpointFaults,
    /// Outages of every endpoint.
    pub partitions: Vec<Partition>,
    /// Spans of failures of some endpoints, from each session's start.
    pub windows: Vec<Window>,
    /// Bursts of 480s.
    pub refresh_storms: Vec<RefreshStorm>,
    /// Client suspends.
    pub client_suspends: Vec<ClientSuspend>,
    /// Each server tick lands uniformly within ± this many milliseconds of its nominal time.
    pub tick_jitter_ms: f64,
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The server processes it `latency / 2` after it is sent and the answer arrives after
    /// `latency`.
    Delivered {
        /// Round trip.
        latency: Duration,
    },
    /// The server never sees it; `reply` arrives after `after`.
    Failed {
        /// When the failure is seen, after sending.
        after: Duration,
        /// What the client sees.
        reply: Reply,
    },
    /// The server processes it `latency / 2` after it is sent, but the answer is lost: the client
    /// sees [`Reply::Timeout`] after `after` (its deadline).
    LostAnswer {
        /// The round trip the answer would have taken.
        latency: Duration,
        /// When the client gives up, after sending.
        after: Duration,
    },
}

/// The profiles [`FaultPlan::profile`] knows.
pub const PROFILES: [&str; 9] = [
    "clean",
    "flaky",
    "slow-signer",
    "partition-8s",
    "partition-30s",
    "payment-503-start",
    "payment-503-mid",
    "payment-down",
    "signer-down-20s",
];

/// Why a plan could not be loaded.
#[derive(Debug)]
pub enum PlanError {
    /// No such profile.
    UnknownProfile(String),
    /// The TOML text is not a valid plan.
    Toml(toml::de::Error),
    /// A value is out of range.
    Invalid(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownProfile(name) => {
                write!(
                    f,
                    "unknown fault profile `{name}` (known: {})",
                    PROFILES.join(", ")
                )
            }
            Self::Toml(e) => write!(f, "invalid fault plan: {e}"),
            Self::Invalid(why) => write!(f, "invalid fault plan: {why}"),
        }
    }
}

impl std::error::Error for PlanError {}

/// `x ≥ 0`, and `false` for NaN (which a TOML file can spell `nan`).
fn non_negative(x: f64) -> bool {
    x >= 0.0
}

const REFUSED_AFTER: Duration = Duration::from_millis(1);

fn secs_f(at: Instant, origin: Instant) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let micros = at.saturating_duration_since(origin).as_micros() as f64;
    micros / 1e6
}

fn from_secs_f(s: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let micros = (s.max(0.0) * 1e6).round() as u64;
    Duration::from_micros(micros)
}

impl FaultPlan {
    /// No faults: loopback-like latency (2–5 ms per request).
    pub fn clean() -> Self {
        Self {
            name: "clean".into(),
            ..Self::default()
        }
    }

    /// A named profile: `clean`; `flaky` (10 % 5xx on the signer and payment endpoints, 2 %
    /// timeouts); `slow-signer` (median 300 ms, p99 4 s); `partition-8s` (one 8 s outage every
    /// 10 min); `partition-30s` (one 30 s outage every 10 min); `payment-503-start` (50 % of
    /// payment POSTs answer 503 for 60 s from the session's start); `payment-503-mid` (the same
    /// from the middle of the run); `payment-down` (every payment POST answers 503, the whole
    /// run); `signer-down-20s` (the signer refuses connections for 20 s from the middle of the
    /// run).
    pub fn profile(name: &str) -> Result<Self, PlanError> {
        let mut plan = Self::clean();
        plan.name = name.to_owned();
        match name {
            "clean" => {}
            "flaky" => {
                for e in [&mut plan.signer, &mut plan.payment] {
                    e.error_5xx = 0.10;
                    e.timeout = 0.02;
                }
            }
            "slow-signer" => {
                plan.signer.latency = Latency::LongTail {
                    median_ms: 300.0,
                    p99_ms: 4_000.0,
                };
            }
            "partition-8s" | "partition-30s" => {
                let duration_s = if name == "partition-8s" { 8.0 } else { 30.0 };
                plan.partitions.push(Partition::Every {
                    every_s: 600.0,
                    duration_s,
                    offset_s: 300.0,
                });
            }
            "payment-503-start" | "payment-503-mid" => plan.windows.push(Window {
                endpoints: vec![WindowEndpoint::Payment],
                start: if name.ends_with("start") {
                    WindowStart::Seconds(0.0)
                } else {
                    WindowStart::Mid
                },
                duration_s: 60.0,
                kind: WindowKind::Error5xx,
                rate: 0.5,
            }),
            "payment-down" => plan.payment.error_5xx = 1.0,
            "signer-down-20s" => plan.windows.push(Window {
                endpoints: vec![WindowEndpoint::Signer],
                start: WindowStart::Mid,
                duration_s: 20.0,
                kind: WindowKind::Refuse,
                rate: 1.0,
            }),
            _ => return Err(PlanError::UnknownProfile(name.to_owned())),
        }
        Ok(plan)
    }

    /// A plan from TOML text (fields as in this type; omitted ones are fault-free).
    pub fn from_toml(text: &str) -> Result<Self, PlanError> {
        let plan: Self = toml::from_str(text).map_err(PlanError::Toml)?;
        plan.validate()?;
        Ok(plan)
    }

    /// A profile name, or else a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Self, PlanError> {
        if PROFILES.contains(&name_or_path) {
            return Self::profile(name_or_path);
        }
        match std::fs::read_to_string(name_or_path) {
            Ok(text) => Self::from_toml(&text),
            Err(_) => Err(PlanError::UnknownProfile(name_or_path.to_owned())),
        }
    }

    /// This plan with every window that starts at `"mid"` starting at half of `run` instead.
    #[must_use]
    pub fn resolved(&self, run: Duration) -> Self {
        let mut plan = self.clone();
        let mid = secs_f(Instant::from_ticks(0) + run, Instant::from_ticks(0)) / 2.0;
        for w in &mut plan.windows {
            if w.start == WindowStart::Mid {
                w.start = WindowStart::Seconds(mid);
            }
        }
        plan
    }

    /// The plan as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks rates are probabilities and spans are non-negative.
    pub fn validate(&self) -> Result<(), PlanError> {
        let endpoints = [
            ("signer", &self.signer),
            ("payment", &self.payment),
            ("refresh", &self.refresh),
            ("stop", &self.stop),
        ];
        for (name, e) in endpoints {
            for (field, p) in [
                ("refused", e.refused),
                ("timeout", e.timeout),
                ("error_5xx", e.error_5xx),
                ("error_408", e.error_408),
                ("error_429", e.error_429),
                ("lost_answer", e.lost_answer),
            ] {
                if !(0.0..=1.0).contains(&p) {
                    return Err(PlanError::Invalid(format!(
                        "{name}.{field} = {p} is not in [0, 1]"
                    )));
                }
            }
            let bad_latency = match e.latency {
                Latency::Fixed { ms } => !non_negative(ms),
                Latency::Uniform { min_ms, max_ms } => !(min_ms >= 0.0 && max_ms >= min_ms),
                Latency::LongTail { median_ms, p99_ms } => !(median_ms > 0.0 && p99_ms >= median_ms),
            };
            if bad_latency {
                return Err(PlanError::Invalid(format!(
                    "{name}.latency {:?} is not a distribution",
                    e.latency
                )));
            }
        }
        for p in &self.partitions {
            let ok = match *p {
                Partition::Once { at_s, duration_s } => at_s >= 0.0 && duration_s >= 0.0,
                Partition::Every {
                    every_s,
                    duration_s,
                    offset_s,
                } => every_s > 0.0 && (0.0..every_s).contains(&duration_s) && offset_s >= 0.0,
            };
            if !ok {
                return Err(PlanError::Invalid(format!("partition {p:?}")));
            }
        }
        for (i, w) in self.windows.iter().enumerate() {
            let start_ok = match w.start {
                WindowStart::Seconds(s) => s >= 0.0 && s.is_finite(),
                WindowStart::Mid => true,
            };
            let why = if w.endpoints.is_empty() {
                Some("names no endpoint")
            } else if !start_ok {
                Some("start is not a non-negative number of seconds or \"mid\"")
            } else if !(w.duration_s >= 0.0 && w.duration_s.is_finite()) {
                Some("duration_s is not a non-negative number")
            } else if !(0.0..=1.0).contains(&w.rate) {
                Some("rate is not in [0, 1]")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(PlanError::Invalid(format!("windows[{i}] {why}")));
            }
        }
        if self
            .refresh_storms
            .iter()
            .any(|s| !(0.0..=1.0).contains(&s.rate) || s.duration_s < 0.0)
        {
            return Err(PlanError::Invalid("refresh storm rate or duration".into()));
        }
        if self
            .client_suspends
            .iter()
            .any(|s| s.duration_s < 0.0 || s.at_s < 0.0)
        {
            return Err(PlanError::Invalid("client suspend".into()));
        }
        if !non_negative(self.tick_jitter_ms) {
            return Err(PlanError::Invalid("tick_jitter_ms".into()));
        }
        Ok(())
    }

    fn endpoint(&self, endpoint: Endpoint) -> &EndpointFaults {
        match endpoint {
            Endpoint::Signer | Endpoint::OrchestratorInfo => &self.signer,
            // A replay is a payment POST like any other, to the server; the reservation's POSTs
            // and the orchestrator's other reads meet the same server as the payments.
            Endpoint::Payment
            | Endpoint::Repost
            | Endpoint::Reservation
            | Endpoint::PaidReservation
            | Endpoint::Discovery
            | Endpoint::Events => &self.payment,
            Endpoint::Refresh => &self.refresh,
            Endpoint::Stop => &self.stop,
        }
    }

    /// Whether `at` (measured from `origin`) falls in a partition.
    pub fn partitioned(&self, origin: Instant, at: Instant) -> bool {
        if self.partitions.is_empty() {
            return false;
        }
        let t = secs_f(at, origin);
        self.partitions.iter().any(|p| match *p {
            Partition::Once { at_s, duration_s } => t >= at_s && t < at_s + duration_s,
            Partition::Every {
                every_s,
                duration_s,
                offset_s,
            } => t >= offset_s && (t - offset_s).rem_euclid(every_s) < duration_s,
        })
    }

    /// The probability that a signer call at `at` is answered 480 by a refresh storm.
    pub fn storm_rate(&self, origin: Instant, at: Instant) -> f64 {
        if self.refresh_storms.is_empty() {
            return 0.0;
        }
        let t = secs_f(at, origin);
        self.refresh_storms
            .iter()
            .filter(|s| t >= s.at_s && t < s.at_s + s.duration_s)
            .map(|s| s.rate)
            .fold(0.0, f64::max)
    }

    /// The end of the client suspend covering `at`, if any: a client event due at `at` happens
    /// then instead.
    pub fn resume_at(&self, origin: Instant, at: Instant) -> Instant {
        if self.client_suspends.is_empty() {
            return at;
        }
        let t = secs_f(at, origin);
        self.client_suspends
            .iter()
            .filter(|s| t >= s.at_s && t < s.at_s + s.duration_s)
            .map(|s| origin + from_secs_f(s.at_s + s.duration_s))
            .max()
            .map_or(at, |end| end.max(at))
    }

    /// A jitter for one server tick, uniform in ± `tick_jitter_ms`, as a signed microsecond count.
    pub fn tick_jitter_us(&self, rng: &mut SplitMix64) -> i64 {
        if self.tick_jitter_ms <= 0.0 {
            return 0;
        }
        let span = self.tick_jitter_ms * 1_000.0;
        #[allow(clippy::cast_possible_truncation)]
        let us = ((rng.next_f64() * 2.0 - 1.0) * span).round() as i64;
        us
    }

    /// The strongest window covering `endpoint` at `at` (from `session_origin`): a refusal, else
    /// the highest 503 rate.
    fn window(&self, endpoint: Endpoint, session_origin: Instant, at: Instant) -> Option<(WindowKind, f64)> {
        if self.windows.is_empty() {
            return None;
        }
        let t = secs_f(at, session_origin);
        self.windows
            .iter()
            .filter(|w| w.active(endpoint, t))
            .map(|w| (w.kind, w.rate))
            .max_by(|a, b| {
                (a.0 == WindowKind::Refuse, a.1)
                    .partial_cmp(&(b.0 == WindowKind::Refuse, b.1))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    }

    /// The fate of one request to `endpoint` sent at `at`, for a client that gives up after
    /// `client_timeout`, with partitions, storms and windows all measured from `origin`. Every
    /// draw comes from `rng`.
    pub fn fate(
        &self,
        endpoint: Endpoint,
        origin: Instant,
        at: Instant,
        client_timeout: Duration,
        rng: &mut SplitMix64,
    ) -> Fate {
        self.fate_at(endpoint, origin, origin, at, client_timeout, rng)
    }

    /// [`FaultPlan::fate`] with the windows measured from `session_origin` (the session's start)
    /// and the partitions from `origin` (the run's start). Draws nothing for a window that is not
    /// active, so adding windows shifts no other fault.
    pub fn fate_at(
        &self,
        endpoint: Endpoint,
        origin: Instant,
        session_origin: Instant,
        at: Instant,
        client_timeout: Duration,
        rng: &mut SplitMix64,
    ) -> Fate {
        if self.partitioned(origin, at) {
            return Fate::Failed {
                after: REFUSED_AFTER,
                reply: Reply::Network,
            };
        }
        let window = self.window(endpoint, session_origin, at);
        if let Some((WindowKind::Refuse, _)) = window {
            return Fate::Failed {
                after: REFUSED_AFTER,
                reply: Reply::Refused,
            };
        }
        let e = self.endpoint(endpoint);
        if rng.chance(e.refused) {
            return Fate::Failed {
                after: REFUSED_AFTER,
                reply: Reply::Network,
            };
        }
        if rng.chance(e.timeout) {
            return Fate::Failed {
                after: client_timeout,
                reply: Reply::Timeout,
            };
        }
        let latency = e.latency.sample(rng);
        if latency >= client_timeout {
            return Fate::Failed {
                after: client_timeout,
                reply: Reply::Timeout,
            };
        }
        let window_5xx = window.map_or(0.0, |(_, rate)| rate);
        for (p, status) in [
            (window_5xx, 503),
            (e.error_5xx, 503),
            (e.error_408, 408),
            (e.error_429, 429),
        ] {
            if rng.chance(p) {
                return Fate::Failed {
                    after: latency,
                    reply: Reply::Status(status),
                };
            }
        }
        if rng.chance(e.lost_answer) {
            return Fate::LostAnswer {
                latency,
                after: client_timeout,
            };
        }
        Fate::Delivered { latency }
    }
}

#[cfg(test)]
mod tests;
