//! The session machine: when to pay, what an answer means, when the session is at risk.

use embassy_time::{Duration, Instant};

use crate::classify::{Endpoint, Outcome, Reply};
use crate::config::{Config, ConfigError, FirstPayment, PaymentType};
use crate::event::{Event, EventQueue, NotFunded, ReleaseReason, State};
use crate::rng::SplitMix64;
use crate::time;

/// A request the adapter must carry out, then answer with exactly one
/// [`Session::handle_outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask the signer for a payment (`generate-live-payment`, with the latest state); on a 200,
    /// POST it to the session's `payment_url`. Answer with the outcome of the last request made.
    Pay {
        /// Numbers payment cycles from 1; a refresh re-pay keeps its cycle's number.
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
            Self::Pay { .. } => Endpoint::Signer,
            Self::Refresh => Endpoint::Refresh,
            Self::Stop => Endpoint::Stop,
        }
    }
}

/// Counters, for dashboards and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// `Pay` actions issued (refresh re-pays included).
    pub payments_sent: u32,
    /// Payments the orchestrator credited.
    pub payments_accepted: u32,
    /// Cycles the signer skipped with 482.
    pub cycles_skipped: u32,
    /// Transient failures.
    pub failures: u32,
    /// Payments minted but never credited (the POST failed after a signer 200).
    pub lost_mints: u32,
    /// Successful refreshes.
    pub refreshes: u32,
    /// `AtRisk` episodes.
    pub at_risk: u32,
    /// `Lapsed` episodes.
    pub lapses: u32,
    /// Events dropped because the caller did not drain [`Session::poll_event`].
    pub events_dropped: u32,
    /// Estimated service time bought after the reservation (the signer's billing of mints).
    pub billed: Duration,
    /// Estimated rounding surplus inside `billed`: time bought beyond the time elapsed between
    /// mints. It is extra runway, and lost when the session ends.
    pub surplus: Duration,
}

/// The configuration in the compact form the machine keeps (milliseconds), so that a
/// [`Session`] stays within 256 bytes.
#[derive(Debug, Clone, Copy)]
struct Timing {
    interval: u32,
    server_tick: u32,
    prepay: u32,
    safety_margin: u32,
    backoff_initial: u32,
    backoff_max: u32,
    target_runway: u32,
    /// Under 250 ms ([`Config::validate`]), so a byte holds it.
    mint_margin: u8,
    min_demand_spacing: u32,
    max_payments: u32,
    /// Budget on funded time (prepay included), in whole seconds rounded up; [`NO_LIMIT`] for
    /// none (tested explicitly, so no funded time ever reaches it by accident).
    max_funded_secs: u32,
    jitter_percent: u8,
    max_refreshes: u8,
    whole_seconds: bool,
    /// [`FirstPayment`] in compact form: [`AFTER_INTERVAL`] for one interval, 0 for at once,
    /// `ms` for a draw from `[0, ms)`.
    first_within: u32,
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

/// The budget value that means "no limit".
const NO_LIMIT: u32 = u32::MAX;

/// The instant that means "never" in the machine's optional timers.
const NEVER: Instant = Instant::MAX;

/// Funds one reserved live-runner session. Pure and time-driven: it never reads a clock,
/// never performs I/O and never allocates.
///
/// # Method taxonomy
///
/// (A) **Getters** on `&self`: [`state`](Self::state), [`stats`](Self::stats),
/// [`runway`](Self::runway), [`deadline`](Self::deadline), [`funded_until`](Self::funded_until).
///
/// (B) **Inputs** `handle_*(&mut self, now, …)`: [`handle_timeout`](Self::handle_timeout),
/// [`handle_sent`](Self::handle_sent), [`handle_outcome`](Self::handle_outcome).
///
/// (C) **Commands**: [`start`](Self::start), [`stop`](Self::stop), [`close`](Self::close),
/// [`payment_due`](Self::payment_due).
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
/// # Runway
///
/// The machine estimates when the orchestrator's credit for the session runs out
/// ([`funded_until`](Self::funded_until)): the reservation's prepay (10 s `live`, 60 s `lv2v`)
/// plus what the signer billed for every mint, rounded the way the signer rounds. The
/// [`deadline`](Self::deadline) for the next success is that instant minus
/// [`Config::safety_margin`]; with no rounding surplus it is `last success + prepay − margin`.
#[derive(Debug, Clone)]
pub struct Session {
    timing: Timing,
    state: State,
    /// Set while a close (or a stop after a rejection, or a budget drain end) is in progress.
    closing: Option<ReleaseReason>,
    last_input: Instant,
    /// Send time of the last mint the signer billed (its `LastUpdate`).
    last_mint: Instant,
    /// Estimated end of the orchestrator's credit.
    funded_until: Instant,
    /// Send time of the latest `Pay`.
    last_attempt: Instant,
    /// When the next `Pay` goes out (or, while draining a budget, when the stop goes out).
    next_pay: Instant,
    /// The one action that exists at a time: produced, then taken by `poll_action`.
    action: Option<Action>,
    /// Whether `action` was taken and awaits its outcome.
    in_flight: bool,
    cycle: u32,
    consecutive_failures: u16,
    refreshes_this_cycle: u8,
    at_risk_reported: bool,
    lapse_reported: bool,
    draining: bool,
    rng: SplitMix64,
    events: EventQueue,
    stats: Stats,
}

impl Session {
    /// A session whose reservation was paid at `now` (the signer's first, pre-billing call).
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
            mint_margin: u8::try_from(config.mint_margin.as_millis()).unwrap_or(u8::MAX),
            min_demand_spacing: millis(config.min_demand_spacing),
            max_payments: config
                .budget
                .max_payments
                .map_or(NO_LIMIT, |n| n.min(NO_LIMIT - 1)),
            max_funded_secs: config.budget.max_funded_time.map_or(NO_LIMIT, |cap| {
                u32::try_from(cap.as_ticks().div_ceil(embassy_time::TICK_HZ))
                    .map_or(NO_LIMIT - 1, |s| s.min(NO_LIMIT - 1))
            }),
            jitter_percent: config.backoff.jitter_percent,
            max_refreshes: config.max_refreshes_per_cycle,
            whole_seconds: config.payment_type.bills_whole_seconds(),
            first_within: match config.first_payment {
                FirstPayment::Immediately => 0,
                FirstPayment::AfterInterval => AFTER_INTERVAL,
                FirstPayment::Within(span) => millis(span).min(AFTER_INTERVAL - 1),
            },
            stop_on_rejection: config.stop_on_rejection,
            unfunded,
        };
        Ok(Self {
            funded_until: time::add(now, ms(timing.prepay)),
            timing,
            state: State::Reserved,
            closing: None,
            last_input: now,
            last_mint: now,
            last_attempt: now,
            next_pay: NEVER,
            action: None,
            in_flight: false,
            cycle: 0,
            consecutive_failures: 0,
            refreshes_this_cycle: 0,
            at_risk_reported: false,
            lapse_reported: false,
            draining: false,
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
        time::since(self.funded_until, now)
    }

    /// Estimated end of the orchestrator's credit for this session.
    pub fn funded_until(&self) -> Instant {
        self.funded_until
    }

    /// The instant by which the next success must have landed: [`funded_until`](Self::funded_until)
    /// minus the safety margin. `None` when nothing is funded or the session is released.
    pub fn deadline(&self) -> Option<Instant> {
        (self.timing.unfunded.is_none() && !self.state.is_released())
            .then(|| time::sub(self.funded_until, ms(self.timing.safety_margin)))
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
        self.next_pay = match self.timing.first_within {
            AFTER_INTERVAL => time::add(now, ms(self.timing.interval)),
            0 => now,
            span => {
                let offset = self.rng.below_or_eq(u64::from(span) - 1);
                time::add(now, Duration::from_millis(offset))
            }
        };
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
    /// action in flight is answered). [`State::Released`] follows the stop's answer. Idempotent.
    pub fn close(&mut self, now: Instant) {
        let now = self.observe(now);
        if self.state.is_released() || self.closing.is_some() {
            return;
        }
        self.begin_close(ReleaseReason::ClosedByClient);
        self.advance(now);
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

    // ---- (B) inputs ----------------------------------------------------------------------

    /// Lets time pass: issues a payment that has come due, reports risk. Early or repeated calls
    /// are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.observe(now);
        self.advance(now);
    }

    /// The first request of the [`Action::Pay`] in flight (the signer's) left at `at`. Adapters
    /// that queue requests (a per-signer concurrency limit, a connection pool) call it when the
    /// bytes actually leave, so that queue time never skews the billing estimate (the signer
    /// bills from the instant it sees the request) or the reported latency. Without it, the
    /// instant the action was produced counts.
    ///
    /// `at` may be earlier than the latest input (a timer may have fired meanwhile); it is never
    /// taken as earlier than the instant the action was produced. Ignored unless a `Pay` is in
    /// flight.
    pub fn handle_sent(&mut self, at: Instant) {
        if !(self.in_flight && matches!(self.action, Some(Action::Pay { .. }))) {
            return;
        }
        if at > self.last_input {
            self.observe(at);
        }
        self.last_attempt = self.last_attempt.max(at);
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
            (Action::Pay { .. }, Outcome::Paid) => self.on_paid(now),
            (Action::Pay { cycle }, Outcome::Skipped) => self.on_skipped(now, cycle),
            (Action::Pay { .. }, Outcome::RefreshRequired) => {
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
                if self.funding_active() {
                    self.issue_pay(now, self.cycle);
                }
            }
            (_, Outcome::Gone { .. }) => self.release(ReleaseReason::Gone),
            (_, Outcome::Rejected { endpoint, reply }) => {
                let reason = ReleaseReason::Rejected { endpoint, reply };
                if self.closing.is_some() {
                    // Already closing: the stop goes out below.
                } else if self.timing.stop_on_rejection {
                    self.begin_close(reason);
                } else {
                    self.release(reason);
                }
            }
            (_, Outcome::Transient { endpoint, reply }) => {
                if endpoint == Endpoint::Payment {
                    // The signer minted and billed; the orchestrator never credited it.
                    self.last_mint = self.last_attempt;
                    self.stats.lost_mints += 1;
                }
                self.on_failure(now, endpoint, reply);
            }
            // `answers` admits no other pair.
            _ => {}
        }
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
        if self.state.is_funding() && !self.draining {
            if !self.at_risk_reported {
                at = at.min(self.at_risk_at());
            }
            if !self.lapse_reported {
                at = at.min(self.deadline_at());
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
        time::sub(self.funded_until, ms(self.timing.safety_margin))
    }

    fn at_risk_at(&self) -> Instant {
        time::sub(self.funded_until, ms(self.timing.server_tick))
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
        if !self.in_flight && matches!(self.action, Some(Action::Pay { .. } | Action::Refresh)) {
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

    fn issue_pay(&mut self, now: Instant, cycle: u32) {
        self.cycle = cycle;
        self.action = Some(Action::Pay { cycle });
        self.last_attempt = now;
        self.next_pay = NEVER;
        self.stats.payments_sent += 1;
    }

    /// Runs every timer that is due. Called at the end of every input and command.
    fn advance(&mut self, now: Instant) {
        if self.state.is_released() {
            return;
        }
        // Payments (and the budget check) before risk, so that a budget drain suppresses the risk
        // events it makes meaningless: one input then emits at most four events.
        self.advance_payments(now);
        self.report_risk(now);
    }

    fn report_risk(&mut self, now: Instant) {
        if !self.state.is_funding() || self.draining {
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
        } else {
            self.refreshes_this_cycle = 0;
            self.issue_pay(now, self.cycle.wrapping_add(1));
        }
    }

    fn budget_exhausted(&self) -> bool {
        let funded = self.stats.billed + ms(self.timing.prepay);
        let cap = self.timing.max_funded_secs;
        let over_time = cap != NO_LIMIT && funded >= Duration::from_secs(u64::from(cap));
        let over_count =
            self.timing.max_payments != NO_LIMIT && self.stats.payments_accepted >= self.timing.max_payments;
        over_time || over_count
    }

    /// `minted`: the cycle minted (a 200), as opposed to a 482.
    fn on_success(&mut self, now: Instant, minted: bool) {
        self.consecutive_failures = 0;
        self.at_risk_reported = false;
        self.lapse_reported = false;
        if self.funding_active() {
            let scheduled = if minted {
                self.schedule_after_mint(now)
            } else {
                // Balance current: chasing the rounding would only meet another 482.
                time::add(self.last_attempt, ms(self.timing.interval))
            };
            // Never poll the signer in a tight loop, whatever the schedule says.
            let floor = time::add(self.last_attempt, ms(self.timing.min_demand_spacing));
            self.next_pay = scheduled.max(floor).max(now);
        }
    }

    fn on_paid(&mut self, now: Instant) {
        let sent_at = self.last_attempt;
        let elapsed = time::since(sent_at, self.last_mint);
        let billed = if self.timing.whole_seconds {
            time::ceil_secs(elapsed)
        } else {
            elapsed
        };
        self.funded_until = time::add(self.funded_until, billed);
        self.last_mint = sent_at;
        self.stats.payments_accepted += 1;
        self.stats.billed += billed;
        self.stats.surplus += time::minus(billed, elapsed);
        self.emit(Event::PaymentAccepted {
            cycle: self.cycle,
            latency: time::since(now, sent_at),
        });
        if self.state == State::Skipped {
            self.set_state(State::Funding);
        }
        self.on_success(now, true);
    }

    fn on_skipped(&mut self, now: Instant, cycle: u32) {
        // A 482 means the signer's balance covers the time since its last mint and one more
        // ticket, so the orchestrator holds at least the prepay beyond the send time.
        let floor = time::add(self.last_attempt, ms(self.timing.prepay));
        self.funded_until = self.funded_until.max(floor);
        self.stats.cycles_skipped += 1;
        self.emit(Event::CycleSkipped { cycle });
        if self.state == State::Funding {
            self.set_state(State::Skipped);
        }
        self.on_success(now, false);
    }

    fn on_failure(&mut self, now: Instant, endpoint: Endpoint, reply: Reply) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.stats.failures += 1;
        if self.funding_active() {
            let next_retry = self.retry_at(now);
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

    /// Exponential backoff with seeded jitter, never under the floor, and pulled in to the
    /// deadline when the full delay would overshoot it.
    fn retry_at(&mut self, now: Instant) -> Instant {
        let floor = ms(self.timing.backoff_initial);
        let exp = u32::from(self.consecutive_failures.saturating_sub(1));
        let base = time::doubled(floor, exp).min(ms(self.timing.backoff_max));
        let spread = base.as_ticks() / 100 * u64::from(self.timing.jitter_percent);
        let jittered = base.as_ticks() - spread + self.rng.below_or_eq(2 * spread);
        let delay = Duration::from_ticks(jittered).max(floor);
        let at = time::add(now, delay);
        let deadline = self.deadline_at();
        if at > deadline && deadline >= time::add(now, floor) {
            deadline
        } else {
            at
        }
    }

    /// When the next cycle goes out after a mint answered at `now`. For `live`, the signer bills each
    /// mint `ceil(elapsed)`, so the spacing between mints sets the price actually paid: above the
    /// target runway, land just under a whole second after the previous mint (pay ~the price);
    /// below it, land just over one (the rounding builds buffer).
    fn schedule_after_mint(&self, now: Instant) -> Instant {
        let nominal = time::add(self.last_attempt, ms(self.timing.interval));
        if !self.timing.whole_seconds {
            return nominal;
        }
        let margin = ms(u32::from(self.timing.mint_margin));
        let gap = time::since(nominal, self.last_mint);
        let one_second = Duration::from_secs(1);
        if self.runway(now) >= ms(self.timing.target_runway) {
            let whole = time::floor_secs(gap + margin);
            if whole >= one_second {
                return time::sub(time::add(self.last_mint, whole), margin);
            }
        } else if gap > one_second + margin {
            // Build buffer as fast as the rounding allows: a mint just over one second after the
            // last is billed two seconds, so the runway grows ~0.9 s per second.
            return time::add(time::add(self.last_mint, one_second), margin);
        }
        nominal
    }
}

/// Whether `outcome` can answer `action`.
fn answers(action: Action, outcome: Outcome) -> bool {
    match (action, outcome) {
        (Action::Pay { .. }, Outcome::Paid | Outcome::Skipped | Outcome::RefreshRequired) => true,
        (
            Action::Pay { .. },
            Outcome::Gone { endpoint }
            | Outcome::Rejected { endpoint, .. }
            | Outcome::Transient { endpoint, .. },
        ) => {
            matches!(endpoint, Endpoint::Signer | Endpoint::Payment)
        }
        (Action::Refresh, Outcome::Refreshed) => true,
        (
            Action::Refresh,
            Outcome::Gone { endpoint }
            | Outcome::Rejected { endpoint, .. }
            | Outcome::Transient { endpoint, .. },
        ) => endpoint == Endpoint::Refresh,
        (Action::Stop, Outcome::Stopped) => true,
        (
            Action::Stop,
            Outcome::Gone { endpoint }
            | Outcome::Rejected { endpoint, .. }
            | Outcome::Transient { endpoint, .. },
        ) => endpoint == Endpoint::Stop,
        _ => false,
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

/// What a [`Sequencer`](crate::Sequencer) needs of a funding policy: actions out, outcomes in.
/// [`Session`] is livepay's; the simulation's baseline of the upstream SDK's loop is another, so
/// that both are carried out by the same sequencing.
pub trait Machine {
    /// The action that [`poll_action`](Self::poll_action) would return, without taking it.
    fn peek_action(&self) -> Option<Action>;
    /// Takes the next action, putting it in flight.
    fn poll_action(&mut self) -> Option<Action>;
    /// The first request of the action in flight left at `at` ([`Session::handle_sent`]).
    fn handle_sent(&mut self, at: Instant);
    /// Answers the action in flight.
    ///
    /// # Errors
    ///
    /// When no action is in flight or the outcome cannot answer it.
    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) -> Result<(), OutcomeError>;
}

impl Machine for Session {
    fn peek_action(&self) -> Option<Action> {
        Self::peek_action(self)
    }
    fn poll_action(&mut self) -> Option<Action> {
        Self::poll_action(self)
    }
    fn handle_sent(&mut self, at: Instant) {
        Self::handle_sent(self, at);
    }
    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) -> Result<(), OutcomeError> {
        Self::handle_outcome(self, now, outcome)
    }
}

impl<M: Machine + ?Sized> Machine for &mut M {
    fn peek_action(&self) -> Option<Action> {
        (**self).peek_action()
    }
    fn poll_action(&mut self) -> Option<Action> {
        (**self).poll_action()
    }
    fn handle_sent(&mut self, at: Instant) {
        (**self).handle_sent(at);
    }
    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) -> Result<(), OutcomeError> {
        (**self).handle_outcome(now, outcome)
    }
}

#[cfg(test)]
mod tests;
