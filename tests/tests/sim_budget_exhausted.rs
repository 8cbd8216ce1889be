//! A budget of 10 minutes of funded time in a 30-minute run: livepay stops buying, uses what it
//! bought, then stops the session itself. That is not a drop.

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
    // Roughly 10 minutes of 3 s cycles per session, not 30.
    let per_session = report.payments_accepted / 10;
    assert!((150..260).contains(&per_session), "{per_session}");
}
