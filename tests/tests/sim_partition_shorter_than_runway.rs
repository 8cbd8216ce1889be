//! A 20 s outage of every endpoint ten minutes in: shorter than livepay's runway, so no session
//! is dropped; retries resume funding as soon as the network does.

use livepay_mock::faults::{FaultPlan, Partition};
use livepay_tests::sim::{both, sim_config};

#[test]
fn an_outage_shorter_than_the_runway_drops_nothing() {
    let mut plan = FaultPlan::clean();
    plan.partitions.push(Partition::Once {
        at_s: 600.0,
        duration_s: 20.0,
    });
    let (ours, _sdk, table) = both(&sim_config(plan, 50, 20));
    assert_eq!(ours.drops, 0, "{table}");
    assert!(ours.payments_failed > 50, "{table}");
    assert!(ours.min_runway_s.unwrap() > 5.0, "{table}");
}
