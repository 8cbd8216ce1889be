//! What each outcome means for the credit the orchestrator holds: delivered mints, held mints
//! awaiting a repost, what a 482 may prove, and when the signer's ledger stops matching the
//! orchestrator's.

use embassy_time::{Duration, Instant};

use super::{Action, Held, NEVER, Session, UNVALUED, ms};
use crate::classify::{Endpoint, Outcome, Reply};
use crate::event::{Event, ReleaseReason, State};
use crate::time;

impl Session {
    /// The machine's reaction to `outcome`, the answer to `action`.
    pub(super) fn on_outcome(&mut self, now: Instant, action: Action, outcome: Outcome) {
        match (action, outcome) {
            (Action::Stop, outcome) => {
                let reply = match outcome {
                    Outcome::Transient { reply, .. } | Outcome::Rejected { reply, .. } => Some(reply),
                    _ => None,
                };
                if let Some(reply) = reply {
                    self.emit(Event::StopFailed { reply });
                }
                self.release(self.closing.unwrap_or(ReleaseReason::ClosedByClient));
            }
            (Action::Pay { .. } | Action::Resync { .. }, Outcome::Paid) => {
                let fresh = action.fresh_state();
                let billed = self.bill_mint(now, fresh);
                let value = core::mem::replace(&mut self.pending_value_ms, UNVALUED);
                self.credit_value(value);
                self.credit(now, billed, fresh);
            }
            (Action::Repost { .. }, Outcome::Paid) => {
                self.stats.reposts_credited += 1;
                if let Some(held) = self.held.take() {
                    self.credit_value(held.value_ms);
                    self.credit(now, ms(held.billed_ms), held.fresh);
                }
            }
            (Action::Repost { cycle }, Outcome::ReplayRefused) => {
                // The tickets were seen already (most likely: the first POST's answer was lost)
                // or expired. Either way nothing new was credited, and whether the first POST was
                // is unknown: the signer's ledger may count credit the orchestrator lacks.
                self.held = None;
                self.stats.replays_refused += 1;
                self.lose_sync(cycle);
                self.consecutive_failures = 0;
                if self.funding_active() {
                    self.next_pay = now.max(self.spacing_floor());
                }
            }
            (Action::Pay { cycle }, Outcome::Skipped) => self.on_skipped(now, cycle),
            (Action::Resync { .. }, Outcome::Skipped) => {
                // A stateless call cannot be covered already; take it as a failed attempt.
                self.on_failure(now, Endpoint::Signer, Reply::Status(482));
            }
            (Action::Pay { .. } | Action::Resync { .. }, Outcome::RefreshRequired) => {
                self.refreshes_this_cycle = self.refreshes_this_cycle.saturating_add(1);
                if self.refreshes_this_cycle > self.timing.max_refreshes {
                    self.on_failure(now, Endpoint::Signer, Reply::Status(480));
                } else if self.funding_active() {
                    let attempt = self.refreshes_this_cycle;
                    self.emit(Event::RefreshRequired { attempt });
                    self.action = Some(Action::Refresh);
                } else {
                    self.emit(Event::PaymentAbandoned {
                        endpoint: Endpoint::Signer,
                        reply: Reply::Status(480),
                    });
                }
            }
            (Action::Refresh, Outcome::Refreshed) => {
                self.stats.refreshes += 1;
                self.emit(Event::Refreshed {
                    attempt: self.refreshes_this_cycle,
                });
                if !self.in_sync {
                    // Fresh params: a stateless mint now uses nonces the orchestrator never saw.
                    self.resync_pending = true;
                }
                if self.funding_active() {
                    self.issue_mint(now, self.cycle);
                }
            }
            (_, Outcome::Gone { .. }) => self.release(ReleaseReason::Gone),
            (_, Outcome::Rejected { reason, .. }) => {
                if self.closing.is_some() {
                    // Already closing: the stop goes out below.
                } else if self.timing.stop_on_rejection {
                    self.begin_close(reason);
                } else {
                    self.release(reason);
                }
            }
            (action, Outcome::Transient { endpoint, reply }) => {
                match endpoint {
                    // The signer minted and billed; the orchestrator did not (provably) credit it:
                    // hold it, and POST it again before minting anew.
                    Endpoint::Payment => {
                        let fresh = action.fresh_state();
                        let billed = self.bill_mint(now, fresh);
                        self.held = Some(Held {
                            billed_ms: u32::try_from(billed.as_millis()).unwrap_or(u32::MAX),
                            reposts: 0,
                            fresh,
                            value_ms: core::mem::replace(&mut self.pending_value_ms, UNVALUED),
                        });
                    }
                    Endpoint::Repost => {
                        let give_up = self.held.as_mut().is_none_or(|held| {
                            held.reposts = held.reposts.saturating_add(1);
                            held.reposts >= self.timing.max_reposts
                        });
                        if give_up {
                            self.held = None;
                            self.lose_sync(self.cycle);
                        }
                    }
                    _ => {}
                }
                self.on_failure(now, endpoint, reply);
            }
            // `answers` admits no other pair.
            _ => {}
        }
    }

    /// What the signer billed for the mint of the action just answered, estimated never above
    /// the truth, and the billing anchor moved to it. The signer bills from its own receipt of
    /// the previous mint (no later than that mint's answer arrived) to its receipt of this one
    /// (no earlier than it was sent); a fresh ledger bills the prepay.
    fn bill_mint(&mut self, now: Instant, fresh: bool) -> Duration {
        let sent = self.last_attempt;
        let answered = if self.mint_answered == NEVER {
            now
        } else {
            self.mint_answered
        };
        self.mint_answered = NEVER;
        let billed = self.mint_bill(fresh);
        if fresh {
            self.ledger_surplus_ms = 0;
        } else {
            let surplus = time::minus(billed, time::since(sent, self.last_mint));
            self.stats.surplus += surplus;
            self.ledger_surplus_ms = self.ledger_surplus_ms.saturating_add(super::millis(surplus));
        }
        self.last_mint = sent;
        self.last_mint_answered = answered.max(sent);
        billed
    }

    /// What the signer billed for the mint of the action in flight, sent at `last_attempt`
    /// (see [`bill_mint`](Self::bill_mint)); nothing changes.
    pub(super) fn mint_bill(&self, fresh: bool) -> Duration {
        if fresh {
            return ms(self.timing.prepay);
        }
        let elapsed = time::since(self.last_attempt, self.last_mint_answered);
        if self.timing.whole_seconds {
            time::ceil_secs(elapsed)
        } else {
            elapsed
        }
    }

    /// A delivered payment's tickets buy `value_ms`: the valued credit grows by that much, or,
    /// when the value was not given, stops being known.
    fn credit_value(&mut self, value_ms: u32) {
        if self.valued_until == NEVER {
            return;
        }
        self.valued_until = if value_ms == UNVALUED {
            NEVER
        } else {
            time::add(self.valued_until, ms(value_ms))
        };
    }

    /// `billed` of delivered credit (a fresh ledger's prepay restarts the runway from its mint).
    fn credit(&mut self, now: Instant, billed: Duration, fresh: bool) {
        if fresh {
            // The orchestrator had not released (it answered 200): its credit covered its last
            // tick, at most one tick before the mint. It received at least the prepay on top.
            let last_tick = time::sub(self.last_mint, ms(self.timing.server_tick));
            self.credit_until = time::add(self.credit_until.max(last_tick), billed);
            self.in_sync = true;
            self.resync_pending = false;
            self.stats.resyncs += 1;
        } else {
            self.credit_until = time::add(self.credit_until, billed);
            // A mint billed less than one ticket left the ticket's value less its bill in the
            // signer's balance, and the orchestrator holds it too while the ledgers agree.
            let ev_floor = ms(self.ev_floor_ms);
            if self.in_sync && ev_floor > billed {
                let residual = time::minus(ev_floor, billed);
                self.skip_floor = self.skip_floor.max(time::add(self.credit_until, residual));
            }
        }
        self.last_fee_ms = u32::try_from(billed.as_millis()).unwrap_or(u32::MAX);
        self.stats.billed += billed;
        self.stats.payments_accepted += 1;
        self.emit(Event::PaymentAccepted {
            cycle: self.cycle,
            latency: time::since(now, self.last_attempt),
        });
        if self.state == State::Skipped {
            self.set_state(State::Funding);
        }
        self.on_success(now, true);
    }

    fn on_skipped(&mut self, now: Instant, cycle: u32) {
        if self.in_sync {
            // The signer's ledger covers the time since its last mint (`docs/protocol.md` §3.2),
            // and every mint it counts was delivered: the orchestrator's credit lasts at least
            // that much past the delivered estimate. The signer's receipt of this request was no
            // earlier than it was sent, its anchor no later than the last mint's answer.
            // A genuine signer's balance after a mint is under one ticket: a 482 streak longer
            // than the largest believable ticket proves no more (`Config::max_ticket_value`).
            let covered =
                time::since(self.last_attempt, self.last_mint_answered).min(ms(self.timing.max_ticket_value));
            let beyond = covered.max(ms(self.ev_floor_ms));
            self.skip_floor = self.skip_floor.max(time::add(self.credit_until, beyond));
            // The mint this streak follows was billed less than a ticket (else no 482 could
            // follow it), and minted one: the ticket is worth more than half of what the balance
            // now proves plus that bill.
            let learnt = (covered + ms(self.last_fee_ms)).as_millis() / 2;
            self.ev_floor_ms = self.ev_floor_ms.max(u32::try_from(learnt).unwrap_or(u32::MAX));
        }
        self.stats.cycles_skipped += 1;
        self.emit(Event::CycleSkipped { cycle });
        if self.state == State::Funding {
            self.set_state(State::Skipped);
        }
        self.on_success(now, false);
    }

    /// A minted payment is given up undelivered (or its delivery is unknown): the signer's
    /// ledger counts credit the orchestrator may lack, so no 482 proves anything until a fresh
    /// ledger is started.
    fn lose_sync(&mut self, cycle: u32) {
        self.stats.lost_mints += 1;
        self.in_sync = false;
        self.resync_pending = false;
        self.emit(Event::MintLost { cycle });
    }

    pub(super) fn on_failure(&mut self, now: Instant, endpoint: Endpoint, reply: Reply) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.stats.failures += 1;
        if self.funding_active() {
            let next_retry = self.retry_at(now, endpoint);
            self.next_pay = next_retry;
            self.emit(Event::PaymentFailed {
                endpoint,
                reply,
                consecutive: self.consecutive_failures,
                next_retry,
            });
        } else {
            self.emit(Event::PaymentAbandoned { endpoint, reply });
        }
    }
}
