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

/// When the first payment after `start` goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPayment {
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
    /// When the first payment after `start` goes out. Default [`FirstPayment::Immediately`].
    pub first_payment: FirstPayment,
    /// Retry policy for transient failures.
    pub backoff: Backoff,
    /// Most `480 → refresh → pay` rounds in one cycle. Default 3.
    pub max_refreshes_per_cycle: u8,
    /// Optional spending limits.
    pub budget: Budget,
    /// Runway (estimated time until credit runs out, measured right after a success) at or above
    /// which the machine economises by landing mints just under a whole second apart; below it, it
    /// lets the signer's rounding build buffer. Default 60 s (or prepay + one server tick if
    /// larger): enough to ride out a 30 s outage or several back-to-back 5 s request timeouts.
    /// Building it costs about 50 s of service once per session; the simulation's policy
    /// comparison shows why the 15 s a prepay-plus-tick target gives is too thin.
    pub target_runway: Duration,
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
            first_payment: FirstPayment::Immediately,
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
            target_runway: {
                let floor = prepay.as_ticks() + server_tick.as_ticks();
                let default = Duration::from_secs(60).as_ticks();
                Duration::from_ticks(if floor > default { floor } else { default })
            },
            mint_margin: Duration::from_millis(50),
            min_demand_spacing: Duration::from_millis(500),
            stop_on_rejection: true,
            seed: 0,
        }
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
        if self.interval >= time::minus(self.prepay, self.safety_margin) {
            return Err(ConfigError::IntervalNotBelowPrepay);
        }
        if self.mint_margin.as_ticks() * 4 >= embassy_time::TICK_HZ {
            return Err(ConfigError::MintMarginTooLarge);
        }
        if let FirstPayment::Within(span) = self.first_payment
            && span >= time::minus(self.prepay, self.safety_margin)
        {
            return Err(ConfigError::FirstPaymentSpanTooLong);
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
    IntervalNotBelowPrepay,
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
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero(field) => write!(f, "config: `{field}` must not be zero"),
            Self::IntervalNotBelowPrepay => {
                f.write_str("config: `interval` must be shorter than `prepay - safety_margin`")
            }
            Self::MarginNotBelowPrepay => {
                f.write_str("config: `safety_margin` must be shorter than `prepay`")
            }
            Self::BackoffInverted => f.write_str("config: `backoff.initial` must not exceed `backoff.max`"),
            Self::JitterAbove100 => f.write_str("config: `backoff.jitter_percent` must be 0..=100"),
            Self::MintMarginTooLarge => f.write_str("config: `mint_margin` must be under 250 ms"),
            Self::FirstPaymentSpanTooLong => {
                f.write_str("config: the `first_payment` span must be shorter than `prepay - safety_margin`")
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
        assert_eq!(c.first_payment, FirstPayment::Immediately);
        assert_eq!(c.target_runway, Duration::from_secs(60));
        assert_eq!(
            Config::new(PaymentType::Lv2v).target_runway,
            Duration::from_secs(65)
        );
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
        assert_eq!(c.validate(), Err(ConfigError::IntervalNotBelowPrepay));
        let mut c = base;
        c.interval = Duration::from_secs(9);
        assert_eq!(c.validate(), Err(ConfigError::IntervalNotBelowPrepay));
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
        c.first_payment = FirstPayment::Within(Duration::from_secs(9));
        assert_eq!(c.validate(), Err(ConfigError::FirstPaymentSpanTooLong));
        c.first_payment = FirstPayment::Within(Duration::from_secs(3));
        assert_eq!(c.validate(), Ok(()));
        let mut c = base;
        c.budget.max_payments = Some(0);
        assert_eq!(c.validate(), Err(ConfigError::Zero("budget.max_payments")));
    }

    #[test]
    fn unmetered_configs_skip_timing_checks() {
        let mut c = Config::offchain();
        c.interval = Duration::from_ticks(0);
        assert_eq!(c.validate(), Ok(()));
        assert!(!Config::new(PaymentType::Fixed).is_metered());
    }
}
