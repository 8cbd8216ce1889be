//! The simulation's fast model of one `live` session: the remote signer's billing and the
//! orchestrator's ticker, in integers, with no encoding.
//!
//! It applies exactly the arithmetic of the faithful [`crate::model`] (prepay, `ceil` billing at
//! the initial price, ticket EV rounding, the 482 threshold `balance ≥ max(fee, EV)`, 480 on param
//! age, ticks billing whole elapsed seconds with fractional carry, release on the first tick whose
//! fee exceeds the balance, 404 after release, refresh 409 once the idle record expired). The
//! differential test `fast_model_matches_the_faithful_model` replays identical schedules through
//! both and requires identical credits, debits and release instants.
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
    /// Auth token life; the signer answers 480 in its last `auth_refresh_percent` %.
    pub auth_lifetime: Duration,
    /// See `auth_lifetime`.
    pub auth_refresh_percent: u64,
    /// A balance record untouched for this long expires (refresh then answers 409).
    pub record_idle_expiry: Duration,
    /// Most tickets per mint (400 above).
    pub max_tickets: u64,
}

impl Default for FastConfig {
    fn default() -> Self {
        Self {
            price_wei: 1_000_000_000,
            ticket_ev_wei: 1_000_000_000,
            tick: Duration::from_secs(5),
            prepay: Duration::from_secs(10),
            param_lifetime: Duration::from_secs(8 * 60),
            auth_lifetime: Duration::from_secs(30 * 60),
            auth_refresh_percent: 10,
            record_idle_expiry: Duration::from_secs(10 * 60),
            max_tickets: 100,
        }
    }
}

/// What the signer answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerAnswer {
    /// 200: tickets worth `ev` wei minted.
    Minted {
        /// Expected value minted.
        ev: u64,
    },
    /// 482.
    NoTickets,
    /// 480.
    RefreshRequired,
    /// 400: more than `max_tickets` needed.
    TooManyTickets,
}

/// One session's server-side state (signer state as held by the client, and the orchestrator's
/// balance and meter). All instants are microseconds on the simulation clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastLedger {
    // Signer (the state blob the client round-trips).
    last_update: u64,
    signer_balance: u64,
    params_issued: u64,
    // Orchestrator.
    balance: u64,
    last_billed: u64,
    unit_carry: u64,
    next_tick: u64,
    released_at: Option<u64>,
    released_by_tick: bool,
    last_access: u64,
    /// Wei credited by accepted payments (reservation included).
    pub credited: u64,
    /// Wei debited by ticks.
    pub debited: u64,
    /// Wei the signer minted (lost mints included).
    pub minted: u64,
    /// Wei the signer billed.
    pub billed: u64,
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
        let minted = need.div_ceil(config.ticket_ev_wei) * config.ticket_ev_wei;
        Self {
            last_update: now,
            signer_balance: minted - fee,
            params_issued: now,
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

    /// The signer's `generate-live-payment` at `now` with the latest state.
    pub fn generate(&mut self, config: &FastConfig, now: u64) -> SignerAnswer {
        let auth_life = config.auth_lifetime.as_micros();
        let refresh_from =
            self.params_issued + auth_life - auth_life / 100 * config.auth_refresh_percent.min(100);
        if now >= self.params_issued + config.param_lifetime.as_micros() || now >= refresh_from {
            return SignerAnswer::RefreshRequired;
        }
        let fee = now.saturating_sub(self.last_update).div_ceil(MICROS) * config.price_wei;
        let need = fee.max(config.ticket_ev_wei);
        if self.signer_balance >= need {
            return SignerAnswer::NoTickets;
        }
        let tickets = (need - self.signer_balance).div_ceil(config.ticket_ev_wei);
        if tickets > config.max_tickets {
            return SignerAnswer::TooManyTickets;
        }
        let ev = tickets * config.ticket_ev_wei;
        self.signer_balance = self.signer_balance + ev - fee;
        self.last_update = now;
        self.minted += ev;
        self.billed += fee;
        SignerAnswer::Minted { ev }
    }

    /// The orchestrator's session payment at `now`: `true` for 200, `false` for 404.
    pub fn pay(&mut self, config: &FastConfig, now: u64, ev: u64, jitter: impl FnMut() -> i64) -> bool {
        self.catch_up(config, now, jitter);
        if self.released_at.is_some() {
            return false;
        }
        self.balance += ev;
        self.credited += ev;
        self.last_access = now;
        true
    }

    /// The orchestrator's refresh-payment at `now`: 200 with new params, or 409 once the balance
    /// record has expired.
    pub fn refresh(&mut self, config: &FastConfig, now: u64, jitter: impl FnMut() -> i64) -> u16 {
        self.catch_up(config, now, jitter);
        if now >= self.last_access + config.record_idle_expiry.as_micros() {
            return 409;
        }
        self.params_issued = now;
        200
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
mod tests {
    use super::*;

    const S: u64 = MICROS;

    fn none() -> i64 {
        0
    }

    #[test]
    fn reservation_prepays_ten_seconds_and_an_unpaid_session_is_released_at_fifteen() {
        let c = FastConfig::default();
        let mut s = FastLedger::reserve(&c, 0, 0);
        assert_eq!(s.credited, 10 * c.price_wei);
        s.catch_up(&c, 14 * S, none);
        assert_eq!(s.released_at(), None);
        s.catch_up(&c, 15 * S, none);
        assert_eq!(s.released_at(), Some(15 * S));
        assert_eq!(s.dropped_at(), Some(15 * S));
        assert!(!s.pay(&c, 16 * S, c.ticket_ev_wei, none));
    }

    #[test]
    fn a_mint_every_3_007_s_is_billed_4_s() {
        let c = FastConfig::default();
        let mut s = FastLedger::reserve(&c, 0, 0);
        let mut t = 0;
        for _ in 0..100 {
            t += 3_007_000;
            let SignerAnswer::Minted { ev } = s.generate(&c, t) else {
                panic!("no mint")
            };
            assert_eq!(ev, 4 * c.price_wei);
            assert!(s.pay(&c, t, ev, none));
        }
        // Billed 4/3.007 of the time: about a third too much.
        let ratio = s.billed as f64 / (t as f64 / S as f64 + 10.0) / c.price_wei as f64;
        assert!((1.30..1.34).contains(&ratio), "{ratio}");
    }

    #[test]
    fn skip_482_when_the_signer_balance_covers_fee_and_ev() {
        let c = FastConfig {
            ticket_ev_wei: 30 * 1_000_000_000,
            ..FastConfig::default()
        };
        let mut s = FastLedger::reserve(&c, 0, 0);
        // Prepay: one 30 s ticket for a 10 s fee leaves 20 s, under one ticket's EV: mint.
        assert_eq!(
            s.generate(&c, 3 * S),
            SignerAnswer::Minted { ev: 30 * c.price_wei }
        );
        // 20 + 30 − 3 = 47 s on the books covers max(fee, EV) until the fee exceeds 47 s.
        assert_eq!(s.generate(&c, 6 * S), SignerAnswer::NoTickets);
        assert_eq!(s.generate(&c, 50 * S), SignerAnswer::NoTickets);
        assert_eq!(
            s.generate(&c, 51 * S),
            SignerAnswer::Minted { ev: 30 * c.price_wei }
        );
    }

    #[test]
    fn refresh_required_after_the_param_lifetime_and_refresh_restores() {
        let c = FastConfig::default();
        let mut s = FastLedger::reserve(&c, 0, 0);
        let mut t = 0;
        while t < 480 * S - 3 * S {
            t += 3 * S;
            let SignerAnswer::Minted { ev } = s.generate(&c, t) else {
                panic!("at {t}")
            };
            assert!(s.pay(&c, t, ev, none));
        }
        assert_eq!(s.generate(&c, 480 * S), SignerAnswer::RefreshRequired);
        assert_eq!(s.refresh(&c, 480 * S, none), 200);
        assert!(matches!(s.generate(&c, 480 * S), SignerAnswer::Minted { .. }));
    }

    #[test]
    fn fractional_carry_and_runway() {
        let c = FastConfig::default();
        let mut s = FastLedger::reserve(&c, 0, 0);
        // A tick 5.5 s after creation bills 5 s and carries 0.5 s.
        s.next_tick = 5_500_000;
        s.catch_up(&c, 6 * S, none);
        assert_eq!(s.debited, 5 * c.price_wei);
        assert_eq!(s.runway_us(&c, 6 * S), 10 * S - 6 * S);
    }
}
