//! What a simulation reports, per policy, as a table and as JSON.

use std::fmt::{self, Write as _};

use livepay_core::Stats;
use serde::Serialize;

use super::{PolicyKind, SimConfig, secs};

/// Runway histogram resolution: 100 ms buckets up to 10 minutes.
const BUCKET_US: u64 = 100_000;
const BUCKETS: usize = 6_000;

/// What happened to one session (kept small: one per simulated session).
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionResult {
    pub(crate) signer_calls: u32,
    pub(crate) accepted: u32,
    pub(crate) skipped: u32,
    pub(crate) failed: u32,
    pub(crate) refreshes: u32,
    pub(crate) at_risk: u32,
    pub(crate) minted_after_release: u32,
    /// When the orchestrator released the session on its own (before the end of the run).
    pub(crate) released_at: Option<u64>,
    /// When the client's policy reached a terminal state.
    pub(crate) client_end_at: Option<u64>,
    pub(crate) lapsed_at: Option<u64>,
    pub(crate) debited: u64,
    pub(crate) minted: u64,
    pub(crate) min_runway_us: Option<u64>,
    pub(crate) trace: Vec<RunwayPoint>,
}

impl SessionResult {
    /// Takes the client's counters from its own [`Stats`]: the simulation never recounts them.
    pub(crate) fn count(&mut self, stats: &Stats) {
        self.signer_calls = stats.payments_sent;
        self.accepted = stats.payments_accepted;
        self.skipped = stats.cycles_skipped;
        self.failed = stats.failures;
        self.refreshes = stats.refreshes;
        self.at_risk = stats.at_risk;
    }
}

/// Runway samples of every session of a policy, in 100 ms buckets (for the median).
#[derive(Debug, Clone)]
pub(crate) struct RunwayHistogram(Vec<u64>);

impl RunwayHistogram {
    pub(crate) fn new() -> Self {
        Self(vec![0; BUCKETS])
    }

    pub(crate) fn record(&mut self, runway_us: u64) {
        let bucket = usize::try_from(runway_us / BUCKET_US).map_or(BUCKETS - 1, |b| b.min(BUCKETS - 1));
        self.0[bucket] += 1;
    }

    fn median_s(&self) -> Option<f64> {
        let total: u64 = self.0.iter().sum();
        let mut seen = 0;
        for (bucket, count) in self.0.iter().enumerate() {
            seen += count;
            if total > 0 && seen * 2 >= total {
                return Some(round3((bucket as f64 + 0.5) * BUCKET_US as f64 / 1e6));
            }
        }
        None
    }
}

/// The true runway (time the orchestrator's balance still covers) at one payment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RunwayPoint {
    /// Simulated seconds.
    pub t_s: f64,
    /// Seconds of service the balance covers after the payment.
    pub runway_s: f64,
}

/// Totals for one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    /// The policy.
    pub policy: PolicyKind,
    /// Sessions simulated.
    pub sessions: u32,
    /// Session-hours simulated.
    pub session_hours: f64,
    /// Sessions the orchestrator released while the client still wanted them funded.
    pub drops: u32,
    /// Drops per 1,000 session-hours.
    pub drops_per_1000h: f64,
    /// Mean seconds from a release to the client ending funding because of it (a 404, or the
    /// signer refusing the gap), over noticed drops.
    pub notice_mean_s: Option<f64>,
    /// Longest such delay, seconds.
    pub notice_max_s: Option<f64>,
    /// Dropped sessions the client never confirmed before the run ended.
    pub unnoticed: u32,
    /// Dropped sessions for which the client raised `Lapsed` no later than the release.
    pub warned_before_release: u32,
    /// Signer calls (payment attempts).
    pub payments_sent: u64,
    /// Payments the orchestrator credited.
    pub payments_accepted: u64,
    /// Cycles the signer skipped (482).
    pub payments_skipped: u64,
    /// Transient failures.
    pub payments_failed: u64,
    /// Successful refreshes.
    pub refreshes: u64,
    /// Mints for sessions the orchestrator had already released.
    pub minted_after_release: u64,
    /// `AtRisk` warnings.
    pub at_risk: u64,
    /// Credit minted ÷ service debited.
    pub overpayment: f64,
    /// Credit minted beyond the service debited, seconds of service per session.
    pub surplus_s_per_session: f64,
    /// Smallest runway seen before a payment landed, seconds.
    pub min_runway_s: Option<f64>,
    /// Median runway before a payment landed, seconds.
    pub median_runway_s: Option<f64>,
    /// Runway traces of the first `trace_sessions` sessions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<Vec<RunwayPoint>>,
}

/// Sums session results into a [`PolicyReport`] without keeping them.
pub(crate) struct Accumulator {
    report: PolicyReport,
    price_wei: u64,
    minted: u128,
    debited: u128,
    notice_sum_us: u64,
    notice_count: u32,
    notice_max_us: u64,
    min_runway_us: Option<u64>,
    pub(crate) histogram: RunwayHistogram,
}

impl Accumulator {
    pub(crate) fn new(policy: PolicyKind, config: &SimConfig) -> Self {
        let hours = f64::from(config.sessions) * config.duration.as_secs() as f64 / 3_600.0;
        Self {
            report: PolicyReport {
                policy,
                sessions: config.sessions,
                session_hours: hours,
                drops: 0,
                drops_per_1000h: 0.0,
                notice_mean_s: None,
                notice_max_s: None,
                unnoticed: 0,
                warned_before_release: 0,
                payments_sent: 0,
                payments_accepted: 0,
                payments_skipped: 0,
                payments_failed: 0,
                refreshes: 0,
                minted_after_release: 0,
                at_risk: 0,
                overpayment: 0.0,
                surplus_s_per_session: 0.0,
                min_runway_s: None,
                median_runway_s: None,
                traces: Vec::new(),
            },
            price_wei: config.model.price_wei,
            minted: 0,
            debited: 0,
            notice_sum_us: 0,
            notice_count: 0,
            notice_max_us: 0,
            min_runway_us: None,
            histogram: RunwayHistogram::new(),
        }
    }

    pub(crate) fn add(&mut self, s: &SessionResult) {
        let r = &mut self.report;
        r.payments_sent += u64::from(s.signer_calls);
        r.payments_accepted += u64::from(s.accepted);
        r.payments_skipped += u64::from(s.skipped);
        r.payments_failed += u64::from(s.failed);
        r.refreshes += u64::from(s.refreshes);
        r.minted_after_release += u64::from(s.minted_after_release);
        r.at_risk += u64::from(s.at_risk);
        self.minted += u128::from(s.minted);
        self.debited += u128::from(s.debited);
        if let Some(released) = s.released_at {
            r.drops += 1;
            match s.client_end_at.filter(|&end| end >= released) {
                Some(noticed) => {
                    let delay = noticed.saturating_sub(released);
                    self.notice_sum_us += delay;
                    self.notice_count += 1;
                    self.notice_max_us = self.notice_max_us.max(delay);
                }
                None => r.unnoticed += 1,
            }
            if s.lapsed_at.is_some_and(|lapsed| lapsed <= released) {
                r.warned_before_release += 1;
            }
        }
        if let Some(m) = s.min_runway_us {
            self.min_runway_us = Some(self.min_runway_us.map_or(m, |x| x.min(m)));
        }
        if !s.trace.is_empty() {
            r.traces.push(s.trace.clone());
        }
    }

    pub(crate) fn finish(mut self) -> PolicyReport {
        let r = &mut self.report;
        r.drops_per_1000h = if r.session_hours > 0.0 {
            f64::from(r.drops) * 1_000.0 / r.session_hours
        } else {
            0.0
        };
        if self.notice_count > 0 {
            r.notice_mean_s = Some(round3(secs(self.notice_sum_us) / f64::from(self.notice_count)));
            r.notice_max_s = Some(round3(secs(self.notice_max_us)));
        }
        r.overpayment = if self.debited > 0 {
            round4(self.minted as f64 / self.debited as f64)
        } else {
            0.0
        };
        let surplus_wei = self.minted.saturating_sub(self.debited) as f64;
        r.surplus_s_per_session = round3(surplus_wei / self.price_wei as f64 / f64::from(r.sessions.max(1)));
        r.min_runway_s = self.min_runway_us.map(|m| round3(secs(m)));
        r.median_runway_s = self.histogram.median_s();
        self.report
    }
}

fn round3(v: f64) -> f64 {
    (v * 1_000.0).round() / 1_000.0
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// Several policies under one configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The fault plan's name.
    pub profile: String,
    /// The seed.
    pub seed: u64,
    /// Sessions per policy.
    pub sessions: u32,
    /// Hours per session.
    pub hours: f64,
    /// One report per policy.
    pub policies: Vec<PolicyReport>,
}

impl Comparison {
    /// The comparison as JSON (deterministic: same input, same bytes).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// A human table, one row per policy.
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "profile {} · seed {} · {} sessions × {:.2} h",
            self.profile, self.seed, self.sessions, self.hours
        )?;
        let header = [
            "policy",
            "drops",
            "drops/1000h",
            "notice s (mean/max)",
            "sent",
            "accepted",
            "skipped",
            "failed",
            "refreshes",
            "minted after release",
            "overpayment",
            "runway s (min/median)",
        ];
        let rows: Vec<[String; 12]> = self
            .policies
            .iter()
            .map(|p| {
                [
                    p.policy.name().to_owned(),
                    p.drops.to_string(),
                    format!("{:.2}", p.drops_per_1000h),
                    format!("{}/{}", opt(p.notice_mean_s), opt(p.notice_max_s)),
                    p.payments_sent.to_string(),
                    p.payments_accepted.to_string(),
                    p.payments_skipped.to_string(),
                    p.payments_failed.to_string(),
                    p.refreshes.to_string(),
                    p.minted_after_release.to_string(),
                    format!("{:.4}", p.overpayment),
                    format!("{}/{}", opt(p.min_runway_s), opt(p.median_runway_s)),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].len())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut line = String::new();
        for (i, h) in header.iter().enumerate() {
            let _ = write!(line, "| {:w$} ", h, w = widths[i]);
        }
        writeln!(f, "{line}|")?;
        line.clear();
        for w in &widths {
            let _ = write!(line, "|{}", "-".repeat(w + 2));
        }
        writeln!(f, "{line}|")?;
        for row in rows {
            line.clear();
            for (i, cell) in row.iter().enumerate() {
                let _ = write!(line, "| {:w$} ", cell, w = widths[i]);
            }
            writeln!(f, "{line}|")?;
        }
        Ok(())
    }
}
