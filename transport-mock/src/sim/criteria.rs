//! The cost-and-safety criteria of the project's goal, checked per cell of a [`CellReport`]:
//! measured and reported, never assumed.

use std::fmt;

use serde::Serialize;

use super::cells::{Cell, CellReport};

/// One criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Criterion {
    /// In every cell, livepay's over-payment is at most the SDK's, both over the sessions each
    /// kept funded (a dropped session's credit ran out by definition: failing looks cheap). A
    /// cell where the SDK kept no session is not compared.
    OverpaymentAtMostSdk,
    /// In every cell, livepay drops at most as many sessions as the SDK (so none where the SDK
    /// drops none).
    DropsAtMostSdk,
    /// No livepay drop under 50 % payment 503s for 60 s (`payment-503-*` profiles).
    NoDropsUnderPayment503,
    /// livepay's signer calls per funded session-hour are at most the SDK's on the clean profile,
    /// and at most 1.5× the SDK's under faults (per funded hour: a dropped session calls nobody).
    SignerCallsBounded,
    /// livepay's over-payment is at most 1.05 on the clean profile from 30 min on.
    OverpaymentNearPriceFrom30Min,
    /// livepay's signer calls per session-hour are at most half the SDK's on the clean profile
    /// from 10 min on.
    SignerCallsHalfSdkFrom10Min,
}

impl Criterion {
    /// Every criterion, in report order.
    pub const ALL: [Self; 6] = [
        Self::OverpaymentAtMostSdk,
        Self::DropsAtMostSdk,
        Self::NoDropsUnderPayment503,
        Self::SignerCallsBounded,
        Self::OverpaymentNearPriceFrom30Min,
        Self::SignerCallsHalfSdkFrom10Min,
    ];

    /// What it requires, in words.
    pub const fn description(self) -> &'static str {
        match self {
            Self::OverpaymentAtMostSdk => "over-payment of the sessions kept ≤ the SDK's, every cell",
            Self::DropsAtMostSdk => "drops ≤ the SDK's (zero where the SDK has zero), every cell",
            Self::NoDropsUnderPayment503 => "zero drops under payment-503-*",
            Self::SignerCallsBounded => {
                "signer calls per funded hour ≤ the SDK's on clean, ≤ 1.5× under faults"
            }
            Self::OverpaymentNearPriceFrom30Min => "over-payment ≤ 1.05 on clean from 30 min",
            Self::SignerCallsHalfSdkFrom10Min => {
                "signer calls per session-hour ≤ half the SDK's on clean from 10 min"
            }
        }
    }

    /// Whether the criterion applies to `cell`, and if so the compared values (livepay's, the
    /// bound) and whether livepay is within the bound.
    fn check(self, cell: &Cell) -> Option<(f64, f64, bool)> {
        let (ours, sdk) = (&cell.livepay, &cell.sdk);
        let clean = cell.profile == "clean";
        let within = |value: f64, bound: f64| Some((value, bound, value <= bound));
        match self {
            Self::OverpaymentAtMostSdk => {
                let sdk_kept = sdk.overpayment_kept?;
                within(ours.overpayment_kept.unwrap_or(f64::INFINITY), sdk_kept)
            }
            Self::DropsAtMostSdk => within(f64::from(ours.drops), f64::from(sdk.drops)),
            Self::NoDropsUnderPayment503 => cell
                .profile
                .starts_with("payment-503")
                .then_some(())
                .and_then(|()| within(f64::from(ours.drops), 0.0)),
            Self::SignerCallsBounded => {
                let factor = if clean { 1.0 } else { 1.5 };
                within(
                    ours.signer_calls_per_funded_hour,
                    sdk.signer_calls_per_funded_hour * factor,
                )
            }
            Self::OverpaymentNearPriceFrom30Min => {
                (clean && cell.length_s >= 1_800).then_some(())?;
                within(ours.overpayment, 1.05)
            }
            Self::SignerCallsHalfSdkFrom10Min => {
                (clean && cell.length_s >= 600).then_some(())?;
                within(
                    ours.signer_calls_per_session_hour,
                    sdk.signer_calls_per_session_hour / 2.0,
                )
            }
        }
    }
}

/// A cell that fails a criterion, with the values compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The cell, e.g. `10m clean EV 2.5 s`.
    pub cell: String,
    /// livepay's value.
    pub livepay: f64,
    /// The bound it exceeds (from the SDK's value where the criterion compares with it).
    pub bound: f64,
    /// For a cost comparison: what the SDK's cheaper figure came with (its drops, and the
    /// credit its signer minted that never reached the orchestrator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_context: Option<String>,
}

/// One criterion over a grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriterionResult {
    /// The criterion.
    pub criterion: Criterion,
    /// What it requires.
    pub description: &'static str,
    /// Cells it applies to.
    pub checked: usize,
    /// The cells that fail it.
    pub failing: Vec<Failure>,
}

impl CriterionResult {
    /// Whether every checked cell meets it.
    pub fn passed(&self) -> bool {
        self.failing.is_empty()
    }
}

impl fmt::Display for CriterionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "pass" } else { "FAIL" };
        write!(
            f,
            "{verdict} {}: {} of {} cells fail",
            self.description,
            self.failing.len(),
            self.checked
        )?;
        for failure in &self.failing {
            write!(
                f,
                "\n    {} (livepay {}, bound {})",
                failure.cell,
                round(failure.livepay),
                round(failure.bound)
            )?;
            if let Some(context) = &failure.sdk_context {
                write!(f, "; {context}")?;
            }
        }
        Ok(())
    }
}

fn round(v: f64) -> f64 {
    (v * 1_000.0).round() / 1_000.0
}

/// Checks every [`Criterion`] on every cell of `report` it applies to, and lists the cells that
/// fail each.
pub fn check_criteria(report: &CellReport) -> Vec<CriterionResult> {
    Criterion::ALL
        .iter()
        .map(|&criterion| {
            let mut checked = 0;
            let mut failing = Vec::new();
            for cell in &report.cells {
                if let Some((value, bound, ok)) = criterion.check(cell) {
                    checked += 1;
                    if !ok {
                        let sdk_context = (criterion == Criterion::OverpaymentAtMostSdk).then(|| {
                            format!(
                                "sdk: {} of {} dropped, minted {}× what it delivered",
                                cell.sdk.drops,
                                cell.sdk.sessions,
                                round(
                                    cell.sdk.minted_per_debited / cell.sdk.overpayment.max(f64::MIN_POSITIVE)
                                )
                            )
                        });
                        failing.push(Failure {
                            cell: cell.label(),
                            livepay: round(value),
                            bound: round(bound),
                            sdk_context,
                        });
                    }
                }
            }
            CriterionResult {
                criterion,
                description: criterion.description(),
                checked,
                failing,
            }
        })
        .collect()
}
