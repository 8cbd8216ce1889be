//! Helpers for simulation scenarios: a configuration builder and a one-line summary for
//! assertion messages.

use livepay_core::Duration;
use livepay_mock::faults::FaultPlan;
use livepay_mock::sim::{Comparison, PolicyKind, PolicyReport, SimConfig, compare};

/// `sessions` sessions for `minutes` minutes under `plan`, seed 7.
pub fn sim_config(plan: FaultPlan, sessions: u32, minutes: u64) -> SimConfig {
    SimConfig {
        sessions,
        duration: Duration::from_secs(minutes * 60),
        seed: 7,
        plan,
        ..SimConfig::default()
    }
}

/// Runs livepay and the livepeer-gateway 1.0.0 baseline under `config`; returns both reports
/// (livepay first) and the comparison for messages.
///
/// # Panics
///
/// When `config` cannot be simulated ([`SimConfig::validate`]), naming the problem.
pub fn both(config: &SimConfig) -> (PolicyReport, PolicyReport, Comparison) {
    let comparison = compare(config, &[PolicyKind::Livepay, PolicyKind::Sdk10])
        .unwrap_or_else(|e| panic!("livepay-tests: {e}"));
    let ours = comparison.policies[0].clone();
    let sdk = comparison.policies[1].clone();
    (ours, sdk, comparison)
}
