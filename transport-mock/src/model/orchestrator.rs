//! The go-livepeer orchestrator (protocol.md §2.3–2.7, §3): discovery, the 402 reservation, session
//! payments, refresh, stop, and the per-session billing ticker with silent release.

use std::collections::{BTreeMap, BTreeSet};

use embassy_time::{Duration, Instant};

use super::config::{Config, JitterFn, PriceKind, Pricing, RunnerConfig};
use super::token::{self, AuthToken, Key, OpenError, ParamsRecord, PaymentRecord, SegCredsRecord, domain};
use super::wire::{Challenge, DiscoveryEntry, DiscoveryRunner, PriceInfo, RefreshRequest, SessionCreated};
use super::{Method, Request, Response, headers};
use livepay_core::rng::SplitMix64;

const MICROS_PER_SECOND: u128 = 1_000_000;

/// Why the orchestrator released a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// A tick's fee exceeded the balance (silent release, §3).
    InsufficientBalance {
        /// The fee of the uncovered tick, wei.
        fee: u128,
        /// The balance at that tick, wei.
        balance: u128,
    },
    /// The client posted `/stop`.
    Stopped,
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
    pub reason: ReleaseReason,
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
    /// Tickets accepted.
    pub tickets_accepted: u64,
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
}

#[derive(Debug, Clone)]
struct Meter {
    last_billed: Instant,
    /// Billing units × 1e6 not yet billed (the fraction carried to the next tick).
    unit_carry: u128,
    /// Fee numerator not yet billed (sub-wei fraction carried, `lv2v` only).
    fee_carry: u128,
    next_tick: Instant,
    tick_index: u64,
}

/// A session as the orchestrator holds it.
#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    runner_id: String,
    sender: Option<String>,
    pricing: Pricing,
    created_at: Instant,
    released: Option<(Instant, ReleaseReason)>,
    meter: Option<Meter>,
    serial: u64,
    credited: u128,
    debited: u128,
    payments: u64,
    ticks: u64,
}

impl Session {
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
    pub fn released(&self) -> Option<(Instant, ReleaseReason)> {
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

/// Half-open intervals of used ticket nonces, merged.
#[derive(Debug, Clone, Default)]
struct NonceSet {
    ranges: BTreeMap<u64, u64>,
}

impl NonceSet {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.ranges
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > start)
    }

    fn insert(&mut self, mut start: u64, mut end: u64) {
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
            self.ranges.remove(&s);
        }
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            end = end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(start, end);
    }
}

/// A payment that passed every check and can be committed.
#[derive(Debug)]
struct VerifiedPayment {
    record: PaymentRecord,
    params: ParamsRecord,
}

/// The modelled orchestrator.
#[derive(Debug)]
pub struct Orchestrator {
    service_url: String,
    ticket_ev: u128,
    tick: Duration,
    tick_jitter: Option<JitterFn>,
    param_lifetime: Duration,
    auth_lifetime: Duration,
    idle_expiry: Duration,
    runners: BTreeMap<String, Runner>,
    rng: SplitMix64,
    key: Key,
    signer_key: Key,
    challenges: BTreeMap<String, PendingChallenge>,
    sessions: BTreeMap<String, Session>,
    records: BTreeMap<(String, String), BalanceRecord>,
    ticks: BTreeSet<(Instant, u64)>,
    serials: BTreeMap<u64, String>,
    next_serial: u64,
    next_token_id: u64,
    used_nonces: BTreeMap<String, NonceSet>,
    next_sweep: Instant,
    releases: Vec<Release>,
    stats: OrchestratorStats,
}

fn us(t: Instant) -> u64 {
    t.as_micros()
}

fn valid_address(addr: &str) -> bool {
    addr.strip_prefix("0x")
        .or_else(|| addr.strip_prefix("0X"))
        .is_some_and(|hex| hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
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
    pub(crate) fn new(config: Config, rng: SplitMix64, key: Key, signer_key: Key) -> Self {
        let runners = config
            .runners
            .into_iter()
            .map(|r| (r.id.clone(), Runner { config: r, active: 0 }))
            .collect();
        Self {
            service_url: config.service_url.trim_end_matches('/').to_owned(),
            ticket_ev: config.ticket_ev_wei.max(1),
            tick: config.tick.max(Duration::from_millis(1)),
            tick_jitter: config.tick_jitter,
            param_lifetime: config.param_lifetime,
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

    /// A session, live or released.
    #[must_use]
    pub fn session(&self, session_id: &str) -> Option<&Session> {
        self.sessions.get(session_id)
    }

    /// Every session, by id.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
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

    // ---- time ------------------------------------------------------------------------------------

    pub(crate) fn advance(&mut self, now: Instant) {
        while let Some(&(due, serial)) = self.ticks.first() {
            if due > now {
                break;
            }
            self.ticks.pop_first();
            if let Some(id) = self.serials.get(&serial).cloned() {
                self.run_tick(due, &id);
            }
        }
        if now >= self.next_sweep {
            let idle = self.idle_expiry;
            self.records.retain(|_, r| !expired(r, now, idle));
            self.next_sweep = now + Duration::from_secs(60);
        }
    }

    fn run_tick(&mut self, at: Instant, id: &str) {
        let idle = self.idle_expiry;
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        let Some(kind) = session.pricing.kind() else {
            return;
        };
        let Some(meter) = session.meter.as_mut() else {
            return;
        };
        self.stats.ticks += 1;
        session.ticks += 1;
        let elapsed = u128::from(at.saturating_duration_since(meter.last_billed).as_micros());
        let unit_acc = meter.unit_carry + elapsed * kind.units_per_second();
        let units = unit_acc / MICROS_PER_SECOND;
        let fee_acc = meter.fee_carry + units * session.pricing.wei();
        let fee = fee_acc / kind.units_per_price_unit();
        let key = (session.sender.clone().unwrap_or_default(), session.id.clone());
        let record = live_record(&mut self.records, &key, at, idle);
        let balance = record.as_ref().map_or(0, |r| r.balance);
        if fee > balance {
            if let Some(r) = record {
                r.last_access = at;
            }
            self.release(at, id, ReleaseReason::InsufficientBalance { fee, balance });
            return;
        }
        if let Some(r) = record {
            r.balance -= fee;
            r.last_access = at;
        }
        meter.unit_carry = unit_acc % MICROS_PER_SECOND;
        meter.fee_carry = fee_acc % kind.units_per_price_unit();
        meter.last_billed = at;
        session.debited += fee;
        self.stats.total_debited += fee;
        meter.tick_index += 1;
        let jitter = self.tick_jitter.map_or(Duration::from_ticks(0), |f| {
            f(meter.tick_index, self.rng.next_u64())
        });
        meter.next_tick = at + self.tick + jitter;
        self.ticks.insert((meter.next_tick, session.serial));
    }

    fn release(&mut self, at: Instant, id: &str, reason: ReleaseReason) {
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        if session.released.is_some() {
            return;
        }
        session.released = Some((at, reason));
        if let Some(meter) = &session.meter {
            self.ticks.remove(&(meter.next_tick, session.serial));
        }
        self.serials.remove(&session.serial);
        if let Some(runner) = self.runners.get_mut(&session.runner_id) {
            runner.active = runner.active.saturating_sub(1);
        }
        match reason {
            ReleaseReason::InsufficientBalance { .. } => self.stats.released_unpaid += 1,
            ReleaseReason::Stopped => self.stats.released_stopped += 1,
        }
        self.releases.push(Release {
            session_id: session.id.clone(),
            runner_id: session.runner_id.clone(),
            at,
            reason,
        });
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

    fn discovery(&self) -> Response {
        let runners = self
            .runners
            .values()
            .map(|r| {
                let (price, unit) = match r.config.pricing.kind() {
                    None => (serde_json::Number::from(0u64), "seconds"),
                    Some(PriceKind::Lv2v) => {
                        // Wei per pixel: a decimal number.
                        #[allow(clippy::cast_precision_loss)]
                        let per_pixel =
                            r.config.pricing.wei() as f64 / PriceKind::Lv2v.units_per_price_unit() as f64;
                        (
                            serde_json::Number::from_f64(per_pixel)
                                .unwrap_or_else(|| serde_json::Number::from(0u64)),
                            PriceKind::Lv2v.discovery_unit(),
                        )
                    }
                    Some(kind) => (
                        serde_json::Number::from(u64::try_from(r.config.pricing.wei()).unwrap_or(u64::MAX)),
                        kind.discovery_unit(),
                    ),
                };
                DiscoveryRunner {
                    url: format!("{}/apps/{}/session", self.service_url, r.config.id),
                    app: r.config.app.clone(),
                    mode: String::from("live"),
                    capacity: r.config.capacity,
                    capacity_available: r.config.capacity.saturating_sub(r.active),
                    price_info: PriceInfo {
                        price,
                        currency: String::from("wei"),
                        unit: String::from(unit),
                    },
                }
            })
            .collect();
        Response::json(
            200,
            &[DiscoveryEntry {
                address: self.service_url.clone(),
                runners,
            }],
        )
    }

    // ---- reservation -----------------------------------------------------------------------------

    fn fresh_manifest_id(&mut self) -> String {
        loop {
            let id = format!("{:08x}", self.rng.next_u64() >> 32);
            if !self.challenges.contains_key(&id) && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

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

    fn create_session(
        &mut self,
        now: Instant,
        id: String,
        runner_id: &str,
        sender: Option<String>,
        pricing: Pricing,
    ) -> SessionCreated {
        let serial = self.next_serial;
        self.next_serial += 1;
        let metered = pricing.kind().is_some_and(|k| k.units_per_second() > 0);
        let meter = metered.then(|| {
            let jitter = self
                .tick_jitter
                .map_or(Duration::from_ticks(0), |f| f(1, self.rng.next_u64()));
            Meter {
                last_billed: now,
                unit_carry: 0,
                fee_carry: 0,
                next_tick: now + self.tick + jitter,
                tick_index: 1,
            }
        });
        if let Some(meter) = &meter {
            self.ticks.insert((meter.next_tick, serial));
            self.serials.insert(serial, id.clone());
        }
        if let Some(runner) = self.runners.get_mut(runner_id) {
            runner.active += 1;
        }
        let control_url = format!("{}/apps/{}/session/{}", self.service_url, runner_id, id);
        let created = SessionCreated {
            session_id: id.clone(),
            app_url: format!("{control_url}/app"),
            control_url,
        };
        self.sessions.insert(
            id.clone(),
            Session {
                id,
                runner_id: runner_id.to_owned(),
                sender,
                pricing,
                created_at: now,
                released: None,
                meter,
                serial,
                credited: 0,
                debited: 0,
                payments: 0,
                ticks: 0,
            },
        );
        self.stats.sessions_created += 1;
        created
    }

    fn reserve(&mut self, now: Instant, runner_id: &str, req: &Request) -> Response {
        let Some(runner) = self.runners.get(runner_id) else {
            return Response::error(404, "runner not found");
        };
        if runner.active >= runner.config.capacity {
            return Response::error(503, "no capacity available");
        }
        let pricing = runner.config.pricing;
        let Some(kind) = pricing.kind() else {
            let id = self.fresh_manifest_id();
            let created = self.create_session(now, id, runner_id, None, pricing);
            return Response::json(200, &created);
        };
        let payer = match req.header(headers::PAYER_ADDRESS).map(str::trim) {
            Some(addr) if valid_address(addr) => addr.to_owned(),
            _ => return Response::error(402, "invalid or missing payer address"),
        };
        let payment_header = req.header(headers::PAYMENT);
        let seg_header = req.header(headers::SEGMENT);
        if payment_header.is_none() && seg_header.is_none() {
            let manifest_id = self.fresh_manifest_id();
            let payment_params = self.issue_params(now, runner_id, &manifest_id, kind, pricing.wei());
            self.challenges.insert(
                manifest_id.clone(),
                PendingChallenge {
                    runner_id: runner_id.to_owned(),
                },
            );
            self.stats.challenges += 1;
            let payment_url = format!(
                "{}/apps/{}/session/{}/payment",
                self.service_url, runner_id, manifest_id
            );
            return Response::json(
                402,
                &Challenge {
                    payment_params,
                    orchestrator: self.service_url.clone(),
                    manifest_id,
                    payment_url,
                },
            );
        }
        // Paid retry.
        let result = self.check_paid_reservation(now, runner_id, &payer, payment_header, seg_header);
        let verified = match result {
            Ok(v) => v,
            Err(resp) => {
                self.stats.payments_rejected += 1;
                return resp;
            }
        };
        let manifest_id = verified.record.manifest_id.clone();
        self.challenges.remove(&manifest_id);
        let session_pricing = Pricing::from_kind(verified.params.kind, verified.params.price_wei);
        let created = self.create_session(now, manifest_id, runner_id, Some(payer), session_pricing);
        self.commit_payment(now, verified);
        Response::json(200, &created)
    }

    fn check_paid_reservation(
        &self,
        now: Instant,
        runner_id: &str,
        payer: &str,
        payment_header: Option<&str>,
        seg_header: Option<&str>,
    ) -> Result<VerifiedPayment, Response> {
        let seg = self.open_seg_creds(seg_header)?;
        if self.sessions.contains_key(&seg.manifest_id) {
            return Err(Response::error(409, "session already exists"));
        }
        if self
            .challenges
            .get(&seg.manifest_id)
            .is_none_or(|c| c.runner_id != runner_id)
        {
            return Err(Response::error(403, "segment credentials: unknown manifest id"));
        }
        self.check_auth(now, &seg, &seg.manifest_id)?;
        let verified = self.check_payment(payment_header, &seg.manifest_id)?;
        if verified.record.sender != payer {
            return Err(Response::error(
                400,
                "payment sender does not match the payer address",
            ));
        }
        if verified.params.runner_id != runner_id {
            return Err(Response::error(
                400,
                "ticket params were issued for another runner",
            ));
        }
        Ok(verified)
    }

    // ---- payments --------------------------------------------------------------------------------

    fn open_seg_creds(&self, header: Option<&str>) -> Result<SegCredsRecord, Response> {
        let Some(text) = header else {
            return Err(Response::error(403, "missing segment credentials"));
        };
        token::open::<SegCredsRecord>(self.signer_key, domain::SEG_CREDS, text)
            .map_err(|_| Response::error(403, "invalid segment credentials"))
    }

    /// Verify the auth token inside `seg` and that both name `manifest_id`.
    fn check_auth(&self, now: Instant, seg: &SegCredsRecord, manifest_id: &str) -> Result<(), Response> {
        let auth: AuthToken = token::open(self.key, domain::AUTH, &seg.auth_token)
            .map_err(|_| Response::error(403, "invalid auth token"))?;
        if seg.manifest_id != manifest_id || auth.session_id != manifest_id {
            return Err(Response::error(403, "segment credentials: manifest id mismatch"));
        }
        if us(now) >= auth.expires_at_us {
            return Err(Response::error(403, "auth token expired"));
        }
        Ok(())
    }

    /// Decode and verify a `Livepeer-Payment` header for `manifest_id`: 402 on encoding, 400 on
    /// ticket processing failures (forged, replayed, foreign params).
    fn check_payment(&self, header: Option<&str>, manifest_id: &str) -> Result<VerifiedPayment, Response> {
        let Some(text) = header else {
            return Err(Response::text(402, "missing payment header"));
        };
        let record: PaymentRecord = match token::open(self.signer_key, domain::PAYMENT, text) {
            Ok(r) => r,
            Err(OpenError::Encoding) => {
                return Err(Response::text(402, "could not decode payment header"));
            }
            Err(OpenError::Forged) => {
                return Err(Response::error(400, "invalid ticket signature"));
            }
        };
        let params: ParamsRecord = token::open(self.key, domain::PARAMS, &record.params)
            .map_err(|_| Response::error(400, "invalid ticket params"))?;
        if record.manifest_id != manifest_id || params.manifest_id != manifest_id {
            return Err(Response::error(
                400,
                "tickets were minted for another manifest id",
            ));
        }
        if record.count == 0 || record.ev != params.ticket_ev {
            return Err(Response::error(400, "invalid ticket batch"));
        }
        let end = record.first_nonce.saturating_add(u64::from(record.count));
        if self
            .used_nonces
            .get(&record.sender)
            .is_some_and(|set| set.overlaps(record.first_nonce, end))
        {
            return Err(Response::error(
                400,
                "ticket nonce already used (replayed ticket)",
            ));
        }
        Ok(VerifiedPayment { record, params })
    }

    /// Mark the tickets used and credit their expected value.
    fn commit_payment(&mut self, now: Instant, verified: VerifiedPayment) {
        let VerifiedPayment { record, params } = verified;
        let credit = record.ev * u128::from(record.count);
        self.used_nonces.entry(record.sender.clone()).or_default().insert(
            record.first_nonce,
            record.first_nonce.saturating_add(u64::from(record.count)),
        );
        let key = (record.sender.clone(), record.manifest_id.clone());
        let idle = self.idle_expiry;
        let pinned = Pricing::from_kind(params.kind, params.price_wei);
        if let Some(r) = live_record(&mut self.records, &key, now, idle) {
            r.balance += credit;
            r.last_access = now;
            r.pinned.get_or_insert(pinned);
        } else {
            self.records.insert(
                key,
                BalanceRecord {
                    runner_id: params.runner_id,
                    pinned: Some(pinned),
                    balance: credit,
                    last_access: now,
                },
            );
        }
        if let Some(session) = self.sessions.get_mut(&record.manifest_id)
            && session.is_active()
            && session.sender.as_deref() == Some(record.sender.as_str())
        {
            session.credited += credit;
            session.payments += 1;
        }
        self.stats.payments_accepted += 1;
        self.stats.tickets_accepted += u64::from(record.count);
        self.stats.total_credited += credit;
    }

    fn session_payment(
        &mut self,
        now: Instant,
        runner_id: &str,
        session_id: &str,
        req: &Request,
    ) -> Response {
        let result = self.check_session_payment(now, runner_id, session_id, req);
        match result {
            Ok(verified) => {
                self.commit_payment(now, verified);
                Response::empty(200)
            }
            Err(resp) => {
                self.stats.payments_rejected += 1;
                resp
            }
        }
    }

    fn check_session_payment(
        &self,
        now: Instant,
        runner_id: &str,
        session_id: &str,
        req: &Request,
    ) -> Result<VerifiedPayment, Response> {
        if !self.runners.contains_key(runner_id) {
            return Err(Response::error(404, "runner not found"));
        }
        let Some(session) = self
            .sessions
            .get(session_id)
            .filter(|s| s.runner_id == runner_id && s.is_active())
        else {
            return Err(Response::error(404, "session not found"));
        };
        if !matches!(session.pricing.kind(), Some(PriceKind::Live | PriceKind::Lv2v)) {
            return Err(Response::error(409, "session does not take payments"));
        }
        let seg = self.open_seg_creds(req.header(headers::SEGMENT))?;
        self.check_auth(now, &seg, session_id)?;
        let verified = self.check_payment(req.header(headers::PAYMENT), session_id)?;
        if session.sender.as_deref() != Some(verified.record.sender.as_str()) {
            return Err(Response::error(400, "payment sender does not match the session"));
        }
        let price = Pricing::from_kind(verified.params.kind, verified.params.price_wei);
        if price != session.pricing {
            return Err(Response::error(400, "price mismatch"));
        }
        Ok(verified)
    }

    fn generic_payment(&mut self, now: Instant, req: &Request) -> Response {
        let result = (|| {
            let seg = self.open_seg_creds(req.header(headers::SEGMENT))?;
            let manifest_id = seg.manifest_id.clone();
            self.check_auth(now, &seg, &manifest_id)?;
            let verified = self.check_payment(req.header(headers::PAYMENT), &manifest_id)?;
            let key = (verified.record.sender.clone(), manifest_id);
            if let Some(pinned) = self.records.get(&key).and_then(|r| r.pinned)
                && Pricing::from_kind(verified.params.kind, verified.params.price_wei) != pinned
            {
                return Err(Response::error(400, "price mismatch"));
            }
            Ok(verified)
        })();
        match result {
            Ok(verified) => {
                self.commit_payment(now, verified);
                Response::empty(200)
            }
            Err(resp) => {
                self.stats.payments_rejected += 1;
                resp
            }
        }
    }

    // ---- refresh, stop, app ----------------------------------------------------------------------

    fn refresh(&mut self, now: Instant, req: &Request) -> Response {
        let body: RefreshRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(_) => return Response::error(400, "invalid refresh-payment body"),
        };
        if body.sender.is_empty() || body.manifest_id.is_empty() {
            return Response::error(400, "missing sender or manifest_id");
        }
        let key = (body.sender, body.manifest_id);
        let idle = self.idle_expiry;
        let Some(record) = live_record(&mut self.records, &key, now, idle) else {
            return Response::error(409, "no price pinned for this sender and manifest");
        };
        let Some(pinned) = record.pinned else {
            return Response::error(409, "no price pinned for this sender and manifest");
        };
        record.last_access = now;
        let runner_id = record.runner_id.clone();
        let Some(kind) = pinned.kind() else {
            return Response::error(409, "no price pinned for this sender and manifest");
        };
        let payment_params = self.issue_params(now, &runner_id, &key.1, kind, pinned.wei());
        self.stats.refreshes += 1;
        Response::json(
            200,
            &Challenge {
                payment_params,
                orchestrator: self.service_url.clone(),
                manifest_id: key.1,
                payment_url: format!("{}/payment", self.service_url),
            },
        )
    }

    fn stop(&mut self, now: Instant, runner_id: &str, session_id: &str) -> Response {
        if !self.runners.contains_key(runner_id) {
            return Response::error(404, "runner not found");
        }
        if self
            .sessions
            .get(session_id)
            .is_some_and(|s| s.runner_id == runner_id)
        {
            self.release(now, session_id, ReleaseReason::Stopped);
        }
        Response::empty(204)
    }

    fn app(&self, runner_id: &str, session_id: &str) -> Response {
        match self.sessions.get(session_id) {
            Some(s) if s.runner_id == runner_id && s.is_active() => Response::text(200, "ok"),
            _ => Response::text(404, "session not found"),
        }
    }
}

#[cfg(test)]
mod tests;
