//! The go-livepeer orchestrator (`docs/protocol.md` §2.3–2.7, §3): discovery, the 402 reservation, session
//! payments, refresh, stop, and the per-session billing ticker with silent release.
//!
//! This module holds the [`Orchestrator`] state, its accessors and the request routing; the handlers
//! live in `reservation` (discovery, the 402 challenge, the paid retry, session creation), `payments`
//! (session payments, refresh-payment, stop, ticket and nonce checks) and `ticker` (the per-session
//! meter, billing ticks and release).

use std::collections::{BTreeMap, BTreeSet};

use embassy_time::{Duration, Instant};

use super::config::{JitterFn, ModelConfig, PriceKind, Pricing, RunnerConfig};
use super::token::{self, AuthToken, Key, ParamsRecord, domain};
use super::{Method, Request, Response};
use livepay_core::rng::SplitMix64;

mod payments;
mod reservation;
mod ticker;

use payments::NonceSet;
use ticker::Meter;

/// Why the orchestrator released a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseCause {
    /// A tick's fee exceeded the balance (silent release, §3).
    InsufficientBalance {
        /// The fee of the uncovered tick, wei.
        fee: u128,
        /// The balance at that tick, wei.
        balance: u128,
    },
    /// The client posted `/stop`.
    Stopped,
    /// The orchestrator restarted and dropped every session it held ([`Orchestrator::restart`]).
    Restarted,
}

/// One entry of the release log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The session id.
    pub session_id: String,
    /// Its runner.
    pub runner_id: String,
    /// When it was released.
    pub at: Instant,
    /// Why.
    pub reason: ReleaseCause,
}

/// Counters of the orchestrator, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrchestratorStats {
    /// 402 challenges issued.
    pub challenges: u64,
    /// Sessions created (paid or unpriced).
    pub sessions_created: u64,
    /// Payments accepted (the paid reservation and every 200 payment).
    pub payments_accepted: u64,
    /// Payments rejected (any non-200 answer to a payment attempt, including a paid reservation).
    pub payments_rejected: u64,
    /// Tickets credited.
    pub tickets_accepted: u64,
    /// Tickets refused because their sender nonce was already seen under their params (go-livepeer
    /// "invalid ticket senderNonce: already seen").
    pub tickets_already_seen: u64,
    /// Tickets refused because their params had expired ("TicketParams expired").
    pub tickets_expired: u64,
    /// Payments answered 400 because a ticket's nonce was already seen (a replay, or an older
    /// signer state reused).
    pub payments_already_seen: u64,
    /// Payments answered 400 because their ticket params had expired (and no nonce was seen).
    pub payments_expired: u64,
    /// Total credit, wei (expected value of accepted tickets).
    pub total_credited: u128,
    /// Total debited by ticks, wei.
    pub total_debited: u128,
    /// Billing ticks run (including the releasing ones).
    pub ticks: u64,
    /// Refresh-payment 200 answers.
    pub refreshes: u64,
    /// Sessions released for lack of balance.
    pub released_unpaid: u64,
    /// Sessions released by `/stop`.
    pub released_stopped: u64,
    /// Sessions dropped by a restart ([`Orchestrator::restart`]).
    pub released_restart: u64,
}

/// A session as the orchestrator holds it.
#[derive(Debug, Clone)]
pub struct HostedSession {
    id: String,
    runner_id: String,
    sender: Option<String>,
    pricing: Pricing,
    created_at: Instant,
    released: Option<(Instant, ReleaseCause)>,
    meter: Option<Meter>,
    serial: u64,
    credited: u128,
    debited: u128,
    payments: u64,
    ticks: u64,
}

impl HostedSession {
    /// The session id (= manifest id).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runner.
    #[must_use]
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// The payer address (`None` for an unpriced session).
    #[must_use]
    pub fn sender(&self) -> Option<&str> {
        self.sender.as_deref()
    }

    /// The price pinned at reservation.
    #[must_use]
    pub fn pricing(&self) -> Pricing {
        self.pricing
    }

    /// When the reservation succeeded.
    #[must_use]
    pub fn created_at(&self) -> Instant {
        self.created_at
    }

    /// Release time and reason, if released.
    #[must_use]
    pub fn released(&self) -> Option<(Instant, ReleaseCause)> {
        self.released
    }

    /// Whether the session is still live.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.released.is_none()
    }

    /// The next billing tick, if the session is metered and live.
    #[must_use]
    pub fn next_tick(&self) -> Option<Instant> {
        self.meter
            .as_ref()
            .filter(|_| self.is_active())
            .map(|m| m.next_tick)
    }

    /// Credit received (reservation included), wei.
    #[must_use]
    pub fn credited(&self) -> u128 {
        self.credited
    }

    /// Debited by ticks, wei.
    #[must_use]
    pub fn debited(&self) -> u128 {
        self.debited
    }

    /// Payments accepted (reservation included).
    #[must_use]
    pub fn payments(&self) -> u64 {
        self.payments
    }

    /// Billing ticks run.
    #[must_use]
    pub fn ticks(&self) -> u64 {
        self.ticks
    }
}

#[derive(Debug, Clone)]
struct BalanceRecord {
    runner_id: String,
    pinned: Option<Pricing>,
    balance: u128,
    last_access: Instant,
}

#[derive(Debug, Clone)]
struct PendingChallenge {
    runner_id: String,
}

#[derive(Debug, Clone)]
struct Runner {
    config: RunnerConfig,
    active: u32,
}

/// The modelled orchestrator.
#[derive(Debug)]
pub struct Orchestrator {
    manifest_ids: crate::model::config::ManifestIds,
    service_url: String,
    ticket_ev: u128,
    tick: Duration,
    tick_jitter: Option<JitterFn>,
    param_lifetime: Duration,
    ticket_expiry_grace: Duration,
    auth_lifetime: Duration,
    idle_expiry: Duration,
    runners: BTreeMap<String, Runner>,
    rng: SplitMix64,
    key: Key,
    signer_key: Key,
    challenges: BTreeMap<String, PendingChallenge>,
    sessions: BTreeMap<String, HostedSession>,
    records: BTreeMap<(String, String), BalanceRecord>,
    ticks: BTreeSet<(Instant, u64)>,
    serials: BTreeMap<u64, String>,
    next_serial: u64,
    next_token_id: u64,
    /// Sender nonces seen, per (sender, params identity): go-livepeer keys them by recipient rand,
    /// which is derived from both (`pm/recipient.go` L369-398).
    used_nonces: BTreeMap<(String, u64), NonceSet>,
    next_sweep: Instant,
    releases: Vec<Release>,
    stats: OrchestratorStats,
}

fn us(t: Instant) -> u64 {
    t.as_micros()
}

fn expired(record: &BalanceRecord, now: Instant, idle: Duration) -> bool {
    now.saturating_duration_since(record.last_access) >= idle
}

/// The live balance record for `key`, removing it if it expired.
fn live_record<'a>(
    records: &'a mut BTreeMap<(String, String), BalanceRecord>,
    key: &(String, String),
    now: Instant,
    idle: Duration,
) -> Option<&'a mut BalanceRecord> {
    if records.get(key).is_some_and(|r| expired(r, now, idle)) {
        records.remove(key);
    }
    records.get_mut(key)
}

impl Orchestrator {
    pub(crate) fn new(config: ModelConfig, rng: SplitMix64, key: Key, signer_key: Key) -> Self {
        let runners = config
            .runners
            .into_iter()
            .map(|r| (r.id.clone(), Runner { config: r, active: 0 }))
            .collect();
        Self {
            manifest_ids: config.manifest_ids,
            service_url: config.service_url.trim_end_matches('/').to_owned(),
            ticket_ev: config.ticket_ev_wei.max(1),
            tick: config.tick.max(Duration::from_millis(1)),
            tick_jitter: config.tick_jitter,
            param_lifetime: config.param_lifetime,
            ticket_expiry_grace: config.ticket_expiry_grace,
            auth_lifetime: config.auth_token_lifetime,
            idle_expiry: config.record_idle_expiry,
            runners,
            rng,
            key,
            signer_key,
            challenges: BTreeMap::new(),
            sessions: BTreeMap::new(),
            records: BTreeMap::new(),
            ticks: BTreeSet::new(),
            serials: BTreeMap::new(),
            next_serial: 0,
            next_token_id: 1,
            used_nonces: BTreeMap::new(),
            next_sweep: Instant::from_ticks(0),
            releases: Vec::new(),
            stats: OrchestratorStats::default(),
        }
    }

    // ---- accessors -------------------------------------------------------------------------------

    /// The service URL (origin) the orchestrator names itself by.
    #[must_use]
    pub fn service_url(&self) -> &str {
        &self.service_url
    }

    /// The reservation URL of runner `runner_id`, as the discovery answer names it.
    #[must_use]
    pub fn runner_url(&self, runner_id: &str) -> String {
        format!("{}/apps/{runner_id}/session", self.service_url)
    }

    /// A session, live or released.
    #[must_use]
    pub fn session(&self, session_id: &str) -> Option<&HostedSession> {
        self.sessions.get(session_id)
    }

    /// Every session, by id.
    pub fn sessions(&self) -> impl Iterator<Item = &HostedSession> {
        self.sessions.values()
    }

    /// When `session_id` was released, if it was.
    #[must_use]
    pub fn released_at(&self, session_id: &str) -> Option<Instant> {
        self.sessions
            .get(session_id)
            .and_then(|s| s.released)
            .map(|(at, _)| at)
    }

    /// The release log, in release order.
    #[must_use]
    pub fn releases(&self) -> &[Release] {
        &self.releases
    }

    /// A restart at `at`: every active session is released at once (its balance is gone; its
    /// next payment gets a 404), as an orchestrator that restarts with thousands of sessions
    /// does. Returns how many were released.
    pub fn restart(&mut self, at: Instant) -> usize {
        let active: Vec<String> = self
            .sessions()
            .filter(|s| s.is_active())
            .map(|s| s.id().to_owned())
            .collect();
        for id in &active {
            self.release(at, id, ReleaseCause::Restarted);
        }
        active.len()
    }

    /// Session `id` dropped at `at` the way [`restart`](Self::restart) drops every session (a
    /// runner that crashed, an operator's action): silently, its next payment gets a 404.
    /// Whether it was live.
    pub fn release_one(&mut self, at: Instant, id: &str) -> bool {
        let live = self.session(id).is_some_and(HostedSession::is_active);
        self.release(at, id, ReleaseCause::Restarted);
        live
    }

    /// The balance (wei) of the record `(sender, session_id)` of a priced session, if the record is live
    /// at `now`.
    #[must_use]
    pub fn session_balance(&self, now: Instant, session_id: &str) -> Option<u128> {
        let session = self.sessions.get(session_id)?;
        let key = (session.sender.clone()?, session.id.clone());
        self.records
            .get(&key)
            .filter(|r| !expired(r, now, self.idle_expiry))
            .map(|r| r.balance)
    }

    /// Whether a live balance record with a pinned price exists for `(sender, manifest_id)` at `now`.
    #[must_use]
    pub fn has_record(&self, now: Instant, sender: &str, manifest_id: &str) -> bool {
        self.records
            .get(&(sender.to_owned(), manifest_id.to_owned()))
            .is_some_and(|r| r.pinned.is_some() && !expired(r, now, self.idle_expiry))
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &OrchestratorStats {
        &self.stats
    }

    /// The earliest pending billing tick.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.ticks.first().map(|&(at, _)| at)
    }

    /// A runner's current price (`None`: unknown runner).
    #[must_use]
    pub fn runner_pricing(&self, runner_id: &str) -> Option<Pricing> {
        self.runners.get(runner_id).map(|r| r.config.pricing)
    }

    /// Change a runner's price for future challenges (live sessions keep their pinned price). Returns
    /// `false` if the runner is unknown.
    pub fn set_runner_pricing(&mut self, runner_id: &str, pricing: Pricing) -> bool {
        match self.runners.get_mut(runner_id) {
            Some(runner) => {
                runner.config.pricing = pricing;
                true
            }
            None => false,
        }
    }

    // ---- routing ---------------------------------------------------------------------------------

    pub(crate) fn handle(&mut self, now: Instant, req: &Request) -> Response {
        let path = req.path().trim_matches('/');
        let segs: Vec<&str> = path.split('/').collect();
        let post = req.method == Method::Post;
        match segs.as_slice() {
            ["discovery"] if req.method == Method::Get => self.discovery(),
            ["apps", runner, "session"] if post => self.reserve(now, runner, req),
            ["apps", runner, "session", id, "payment"] if post => self.session_payment(now, runner, id, req),
            ["apps", runner, "session", id, "stop"] if post => self.stop(now, runner, id),
            ["apps", runner, "session", id, "app", ..] => self.app(runner, id),
            ["refresh-payment"] if post => self.refresh(now, req),
            ["payment"] if post => self.generic_payment(now, req),
            ["discovery" | "refresh-payment" | "payment"]
            | ["apps", _, "session"]
            | ["apps", _, "session", _, "payment" | "stop"] => Response::text(405, "method not allowed"),
            _ => Response::text(404, "404 page not found"),
        }
    }

    fn app(&self, runner_id: &str, session_id: &str) -> Response {
        match self.sessions.get(session_id) {
            Some(s) if s.runner_id == runner_id && s.is_active() => Response::text(200, "ok"),
            _ => Response::text(404, "session not found"),
        }
    }

    // ---- shared helpers --------------------------------------------------------------------------

    /// Seal fresh ticket params (with their auth token) for `manifest_id`: the 402 challenge and
    /// refresh-payment both hand these out.
    fn issue_params(
        &mut self,
        now: Instant,
        runner_id: &str,
        manifest_id: &str,
        kind: PriceKind,
        price_wei: u128,
    ) -> String {
        let id = self.next_token_id;
        self.next_token_id += 1;
        let auth = AuthToken {
            id,
            session_id: manifest_id.to_owned(),
            issued_at_us: us(now),
            expires_at_us: us(now + self.auth_lifetime),
        };
        let params = ParamsRecord {
            id,
            orchestrator: self.service_url.clone(),
            runner_id: runner_id.to_owned(),
            manifest_id: manifest_id.to_owned(),
            kind,
            price_wei,
            ticket_ev: self.ticket_ev,
            issued_at_us: us(now),
            expires_at_us: us(now + self.param_lifetime),
            auth_token: token::seal(self.key, domain::AUTH, &auth),
            auth_issued_at_us: auth.issued_at_us,
            auth_expires_at_us: auth.expires_at_us,
        };
        token::seal(self.key, domain::PARAMS, &params)
    }
}

#[cfg(test)]
mod tests;
