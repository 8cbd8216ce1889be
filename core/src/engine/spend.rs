//! What a session has cost ([`Pricing::spend`]): the wei it spent, from its payments when
//! they can be read ([`Engine::spend_wei`](super::Engine::spend_wei)), else the time it bought
//! (the prepay and every delivered bill) at the runner's price per second as discovery states
//! it; in US dollars at discovery's USD price, else at a given ETH rate. One reading for every
//! front end (the CLI's summaries, the daemon's API, events and metrics).

use embassy_time::Duration;
use serde::{Deserialize, Serialize};

use super::DiscoveredRunner;
use crate::tickets::UnitPrice;

/// A runner's price per second of service, as far as it is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerPrice {
    /// Wei per second.
    pub wei_per_s: Option<WeiPerSecond>,
    /// US dollars per second.
    pub usd_per_s: Option<f64>,
}

/// Wei per second: exact when it is a whole number, else as close as an `f64` gets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum WeiPerSecond {
    /// A whole number of wei.
    Whole(u64),
    /// A fraction (or more than `u64`), as an `f64`.
    Fraction(f64),
}

impl WeiPerSecond {
    /// The wei `span` costs (rounded down).
    pub fn wei_for(self, span: Duration) -> u128 {
        match self {
            Self::Whole(per_unit) => UnitPrice {
                per_unit,
                pixels_per_unit: 1,
            }
            .wei_for(span),
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            Self::Fraction(per_s) => (per_s * span.as_micros() as f64 / 1e6) as u128,
        }
    }
}

impl RunnerPrice {
    /// A price of `wei` per second (none for zero).
    pub fn wei_per_second(wei: u128) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let per_s = match u64::try_from(wei) {
            Ok(0) => None,
            Ok(whole) => Some(WeiPerSecond::Whole(whole)),
            Err(_) => Some(WeiPerSecond::Fraction(wei as f64)),
        };
        Self {
            wei_per_s: per_s,
            usd_per_s: None,
        }
    }

    /// What discovery says `runner` costs per second: its wei price when it is in wei per
    /// second, its USD price when that price is per second. Nothing for another unit.
    pub fn discovered(runner: &DiscoveredRunner) -> Self {
        let Some(price) = runner.price.as_ref() else {
            return Self::default();
        };
        if !matches!(price.unit.as_str(), "" | "second" | "seconds") {
            return Self::default();
        }
        let wei_per_s = if matches!(price.currency.as_str(), "" | "wei" | "WEI") {
            match price.price.parse::<u64>() {
                Ok(0) => None,
                Ok(whole) => Some(WeiPerSecond::Whole(whole)),
                Err(_) => price
                    .price
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && *p > 0.0)
                    .map(WeiPerSecond::Fraction),
            }
        } else {
            None
        };
        let usd_per_s = runner
            .price_usd
            .as_deref()
            .and_then(|p| p.parse::<f64>().ok())
            .filter(|p| p.is_finite() && *p >= 0.0);
        Self { wei_per_s, usd_per_s }
    }
}

/// How a session's spend is priced.
#[derive(Debug, Clone, Copy)]
pub struct Pricing {
    /// The runner's price per second (the fallback when the payments cannot be read).
    pub runner: RunnerPrice,
    /// `--eth-usd`.
    pub eth_usd: Option<f64>,
    /// The reservation's prepay ([`Config::prepay`](crate::Config::prepay)).
    pub prepay: Duration,
}

/// Where a spend in wei comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendSource {
    /// The session price its payments state ([`Engine::spend_wei`](super::Engine::spend_wei)).
    Payments,
    /// The runner's price per second (discovery's, or the demo model's).
    RunnerPrice,
}

/// What a session has cost: service time bought, wei, US dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    /// The reservation's prepay (metered sessions only).
    pub prepay: Duration,
    /// Service time billed since ([`Stats::billed`](crate::Stats::billed)).
    pub billed: Duration,
    /// Wei, when a price is known.
    pub wei: Option<u128>,
    /// US dollars, when a USD price or an ETH rate is known.
    pub usd: Option<f64>,
    /// Where `wei` comes from.
    pub source: Option<SpendSource>,
}

impl Pricing {
    /// The spend of a session whose engine reports `engine_wei`
    /// ([`Engine::spend_wei`](super::Engine::spend_wei)) after billing `billed`: the engine's figure
    /// when it has one, else the time bought (the prepay of a `metered` session and `billed`)
    /// at the runner's price. In US dollars at the runner's USD price per second, else at
    /// `--eth-usd`, else unknown.
    pub fn spend(&self, engine_wei: Option<u128>, billed: Duration, metered: bool) -> Spend {
        let prepay = if metered {
            self.prepay
        } else {
            Duration::from_ticks(0)
        };
        let bought = prepay.checked_add(billed).unwrap_or(Duration::MAX);
        let (wei, source) = match (engine_wei, self.runner.wei_per_s) {
            (Some(wei), _) => (Some(wei), Some(SpendSource::Payments)),
            (None, Some(per_s)) => (Some(per_s.wei_for(bought)), Some(SpendSource::RunnerPrice)),
            (None, None) => (None, None),
        };
        #[allow(clippy::cast_precision_loss)]
        let usd = match (self.runner.usd_per_s, wei, self.eth_usd) {
            (Some(per_s), _, _) => Some(per_s * bought.as_micros() as f64 / 1e6),
            (None, Some(wei), Some(rate)) => Some(wei as f64 / 1e18 * rate),
            _ => None,
        };
        Spend {
            prepay,
            billed,
            wei,
            usd,
            source,
        }
    }
}

impl Spend {
    /// The service time bought: the prepay and what was billed since.
    pub fn bought(&self) -> Duration {
        self.prepay.checked_add(self.billed).unwrap_or(Duration::MAX)
    }

    /// `self` and `other` added up (a total over sessions): an amount unknown for either is
    /// unknown for both.
    pub fn plus(self, other: Self) -> Self {
        Self {
            prepay: self.prepay.checked_add(other.prepay).unwrap_or(Duration::MAX),
            billed: self.billed.checked_add(other.billed).unwrap_or(Duration::MAX),
            wei: self.wei.zip(other.wei).map(|(a, b)| a.saturating_add(b)),
            usd: self.usd.zip(other.usd).map(|(a, b)| a + b),
            source: if self.source == other.source {
                self.source
            } else {
                None
            },
        }
    }

    /// How much more `self` is than `earlier`, in wei and in US dollars (zero for what is
    /// unknown, or did not grow): what the spend counters are fed.
    pub fn growth_since(&self, earlier: &Self) -> (u128, f64) {
        let wei = self.wei.unwrap_or(0).saturating_sub(earlier.wei.unwrap_or(0));
        let usd = (self.usd.unwrap_or(0.0) - earlier.usd.unwrap_or(0.0)).max(0.0);
        (wei, usd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DiscoveredPrice;

    fn runner(price: &str, unit: &str, usd: Option<&str>) -> DiscoveredRunner {
        DiscoveredRunner {
            orchestrator: "http://o".into(),
            url: "http://o/apps/r/session".into(),
            runner_id: "r".into(),
            app: None,
            mode: None,
            capacity: None,
            capacity_available: None,
            price: Some(DiscoveredPrice {
                price: price.into(),
                currency: "wei".into(),
                unit: unit.into(),
            }),
            price_usd: usd.map(Into::into),
        }
    }

    #[test]
    fn discovered_prices_per_second_only() {
        let p = RunnerPrice::discovered(&runner("1000000000", "seconds", Some("0.000002")));
        assert_eq!(p.wei_per_s, Some(WeiPerSecond::Whole(1_000_000_000)));
        assert_eq!(p.usd_per_s, Some(0.000_002));
        assert_eq!(
            RunnerPrice::discovered(&runner("2.5", "seconds", None)).wei_per_s,
            Some(WeiPerSecond::Fraction(2.5))
        );
        assert_eq!(
            RunnerPrice::discovered(&runner("0.001", "720p-pixel-seconds", Some("1"))),
            RunnerPrice::default()
        );
        assert_eq!(
            RunnerPrice::discovered(&runner("0", "seconds", None)).wei_per_s,
            None
        );
    }

    #[test]
    fn spend_prefers_the_payments_then_the_runner_price() {
        let pricing = Pricing {
            runner: RunnerPrice::wei_per_second(1_000_000_000),
            eth_usd: Some(2000.0),
            prepay: Duration::from_secs(10),
        };
        let billed = Duration::from_millis(2_500);
        let fallback = pricing.spend(None, billed, true);
        assert_eq!(fallback.wei, Some(12_500_000_000));
        assert_eq!(fallback.source, Some(SpendSource::RunnerPrice));
        let usd = fallback.usd.expect("usd at --eth-usd");
        assert!((usd - 12.5e9 / 1e18 * 2000.0).abs() < 1e-15, "{usd}");
        let read = pricing.spend(Some(7), billed, true);
        assert_eq!((read.wei, read.source), (Some(7), Some(SpendSource::Payments)));
        // Not metered: no prepay.
        assert_eq!(pricing.spend(None, billed, false).wei, Some(2_500_000_000));
        // A USD price per second wins over --eth-usd.
        let usd_priced = Pricing {
            runner: RunnerPrice {
                usd_per_s: Some(0.01),
                ..pricing.runner
            },
            ..pricing
        };
        let usd = usd_priced.spend(None, billed, true).usd.expect("usd");
        assert!((usd - 0.125).abs() < 1e-12, "{usd}");
        let unknown = Pricing {
            runner: RunnerPrice::default(),
            eth_usd: None,
            ..pricing
        }
        .spend(None, billed, true);
        assert_eq!((unknown.wei, unknown.usd, unknown.source), (None, None, None));
    }

    #[test]
    fn growth_and_totals() {
        let a = Spend {
            wei: Some(10),
            usd: Some(1.0),
            ..Spend::default()
        };
        let b = Spend {
            wei: Some(25),
            usd: Some(1.5),
            ..Spend::default()
        };
        assert_eq!(b.growth_since(&a), (15, 0.5));
        assert_eq!(a.growth_since(&b), (0, 0.0));
        assert_eq!(b.growth_since(&Spend::default()), (25, 1.5));
        assert_eq!(a.plus(b).wei, Some(35));
        assert_eq!(a.plus(Spend::default()).wei, None);
    }
}
