//! Six hours of 50 clean sessions: no drops for either policy; livepay pays within 3 % of the
//! price (the one-off buffer included) where the baseline, paying every 3 s, pays about a third
//! more.

use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

#[test]
fn hours_of_clean_funding_drop_nothing_and_livepay_pays_near_the_price() {
    let (ours, sdk, table) = both(&sim_config(FaultPlan::clean(), 50, 6 * 60));
    assert_eq!(ours.drops, 0, "{table}");
    assert_eq!(sdk.drops, 0, "{table}");
    assert!(ours.overpayment < 1.03, "{table}");
    assert!((1.30..1.36).contains(&sdk.overpayment), "{table}");
    assert_eq!(ours.payments_failed, 0, "{table}");
    assert!(ours.min_runway_s.unwrap() > 5.0, "{table}");
    // The baseline pays about every 3 s; every payment is a signer call, and the per-hour figure
    // is the count over the session-hours.
    let per_session_hour = sdk.payments_accepted as f64 / sdk.session_hours;
    assert!((1_150.0..1_250.0).contains(&per_session_hour), "{table}");
    for p in [&ours, &sdk] {
        assert!(p.signer_calls >= p.payments_accepted, "{table}");
        let rate = p.signer_calls as f64 / p.session_hours;
        assert!((p.signer_calls_per_session_hour - rate).abs() < 0.01, "{table}");
    }
}
