//! A 3-minute outage: longer than any runway, so the orchestrator releases every session. livepay
//! raises `Lapsed` no later than each release and confirms it (404, reason Gone) once the network
//! is back; nothing is minted for a dead session after that.

use livepay_mock::faults::{FaultPlan, Partition};
use livepay_tests::sim::{both, sim_config};

#[test]
fn an_outage_longer_than_the_runway_lapses_then_releases_with_reason() {
    let mut plan = FaultPlan::clean();
    plan.partitions.push(Partition::Once {
        at_s: 120.0,
        duration_s: 180.0,
    });
    let (ours, sdk, table) = both(&sim_config(plan, 20, 10));
    assert_eq!(ours.drops, 20, "{table}");
    assert_eq!(ours.warned_before_release, 20, "{table}");
    assert_eq!(ours.unnoticed, 0, "{table}");
    // The release is confirmed by the first payment after the outage: at most one minted.
    assert!(ours.minted_after_release <= 20, "{table}");
    // The baseline is never warned.
    assert_eq!(sdk.warned_before_release, 0, "{table}");
}
