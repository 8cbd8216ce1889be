//! Session configuration, its documented defaults, and validation.

use core::fmt;

use embassy_time::Duration;

use crate::time;

pub use crate::wire::PaymentType;

/// Timing facts of each payment type (the wire facts live in [`crate::wire`]).
impl PaymentType {
    /// What the signer pre-bills on the first call (no state): 10 s `live`, 60 s `lv2v`, nothing
    /// time-based for `fixed` (`docs/protocol.md` §2.2).
    pub const fn prepay(self) -> Duration {
        match self {
            Self::Live => Duration::from_secs(10),
            Self::Lv2v => Duration::from_secs(60),
            Self::Fixed => Duration::from_ticks(0),
        }
    }

    /// Whether the signer rounds each mint's elapsed time up to whole seconds.
    pub const fn bills_whole_seconds(self) -> bool {
        matches!(self, Self::Live)
    }
}

/// The longest gap between two signer calls any signer accepts: livepeer/node answers 400 to a
/// state more than 3600 s old. [`Config::max_gap`] is checked against it.
pub const MAX_SIGNER_GAP: Duration = Duration::from_secs(3_600);

/// When the first payment after `start` goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPayment {
    /// When the schedule says, as if the reservation's mint were the last payment: the signer
    /// billed the prepay for the first seconds, so an immediate call would bill a second that
    /// has barely started (the default).
    OnSchedule,
    /// At once (the original design): a cold start can otherwise leave a long gap after the
    /// reservation payment.
    Immediately,
    /// After one interval, like livepeer-gateway 1.0.0.
    AfterInterval,
    /// At an instant drawn uniformly from `[start, start + span)` with the session's seeded
    /// generator ([`Config::seed`]), so that sessions started together do not reach the signer in
    /// lockstep for the rest of their lives. A span longer than `prepay − safety_margin` is
    /// refused by [`Config::validate`]: the first payment must land inside the runway.
    Within(Duration),
}

/// Retry policy after a transient failure: exponential backoff with seeded jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First retry delay, and the floor no retry goes under. Default 250 ms.
    pub initial: Duration,
    /// Cap on the delay. Default 2 s, so several retries fit inside the 10 s `live` prepay.
    pub max: Duration,
    /// Jitter as a percentage of the delay, applied symmetrically (±). Default 20 %.
    pub jitter_percent: u8,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(2),
            jitter_percent: 20,
        }
    }
}

/// Optional limits after which the client stops funding and closes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    /// Most service time to buy, counted from the reservation (prepay included).
    pub max_funded_time: Option<Duration>,
    /// Most accepted payments after the reservation.
    pub max_payments: Option<u32>,
}

/// Everything the session machine needs to know up front. Build it with [`Config::new`], adjust
/// fields, and let [`Session::new`](crate::Session::new) validate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The signer's payment type. Default [`PaymentType::Live`].
    pub payment_type: PaymentType,
    /// No signer: the runner is unpriced or offchain and there is nothing to fund. Default `false`.
    pub offchain: bool,
    /// Nominal spacing between payment cycles. Default 3 s, below the 5 s server tick.
    pub interval: Duration,
    /// The orchestrator's debit period (`-livePaymentInterval`). Default 5 s.
    pub server_tick: Duration,
    /// Credit the signer pre-bills on its first call. Default [`PaymentType::prepay`].
    pub prepay: Duration,
    /// How long before the estimated end of credit the next success must have landed.
    /// Default 1 s: room for one payment POST to reach the orchestrator.
    pub safety_margin: Duration,
    /// When the first payment after `start` goes out. Default [`FirstPayment::OnSchedule`].
    pub first_payment: FirstPayment,
    /// Retry policy for transient failures.
    pub backoff: Backoff,
    /// Most `480 → refresh → pay` rounds in one cycle. Default 3.
    pub max_refreshes_per_cycle: u8,
    /// Optional spending limits.
    pub budget: Budget,
    /// The runway (estimated time until the delivered credit runs out) the machine builds up to.
    /// Below it, mints land just over a whole second after the previous one, about one
    /// [`interval`](Self::interval) apart, so the signer's rounding adds almost a second each:
    /// the runway grows about 0.3 s per second, a little slower than the 1/3 s per second the
    /// upstream SDK pays for by accident. At or above it, mints land just under a whole second
    /// (no surplus). Default 55 s.
    pub target_runway: Duration,
    /// Once the runway is built, the next payment is due when the runway falls to this, so that
    /// an outage shorter than it (a 30 s partition, a 20 s signer outage, a minute of 50 % 503s)
    /// costs nothing. Default 40 s. Must be below `target_runway`.
    pub refill_runway: Duration,
    /// When the signer answers 482 (its ledger covers the time so far) and the runway is under
    /// `refill_runway`, the next check is due when the runway falls to this: far enough ahead
    /// that a check costs a signer call every few seconds at most, near enough to retry before the
    /// deadline, and above one server tick so that a routine check never raises `AtRisk`.
    /// Default 6 s. Must be above `safety_margin`.
    pub check_runway: Duration,
    /// The longest spacing between two payments, whatever the runway. Bounded by what one signer
    /// call may mint (100 tickets: 30 s of service needs 60 tickets at the smallest ticket value
    /// in use, half a second of price) and by the nonce budget of one set of ticket params.
    /// Default 30 s.
    pub max_gap: Duration,
    /// How many times a minted payment whose POST failed transiently is POSTed again
    /// ([`Action::Repost`](crate::Action::Repost)) before it is given up and the signer's
    /// ledger is started afresh. Default 12.
    pub max_reposts: u8,
    /// Distance from a whole-second boundary that a scheduled mint keeps, to absorb network
    /// jitter between the client's send time and the signer's clock. Default 50 ms.
    pub mint_margin: Duration,
    /// Shortest spacing between two demand-driven payments ([`Session::payment_due`](crate::Session::payment_due)).
    /// Default 500 ms.
    pub min_demand_spacing: Duration,
    /// On a terminal rejection, ask the orchestrator to stop the session ([`Action::Stop`](crate::Action::Stop))
    /// before reporting it released, so the runner is not left running on credit that can no
    /// longer be topped up. Default `true`.
    pub stop_on_rejection: bool,
    /// How long after a lapse ([`Event::Lapsed`](crate::Event::Lapsed)) with nothing credited
    /// since the machine gives up: it sends the stop and reports
    /// [`ReleaseReason::GaveUp`](crate::ReleaseReason::GaveUp). By then the orchestrator has
    /// released the session (it does so on the first debit it cannot cover), so retrying for
    /// ever only spends requests. `None` retries until closed. Default `None`: a lapse is an
    /// estimate, and with payments whose tickets cannot be read the orchestrator may still hold
    /// credit (a large reservation ticket), so the library leaves the decision to the application;
    /// `livepay fund` gives up after 60 s (`--give-up-after`).
    pub give_up_after_lapse: Option<Duration>,
    /// The most one ticket is believed to be worth, in time at the session's price: a 482 proves
    /// the signer's balance covers the time since its last mint, but a genuine signer mints once
    /// that time passes one ticket's value (its balance after a mint is under a ticket), so a 482
    /// stream longer than this proves no more. It catches a signer that answers 482 for ever (an
    /// old livepeer/node bug: 482 when the payer's funds or the chain were unavailable): the
    /// estimate runs out, and `AtRisk` then `Lapsed` are reported. Real tickets are worth from
    /// about a second to a few minutes of price (go-livepeer #4077: about 3 minutes). Default
    /// 300 s.
    pub max_ticket_value: Duration,
    /// The longest the stop request may take (the adapter's own timeout still applies when
    /// shorter), so that a close ends promptly even against a dead server. Default 2 s.
    pub stop_timeout: Duration,
    /// Seed for retry jitter.
    pub seed: u64,
}

impl Config {
    /// The documented defaults for `payment_type`.
    pub const fn new(payment_type: PaymentType) -> Self {
        let server_tick = Duration::from_secs(5);
        let prepay = payment_type.prepay();
        Self {
            payment_type,
            offchain: false,
            interval: Duration::from_secs(3),
            server_tick,
            prepay,
            safety_margin: Duration::from_secs(1),
            first_payment: FirstPayment::OnSchedule,
            backoff: Backoff {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(2),
                jitter_percent: 20,
            },
            max_refreshes_per_cycle: 3,
            budget: Budget {
                max_funded_time: None,
                max_payments: None,
            },
            target_runway: Duration::from_secs(55),
            refill_runway: Duration::from_secs(40),
            check_runway: Duration::from_secs(6),
            max_gap: Duration::from_secs(30),
            max_reposts: 12,
            mint_margin: Duration::from_millis(50),
            min_demand_spacing: Duration::from_millis(500),
            stop_on_rejection: true,
            give_up_after_lapse: None,
            max_ticket_value: Duration::from_secs(300),
            stop_timeout: Duration::from_secs(2),
            seed: 0,
        }
    }

    /// This configuration with every span divided by `divisor`, for a server whose clock runs
    /// `divisor` times faster (the time-scaled model the end-to-end tests and examples run
    /// against: a 500 ms tick and a 1 s prepay for 10). The mint margin is kept: it guards the
    /// signer's whole-second boundaries, which do not scale. A divisor of 0 counts as 1.
    #[must_use]
    pub fn time_scaled(mut self, divisor: u32) -> Self {
        let d = u64::from(divisor.max(1));
        let scale = |span: Duration| Duration::from_ticks(span.as_ticks() / d);
        self.interval = scale(self.interval);
        self.server_tick = scale(self.server_tick);
        self.prepay = scale(self.prepay);
        self.safety_margin = scale(self.safety_margin);
        self.backoff.initial = scale(self.backoff.initial);
        self.backoff.max = scale(self.backoff.max);
        self.target_runway = scale(self.target_runway);
        self.refill_runway = scale(self.refill_runway);
        self.check_runway = scale(self.check_runway);
        self.max_gap = scale(self.max_gap);
        self.min_demand_spacing = scale(self.min_demand_spacing);
        self
    }

    /// A session with nothing to fund (unpriced runner, no signer).
    pub const fn offchain() -> Self {
        let mut config = Self::new(PaymentType::Live);
        config.offchain = true;
        config
    }

    /// Whether this configuration funds anything after the reservation.
    pub const fn is_metered(&self) -> bool {
        !self.offchain && !matches!(self.payment_type, PaymentType::Fixed)
    }

    /// Checks the invariants the machine relies on. Configurations that fund nothing
    /// (offchain, fixed price) skip the timing checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.is_metered() {
            return Ok(());
        }
        let zero = Duration::from_ticks(0);
        for (value, field) in [
            (self.interval, "interval"),
            (self.server_tick, "server_tick"),
            (self.prepay, "prepay"),
            (self.backoff.initial, "backoff.initial"),
            (self.backoff.max, "backoff.max"),
            (self.min_demand_spacing, "min_demand_spacing"),
            (self.stop_timeout, "stop_timeout"),
            (self.max_ticket_value, "max_ticket_value"),
        ] {
            if value == zero {
                return Err(ConfigError::Zero(field));
            }
        }
        if self.backoff.initial > self.backoff.max {
            return Err(ConfigError::BackoffInverted);
        }
        if self.backoff.jitter_percent > 100 {
            return Err(ConfigError::JitterAbove100);
        }
        if self.safety_margin >= self.prepay {
            return Err(ConfigError::MarginNotBelowPrepay);
        }
        // A success must be able to land inside the window after a success.
        let limit = time::minus(self.prepay, self.safety_margin);
        if self.interval >= limit {
            return Err(ConfigError::IntervalNotBelowPrepay { limit });
        }
        if self.mint_margin.as_ticks() * 4 >= embassy_time::TICK_HZ {
            return Err(ConfigError::MintMarginTooLarge);
        }
        if let FirstPayment::Within(span) = self.first_payment
            && span >= time::minus(self.prepay, self.safety_margin)
        {
            return Err(ConfigError::FirstPaymentSpanTooLong);
        }
        if self.refill_runway >= self.target_runway {
            return Err(ConfigError::RefillNotBelowTarget);
        }
        if self.check_runway <= self.safety_margin {
            return Err(ConfigError::CheckNotAboveMargin);
        }
        if self.max_gap < self.interval {
            return Err(ConfigError::MaxGapBelowInterval);
        }
        if self.max_gap > MAX_SIGNER_GAP {
            return Err(ConfigError::MaxGapTooLong);
        }
        if self.budget.max_payments == Some(0) {
            return Err(ConfigError::Zero("budget.max_payments"));
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new(PaymentType::Live)
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The named span or count is zero.
    Zero(&'static str),
    /// `interval` must be shorter than `prepay - safety_margin`, or a single late cycle lapses.
    IntervalNotBelowPrepay {
        /// `prepay - safety_margin`, the bound `interval` must stay under.
        limit: Duration,
    },
    /// `safety_margin` must be shorter than `prepay`.
    MarginNotBelowPrepay,
    /// `backoff.initial` is larger than `backoff.max`.
    BackoffInverted,
    /// `backoff.jitter_percent` is above 100.
    JitterAbove100,
    /// `mint_margin` must stay under a quarter second to leave room either side of a boundary.
    MintMarginTooLarge,
    /// [`FirstPayment::Within`] spans at least `prepay - safety_margin`: the first payment could
    /// land after the runway ends.
    FirstPaymentSpanTooLong,
    /// `refill_runway` must be below `target_runway`.
    RefillNotBelowTarget,
    /// `check_runway` must be above `safety_margin`.
    CheckNotAboveMargin,
    /// `max_gap` must not be below `interval`.
    MaxGapBelowInterval,
    /// `max_gap` must not exceed [`MAX_SIGNER_GAP`]: livepeer/node's signer refuses a longer gap
    /// since the last mint with a 400.
    MaxGapTooLong,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero(field) => write!(f, "config: `{field}` must not be zero"),
            Self::IntervalNotBelowPrepay { limit } => write!(
                f,
                "config: `interval` must be shorter than `prepay - safety_margin` ({} ms here)",
                limit.as_millis()
            ),
            Self::MarginNotBelowPrepay => {
                f.write_str("config: `safety_margin` must be shorter than `prepay`")
            }
            Self::BackoffInverted => f.write_str("config: `backoff.initial` must not exceed `backoff.max`"),
            Self::JitterAbove100 => f.write_str("config: `backoff.jitter_percent` must be 0..=100"),
            Self::MintMarginTooLarge => f.write_str("config: `mint_margin` must be under 250 ms"),
            Self::FirstPaymentSpanTooLong => {
                f.write_str("config: the `first_payment` span must be shorter than `prepay - safety_margin`")
            }
            Self::RefillNotBelowTarget => {
                f.write_str("config: `refill_runway` must be below `target_runway`")
            }
            Self::CheckNotAboveMargin => f.write_str("config: `check_runway` must be above `safety_margin`"),
            Self::MaxGapBelowInterval => f.write_str("config: `max_gap` must not be below `interval`"),
            Self::MaxGapTooLong => {
                f.write_str("config: `max_gap` must not exceed 3600 s (a signer refuses longer gaps)")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values_and_valid() {
        let c = Config::default();
        assert_eq!(c.interval, Duration::from_secs(3));
        assert_eq!(c.server_tick, Duration::from_secs(5));
        assert_eq!(c.prepay, Duration::from_secs(10));
        assert_eq!(c.backoff.initial, Duration::from_millis(250));
        assert_eq!(c.max_refreshes_per_cycle, 3);
        assert_eq!(c.first_payment, FirstPayment::OnSchedule);
        assert_eq!(c.target_runway, Duration::from_secs(55));
        assert_eq!(c.refill_runway, Duration::from_secs(40));
        assert_eq!(c.check_runway, Duration::from_secs(6));
        assert_eq!(c.max_gap, Duration::from_secs(30));
        assert_eq!(c.max_reposts, 12);
        assert_eq!(Config::new(PaymentType::Lv2v).prepay, Duration::from_secs(60));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(Config::new(PaymentType::Lv2v).validate(), Ok(()));
    }

    #[test]
    fn invalid_configs_are_rejected_with_a_typed_error() {
        let base = Config::default();
        let zero = Duration::from_ticks(0);
        let mut c = base;
        c.interval = zero;
        assert_eq!(c.validate(), Err(ConfigError::Zero("interval")));
        let mut c = base;
        c.interval = Duration::from_secs(10);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::IntervalNotBelowPrepay { .. })
        ));
        let mut c = base;
        c.interval = Duration::from_secs(9);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::IntervalNotBelowPrepay { .. })
        ));
        let mut c = base;
        c.server_tick = zero;
        assert_eq!(c.validate(), Err(ConfigError::Zero("server_tick")));
        let mut c = base;
        c.backoff.initial = Duration::from_secs(3);
        assert_eq!(c.validate(), Err(ConfigError::BackoffInverted));
        let mut c = base;
        c.backoff.jitter_percent = 101;
        assert_eq!(c.validate(), Err(ConfigError::JitterAbove100));
        let mut c = base;
        c.safety_margin = Duration::from_secs(10);
        assert_eq!(c.validate(), Err(ConfigError::MarginNotBelowPrepay));
        let mut c = base;
        c.mint_margin = Duration::from_millis(300);
        assert_eq!(c.validate(), Err(ConfigError::MintMarginTooLarge));
        let mut c = base;
        c.max_gap = Duration::from_secs(3_601);
        assert_eq!(c.validate(), Err(ConfigError::MaxGapTooLong));
        c.max_gap = MAX_SIGNER_GAP;
        assert_eq!(c.validate(), Ok(()));
        c.max_gap = Config::default().max_gap;
        c.first_payment = FirstPayment::Within(Duration::from_secs(9));
        assert_eq!(c.validate(), Err(ConfigError::FirstPaymentSpanTooLong));
        c.first_payment = FirstPayment::Within(Duration::from_secs(3));
        assert_eq!(c.validate(), Ok(()));
        let mut c = base;
        c.budget.max_payments = Some(0);
        assert_eq!(c.validate(), Err(ConfigError::Zero("budget.max_payments")));
        let mut c = base;
        c.max_gap = Duration::from_secs(2);
        assert_eq!(c.validate(), Err(ConfigError::MaxGapBelowInterval));
    }

    #[test]
    fn a_time_scaled_config_divides_every_span_and_stays_valid() {
        let c = Config::default().time_scaled(10);
        assert_eq!(c.interval, Duration::from_millis(300));
        assert_eq!(c.server_tick, Duration::from_millis(500));
        assert_eq!(c.prepay, Duration::from_secs(1));
        assert_eq!(c.backoff.initial, Duration::from_millis(25));
        assert_eq!(c.target_runway, Duration::from_millis(5_500));
        assert_eq!(c.mint_margin, Duration::from_millis(50));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(Config::default().time_scaled(0), Config::default());
    }

    #[test]
    fn unmetered_configs_skip_timing_checks() {
        let mut c = Config::offchain();
        c.interval = Duration::from_ticks(0);
        assert_eq!(c.validate(), Ok(()));
        assert!(!Config::new(PaymentType::Fixed).is_metered());
    }
}
