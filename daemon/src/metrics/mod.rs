//! Prometheus metrics of funded sessions: their states, payments, requests and latencies,
//! runway, releases and spend, in a registry of their own ([`Metrics`]), served as OpenMetrics
//! text by [`serve_metrics`].
//!
//! Every series is named `livepay_…`. The metrics take only enums and numbers (events, states,
//! counters, durations, amounts), never text: every label value comes from a closed set, so no
//! URL, header, credential or server message can appear in a scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use livepay_core::{Endpoint, ReleaseReason, State, Stats};
use livepay_hyper::Observer;
use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

mod labels;
mod serve;

use labels::{EndpointLabel, Exchange, Outcome, Release, Replay, SessionState, StatusLabel};
pub use serve::{OPENMETRICS_CONTENT_TYPE, metrics_router, serve_metrics};

/// Bucket bounds of `livepay_request_duration_seconds`: 1 ms (a loopback answer) to 10 s
/// (past the default 5 s request timeout), about three per decade.
const REQUEST_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds of `livepay_runway_seconds`: dense under the 5 s server tick and the 1 s
/// safety margin, where a session is at risk, sparse up to the 55 s target and past it.
const RUNWAY_BUCKETS: [f64; 13] = [
    0.0, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0,
];

/// The histogram of one endpoint's request durations (a fn pointer: the family's constructor
/// must be `Send + Sync + Debug`).
fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

/// How many sessions are in each state, for [`Metrics::set_sessions`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounts {
    /// Reserved, not funding ([`State::Reserved`]).
    pub reserved: u64,
    /// Funding, the last cycle minted ([`State::Funding`]).
    pub funding: u64,
    /// Funding, the last cycle was a 482 ([`State::Skipped`]).
    pub skipped: u64,
    /// Released ([`State::Released`]), still tracked by the caller.
    pub released: u64,
}

impl SessionCounts {
    /// The counts of `states`.
    pub fn of(states: impl IntoIterator<Item = State>) -> Self {
        let mut counts = Self::default();
        for state in states {
            counts.add(state);
        }
        counts
    }

    /// Counts one more session in `state`.
    pub fn add(&mut self, state: State) {
        let slot = match SessionState::of(state) {
            SessionState::Reserved => &mut self.reserved,
            SessionState::Funding => &mut self.funding,
            SessionState::Skipped => &mut self.skipped,
            SessionState::Released => &mut self.released,
        };
        *slot = slot.saturating_add(1);
    }

    const fn get(&self, state: SessionState) -> u64 {
        match state {
            SessionState::Reserved => self.reserved,
            SessionState::Funding => self.funding,
            SessionState::Skipped => self.skipped,
            SessionState::Released => self.released,
        }
    }
}

/// The Prometheus series of funded sessions, in a registry of their own.
///
/// `Send + Sync`: share it in an [`Arc`](std::sync::Arc) between the funding tasks, the HTTP
/// client (as its [`Observer`], [`HttpClient::with_observer`]) and the scrape server. Every
/// update is a few atomic operations (a label set seen for the first time takes a write lock
/// once).
///
/// | series | type | labels | fed by |
/// | --- | --- | --- | --- |
/// | `livepay_sessions` | gauge | `state` | [`set_sessions`](Self::set_sessions) |
/// | `livepay_payments_total` | counter | `outcome`: `accepted`, `skipped`, `failed` | [`observe_stats_growth`](Self::observe_stats_growth) |
/// | `livepay_requests_total` | counter | `endpoint`, `status` (a code, or `none`) | the [`Observer`] |
/// | `livepay_request_duration_seconds` | histogram | `endpoint` | the [`Observer`] |
/// | `livepay_runway_seconds` | histogram | — | [`observe_runway`](Self::observe_runway) |
/// | `livepay_lost_mints_total` | counter | — | [`observe_stats_growth`](Self::observe_stats_growth) |
/// | `livepay_replays_total` | counter | `result`: `sent`, `credited`, `refused` | [`observe_stats_growth`](Self::observe_stats_growth) |
/// | `livepay_at_risk_total`, `livepay_lapsed_total`, `livepay_refreshes_total` | counter | — | [`observe_stats_growth`](Self::observe_stats_growth) |
/// | `livepay_releases_total` | counter | `reason` (snake_case, as `fund --json` names it) | [`observe_release`](Self::observe_release) |
///
/// Every count is the core's: the growth of a session's [`Stats`] and its release, each from a
/// path that never drops (never an event, which a full channel may drop).
/// | `livepay_spend_wei_total`, `livepay_spend_usd_total` | counter | — | [`add_spend_wei`](Self::add_spend_wei), [`add_spend_usd`](Self::add_spend_usd) |
///
/// The series with a closed label set start at zero for every value, so that a rate over them
/// is defined from the first scrape.
///
/// [`HttpClient::with_observer`]: livepay_hyper::HttpClient::with_observer
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions: Family<SessionState, Gauge>,
    payments: Family<Outcome, Counter>,
    requests: Family<Exchange, Counter>,
    request_duration: Family<EndpointLabel, Histogram, fn() -> Histogram>,
    runway: Histogram,
    lost_mints: Counter,
    replays: Family<Replay, Counter>,
    at_risk: Counter,
    lapsed: Counter,
    refreshes: Counter,
    releases: Family<Release, Counter>,
    spend_wei: Counter,
    spend_usd: Counter<f64, AtomicU64>,
    app_gone: Counter,
    taken_over: Counter,
    claimed: Counter,
    renewal_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series, at zero.
    pub fn new() -> Self {
        let metrics = Self {
            registry: Registry::with_prefix("livepay"),
            sessions: Family::default(),
            payments: Family::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(request_histogram),
            runway: Histogram::new(RUNWAY_BUCKETS),
            lost_mints: Counter::default(),
            replays: Family::default(),
            at_risk: Counter::default(),
            lapsed: Counter::default(),
            refreshes: Counter::default(),
            releases: Family::default(),
            spend_wei: Counter::default(),
            spend_usd: Counter::default(),
            app_gone: Counter::default(),
            taken_over: Counter::default(),
            claimed: Counter::default(),
            renewal_failures: Counter::default(),
        };
        // Creating a series is what makes it appear; the guards are dropped at once.
        for state in SessionState::ALL {
            drop(metrics.sessions.get_or_create(state));
        }
        for outcome in Outcome::ALL {
            drop(metrics.payments.get_or_create(outcome));
        }
        for replay in Replay::ALL {
            drop(metrics.replays.get_or_create(replay));
        }
        for release in Release::ALL {
            drop(metrics.releases.get_or_create(release));
        }
        metrics.registered()
    }

    /// `self` with every series registered (the registry holds clones: they share the values).
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register("sessions", "Sessions by state", self.sessions.clone());
        r.register(
            "payments",
            "Payment cycles by outcome: accepted, skipped (signer 482: balance current), failed (transient), abandoned (after funding stopped)",
            self.payments.clone(),
        );
        r.register(
            "requests",
            "HTTP exchanges by endpoint and status (none: no answer)",
            self.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "HTTP exchange duration by endpoint, from sending to the whole answer (or the failure)",
            Unit::Seconds,
            self.request_duration.clone(),
        );
        r.register_with_unit(
            "runway",
            "Estimated runway after each accepted payment: time until the orchestrator's credit runs out",
            Unit::Seconds,
            self.runway.clone(),
        );
        r.register(
            "lost_mints",
            "Minted payments given up undelivered (a fresh signer ledger followed)",
            self.lost_mints.clone(),
        );
        r.register(
            "replays",
            "Reposts of a minted payment: sent, credited by the orchestrator, refused",
            self.replays.clone(),
        );
        r.register(
            "at_risk",
            "At-risk episodes: the runway fell under one server tick without a success",
            self.at_risk.clone(),
        );
        r.register(
            "lapsed",
            "Lapses: the deadline for a success passed",
            self.lapsed.clone(),
        );
        r.register(
            "refreshes",
            "Successful payment-params refreshes",
            self.refreshes.clone(),
        );
        r.register("releases", "Sessions released, by reason", self.releases.clone());
        r.register(
            "spend_wei",
            "Wei spent (saturates at 2^64-1)",
            self.spend_wei.clone(),
        );
        r.register("spend_usd", "US dollars spent", self.spend_usd.clone());
        r.register(
            "app_gone",
            "Sessions stopped because the app's lease lapsed (the app went away)",
            self.app_gone.clone(),
        );
        r.register(
            "taken_over",
            "Sessions this daemon stopped funding because another daemon of the fleet took them over",
            self.taken_over.clone(),
        );
        r.register(
            "claimed",
            "Sessions this daemon claimed from the store (at start, or from a daemon that went away)",
            self.claimed.clone(),
        );
        r.register(
            "lease_renewal_failures",
            "Lease renewals the store refused or did not answer",
            self.renewal_failures.clone(),
        );
        self
    }

    /// Counts a session stopped because its app's lease lapsed.
    pub fn observe_app_gone(&self) {
        self.app_gone.inc();
    }

    /// Counts a session lost to another daemon.
    pub fn observe_taken_over(&self) {
        self.taken_over.inc();
    }

    /// Counts `n` sessions claimed.
    pub fn observe_claimed(&self, n: usize) {
        self.claimed.inc_by(n as u64);
    }

    /// Counts a failed lease renewal.
    pub fn observe_renewal_failure(&self) {
        self.renewal_failures.inc();
    }

    /// Counts a session's release, by reason: call it once per session, from the path that
    /// never drops an end (the funder's exits, a session's `wait_released`), never from events.
    pub fn observe_release(&self, reason: ReleaseReason) {
        self.releases.get_or_create(&Release::of(reason)).inc();
    }

    /// Sets `livepay_sessions` to `counts` (every state, so a state left empty reads 0).
    pub fn set_sessions(&self, counts: SessionCounts) {
        for &state in SessionState::ALL {
            let n = i64::try_from(counts.get(state)).unwrap_or(i64::MAX);
            self.sessions.get_or_create(&state).set(n);
        }
    }

    /// Records one estimate of the runway, in seconds: call it after each accepted payment.
    /// A negative runway (the credit ran out) counts as 0; NaN is ignored.
    pub fn observe_runway(&self, seconds: f64) {
        if seconds.is_nan() {
            return;
        }
        self.runway.observe(seconds.max(0.0));
    }

    /// Adds the growth from `before` to `after` of one session's core [`Stats`] to every series
    /// taken from them (payments by outcome, lost mints, at-risk episodes, lapses, refreshes,
    /// replays), each saturating at zero: a counter that went down (a new session's stats, say)
    /// adds nothing. Every count comes from here: the core's counters, never events.
    pub fn observe_stats_growth(&self, before: &Stats, after: &Stats) {
        let grown = |a: u32, b: u32| u64::from(b.saturating_sub(a));
        for (outcome, n) in [
            (
                Outcome::Accepted,
                grown(before.payments_accepted, after.payments_accepted),
            ),
            (
                Outcome::Skipped,
                grown(before.cycles_skipped, after.cycles_skipped),
            ),
            (Outcome::Failed, grown(before.failures, after.failures)),
        ] {
            if n > 0 {
                self.payments.get_or_create(&outcome).inc_by(n);
            }
        }
        for (counter, n) in [
            (&self.lost_mints, grown(before.lost_mints, after.lost_mints)),
            (&self.at_risk, grown(before.at_risk, after.at_risk)),
            (&self.lapsed, grown(before.lapses, after.lapses)),
            (&self.refreshes, grown(before.refreshes, after.refreshes)),
        ] {
            if n > 0 {
                counter.inc_by(n);
            }
        }
        for (replay, n) in [
            (Replay::Sent, grown(before.reposts, after.reposts)),
            (
                Replay::Credited,
                grown(before.reposts_credited, after.reposts_credited),
            ),
            (
                Replay::Refused,
                grown(before.replays_refused, after.replays_refused),
            ),
        ] {
            if n > 0 {
                self.replays.get_or_create(&replay).inc_by(n);
            }
        }
    }

    /// Adds `wei` to `livepay_spend_wei_total`. The counter is a `u64` (what prometheus-client
    /// counts integers in): the amount and the total saturate at `u64::MAX` wei (about 18.4
    /// ETH) rather than wrap.
    pub fn add_spend_wei(&self, wei: u128) {
        let wei = u64::try_from(wei).unwrap_or(u64::MAX);
        // `inc_by` would wrap on overflow; a saturating update keeps the counter monotonic.
        let _ = self
            .spend_wei
            .inner()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |total| {
                Some(total.saturating_add(wei))
            });
    }

    /// Adds `usd` to `livepay_spend_usd_total`; a negative, NaN or infinite amount is ignored
    /// (a counter only grows, and one bad price must not poison the total).
    pub fn add_spend_usd(&self, usd: f64) {
        if usd.is_finite() && usd >= 0.0 && (self.spend_usd.get() + usd).is_finite() {
            self.spend_usd.inc_by(usd);
        }
    }

    /// Every series as OpenMetrics text, ending with `# EOF` (serve it with
    /// [`OPENMETRICS_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        if text::encode(&mut out, &self.registry).is_err() {
            // Unreachable with these label types (writing to a `String` cannot fail); should it
            // happen, an empty exposition is still a valid one.
            out.clear();
            out.push_str("# EOF\n");
        }
        out
    }
}

/// Counts every exchange of the HTTP client by endpoint and status, and times it.
impl Observer for Metrics {
    fn on_exchange(&self, endpoint: Endpoint, latency: Duration, status: Option<u16>) {
        let endpoint = EndpointLabel::of(endpoint);
        let status = status.map_or(StatusLabel::None, StatusLabel::Code);
        self.requests.get_or_create(&Exchange { endpoint, status }).inc();
        self.request_duration
            .get_or_create(&endpoint)
            .observe(latency.as_secs_f64());
    }
}

#[cfg(test)]
mod tests;
