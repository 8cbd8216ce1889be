//! Small, total helpers over `embassy_time` values.
//!
//! `embassy_time`'s `Instant - Instant` panics when the result would be negative; the machine
//! must never panic on caller input, so every subtraction goes through these helpers.

use embassy_time::{Duration, Instant, TICK_HZ};

/// The span from `earlier` to `later`, or zero when `later` is not after `earlier`.
#[inline]
pub(crate) fn since(later: Instant, earlier: Instant) -> Duration {
    Duration::from_ticks(later.as_ticks().saturating_sub(earlier.as_ticks()))
}

/// `at + span`, saturating at [`Instant::MAX`] instead of overflowing.
#[inline]
pub(crate) fn add(at: Instant, span: Duration) -> Instant {
    Instant::from_ticks(at.as_ticks().saturating_add(span.as_ticks()))
}

/// `at - span`, saturating at [`Instant::MIN`].
#[inline]
pub(crate) fn sub(at: Instant, span: Duration) -> Instant {
    Instant::from_ticks(at.as_ticks().saturating_sub(span.as_ticks()))
}

/// `span` rounded up to whole seconds: what the signer bills for `live` (`docs/protocol.md` §2.2).
#[inline]
pub(crate) fn ceil_secs(span: Duration) -> Duration {
    Duration::from_ticks(span.as_ticks().div_ceil(TICK_HZ).saturating_mul(TICK_HZ))
}

/// `span` rounded down to whole seconds.
#[inline]
pub(crate) fn floor_secs(span: Duration) -> Duration {
    Duration::from_ticks(span.as_ticks() / TICK_HZ * TICK_HZ)
}

/// `a - b`, or zero.
#[inline]
pub(crate) fn minus(a: Duration, b: Duration) -> Duration {
    Duration::from_ticks(a.as_ticks().saturating_sub(b.as_ticks()))
}

/// `span * 2^exp`, saturating.
#[inline]
pub(crate) fn doubled(span: Duration, exp: u32) -> Duration {
    let factor = 1u64.checked_shl(exp.min(63)).unwrap_or(u64::MAX);
    Duration::from_ticks(span.as_ticks().saturating_mul(factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn rounding_to_whole_seconds() {
        assert_eq!(ceil_secs(ms(3_007)), ms(4_000));
        assert_eq!(ceil_secs(ms(3_000)), ms(3_000));
        assert_eq!(ceil_secs(ms(1)), ms(1_000));
        assert_eq!(ceil_secs(ms(0)), ms(0));
        assert_eq!(floor_secs(ms(2_999)), ms(2_000));
        assert_eq!(floor_secs(ms(3_000)), ms(3_000));
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_secs(5);
        assert_eq!(since(Instant::from_secs(1), t), Duration::from_ticks(0));
        assert_eq!(add(Instant::MAX, ms(1)), Instant::MAX);
        assert_eq!(sub(Instant::from_ticks(0), ms(1)), Instant::from_ticks(0));
        assert_eq!(minus(ms(1), ms(2)), ms(0));
        assert_eq!(doubled(ms(250), 3), ms(2_000));
        assert_eq!(doubled(ms(250), 200), Duration::MAX);
    }
}
