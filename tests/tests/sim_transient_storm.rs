//! A storm of transient failures (20 % 5xx on the signer and the payment endpoint, 2 %
//! timeouts) for an hour: livepay retries inside the runway and keeps all but the rare session
//! caught before it has built any buffer; the baseline loses nearly all of them. (Each failed
//! POST loses a mint the signer already billed, so past ~25 % failures no rounding surplus keeps
//! up for either policy.)

use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

#[test]
fn a_transient_storm_drops_nothing() {
    let mut plan = FaultPlan::profile("flaky").unwrap();
    plan.name = "storm".into();
    plan.signer.error_5xx = 0.2;
    plan.payment.error_5xx = 0.2;
    let (ours, sdk, table) = both(&sim_config(plan, 50, 60));
    assert!(ours.drops <= 1, "{table}");
    assert!(sdk.drops >= 40, "{table}");
    assert!(ours.payments_failed > 1_000, "{table}");
}
