//! The billing ticker (`docs/protocol.md` §3): the per-session meter, billing ticks with fractional carry,
//! silent release on an uncovered tick, and [`Orchestrator::advance`].

use embassy_time::{Duration, Instant};

use super::{Orchestrator, Release, ReleaseCause, expired, live_record};

const MICROS_PER_SECOND: u128 = 1_000_000;

#[derive(Debug, Clone)]
pub(super) struct Meter {
    pub(super) last_billed: Instant,
    /// Billing units × 1e6 not yet billed (the fraction carried to the next tick).
    pub(super) unit_carry: u128,
    /// Fee numerator not yet billed (sub-wei fraction carried, `lv2v` only).
    pub(super) fee_carry: u128,
    pub(super) next_tick: Instant,
    pub(super) tick_index: u64,
}

impl Orchestrator {
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
            self.release(at, id, ReleaseCause::InsufficientBalance { fee, balance });
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

    pub(super) fn release(&mut self, at: Instant, id: &str, reason: ReleaseCause) {
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
            ReleaseCause::InsufficientBalance { .. } => self.stats.released_unpaid += 1,
            ReleaseCause::Stopped => self.stats.released_stopped += 1,
            ReleaseCause::Restarted => self.stats.released_restart += 1,
        }
        self.releases.push(Release {
            session_id: session.id.clone(),
            runner_id: session.runner_id.clone(),
            at,
            reason,
        });
    }
}
