//! The simulation's fast model of one `live` session: the remote signer's billing and the
//! orchestrator's ticker and ticket checks, in integers, with no encoding.
//!
//! It applies exactly the arithmetic and the rules of the faithful [`crate::model`]:
//!
//! - the signer: prepay on a call without a state (or whose `LastUpdate` is not in the past),
//!   `ceil` billing at the initial price, ticket EV rounding with the residual kept in the
//!   signer's balance, the 482 threshold `balance ≥ max(fee, EV)`, 400 above `max_tickets`, 480 on
//!   param age or the auth token's last share of life;
//! - the orchestrator: a minted payment is credited only the first time it arrives (a replay of a
//!   credited payment is answered 400 "already seen" and credits nothing, as go-livepeer's
//!   `ProcessPayment` does), tickets whose params expired are refused (400), an expired auth token
//!   is 403, ticks bill whole elapsed seconds with fractional carry, release on the first tick
//!   whose fee exceeds the balance, 404 after release, refresh 409 once the idle record expired.
//!
//! The differential test `fast_model_matches_the_faithful_model` replays identical schedules
//! (mints, lost POSTs, lost answers, replays, refreshes, fresh ledgers after a refresh, EVs other
//! than one second of price) through both and requires identical statuses, credits, debits and
//! release instants.
//!
//! What the orchestrator remembers of tickets is kept per mint, not per nonce: a session's client
//! chains the signer state, so every mint under one set of ticket params gets nonces above all
//! earlier ones, and a fresh ledger ([`FastLedger::generate`] with `fresh`) is only valid right after
//! a refresh, under params no mint has used yet. A fresh ledger on used params re-issues nonces the
//! orchestrator may have seen; the fast model counts it ([`FastLedger::reissued_nonces`]) and treats
//! its tickets as already seen (credits nothing), which never overstates the credit.
//!
//! Sessions share nothing on the server side (balances are per sender and manifest; the signer
//! keeps no state), so each session can be simulated on its own timeline.

use embassy_time::Duration;

const MICROS: u64 = 1_000_000;

/// Model parameters (defaults: those of [`crate::model::ModelConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastConfig {
    /// Price, wei per second.
    pub price_wei: u64,
    /// Expected value of one ticket, wei.
    pub ticket_ev_wei: u64,
    /// Server tick.
    pub tick: Duration,
    /// Signer prepay on the first call.
    pub prepay: Duration,
    /// Age of payment params at which the signer answers 480.
    pub param_lifetime: Duration,
    /// How long after `param_lifetime` the orchestrator still accepts tickets minted under those
    /// params (one L1 block; see [`crate::model::ModelConfig::ticket_expiry_grace`]).
    pub ticket_expiry_grace: Duration,
    /// Auth token life; the signer answers 480 in its last `auth_refresh_percent` %, the
    /// orchestrator 403 once it is over.
    pub auth_lifetime: Duration,
    /// See `auth_lifetime`.
    pub auth_refresh_percent: u64,
    /// A balance record untouched for this long expires (refresh then answers 409).
    pub record_idle_expiry: Duration,
    /// Most tickets per mint (400 above).
    pub max_tickets: u64,
    /// Whether a credited payment's 200 carries a fresh challenge (go-livepeer #4029,
    /// livepeer/node): new ticket params and auth token, as a refresh would give.
    pub challenge_in_payment: bool,
    /// The sender nonce from which the signer answers 480 (go-livepeer #4028, livepeer/node:
    /// 500); `None`: never.
    pub refresh_at_nonce: Option<u32>,
    /// The status of a refused refresh: 409 (go-livepeer) or 404 (livepeer/node).
    pub refresh_refused_status: u16,
}

impl Default for FastConfig {
    fn default() -> Self {
        Self {
            price_wei: 1_000_000_000,
            ticket_ev_wei: 1_000_000_000,
            tick: Duration::from_secs(5),
            prepay: Duration::from_secs(10),
            param_lifetime: Duration::from_secs(8 * 60),
            ticket_expiry_grace: Duration::from_secs(12),
            auth_lifetime: Duration::from_secs(30 * 60),
            auth_refresh_percent: 10,
            record_idle_expiry: Duration::from_secs(10 * 60),
            max_tickets: 100,
            challenge_in_payment: false,
            refresh_at_nonce: None,
            refresh_refused_status: 409,
        }
    }
}

impl FastConfig {
    /// The ticket EV in seconds of price.
    pub fn ev_seconds(&self) -> f64 {
        self.ticket_ev_wei as f64 / self.price_wei.max(1) as f64
    }

    /// This configuration with a ticket worth `seconds` of price (rounded to a whole wei, at least 1).
    pub fn with_ev_seconds(mut self, seconds: f64) -> Self {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let wei = (seconds.max(0.0) * self.price_wei as f64).round() as u64;
        self.ticket_ev_wei = wei.max(1);
        self
    }
}

/// One minted payment, as the client holds it (and may post again) until the next mint
/// replaces it: what the faithful model seals into `Livepeer-Payment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mint {
    /// Numbers the session's mints: 0 is the reservation's, then 1, 2, …
    pub id: u32,
    /// Tickets in it.
    pub tickets: u32,
    /// Their total expected value, wei.
    pub ev: u64,
    /// The identity of the ticket params it was minted under: 0 for the challenge's, one more per
    /// refresh.
    pub params: u32,
    /// The first ticket's sender nonce under those params (the last is `first_nonce + tickets − 1`).
    pub first_nonce: u32,
    /// When those params were issued (µs): the orchestrator refuses the tickets from
    /// `param_lifetime + ticket_expiry_grace` later, and their auth token from `auth_lifetime`
    /// later.
    pub params_issued: u64,
}

/// What the signer answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerAnswer {
    /// 200: a payment minted.
    Minted(Mint),
    /// 482.
    NoTickets,
    /// 480.
    RefreshRequired,
    /// 400: more than `max_tickets` needed.
    TooManyTickets,
}

impl SignerAnswer {
    /// The HTTP status the signer sends.
    pub const fn status(self) -> u16 {
        match self {
            Self::Minted(_) => 200,
            Self::NoTickets => 482,
            Self::RefreshRequired => 480,
            Self::TooManyTickets => 400,
        }
    }
}

/// What the orchestrator answered a payment POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayAnswer {
    /// 200: the tickets were credited.
    Credited {
        /// Wei credited.
        ev: u64,
    },
    /// 400 "invalid ticket senderNonce: already seen": the payment arrived before (a replay);
    /// nothing credited.
    AlreadySeen,
    /// 400 "TicketParams expired": nothing credited (the nonces are recorded all the same).
    Expired,
    /// 403: the auth token in the segment credentials expired.
    AuthExpired,
    /// 404: the session was released.
    Gone,
}

impl PayAnswer {
    /// The HTTP status the orchestrator sends.
    pub const fn status(self) -> u16 {
        match self {
            Self::Credited { .. } => 200,
            Self::AlreadySeen | Self::Expired => 400,
            Self::AuthExpired => 403,
            Self::Gone => 404,
        }
    }
}

/// One session's server-side state (signer state as held by the client, and the orchestrator's
/// balance, meter and record of the payments it saw). All instants are microseconds on the
/// simulation clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastLedger {
    // Signer (the state blob the client round-trips).
    last_update: u64,
    signer_balance: u64,
    /// The params the state's nonce counts under, and the last nonce used.
    state_params: u32,
    nonce: u32,
    // The ticket params the client holds.
    params: u32,
    params_issued: u64,
    params_used: bool,
    // Mints, and which of the last 64 the orchestrator has seen (bit k: mint `newest − k`).
    newest: u32,
    seen: u64,
    // Orchestrator.
    balance: u64,
    last_billed: u64,
    unit_carry: u64,
    next_tick: u64,
    released_at: Option<u64>,
    released_by_tick: bool,
    last_access: u64,
    /// Wei credited by accepted payments (reservation included): what the orchestrator received.
    pub credited: u64,
    /// Wei debited by ticks.
    pub debited: u64,
    /// Wei the signer minted (lost mints included).
    pub minted: u64,
    /// Wei the signer billed.
    pub billed: u64,
    /// Payment POSTs answered "already seen".
    pub already_seen: u32,
    /// Payment POSTs refused for expired ticket params.
    pub expired: u32,
    /// Fresh ledgers started on params a mint had already used: outside the simulation's contract
    /// (see the module documentation), counted so a report can show it.
    pub reissued_nonces: u32,
}

/// Applies a tick jitter (signed µs) to a nominal instant.
fn jittered(at: u64, jitter_us: i64) -> u64 {
    at.saturating_add_signed(jitter_us)
}

impl FastLedger {
    /// A reservation at `now`: the signer's first call (prepay) and the paid retry, processed
    /// together. `jitter_us` shifts the first tick.
    pub fn reserve(config: &FastConfig, now: u64, jitter_us: i64) -> Self {
        let fee = config.prepay.as_micros().div_ceil(MICROS) * config.price_wei;
        let need = fee.max(config.ticket_ev_wei);
        let tickets = need.div_ceil(config.ticket_ev_wei);
        let minted = tickets * config.ticket_ev_wei;
        Self {
            last_update: now,
            signer_balance: minted - fee,
            state_params: 0,
            nonce: u32::try_from(tickets).unwrap_or(u32::MAX),
            params: 0,
            params_issued: now,
            params_used: true,
            newest: 0,
            seen: 1,
            balance: minted,
            last_billed: now,
            unit_carry: 0,
            next_tick: jittered(now + config.tick.as_micros(), jitter_us),
            released_at: None,
            released_by_tick: false,
            last_access: now,
            credited: minted,
            debited: 0,
            minted,
            billed: fee,
            already_seen: 0,
            expired: 0,
            reissued_nonces: 0,
        }
    }

    /// When the orchestrator released the session, if it has by the last catch-up.
    pub fn released_at(&self) -> Option<u64> {
        self.released_at
    }

    /// When the orchestrator released the session on its own (an uncovered tick), as opposed to
    /// a client's stop.
    pub fn dropped_at(&self) -> Option<u64> {
        self.released_at.filter(|_| self.released_by_tick)
    }

    /// The orchestrator's balance, wei.
    pub fn balance(&self) -> u64 {
        self.balance
    }

    /// The credit the signer's state counts, wei (what a 482 is decided on).
    pub fn signer_balance(&self) -> u64 {
        self.signer_balance
    }

    /// Service time the balance still covers at `now` (µs), counting what accrued since the last
    /// tick: the true runway.
    pub fn runway_us(&self, config: &FastConfig, now: u64) -> u64 {
        if self.released_at.is_some() {
            return 0;
        }
        let covered = u128::from(self.balance) * u128::from(MICROS) / u128::from(config.price_wei);
        let accrued = u128::from(now.saturating_sub(self.last_billed) + self.unit_carry);
        u64::try_from(covered.saturating_sub(accrued)).unwrap_or(u64::MAX)
    }

    /// Runs every tick due up to `now`. `jitter` yields each next tick's jitter (signed µs).
    pub fn catch_up(&mut self, config: &FastConfig, now: u64, mut jitter: impl FnMut() -> i64) {
        while self.released_at.is_none() && self.next_tick <= now {
            let at = self.next_tick;
            let unit_acc = self.unit_carry + (at - self.last_billed);
            let units = unit_acc / MICROS;
            let fee = units * config.price_wei;
            self.last_access = at;
            if fee > self.balance {
                self.released_at = Some(at);
                self.released_by_tick = true;
                return;
            }
            self.balance -= fee;
            self.debited += fee;
            self.unit_carry = unit_acc % MICROS;
            self.last_billed = at;
            self.next_tick = jittered(at + config.tick.as_micros(), jitter());
        }
    }

    /// The signer's `generate-live-payment` at `now`: with the latest state, or, when `fresh`,
    /// without any (a fresh ledger: billed the prepay, the signer's balance restarting at 0, the
    /// nonces at 1 under the current params).
    pub fn generate(&mut self, config: &FastConfig, now: u64, fresh: bool) -> SignerAnswer {
        let auth_life = config.auth_lifetime.as_micros();
        let refresh_from =
            self.params_issued + auth_life - auth_life / 100 * config.auth_refresh_percent.min(100);
        if now >= self.params_issued + config.param_lifetime.as_micros() || now >= refresh_from {
            return SignerAnswer::RefreshRequired;
        }
        // #4028: the state's nonce under these params has reached the limit.
        let nonce_spent = !fresh
            && self.state_params == self.params
            && config.refresh_at_nonce.is_some_and(|limit| self.nonce >= limit);
        if nonce_spent {
            return SignerAnswer::RefreshRequired;
        }
        let (balance, last_nonce, elapsed) = if fresh {
            (0, 0, 0)
        } else {
            let nonce = if self.state_params == self.params {
                self.nonce
            } else {
                0
            };
            (self.signer_balance, nonce, now.saturating_sub(self.last_update))
        };
        // A LastUpdate not in the past is billed like a first call (`server/remote_signer.go`
        // L536-569).
        let secs = if elapsed == 0 {
            config.prepay.as_micros().div_ceil(MICROS)
        } else {
            elapsed.div_ceil(MICROS)
        };
        let fee = secs * config.price_wei;
        let need = fee.max(config.ticket_ev_wei);
        if balance >= need {
            return SignerAnswer::NoTickets;
        }
        let tickets = (need - balance).div_ceil(config.ticket_ev_wei);
        if tickets > config.max_tickets {
            return SignerAnswer::TooManyTickets;
        }
        let ev = tickets * config.ticket_ev_wei;
        let tickets = u32::try_from(tickets).unwrap_or(u32::MAX);
        self.signer_balance = balance + ev - fee;
        self.last_update = now;
        self.state_params = self.params;
        self.nonce = last_nonce.saturating_add(tickets);
        self.minted += ev;
        self.billed += fee;
        self.newest += 1;
        self.seen <<= 1;
        if fresh && self.params_used {
            // Nonces from 1 again under params already used: not modelled per nonce (see the
            // module documentation); counted, and treated as seen.
            self.reissued_nonces += 1;
            self.seen |= 1;
        }
        self.params_used = true;
        SignerAnswer::Minted(Mint {
            id: self.newest,
            tickets,
            ev,
            params: self.params,
            first_nonce: last_nonce.saturating_add(1),
            params_issued: self.params_issued,
        })
    }

    /// [`generate`](Self::generate) whose answer never reaches the client (a timeout after the
    /// signer did its work). The signer keeps nothing (the ledger lives in the state blob the
    /// client sends), so the client's next call carries the state it sent this time: the
    /// ledger is as it was. The mint still counts as minted and billed.
    pub fn generate_unanswered(&mut self, config: &FastConfig, now: u64, fresh: bool) -> SignerAnswer {
        let kept = (
            self.last_update,
            self.signer_balance,
            self.state_params,
            self.nonce,
            self.params_used,
        );
        let answer = self.generate(config, now, fresh);
        (
            self.last_update,
            self.signer_balance,
            self.state_params,
            self.nonce,
            self.params_used,
        ) = kept;
        answer
    }

    /// Whether the orchestrator has seen `mint` (mints more than 63 behind the newest count as
    /// seen).
    fn seen(&self, mint: &Mint) -> bool {
        match self.newest.checked_sub(mint.id) {
            Some(back) if back < 64 => self.seen & (1 << back) != 0,
            _ => true,
        }
    }

    /// The orchestrator's session payment at `now`, carrying `mint` (a first POST or a replay).
    pub fn pay(
        &mut self,
        config: &FastConfig,
        now: u64,
        mint: &Mint,
        jitter: impl FnMut() -> i64,
    ) -> PayAnswer {
        self.catch_up(config, now, jitter);
        if self.released_at.is_some() {
            return PayAnswer::Gone;
        }
        if now >= mint.params_issued + config.auth_lifetime.as_micros() {
            return PayAnswer::AuthExpired;
        }
        if self.seen(mint) {
            self.already_seen += 1;
            return PayAnswer::AlreadySeen;
        }
        if let Some(back) = self.newest.checked_sub(mint.id) {
            self.seen |= 1 << back;
        }
        let expiry =
            mint.params_issued + config.param_lifetime.as_micros() + config.ticket_expiry_grace.as_micros();
        if now >= expiry {
            self.expired += 1;
            return PayAnswer::Expired;
        }
        self.balance += mint.ev;
        self.credited += mint.ev;
        self.last_access = now;
        PayAnswer::Credited { ev: mint.ev }
    }

    /// The orchestrator's refresh-payment at `now`: 200 with new params (a new identity, so a new
    /// nonce space), or [`FastConfig::refresh_refused_status`] once the balance record has expired.
    pub fn refresh(&mut self, config: &FastConfig, now: u64, jitter: impl FnMut() -> i64) -> u16 {
        self.catch_up(config, now, jitter);
        if now >= self.last_access + config.record_idle_expiry.as_micros() {
            return config.refresh_refused_status;
        }
        self.renew_params(now);
        200
    }

    /// New ticket params (a new identity, so a new nonce space) and auth token, issued at `now`:
    /// a refresh, or the fresh challenge of a payment 200 ([`FastConfig::challenge_in_payment`])
    /// that reached the client (a lost answer renews nothing: the client never read it).
    pub fn renew_params(&mut self, now: u64) {
        self.params += 1;
        self.params_issued = now;
        self.params_used = false;
    }

    /// The orchestrator's stop at `now`: 204, and the session no longer ticks.
    pub fn stop(&mut self, config: &FastConfig, now: u64, jitter: impl FnMut() -> i64) -> u16 {
        self.catch_up(config, now, jitter);
        if self.released_at.is_none() {
            self.released_at = Some(now);
        }
        204
    }
}

#[cfg(test)]
mod tests;
