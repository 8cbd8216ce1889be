//! The tokio clock, as the core's [`Clock`](livepay_core::Clock).

use livepay_core::{Clock, Instant};

/// Tokio's monotonic clock, mapped to `livepay_core::Instant` from an epoch. Using tokio's clock
/// (rather than `std`'s) lets tests pause and advance time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self {
            epoch: tokio::time::Instant::now(),
        }
    }

    /// A clock whose zero is `epoch`.
    pub fn with_epoch(epoch: tokio::time::Instant) -> Self {
        Self { epoch }
    }

    /// The tokio instant of `at`.
    pub fn to_tokio(&self, at: Instant) -> tokio::time::Instant {
        self.epoch + std::time::Duration::from_micros(at.as_micros())
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        let elapsed = self.epoch.elapsed();
        Instant::from_micros(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.to_tokio(deadline)).await;
    }
}
