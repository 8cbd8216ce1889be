//! A seeded, composable fault plan: per-endpoint latency distributions and error rates,
//! partitions, refresh storms, client suspends and server tick jitter. Plans come from named
//! profiles ([`FaultPlan::profile`]) or TOML files ([`FaultPlan::from_toml`]).
//!
//! ```toml
//! name = "flaky-signer"
//! [signer]
//! latency = { kind = "long-tail", median_ms = 300, p99_ms = 4000 }
//! error_5xx = 0.10
//! timeout = 0.02
//! [[partitions]]
//! every_s = 600
//! duration_s = 8
//! ```
//!
//! The plan is pure data; [`FaultPlan::fate`] turns it into the fate of one request, drawing from
//! a caller-owned seeded generator, so the same seed gives the same faults.

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
/// refused, timeout, 5xx, 408, 429.
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
}

/// The profiles [`FaultPlan::profile`] knows.
pub const PROFILES: [&str; 5] = ["clean", "flaky", "slow-signer", "partition-8s", "partition-30s"];

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
    /// 10 min); `partition-30s` (one 30 s outage every 10 min).
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
            Endpoint::Signer => &self.signer,
            Endpoint::Payment => &self.payment,
            Endpoint::Refresh => &self.refresh,
            Endpoint::Stop => &self.stop,
        }
    }

    /// Whether `at` (measured from `origin`) falls in a partition.
    pub fn partitioned(&self, origin: Instant, at: Instant) -> bool {
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

    /// The fate of one request to `endpoint` sent at `at`, for a client that gives up after
    /// `client_timeout`. Every draw comes from `rng`.
    pub fn fate(
        &self,
        endpoint: Endpoint,
        origin: Instant,
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
        for (p, status) in [(e.error_5xx, 503), (e.error_408, 408), (e.error_429, 429)] {
            if rng.chance(p) {
                return Fate::Failed {
                    after: latency,
                    reply: Reply::Status(status),
                };
            }
        }
        Fate::Delivered { latency }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::from_ticks(0);
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn at(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn every_profile_loads_and_validates() {
        for name in PROFILES {
            let plan = FaultPlan::profile(name).unwrap();
            assert_eq!(plan.name, name);
            plan.validate().unwrap();
            // TOML round trip.
            assert_eq!(FaultPlan::from_toml(&plan.to_toml()).unwrap(), plan, "{name}");
        }
        assert!(matches!(
            FaultPlan::profile("nope"),
            Err(PlanError::UnknownProfile(_))
        ));
    }

    #[test]
    fn toml_plans_parse_and_bad_ones_are_refused() {
        let plan = FaultPlan::from_toml(
            r#"
            name = "custom"
            tick_jitter_ms = 50
            [signer]
            latency = { kind = "long-tail", median_ms = 300, p99_ms = 4000 }
            error_5xx = 0.1
            [[partitions]]
            every_s = 600
            duration_s = 8
            [[partitions]]
            at_s = 30
            duration_s = 12
            [[refresh_storms]]
            at_s = 100
            duration_s = 60
            rate = 0.5
            [[client_suspends]]
            at_s = 200
            duration_s = 20
            "#,
        )
        .unwrap();
        assert_eq!(plan.partitions.len(), 2);
        assert!(plan.partitioned(T0, at(35)));
        assert!(plan.partitioned(T0, at(604)));
        assert!(!plan.partitioned(T0, at(610)));
        assert_eq!(plan.storm_rate(T0, at(120)), 0.5);
        assert_eq!(plan.resume_at(T0, at(210)), at(220));
        assert_eq!(plan.resume_at(T0, at(230)), at(230));
        assert!(matches!(
            FaultPlan::from_toml("[signer]\nerror_5xx = 1.5"),
            Err(PlanError::Invalid(_))
        ));
        assert!(matches!(
            FaultPlan::from_toml("bogus = 1"),
            Err(PlanError::Toml(_))
        ));
        assert!(matches!(
            FaultPlan::from_toml("[signer]\nlatency = { kind = \"uniform\", min_ms = 5, max_ms = 1 }"),
            Err(PlanError::Invalid(_))
        ));
    }

    #[test]
    fn fates_follow_the_rates_and_the_seed() {
        let plan = FaultPlan::profile("flaky").unwrap();
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..10_000)
                .map(|i| plan.fate(Endpoint::Signer, T0, at(i), TIMEOUT, &mut rng))
                .collect::<Vec<_>>()
        };
        let fates = draw(1);
        assert_eq!(fates, draw(1));
        assert_ne!(fates, draw(2));
        let count = |reply: Reply| {
            fates
                .iter()
                .filter(|f| matches!(f, Fate::Failed { reply: r, .. } if *r == reply))
                .count()
        };
        let (e5xx, timeouts) = (count(Reply::Status(503)), count(Reply::Timeout));
        assert!((850..1_150).contains(&e5xx), "{e5xx}");
        assert!((130..270).contains(&timeouts), "{timeouts}");
        // The refresh endpoint is clean in this profile.
        let mut rng = SplitMix64::new(3);
        assert!(matches!(
            plan.fate(Endpoint::Refresh, T0, at(1), TIMEOUT, &mut rng),
            Fate::Delivered { .. }
        ));
    }

    #[test]
    fn long_tail_latency_has_its_median_and_p99() {
        let tail = Latency::LongTail {
            median_ms: 300.0,
            p99_ms: 4_000.0,
        };
        let mut rng = SplitMix64::new(9);
        let mut v: Vec<u64> = (0..20_000).map(|_| tail.sample(&mut rng).as_millis()).collect();
        v.sort_unstable();
        let median = v[v.len() / 2];
        let p99 = v[v.len() * 99 / 100];
        assert!((270..330).contains(&median), "median {median}");
        assert!((3_400..4_700).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn partitions_refuse_everything_and_slow_answers_time_out() {
        let plan = FaultPlan::profile("partition-30s").unwrap();
        let mut rng = SplitMix64::new(1);
        assert_eq!(
            plan.fate(Endpoint::Payment, T0, at(310), TIMEOUT, &mut rng),
            Fate::Failed {
                after: REFUSED_AFTER,
                reply: Reply::Network
            }
        );
        assert!(matches!(
            plan.fate(Endpoint::Payment, T0, at(331), TIMEOUT, &mut rng),
            Fate::Delivered { .. }
        ));
        let mut slow = FaultPlan::clean();
        slow.signer.latency = Latency::Fixed { ms: 6_000.0 };
        assert_eq!(
            slow.fate(Endpoint::Signer, T0, at(0), TIMEOUT, &mut rng),
            Fate::Failed {
                after: TIMEOUT,
                reply: Reply::Timeout
            }
        );
    }

    #[test]
    fn tick_jitter_stays_in_bounds() {
        let plan = FaultPlan {
            tick_jitter_ms: 40.0,
            ..FaultPlan::clean()
        };
        let mut rng = SplitMix64::new(5);
        assert!((0..1_000).all(|_| plan.tick_jitter_us(&mut rng).abs() <= 40_000));
        assert_eq!(FaultPlan::clean().tick_jitter_us(&mut rng), 0);
    }
}
