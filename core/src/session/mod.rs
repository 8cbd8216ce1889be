//! The session machine: when to pay, what an answer means, when the session is at risk.
//!
//! The accounting of what was delivered lives in `ledger.rs`, the timing of the next payment in
//! `schedule.rs`; this file holds the types and the machine's interface.

use embassy_time::{Duration, Instant};

use crate::classify::{Endpoint, Outcome};
use crate::config::{Config, ConfigError, FirstPayment, PaymentType};
use crate::event::{Event, EventQueue, NotFunded, ReleaseReason, State};
use crate::rng::SplitMix64;
use crate::tickets::TicketValue;
use crate::time;

mod bounds;
mod ledger;
mod machine;
mod resume;
mod schedule;

pub use bounds::{MAX_BILLED_MS, MAX_COUNT, MAX_SPAN_MS, Range};
pub use machine::Machine;
pub use resume::{HeldMint, ResumePoint, StatsPoint};

/// A request the adapter must carry out, then answer with exactly one
/// [`Session::handle_outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask the signer for a payment (`generate-live-payment`, with the latest state); on a 200,
    /// POST it to the session's `payment_url`. Answer with the outcome of the last request made.
    Pay {
        /// Numbers payment cycles from 1; a refresh re-pay and the reposts of a payment keep
        /// their cycle's number.
        cycle: u32,
    },
    /// POST the payment minted last to `payment_url` again, unchanged: its first POST failed
    /// transiently, so the orchestrator may never have seen it. A replay is safe: an orchestrator
    /// never credits the same tickets twice (`docs/protocol.md` §2.5).
    Repost {
        /// The cycle that minted it.
        cycle: u32,
    },
    /// Ask the signer for a payment *without* any state, as on a reservation's first call, then
    /// POST it: the signer starts a fresh ledger (and pre-bills the prepay). Issued right after a
    /// refresh, so that the fresh ledger's ticket nonces are new, when the signer's ledger can no
    /// longer be trusted to match what the orchestrator received (a minted payment was given up).
    Resync {
        /// The cycle.
        cycle: u32,
    },
    /// Call `refresh-payment` and swap in the new `payment_params` (keep `payment_url`).
    Refresh,
    /// POST `{control_url}/stop`. Funding has already stopped.
    Stop,
}

impl Action {
    /// The request that starts carrying out this action; [`StatusTable::next`](crate::StatusTable::next)
    /// says what follows each reply.
    pub const fn first_request(self) -> Endpoint {
        match self {
            Self::Pay { .. } | Self::Resync { .. } => Endpoint::Signer,
            Self::Repost { .. } => Endpoint::Repost,
            Self::Refresh => Endpoint::Refresh,
            Self::Stop => Endpoint::Stop,
        }
    }

    /// Whether the signer request of this action carries no state (a [`Resync`](Self::Resync)).
    pub const fn fresh_state(self) -> bool {
        matches!(self, Self::Resync { .. })
    }
}

/// Counters, for dashboards and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Signer calls issued: `Pay` and `Resync` actions (refresh re-pays included).
    pub payments_sent: u32,
    /// Payments the orchestrator credited (reposts that were credited included).
    pub payments_accepted: u32,
    /// Cycles the signer skipped with 482.
    pub cycles_skipped: u32,
    /// Transient failures.
    pub failures: u32,
    /// Minted payments given up undelivered: every repost failed, or a replay was refused.
    pub lost_mints: u32,
    /// Reposts sent (POSTs of a payment already minted).
    pub reposts: u32,
    /// Reposts the orchestrator credited: mints a failed POST would otherwise have lost.
    pub reposts_credited: u32,
    /// Reposts the orchestrator refused (400/403): most likely credited already.
    pub replays_refused: u32,
    /// Fresh signer ledgers started ([`Action::Resync`]).
    pub resyncs: u32,
    /// Successful refreshes.
    pub refreshes: u32,
    /// `AtRisk` episodes.
    pub at_risk: u32,
    /// `Lapsed` episodes.
    pub lapses: u32,
    /// Events dropped because the caller did not drain [`Session::poll_event`].
    pub events_dropped: u32,
    /// Estimated service time bought after the reservation and delivered: what the signer billed
    /// for every mint the orchestrator credited.
    pub billed: Duration,
    /// Estimated rounding surplus inside `billed`: time bought beyond the time elapsed between
    /// mints. It is extra runway, and lost when the session ends.
    pub surplus: Duration,
}

/// The configuration in the compact form the machine keeps (milliseconds), so that a
/// [`Session`] stays small.
#[derive(Debug, Clone, Copy)]
struct Timing {
    interval: u32,
    server_tick: u32,
    prepay: u32,
    safety_margin: u32,
    backoff_initial: u32,
    backoff_max: u32,
    target_runway: u32,
    refill_runway: u32,
    check_runway: u32,
    max_gap: u32,
    min_demand_spacing: u32,
    max_payments: u32,
    /// Budget on funded time (prepay included), in whole seconds rounded up; [`NO_LIMIT`] for
    /// none (tested explicitly, so no funded time ever reaches it by accident).
    max_funded_secs: u32,
    /// [`Config::give_up_after_lapse`], ms; [`NO_LIMIT`] for never.
    give_up_after_lapse: u32,
    /// [`Config::max_ticket_value`], ms.
    max_ticket_value: u32,
    /// [`FirstPayment`] in compact form: [`ON_SCHEDULE`], [`AFTER_INTERVAL`] for one interval,
    /// 0 for at once, `ms` for a draw from `[0, ms)`.
    first_within: u32,
    /// Under 250 ms ([`Config::validate`]), so a byte holds it.
    mint_margin: u8,
    jitter_percent: u8,
    max_refreshes: u8,
    max_reposts: u8,
    whole_seconds: bool,
    stop_on_rejection: bool,
    unfunded: Option<NotFunded>,
}

fn millis(span: Duration) -> u32 {
    u32::try_from(span.as_millis()).unwrap_or(u32::MAX)
}

fn ms(value: u32) -> Duration {
    Duration::from_millis(u64::from(value))
}

/// The compact [`FirstPayment::AfterInterval`].
const AFTER_INTERVAL: u32 = u32::MAX;

/// The compact [`FirstPayment::OnSchedule`].
const ON_SCHEDULE: u32 = u32::MAX - 1;

/// The budget value that means "no limit".
const NO_LIMIT: u32 = u32::MAX;

/// The instant that means "never" in the machine's optional timers.
const NEVER: Instant = Instant::MAX;

/// A payment value (ms) that was not given.
const UNVALUED: u32 = u32::MAX;

/// A minted payment whose POST failed transiently: the signer billed it and counted it in its
/// ledger; the orchestrator may not have credited it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    /// What the signer billed for it (conservatively estimated), credited on delivery.
    billed_ms: u32,
    /// Reposts so far.
    reposts: u8,
    /// It was minted by a [`Action::Resync`]: on delivery it restarts the runway.
    fresh: bool,
    /// What its tickets buy, ms ([`UNVALUED`] when not given).
    value_ms: u32,
}

/// Funds one reserved live-runner session. Pure and time-driven: it never reads a clock,
/// never performs I/O and never allocates.
///
/// # Method taxonomy
///
/// (A) **Getters** on `&self`: [`state`](Self::state), [`stats`](Self::stats),
/// [`runway`](Self::runway), [`deadline`](Self::deadline), [`funded_until`](Self::funded_until),
/// [`in_sync`](Self::in_sync), [`is_valued`](Self::is_valued), [`planned_end`](Self::planned_end),
/// [`is_closing`](Self::is_closing).
///
/// (B) **Inputs** `handle_*(&mut self, now, …)`: [`handle_timeout`](Self::handle_timeout),
/// [`handle_sent`](Self::handle_sent), [`handle_minted`](Self::handle_minted),
/// [`handle_reservation_value`](Self::handle_reservation_value),
/// [`handle_ticket_value`](Self::handle_ticket_value), [`handle_outcome`](Self::handle_outcome).
///
/// (C) **Commands**: [`start`](Self::start), [`stop`](Self::stop), [`close`](Self::close),
/// [`payment_due`](Self::payment_due), [`plan_end`](Self::plan_end).
///
/// (D) **Outputs**, drained until `None` after every (B) or (C) call, in this order:
/// [`poll_action`](Self::poll_action) (what to send; [`peek_action`](Self::peek_action) looks
/// without taking), [`poll_timeout`](Self::poll_timeout)
/// (when to call [`handle_timeout`](Self::handle_timeout) next), [`poll_event`](Self::poll_event).
///
/// # Contract
///
/// - `now` must not go backwards between inputs; an earlier instant is clamped to the latest seen
///   (and trips a `debug_assert!`).
/// - An early or repeated `handle_timeout` is a harmless no-op.
/// - At most one [`Action`] is in flight; each is answered by exactly one `handle_outcome`.
/// - Once [`State::Released`], no action is ever produced again.
/// - Every call does a bounded amount of work.
///
/// # Runway: what the estimate may assume
///
/// [`funded_until`](Self::funded_until) estimates when the orchestrator's credit runs out, and is
/// never later than the truth (a property test checks this against the model). It is the latest of
/// three lower bounds:
///
/// - **valued credit**, when the adapter reads the tickets of every payment it delivers
///   ([`handle_reservation_value`](Self::handle_reservation_value),
///   [`handle_ticket_value`](Self::handle_ticket_value); the [`Engine`](crate::engine::Engine)
///   does): the orchestrator credits each ticket's expected value and debits the reservation's
///   price per second, so the credit lasts from the reservation's mint for the time the
///   delivered tickets buy. Exact, and independent of the signer's ledger; lost as soon as one
///   delivered payment's value is not given.
/// - **delivered credit**: the reservation's prepay (10 s `live`, 60 s `lv2v`) plus what the signer
///   billed for every mint the orchestrator *credited* (a 200 to the POST or to a repost), billed
///   from the instant the previous mint's answer arrived (so the estimate is never above what the
///   signer billed, whatever the latency). A mint whose POST failed adds nothing until a repost is
///   credited.
/// - **the signer's ledger, while it agrees with the orchestrator's**: a 482 says the signer's
///   balance covers the time since its last mint *and* one ticket's value. That holds of the
///   orchestrator only if every mint the signer counted was delivered ([`in_sync`](Self::in_sync)).
///   A 482 also bounds the ticket's value from below: a mint followed by a 482 was billed less
///   than one ticket, and minted one, so the ticket is worth more than half the balance the
///   482 proves plus that bill. Every later mint then leaves at least that value, less its bill,
///   in the signer's balance (`docs/protocol.md` §3.2), and every later 482 proves at least
///   that value past the last mint. This assumes the orchestrator's ticket value does not shrink
///   during a session (go-livepeer derives it from its `-ticketEV` setting).
///   After a payment is given up undelivered, or a replay is refused, nothing is inferred from
///   the signer's ledger: the machine refreshes the params and starts a fresh signer ledger
///   ([`Action::Resync`]), whose first delivered mint proves a prepay of credit again.
///
/// The [`deadline`](Self::deadline) for the next success is the estimate minus
/// [`Config::safety_margin`]; `AtRisk` fires one server tick before the estimate, `Lapsed` at
/// the deadline.
#[derive(Debug, Clone)]
pub struct Session {
    timing: Timing,
    state: State,
    /// Set while a close (or a stop after a rejection, or a budget drain end) is in progress.
    closing: Option<ReleaseReason>,
    last_input: Instant,
    /// Send time of the last mint the signer billed (its `LastUpdate`, as the client sees it).
    last_mint: Instant,
    /// When that mint's signer answer arrived: the signer's `LastUpdate` is no later.
    last_mint_answered: Instant,
    /// When the signer's 200 for the action in flight arrived ([`NEVER`] until it does).
    mint_answered: Instant,
    /// Estimated end of the delivered credit.
    credit_until: Instant,
    /// The best lower bound a 482 gave while the ledgers agreed.
    skip_floor: Instant,
    /// The end of the valued credit: the reservation's mint plus what every delivered payment's
    /// tickets buy; [`NEVER`] once a delivered payment's value is unknown (or before any).
    valued_until: Instant,
    /// Send time of the latest signer call or repost.
    last_attempt: Instant,
    /// When the next action goes out (or, while draining a budget, when the stop goes out).
    next_pay: Instant,
    /// When the application plans to close the session; [`NEVER`] when unknown.
    planned_end: Instant,
    /// The one action that exists at a time: produced, then taken by `poll_action`.
    action: Option<Action>,
    held: Option<Held>,
    /// A lower bound on one ticket's value in service time, learnt from 482s (ms; 0 until one).
    ev_floor_ms: u32,
    /// What the signer billed (at least) for the last delivered mint, ms.
    last_fee_ms: u32,
    /// What the tickets of the mint in flight buy, ms ([`UNVALUED`] when not given).
    pending_value_ms: u32,
    /// What one ticket buys, ms, as last read (0 until read).
    ticket_ms: u32,
    /// Rounding surplus of the signer's current ledger (since its prepay), ms: while the ledgers
    /// agree, the runway left when the signer next agrees to mint is the prepay plus this.
    ledger_surplus_ms: u32,
    cycle: u32,
    consecutive_failures: u16,
    refreshes_this_cycle: u8,
    /// Whether `action` was taken and awaits its outcome.
    in_flight: bool,
    at_risk_reported: bool,
    lapse_reported: bool,
    draining: bool,
    /// Every mint the signer's ledger counts was delivered (or is held for a repost).
    in_sync: bool,
    /// A refresh is under way to start a fresh signer ledger.
    resync_pending: bool,
    rng: SplitMix64,
    events: EventQueue,
    stats: Stats,
}

impl Session {
    /// A session whose reservation's payment was minted at `now` (the signer's first,
    /// pre-billing call).
    pub fn new(config: &Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let unfunded = if config.offchain {
            Some(NotFunded::Offchain)
        } else if config.payment_type == PaymentType::Fixed {
            Some(NotFunded::FixedPrice)
        } else {
            None
        };
        let timing = Timing {
            interval: millis(config.interval),
            server_tick: millis(config.server_tick),
            prepay: millis(config.prepay),
            safety_margin: millis(config.safety_margin),
            backoff_initial: millis(config.backoff.initial),
            backoff_max: millis(config.backoff.max),
            target_runway: millis(config.target_runway),
            refill_runway: millis(config.refill_runway),
            check_runway: millis(config.check_runway),
            max_gap: millis(config.max_gap),
            min_demand_spacing: millis(config.min_demand_spacing),
            max_payments: config
                .budget
                .max_payments
                .map_or(NO_LIMIT, |n| n.min(NO_LIMIT - 1)),
            max_funded_secs: config.budget.max_funded_time.map_or(NO_LIMIT, |cap| {
                u32::try_from(cap.as_ticks().div_ceil(embassy_time::TICK_HZ))
                    .map_or(NO_LIMIT - 1, |s| s.min(NO_LIMIT - 1))
            }),
            give_up_after_lapse: config
                .give_up_after_lapse
                .map_or(NO_LIMIT, |span| millis(span).min(NO_LIMIT - 1)),
            max_ticket_value: millis(config.max_ticket_value),
            first_within: match config.first_payment {
                FirstPayment::OnSchedule => ON_SCHEDULE,
                FirstPayment::Immediately => 0,
                FirstPayment::AfterInterval => AFTER_INTERVAL,
                FirstPayment::Within(span) => millis(span).min(ON_SCHEDULE - 1),
            },
            mint_margin: u8::try_from(config.mint_margin.as_millis()).unwrap_or(u8::MAX),
            jitter_percent: config.backoff.jitter_percent,
            max_refreshes: config.max_refreshes_per_cycle,
            max_reposts: config.max_reposts,
            whole_seconds: config.payment_type.bills_whole_seconds(),
            stop_on_rejection: config.stop_on_rejection,
            unfunded,
        };
        let timing_prepay_ms = timing.prepay;
        Ok(Self {
            credit_until: time::add(now, ms(timing.prepay)),
            skip_floor: now,
            valued_until: NEVER,
            timing,
            state: State::Reserved,
            closing: None,
            last_input: now,
            last_mint: now,
            last_mint_answered: now,
            mint_answered: NEVER,
            last_attempt: now,
            next_pay: NEVER,
            planned_end: NEVER,
            action: None,
            held: None,
            ev_floor_ms: 0,
            last_fee_ms: timing_prepay_ms,
            pending_value_ms: UNVALUED,
            ticket_ms: 0,
            ledger_surplus_ms: 0,
            cycle: 0,
            consecutive_failures: 0,
            refreshes_this_cycle: 0,
            in_flight: false,
            at_risk_reported: false,
            lapse_reported: false,
            draining: false,
            in_sync: true,
            resync_pending: false,
            rng: SplitMix64::new(config.seed),
            events: EventQueue::new(),
            stats: Stats::default(),
        })
    }

    // ---- (A) getters ---------------------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Estimated time from `now` until the orchestrator's credit runs out (zero once it has).
    pub fn runway(&self, now: Instant) -> Duration {
        time::since(self.funded_until(), now)
    }

    /// Estimated end of the orchestrator's credit for this session: never later than the truth
    /// (see the type's docs).
    pub fn funded_until(&self) -> Instant {
        let valued = if self.valued_until == NEVER {
            self.credit_until
        } else {
            self.valued_until
        };
        self.credit_until.max(self.skip_floor).max(valued)
    }

    /// Whether the credit is known from the tickets of every delivered payment (see the type's
    /// docs): then [`funded_until`](Self::funded_until) is exact, up to the server's tick.
    pub fn is_valued(&self) -> bool {
        self.valued_until != NEVER
    }

    /// The instant by which the next success must have landed: [`funded_until`](Self::funded_until)
    /// minus the safety margin. `None` when nothing is funded or the session is released.
    pub fn deadline(&self) -> Option<Instant> {
        (self.timing.unfunded.is_none() && !self.state.is_released()).then(|| self.deadline_at())
    }

    /// Whether the session is being closed (by [`close`](Self::close), a rejection, a budget or
    /// a give-up): no payment will be made again, only the stop.
    pub fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// Whether every mint the signer's ledger counts is known to be delivered (or is held for a
    /// repost), so that a 482 says something about the orchestrator's credit.
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }

    /// When the application plans to close the session ([`plan_end`](Self::plan_end)).
    pub fn planned_end(&self) -> Option<Instant> {
        (self.planned_end != NEVER).then_some(self.planned_end)
    }

    /// Whether anything is funded after the reservation: `false` offchain and at a fixed price.
    pub fn is_metered(&self) -> bool {
        self.timing.unfunded.is_none()
    }

    /// Whether an action is in flight (taken by [`poll_action`](Self::poll_action), not answered).
    pub fn has_action_in_flight(&self) -> bool {
        self.in_flight
    }

    // ---- (C) commands --------------------------------------------------------------------

    /// Starts funding. Idempotent; a no-op (with [`Event::FundingNotRequired`]) when there is
    /// nothing to fund, and a no-op once closing or released.
    pub fn start(&mut self, now: Instant) {
        let now = self.observe(now);
        if let Some(why) = self.timing.unfunded {
            self.emit(Event::FundingNotRequired { why });
            return;
        }
        if self.state != State::Reserved || self.closing.is_some() {
            return;
        }
        self.set_state(State::Funding);
        let first = match self.timing.first_within {
            ON_SCHEDULE => self.schedule_after(now, true).max(now),
            AFTER_INTERVAL => time::add(now, ms(self.timing.interval)),
            0 => now,
            span => {
                let offset = self.rng.below_or_eq(u64::from(span) - 1);
                time::add(now, Duration::from_millis(offset))
            }
        };
        // Never later than the check level of the runway: a session resumed with little runway
        // left ([`Session::resume`]) pays at once rather than at its phase. (A fresh
        // reservation's prepay leaves every phase well before it.)
        let by_runway = time::sub(self.funded_until(), ms(self.timing.check_runway)).max(now);
        self.next_pay = first.min(by_runway);
        self.advance(now);
    }

    /// Stops funding without releasing: back to [`State::Reserved`]. A payment already in flight
    /// completes and is accounted for; nothing new is sent. Use it to hand funding elsewhere or
    /// to let the session lapse deliberately.
    pub fn stop(&mut self, now: Instant) {
        let now = self.observe(now);
        if self.state.is_released() || self.closing.is_some() {
            return;
        }
        self.cancel_funding();
        self.advance(now);
    }

    /// Stops funding, then asks the orchestrator to stop the session ([`Action::Stop`], after any
    /// action in flight is answered). [`State::Released`] follows the stop's answer, with
    /// [`ReleaseReason::ClosedByClient`], or [`ReleaseReason::Lapsed`] when the session had
    /// lapsed and nothing since proved it funded. Idempotent.
    pub fn close(&mut self, now: Instant) {
        let now = self.observe(now);
        if self.state.is_released() || self.closing.is_some() {
            return;
        }
        let reason = if self.lapse_reported {
            ReleaseReason::Lapsed
        } else {
            ReleaseReason::ClosedByClient
        };
        self.begin_close(reason);
        self.advance(now);
    }

    /// The server released the session, as something outside the payment path says (the
    /// application, a job's events URL): funding stops at once and the session is reported
    /// [`ReleaseReason::ReleasedByServer`]; no stop is sent (there is nothing left to stop). An
    /// action in flight may still be answered; nothing follows it. Idempotent.
    pub fn handle_release_signal(&mut self, now: Instant) {
        let _ = self.observe(now);
        if self.state.is_released() {
            return;
        }
        // Straight to released (no stop, and no intermediate `Reserved`): `release` drops an
        // action not yet taken and keeps one in flight so that its answer is still accepted.
        self.release(ReleaseReason::ReleasedByServer);
    }

    /// Demand-driven payment: the orchestrator (or the application) signals that a payment is due.
    /// Pays at once, or, when the last payment went out less than [`Config::min_demand_spacing`]
    /// ago, as soon as the spacing allows; a flood of signals therefore cannot flood the signer.
    /// While a payment is already under way the signal changes nothing: that payment answers it.
    /// Ignored unless funding.
    pub fn payment_due(&mut self, now: Instant) {
        let now = self.observe(now);
        if !self.state.is_funding() || self.closing.is_some() || self.draining {
            return;
        }
        if self.action.is_none() {
            let earliest = time::add(self.last_attempt, ms(self.timing.min_demand_spacing));
            self.next_pay = self.next_pay.min(earliest.max(now));
        }
        self.advance(now);
    }

    /// The application will close the session at `at` (a `--duration`, the end of a stream):
    /// stop building runway, and let the credit already bought run out then, with one safety
    /// margin to spare. Past `at`, funding goes on as if no end had been planned. Call it again
    /// to move the end; [`Instant::MAX`] forgets it.
    pub fn plan_end(&mut self, now: Instant, at: Instant) {
        let now = self.observe(now);
        self.planned_end = at;
        if self.state.is_funding() && self.action.is_none() && !self.draining {
            // Reschedule for the new end (never at once: a mint right after the last one bills
            // a whole second for nothing).
            let scheduled = self.schedule_after(now, true).max(self.spacing_floor()).max(now);
            self.next_pay = self.next_pay.min(scheduled);
        }
        self.advance(now);
    }

    // ---- (B) inputs ----------------------------------------------------------------------

    /// Lets time pass: issues a payment that has come due, reports risk. Early or repeated calls
    /// are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.observe(now);
        self.advance(now);
    }

    /// The first request of the action in flight (a signer call, or a repost) left at `at`.
    /// Adapters that queue requests (a per-signer concurrency limit, a connection pool) call it
    /// when the bytes actually leave, so that queue time never skews the billing estimate (the
    /// signer bills from the instant it sees the request) or the reported latency. Without it,
    /// the instant the action was produced counts.
    ///
    /// `at` may be earlier than the latest input (a timer may have fired meanwhile); it is never
    /// taken as earlier than the instant the action was produced.
    pub fn handle_sent(&mut self, at: Instant) {
        let paying = matches!(
            self.action,
            Some(Action::Pay { .. } | Action::Resync { .. } | Action::Repost { .. })
        );
        if !(self.in_flight && paying) {
            return;
        }
        if at > self.last_input {
            self.observe(at);
        }
        self.last_attempt = self.last_attempt.max(at);
    }

    /// The reservation's payment carries `value`: its tickets, read with
    /// [`MintedTickets`](crate::tickets::MintedTickets) at the reservation's price (per second).
    /// From then on the credit is known exactly for as long as every delivered payment's value
    /// is given with [`handle_ticket_value`](Self::handle_ticket_value). Only before
    /// [`start`](Self::start); ignored afterwards.
    pub fn handle_reservation_value(&mut self, value: TicketValue) {
        if self.state == State::Reserved && self.cycle == 0 && !self.in_flight {
            self.valued_until = time::add(self.last_mint, value.total());
            self.ticket_ms = millis(value.each);
        }
    }

    /// The payment the signer just minted for the action in flight (after
    /// [`handle_minted`](Self::handle_minted), before its POST is answered) carries `value`.
    /// Optional; see [`handle_reservation_value`](Self::handle_reservation_value).
    pub fn handle_ticket_value(&mut self, value: TicketValue) {
        if self.in_flight
            && self.mint_answered != NEVER
            && matches!(self.action, Some(Action::Pay { .. } | Action::Resync { .. }))
        {
            self.pending_value_ms = millis(value.total()).min(UNVALUED - 1);
            self.ticket_ms = millis(value.each);
        }
    }

    /// The signer's 200 for the action in flight arrived at `at`: the signer anchored its
    /// billing no later than this. Optional (without it, the action's outcome counts, which is
    /// later and so more cautious).
    pub fn handle_minted(&mut self, at: Instant) {
        if self.in_flight && matches!(self.action, Some(Action::Pay { .. } | Action::Resync { .. })) {
            let at = self.observe(at.max(self.last_attempt));
            self.mint_answered = at;
        }
    }

    /// Answers the action in flight. A [`Sequencer`](crate::Sequencer) reads replies into
    /// outcomes with the [`StatusTable`](crate::StatusTable); drivers go through it.
    ///
    /// # Errors
    ///
    /// [`OutcomeError::NothingInFlight`] when no action was taken by
    /// [`poll_action`](Self::poll_action), and [`OutcomeError::Mismatch`] when the outcome cannot
    /// answer the action in flight (e.g. `Refreshed` for a `Pay`); the machine is unchanged then.
    pub fn handle_outcome(&mut self, now: Instant, outcome: Outcome) -> Result<(), OutcomeError> {
        let now = self.observe(now);
        let action = self
            .action
            .filter(|_| self.in_flight)
            .ok_or(OutcomeError::NothingInFlight)?;
        if !answers(action, outcome) {
            return Err(OutcomeError::Mismatch { action, outcome });
        }
        self.action = None;
        self.in_flight = false;
        self.on_outcome(now, action, outcome);
        self.advance(now);
        Ok(())
    }

    // ---- (D) outputs ---------------------------------------------------------------------

    /// The action [`poll_action`](Self::poll_action) would return now, without taking it: for
    /// adapters that only take an action once they have room to send it.
    pub fn peek_action(&self) -> Option<Action> {
        self.action.filter(|_| !self.in_flight)
    }

    /// The next request to carry out, if any. Taking it puts it in flight.
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.in_flight {
            return None;
        }
        self.in_flight = self.action.is_some();
        self.action
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called; never earlier than the
    /// latest input. `None` when no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state.is_released() {
            return None;
        }
        let mut at = NEVER;
        if self.action.is_none() {
            at = at.min(self.next_pay);
        }
        if self.risk_watched() {
            if !self.at_risk_reported {
                at = at.min(self.at_risk_at());
            }
            if !self.lapse_reported {
                at = at.min(self.deadline_at());
            } else if let Some(give_up) = self.give_up_at() {
                at = at.min(give_up);
            }
        }
        (at != NEVER).then(|| at.max(self.last_input))
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    // ---- internals -----------------------------------------------------------------------

    fn observe(&mut self, now: Instant) -> Instant {
        debug_assert!(
            now >= self.last_input,
            "time went backwards: {now} < {}",
            self.last_input
        );
        self.last_input = self.last_input.max(now);
        self.last_input
    }

    fn emit(&mut self, event: Event) {
        if self.events.push(event) {
            self.stats.events_dropped += 1;
        }
    }

    fn set_state(&mut self, to: State) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.emit(Event::StateChanged { from, to });
        }
    }

    /// Funding and not winding down: new payments may be scheduled.
    fn funding_active(&self) -> bool {
        self.state.is_funding() && self.closing.is_none() && !self.draining
    }

    fn deadline_at(&self) -> Instant {
        time::sub(self.funded_until(), ms(self.timing.safety_margin))
    }

    fn at_risk_at(&self) -> Instant {
        time::sub(self.funded_until(), ms(self.timing.server_tick))
    }

    fn release(&mut self, reason: ReleaseReason) {
        if !self.in_flight {
            self.action = None;
        }
        self.next_pay = NEVER;
        self.closing = None;
        self.draining = false;
        self.set_state(State::Released { reason });
    }

    fn cancel_funding(&mut self) {
        self.next_pay = NEVER;
        self.draining = false;
        // A payment produced but not yet taken was never sent: drop it.
        if !self.in_flight && !matches!(self.action, Some(Action::Stop)) {
            self.action = None;
        }
        if self.state.is_funding() {
            self.set_state(State::Reserved);
        }
    }

    fn begin_close(&mut self, reason: ReleaseReason) {
        self.cancel_funding();
        self.closing = Some(reason);
    }
}

/// Whether `outcome` can answer `action`.
fn answers(action: Action, outcome: Outcome) -> bool {
    let endpoint_of = |outcome: Outcome| match outcome {
        Outcome::Gone { endpoint }
        | Outcome::Rejected { endpoint, .. }
        | Outcome::Transient { endpoint, .. } => Some(endpoint),
        _ => None,
    };
    match action {
        Action::Pay { .. } | Action::Resync { .. } => match outcome {
            Outcome::Paid | Outcome::Skipped | Outcome::RefreshRequired => true,
            _ => matches!(endpoint_of(outcome), Some(Endpoint::Signer | Endpoint::Payment)),
        },
        Action::Repost { .. } => match outcome {
            Outcome::Paid | Outcome::ReplayRefused => true,
            _ => endpoint_of(outcome) == Some(Endpoint::Repost),
        },
        Action::Refresh => outcome == Outcome::Refreshed || endpoint_of(outcome) == Some(Endpoint::Refresh),
        Action::Stop => outcome == Outcome::Stopped || endpoint_of(outcome) == Some(Endpoint::Stop),
    }
}

/// Why [`Session::handle_outcome`] refused an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeError {
    /// No action is in flight.
    NothingInFlight,
    /// The outcome cannot answer the action in flight.
    Mismatch {
        /// The action in flight.
        action: Action,
        /// The outcome offered.
        outcome: Outcome,
    },
}

impl core::fmt::Display for OutcomeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NothingInFlight => f.write_str("outcome without an action in flight"),
            Self::Mismatch { action, outcome } => {
                write!(f, "outcome {outcome:?} cannot answer action {action:?}")
            }
        }
    }
}

impl core::error::Error for OutcomeError {}

#[cfg(test)]
mod tests;
