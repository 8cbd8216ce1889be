//! The new fault profiles: 50 % payment 503s for 60 s from the session start or mid-run, every
//! payment POST failing, the signer down for 20 s mid-run. What the report says of each: the
//! baseline loses sessions to the first and all to the third; every release is counted as a
//! drop, with the warnings that came before it.

use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

fn profile(name: &str, sessions: u32, minutes: u64) -> livepay_mock::sim::SimConfig {
    sim_config(FaultPlan::profile(name).unwrap(), sessions, minutes).with_ev_seconds(2.5)
}

#[test]
fn the_sdk_loses_sessions_to_60_s_of_50_percent_payment_503s() {
    // The finding, reproduced: with a ticket worth 2.5 s, most SDK sessions die.
    let (_, sdk, table) = both(&profile("payment-503-start", 30, 3));
    assert!(sdk.drops >= 15, "{table}");
    assert!(sdk.payments_failed > 0, "{table}");
    let (_, sdk_mid, table) = both(&profile("payment-503-mid", 30, 10));
    assert!(sdk_mid.payments_failed > 0, "{table}");
}

#[test]
fn every_payment_failing_drops_every_session_and_the_report_says_how_it_was_warned() {
    let (ours, sdk, table) = both(&profile("payment-down", 10, 3));
    assert_eq!((ours.drops, sdk.drops), (10, 10), "{table}");
    // Only the reservation was ever credited.
    assert!(
        ours.payments_accepted == 0 && sdk.payments_accepted == 0,
        "{table}"
    );
    assert!(ours.minted_per_debited > ours.overpayment, "{table}");
    // The baseline never warns; livepay's warnings, and their lead on the release, are reported.
    assert_eq!(
        (sdk.at_risk_before_release, sdk.warned_before_release),
        (0, 0),
        "{table}"
    );
    assert_eq!(
        ours.warned_before_release > 0,
        ours.lapse_lead_min_s.is_some(),
        "{table}"
    );
    assert!(ours.lapse_lead_min_s.is_none_or(|lead| lead >= 0.0), "{table}");
}

#[test]
fn the_signer_down_for_20_s_fails_signer_calls_only_in_the_middle() {
    let (ours, sdk, table) = both(&profile("signer-down-20s", 20, 10));
    assert!(sdk.payments_failed >= 20 * 5, "{table}");
    assert!(ours.payments_failed > 0, "{table}");
    // The orchestrator was never faulted: no replays were needed.
    assert_eq!(ours.replays, 0, "{table}");
}
