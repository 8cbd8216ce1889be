//! Payment params that expire every 2 minutes: each expiry is a 480, a refresh and a payment in
//! the same cycle, and nothing is dropped.

use livepay_core::Duration;
use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

#[test]
fn a_480_every_two_minutes_refreshes_and_pays() {
    let mut config = sim_config(FaultPlan::clean(), 20, 60);
    config.model.param_lifetime = Duration::from_secs(120);
    let (ours, sdk, table) = both(&config);
    assert_eq!(ours.drops + sdk.drops, 0, "{table}");
    // At most 30 expiries an hour per session; fewer when a refresh waits for the next payment
    // due (each refresh restarts the params' 2 minutes).
    for p in [&ours, &sdk] {
        let per_session = p.refreshes as f64 / 20.0;
        assert!((20.0..=30.0).contains(&per_session), "{table}");
    }
    assert_eq!(ours.payments_failed, 0, "{table}");
}
