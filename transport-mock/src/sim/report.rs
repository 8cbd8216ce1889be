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
    /// `Pay`/`Resync` actions, from the client's own counters.
    pub(crate) payments_sent: u32,
    /// Signer requests sent (fresh ones included), as the network saw them.
    pub(crate) signer_calls: u32,
    /// Signer requests without a state.
    pub(crate) resyncs: u32,
    /// Replayed payment POSTs sent, credited, refused by the orchestrator.
    pub(crate) replays: u32,
    pub(crate) replays_credited: u32,
    pub(crate) replays_refused: u32,
    /// Requests the server processed whose answer was lost.
    pub(crate) lost_answers: u32,
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
    /// When the warnings of the episode still open at the release began (an episode ends with a
    /// credited payment).
    pub(crate) at_risk_since: Option<u64>,
    pub(crate) lapsed_since: Option<u64>,
    pub(crate) debited: u64,
    pub(crate) minted: u64,
    pub(crate) credited: u64,
    /// How long the session was funded: from its start to its release, or to the end of the run.
    pub(crate) funded_us: u64,
    pub(crate) reissued_nonces: u32,
    pub(crate) min_runway_us: Option<u64>,
    pub(crate) trace: Vec<RunwayPoint>,
}

impl SessionResult {
    /// Takes the client's counters from its own [`Stats`]: the simulation never recounts them.
    pub(crate) fn count(&mut self, stats: &Stats) {
        self.payments_sent = stats.payments_sent;
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
    /// Dropped sessions for which the client raised `AtRisk` no later than the release (since its
    /// last credited payment).
    pub at_risk_before_release: u32,
    /// Dropped sessions for which the client raised `Lapsed` no later than the release (since its
    /// last credited payment).
    pub warned_before_release: u32,
    /// Shortest time from `AtRisk` to the release, over the dropped sessions warned so, seconds.
    pub at_risk_lead_min_s: Option<f64>,
    /// Mean time from `Lapsed` to the release, over the dropped sessions warned so, seconds.
    pub lapse_lead_mean_s: Option<f64>,
    /// Shortest time from `Lapsed` to the release, seconds.
    pub lapse_lead_min_s: Option<f64>,
    /// Payment actions (`Pay` and `Resync`), from the client's counters.
    pub payments_sent: u64,
    /// Signer requests sent, fresh ones and failed ones included.
    pub signer_calls: u64,
    /// Signer requests per simulated session-hour.
    pub signer_calls_per_session_hour: f64,
    /// Signer requests per *funded* session-hour (until each session's release or the end): the
    /// fair rate when some sessions die early, since a dead session calls nobody.
    pub signer_calls_per_funded_hour: f64,
    /// Signer requests without a state (fresh ledgers).
    pub resyncs: u64,
    /// Replayed payment POSTs sent.
    pub replays: u64,
    /// Replays the orchestrator credited (their first POST never arrived).
    pub replays_credited: u64,
    /// Replays the orchestrator refused (already seen, expired params, expired auth token).
    pub replays_refused: u64,
    /// Requests the server processed whose answer never reached the client.
    pub lost_answers: u64,
    /// Fresh ledgers started on ticket params a mint had used (outside the simulation's
    /// contract: their nonces may repeat; the fast model credits nothing for them).
    pub reissued_nonces: u64,
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
    /// Credit the orchestrator received ÷ service debited.
    pub overpayment: f64,
    /// The same over the sessions this policy kept funded to the end (`None` when it kept
    /// none). A dropped session's credit ran out by definition, which makes failing look cheap:
    /// cost is compared on the sessions kept.
    pub overpayment_kept: Option<f64>,
    /// Credit the signer minted (and billed) ÷ service debited: over-payment plus the mints lost
    /// on the way.
    pub minted_per_debited: f64,
    /// Credit received beyond the service debited, seconds of service per session.
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
    credited: u128,
    debited: u128,
    kept_credited: u128,
    kept_debited: u128,
    funded_us: u128,
    notice_sum_us: u64,
    notice_count: u32,
    notice_max_us: u64,
    lapse_lead_sum_us: u64,
    lapse_lead_min_us: Option<u64>,
    at_risk_lead_min_us: Option<u64>,
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
                at_risk_before_release: 0,
                warned_before_release: 0,
                at_risk_lead_min_s: None,
                lapse_lead_mean_s: None,
                lapse_lead_min_s: None,
                payments_sent: 0,
                signer_calls: 0,
                signer_calls_per_session_hour: 0.0,
                signer_calls_per_funded_hour: 0.0,
                resyncs: 0,
                replays: 0,
                replays_credited: 0,
                replays_refused: 0,
                lost_answers: 0,
                reissued_nonces: 0,
                payments_accepted: 0,
                payments_skipped: 0,
                payments_failed: 0,
                refreshes: 0,
                minted_after_release: 0,
                at_risk: 0,
                overpayment: 0.0,
                overpayment_kept: None,
                minted_per_debited: 0.0,
                surplus_s_per_session: 0.0,
                min_runway_s: None,
                median_runway_s: None,
                traces: Vec::new(),
            },
            price_wei: config.model.price_wei,
            minted: 0,
            credited: 0,
            debited: 0,
            kept_credited: 0,
            kept_debited: 0,
            funded_us: 0,
            notice_sum_us: 0,
            notice_count: 0,
            notice_max_us: 0,
            lapse_lead_sum_us: 0,
            lapse_lead_min_us: None,
            at_risk_lead_min_us: None,
            min_runway_us: None,
            histogram: RunwayHistogram::new(),
        }
    }

    pub(crate) fn add(&mut self, s: &SessionResult) {
        let r = &mut self.report;
        r.payments_sent += u64::from(s.payments_sent);
        r.signer_calls += u64::from(s.signer_calls);
        r.resyncs += u64::from(s.resyncs);
        r.replays += u64::from(s.replays);
        r.replays_credited += u64::from(s.replays_credited);
        r.replays_refused += u64::from(s.replays_refused);
        r.lost_answers += u64::from(s.lost_answers);
        r.reissued_nonces += u64::from(s.reissued_nonces);
        r.payments_accepted += u64::from(s.accepted);
        r.payments_skipped += u64::from(s.skipped);
        r.payments_failed += u64::from(s.failed);
        r.refreshes += u64::from(s.refreshes);
        r.minted_after_release += u64::from(s.minted_after_release);
        r.at_risk += u64::from(s.at_risk);
        self.minted += u128::from(s.minted);
        self.credited += u128::from(s.credited);
        self.debited += u128::from(s.debited);
        self.funded_us += u128::from(s.funded_us);
        if s.released_at.is_none() {
            self.kept_credited += u128::from(s.credited);
            self.kept_debited += u128::from(s.debited);
        }
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
            if let Some(since) = s.at_risk_since.filter(|&at| at <= released) {
                r.at_risk_before_release += 1;
                let lead = released - since;
                self.at_risk_lead_min_us = Some(self.at_risk_lead_min_us.map_or(lead, |m| m.min(lead)));
            }
            if let Some(since) = s.lapsed_since.filter(|&at| at <= released) {
                r.warned_before_release += 1;
                let lead = released - since;
                self.lapse_lead_sum_us += lead;
                self.lapse_lead_min_us = Some(self.lapse_lead_min_us.map_or(lead, |m| m.min(lead)));
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
        if r.warned_before_release > 0 {
            r.lapse_lead_mean_s = Some(round3(
                secs(self.lapse_lead_sum_us) / f64::from(r.warned_before_release),
            ));
        }
        r.lapse_lead_min_s = self.lapse_lead_min_us.map(|m| round3(secs(m)));
        r.at_risk_lead_min_s = self.at_risk_lead_min_us.map(|m| round3(secs(m)));
        r.signer_calls_per_session_hour = if r.session_hours > 0.0 {
            round3(r.signer_calls as f64 / r.session_hours)
        } else {
            0.0
        };
        let ratio = |wei: u128| {
            if self.debited > 0 {
                round4(wei as f64 / self.debited as f64)
            } else {
                0.0
            }
        };
        r.overpayment = ratio(self.credited);
        r.overpayment_kept =
            (self.kept_debited > 0).then(|| round4(self.kept_credited as f64 / self.kept_debited as f64));
        let funded_hours = self.funded_us as f64 / 3.6e9;
        r.signer_calls_per_funded_hour = if funded_hours > 0.0 {
            round3(r.signer_calls as f64 / funded_hours)
        } else {
            0.0
        };
        r.minted_per_debited = ratio(self.minted);
        let surplus_wei = self.credited.saturating_sub(self.debited) as f64;
        r.surplus_s_per_session = round3(surplus_wei / self.price_wei as f64 / f64::from(r.sessions.max(1)));
        r.min_runway_s = self.min_runway_us.map(|m| round3(secs(m)));
        r.median_runway_s = self.histogram.median_s();
        self.report
    }
}

pub(crate) fn round3(v: f64) -> f64 {
    (v * 1_000.0).round() / 1_000.0
}

pub(crate) fn round4(v: f64) -> f64 {
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
    /// The ticket EV, seconds of price.
    pub ev_seconds: f64,
    /// One report per policy.
    pub policies: Vec<PolicyReport>,
}

impl Comparison {
    /// The comparison as JSON (deterministic: same input, same bytes).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

pub(crate) fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// A human table, one row per policy.
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "profile {} · seed {} · {} sessions × {:.2} h · ticket EV {} s of price",
            self.profile, self.seed, self.sessions, self.hours, self.ev_seconds
        )?;
        let header = [
            "policy",
            "drops",
            "drops/1000h",
            "notice s (mean/max)",
            "warned (at risk/lapsed)",
            "signer calls",
            "per session-h",
            "accepted",
            "skipped",
            "failed",
            "replays (refused)",
            "refreshes",
            "minted after release",
            "overpayment",
            "minted/debited",
            "runway s (min/median)",
        ];
        let rows: Vec<Vec<String>> = self
            .policies
            .iter()
            .map(|p| {
                vec![
                    p.policy.name().to_owned(),
                    p.drops.to_string(),
                    format!("{:.2}", p.drops_per_1000h),
                    format!("{}/{}", opt(p.notice_mean_s), opt(p.notice_max_s)),
                    format!("{}/{}", p.at_risk_before_release, p.warned_before_release),
                    p.signer_calls.to_string(),
                    format!("{:.1}", p.signer_calls_per_session_hour),
                    p.payments_accepted.to_string(),
                    p.payments_skipped.to_string(),
                    p.payments_failed.to_string(),
                    format!("{} ({})", p.replays, p.replays_refused),
                    p.refreshes.to_string(),
                    p.minted_after_release.to_string(),
                    format!("{:.4}", p.overpayment),
                    format!("{:.4}", p.minted_per_debited),
                    format!("{}/{}", opt(p.min_runway_s), opt(p.median_runway_s)),
                ]
            })
            .collect();
        f.write_str(&table(&header, &rows))
    }
}

/// A Markdown-compatible table: a header row, a rule, and the rows, columns padded to their
/// widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |text: &str| text.chars().count();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| width(c))
                .chain([width(header[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut push_row = |cells: &mut dyn Iterator<Item = &str>| {
        for (i, cell) in cells.enumerate() {
            let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(width(cell));
            let _ = write!(out, "| {cell}{} ", " ".repeat(pad));
        }
        out.push_str("|\n");
    };
    push_row(&mut header.iter().copied());
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    push_row(&mut rules.iter().map(String::as_str));
    for row in rows {
        push_row(&mut row.iter().map(String::as_str));
    }
    out
}
