//! A budget of 10 minutes of funded time in a 30-minute run: livepay stops buying, uses what it
//! bought, then stops the session itself. That is not a drop, and it pays for about a third of
//! what the unbudgeted run pays for.

use livepay_core::Duration;
use livepay_mock::faults::FaultPlan;
use livepay_mock::sim::{PolicyKind, simulate};
use livepay_tests::sim::sim_config;

#[test]
fn an_exhausted_budget_ends_the_session_cleanly() {
    let mut config = sim_config(FaultPlan::clean(), 10, 30);
    config.client.budget.max_funded_time = Some(Duration::from_secs(600));
    let report = simulate(&config, PolicyKind::Livepay).expect("a valid config");
    assert_eq!(report.drops, 0, "{report:?}");
    // About a third of the payments of the same sessions without a budget, whatever the cadence.
    let mut unbudgeted = config;
    unbudgeted.client.budget.max_funded_time = None;
    let full = simulate(&unbudgeted, PolicyKind::Livepay).expect("a valid config");
    let share = report.payments_accepted as f64 / full.payments_accepted as f64;
    assert!((0.15..0.6).contains(&share), "{share}: {report:?} vs {full:?}");
}
