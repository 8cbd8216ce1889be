//! The client process is suspended while the orchestrator keeps ticking: a 20 s pause is
//! absorbed by the runway; a 2-minute pause is not, and the release is confirmed right after
//! the client resumes.

use livepay_mock::faults::{ClientSuspend, FaultPlan};
use livepay_tests::sim::{both, sim_config};

fn suspended(duration_s: f64) -> FaultPlan {
    let mut plan = FaultPlan::clean();
    plan.client_suspends.push(ClientSuspend {
        at_s: 600.0,
        duration_s,
    });
    plan
}

#[test]
fn a_short_suspend_is_absorbed() {
    let (ours, _, table) = both(&sim_config(suspended(20.0), 30, 20));
    assert_eq!(ours.drops, 0, "{table}");
}

#[test]
fn a_long_suspend_is_noticed_at_resume() {
    let (ours, sdk, table) = both(&sim_config(suspended(120.0), 30, 20));
    assert_eq!(ours.drops, 30, "{table}");
    assert_eq!(sdk.drops, 30, "{table}");
    assert_eq!(ours.unnoticed, 0, "{table}");
    // Released during the pause (after ~60 s of runway), confirmed within seconds of resuming.
    assert!(ours.notice_max_s.unwrap() < 70.0, "{table}");
}
