//! When the next action goes out: the cost policy (build the runway slowly, then pay only when
//! it falls to the refill level), retries inside the runway, a planned end, the budget, and the
//! risk warnings.

use embassy_time::{Duration, Instant};

use super::{Action, NEVER, NO_LIMIT, Session, UNVALUED, ms};
use crate::classify::Endpoint;
use crate::event::{Event, ReleaseReason};
use crate::time;

impl Session {
    /// Runs every timer that is due. Called at the end of every input and command.
    pub(super) fn advance(&mut self, now: Instant) {
        if self.state.is_released() {
            return;
        }
        // Payments (and the budget check) before risk, so that a budget drain suppresses the risk
        // events it makes meaningless: one input then emits at most four events.
        self.advance_payments(now);
        self.report_risk(now);
    }

    /// Whether the risk warnings are armed: funding, not draining a budget, and not already
    /// covered to a planned end.
    pub(super) fn risk_watched(&self) -> bool {
        let covered = self.planned_end != NEVER
            && self.last_input <= self.planned_end
            && self.funded_until() >= self.needed_until();
        self.state.is_funding() && !self.draining && !covered
    }

    /// Whether the credit already lasts past the planned end (with one safety margin), before
    /// that end.
    fn covered_to_end(&self, now: Instant) -> bool {
        self.end_ahead(now) && self.funded_until() >= self.needed_until()
    }

    /// Whether an end is planned and still ahead of `now`.
    fn end_ahead(&self, now: Instant) -> bool {
        self.planned_end != NEVER && now < self.planned_end
    }

    /// The planned end plus one safety margin: what the credit must reach.
    fn needed_until(&self) -> Instant {
        time::add(self.planned_end, ms(self.timing.safety_margin))
    }

    /// When a lapse with nothing credited since turns into giving up ([`Config::give_up_after_lapse`]);
    /// `None` when never, or when already closing.
    ///
    /// [`Config::give_up_after_lapse`]: crate::Config::give_up_after_lapse
    pub(super) fn give_up_at(&self) -> Option<Instant> {
        (self.lapse_reported && self.closing.is_none() && self.timing.give_up_after_lapse != NO_LIMIT)
            .then(|| time::add(self.deadline_at(), ms(self.timing.give_up_after_lapse)))
    }

    fn report_risk(&mut self, now: Instant) {
        if !self.risk_watched() {
            return;
        }
        if self.give_up_at().is_some_and(|at| now >= at) {
            self.begin_close(ReleaseReason::GaveUp);
            // The stop goes out now (or once the action in flight is answered).
            self.advance_payments(now);
            return;
        }
        if !self.lapse_reported && now >= self.deadline_at() {
            // A lapse is the worse news; an at-risk warning in the same instant adds nothing.
            self.lapse_reported = true;
            self.at_risk_reported = true;
            self.stats.lapses += 1;
            self.emit(Event::Lapsed {
                deadline: self.deadline_at(),
            });
        } else if !self.at_risk_reported && now >= self.at_risk_at() {
            self.at_risk_reported = true;
            self.stats.at_risk += 1;
            self.emit(Event::AtRisk {
                runway: self.runway(now),
            });
        }
    }

    fn advance_payments(&mut self, now: Instant) {
        let idle = self.action.is_none();
        if idle && self.closing.is_some() {
            self.action = Some(Action::Stop);
            return;
        }
        if !(idle && self.state.is_funding() && now >= self.next_pay) {
            return;
        }
        if self.draining {
            self.begin_close(ReleaseReason::BudgetExhausted);
            self.action = Some(Action::Stop);
        } else if self.budget_exhausted() {
            // Use up what was bought, then stop the session just before the credit runs out.
            self.draining = true;
            self.next_pay = self.deadline_at().max(now);
            self.emit(Event::BudgetExhausted {
                closes_at: self.next_pay,
            });
            if self.next_pay == now {
                self.advance_payments(now);
            }
        } else if self.covered_to_end(now) {
            // Nothing to pay before the planned end; look again a little after it, so that a
            // close at the end itself never races a payment.
            self.next_pay = time::add(self.planned_end, ms(self.timing.min_demand_spacing));
        } else if self.held.is_some() {
            // POST the payment already minted before minting another.
            self.action = Some(Action::Repost { cycle: self.cycle });
            self.last_attempt = now;
            self.next_pay = NEVER;
            self.stats.reposts += 1;
        } else {
            self.refreshes_this_cycle = 0;
            self.issue_mint(now, self.cycle.wrapping_add(1));
        }
    }

    /// Produces the signer call of cycle `cycle`: a `Pay` while the ledgers agree; otherwise a
    /// refresh first, then a `Resync` (a fresh ledger on fresh params).
    pub(super) fn issue_mint(&mut self, now: Instant, cycle: u32) {
        self.cycle = cycle;
        self.next_pay = NEVER;
        self.pending_value_ms = UNVALUED;
        if !self.in_sync && !self.resync_pending {
            self.action = Some(Action::Refresh);
            return;
        }
        self.action = Some(if self.in_sync {
            Action::Pay { cycle }
        } else {
            Action::Resync { cycle }
        });
        self.last_attempt = now;
        self.stats.payments_sent += 1;
    }

    fn budget_exhausted(&self) -> bool {
        let funded = self.stats.billed + ms(self.timing.prepay);
        let cap = self.timing.max_funded_secs;
        let over_time = cap != NO_LIMIT && funded >= Duration::from_secs(u64::from(cap));
        let over_count =
            self.timing.max_payments != NO_LIMIT && self.stats.payments_accepted >= self.timing.max_payments;
        over_time || over_count
    }

    /// Never poll the signer in a tight loop, whatever the schedule says.
    pub(super) fn spacing_floor(&self) -> Instant {
        time::add(self.last_attempt, ms(self.timing.min_demand_spacing))
    }

    /// `minted`: the cycle minted and delivered (a 200), as opposed to a 482.
    pub(super) fn on_success(&mut self, now: Instant, minted: bool) {
        self.consecutive_failures = 0;
        self.at_risk_reported = false;
        self.lapse_reported = false;
        if self.funding_active() {
            let scheduled = self.schedule_after(now, minted);
            self.next_pay = scheduled.max(self.spacing_floor()).max(now);
        }
    }

    /// When the next cycle goes out after a success at `now`.
    ///
    /// The signer bills each `live` mint `ceil(elapsed)`, so the spacing between mints sets the
    /// price actually paid. Below the target runway (and with no planned end), mints land just
    /// over a whole second after the previous one, one interval apart: each adds almost a second
    /// of runway. Otherwise the next payment is due when the runway falls to the refill level
    /// (or, when a 482 left it under that level, to the check level), never sooner than one
    /// interval and never later than the longest gap, landing just under a whole second so that
    /// it adds nothing beyond the time elapsed.
    pub(super) fn schedule_after(&self, now: Instant, minted: bool) -> Instant {
        if self.is_valued() && self.in_sync {
            return self.schedule_valued(now);
        }
        let last = self.last_attempt;
        let earliest = time::add(last, ms(self.timing.interval));
        let funded = self.funded_until();
        let planned = self.end_ahead(now);
        // Runway built before a planned end is not wasted: it pays for the last seconds, which
        // then need no payment at all (see `covered_to_end`).
        if self.timing.whole_seconds && minted && self.runway(now) < ms(self.timing.target_runway) {
            // Never past the check level, however the whole seconds fall (a short prepay).
            let latest = time::sub(funded, ms(self.timing.check_runway)).max(earliest);
            return self.land_over_second(earliest).min(latest);
        }
        let mut due = time::sub(funded, ms(self.timing.refill_runway));
        if due < earliest {
            due = time::sub(funded, ms(self.timing.check_runway));
        }
        let next = due.clamp(earliest, time::add(last, ms(self.timing.max_gap)).max(earliest));
        if planned && funded < self.needed_until() {
            // The mint that tops the credit up to the planned end: it bills the time since the
            // last mint, so it is due when that time reaches what is missing.
            let missing = time::since(self.needed_until(), self.credit_until);
            let top_up = self
                .land_over_second(time::add(self.last_mint_answered, missing))
                .max(earliest);
            if top_up < next {
                return top_up;
            }
        }
        self.land_under_second(next)
    }

    /// [`schedule_after`](Self::schedule_after) when the credit is valued and the ledgers agree:
    /// the runway is known, and so is the signer's balance (the value delivered less what it
    /// billed), hence when it will next agree to mint ([`signer_ready_at`](Self::signer_ready_at)).
    /// A call before that would only be answered 482. The runway left at that moment is the
    /// prepay plus the ledger's rounding surplus, whatever the ticket is worth; that *floor* is
    /// what survives an outage, so it is what the build phase builds to the target runway (mints
    /// landing just over a whole second). Past the target, the next call waits for the refill
    /// level and lands just under a second. Never later than the check level.
    fn schedule_valued(&self, now: Instant) -> Instant {
        let last = self.last_attempt;
        let earliest = time::add(last, ms(self.timing.interval));
        let funded = self.funded_until();
        let latest = time::sub(funded, ms(self.timing.check_runway)).max(earliest);
        let ready = self.signer_ready_at().max(earliest);
        let floor = ms(self.timing.prepay) + ms(self.ledger_surplus_ms);
        // A call before the refill level buys tickets early, and the last of them are lost at
        // the end of the session: even while building, wait for it.
        let due = time::sub(funded, ms(self.timing.refill_runway));
        let capped = due
            .max(earliest)
            .min(time::add(last, ms(self.timing.max_gap)).max(earliest));
        // A planned end changes nothing here: each mint adds whole tickets whenever it lands,
        // and the runway built is spent in the last stretch, when `covered_to_end` pays nothing.
        let _ = now;
        let at = if self.timing.whole_seconds && floor < ms(self.timing.target_runway) {
            self.land_over_second(capped.max(ready))
        } else {
            self.land_under_second(capped).max(ready)
        };
        at.min(latest)
    }

    /// When the signer will next mint rather than answer 482, while the ledgers agree and the
    /// credit is valued. The signer mints once its balance is under the fee since its last mint
    /// or under one ticket (GL `core/accounting.go` L41-66). Its balance is at most the value
    /// delivered less the bills estimated (every estimate is at most the signer's own bill), and
    /// its fee since the last mint is at least the time since that mint's answer: so past
    /// `last_mint_answered + balance` (and at once when even that bound is under a ticket) the
    /// signer mints.
    fn signer_ready_at(&self) -> Instant {
        let balance = time::since(self.valued_until, self.credit_until);
        if balance < ms(self.ticket_ms) {
            return self.last_attempt;
        }
        let margin = ms(u32::from(self.timing.mint_margin));
        time::add(time::add(self.last_mint_answered, balance), margin)
    }

    /// The first instant at or after `at` that lands just over a whole second after the last
    /// mint, so that the signer's `ceil` bills the whole second it started.
    fn land_over_second(&self, at: Instant) -> Instant {
        if !self.timing.whole_seconds {
            return at;
        }
        // The estimate bills from the last mint's *answer*, so the landing must clear the
        // boundary by the signer's last round trip as well as the jitter margin (and stay under
        // the next boundary).
        let margin = ms(u32::from(self.timing.mint_margin));
        let round_trip = time::since(self.last_mint_answered, self.last_mint);
        let over = (round_trip + margin)
            .max(margin + margin)
            .min(time::minus(Duration::from_secs(1), margin));
        let gap = time::since(at, self.last_mint);
        let whole = time::ceil_secs(time::minus(gap, over));
        time::add(time::add(self.last_mint, whole), over)
    }

    /// The last instant at or before `at` that lands just under a whole second after the last
    /// mint (never under one second after it), so that the signer bills only whole seconds that
    /// have elapsed.
    fn land_under_second(&self, at: Instant) -> Instant {
        if !self.timing.whole_seconds {
            return at;
        }
        let margin = ms(u32::from(self.timing.mint_margin));
        let gap = time::since(at, self.last_mint);
        let whole = time::floor_secs(gap + margin);
        if whole >= Duration::from_secs(1) {
            time::sub(time::add(self.last_mint, whole), margin)
        } else {
            at
        }
    }

    /// Exponential backoff with seeded jitter, never under the floor, and pulled in to the
    /// deadline when the full delay would overshoot it. A payment POST (or repost) that failed
    /// waits no longer than a sixteenth of the time left before the deadline: the payment is
    /// minted and billed already, each attempt costs the signer nothing, and many attempts must
    /// fit in a short runway. A signer or refresh call keeps the plain backoff, so that an
    /// outage of the signer is not met with a burst of calls.
    pub(super) fn retry_at(&mut self, now: Instant, endpoint: Endpoint) -> Instant {
        let floor = ms(self.timing.backoff_initial);
        let exp = u32::from(self.consecutive_failures.saturating_sub(1));
        let deadline = self.deadline_at();
        let mut base = time::doubled(floor, exp).min(ms(self.timing.backoff_max));
        if matches!(endpoint, Endpoint::Payment | Endpoint::Repost) {
            let share = Duration::from_ticks(time::since(deadline, now).as_ticks() / 16);
            base = base.min(share.max(floor));
        }
        let spread = base.as_ticks() / 100 * u64::from(self.timing.jitter_percent);
        let jittered = base.as_ticks() - spread + self.rng.below_or_eq(2 * spread);
        let delay = Duration::from_ticks(jittered).max(floor);
        let at = time::add(now, delay);
        if at > deadline && deadline >= time::add(now, floor) {
            deadline
        } else {
            at
        }
    }
}
