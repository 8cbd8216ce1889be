//! Replays of a minted payment as the orchestrator sees them: a payment whose first POST was
//! answered 503 was never processed, so its replay is its first arrival and is credited; a
//! payment whose answer was lost was credited, so its replay is refused ("already seen") and
//! credits nothing. Nothing is ever credited twice: the credit received never exceeds the mints.

use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

#[test]
fn a_replay_after_a_503_is_credited_once() {
    let config = sim_config(FaultPlan::profile("payment-503-start").unwrap(), 20, 5).with_ev_seconds(2.5);
    let (ours, sdk, table) = both(&config);
    assert!(ours.replays > 0, "{table}");
    assert!(ours.replays_credited > 0, "{table}");
    assert_eq!(ours.replays_refused, 0, "a 503 was never processed: {table}");
    assert!(ours.overpayment <= ours.minted_per_debited, "{table}");
    // The baseline never replays; its failed POSTs are lost mints.
    assert_eq!(sdk.replays, 0, "{table}");
    assert!(sdk.minted_per_debited > sdk.overpayment, "{table}");
}

#[test]
fn a_replay_after_a_lost_answer_is_refused_and_credits_nothing() {
    let mut plan = FaultPlan::clean();
    plan.name = "lost-answers".into();
    plan.payment.lost_answer = 0.1;
    let config = sim_config(plan, 20, 20).with_ev_seconds(2.5);
    let (ours, sdk, table) = both(&config);
    assert!(ours.lost_answers > 100 && sdk.lost_answers > 100, "{table}");
    assert!(ours.replays > 0, "{table}");
    assert_eq!(ours.replays_credited, 0, "{table}");
    assert_eq!(ours.replays_refused, ours.replays, "{table}");
    // Every mint was processed: the credit received is exactly what was minted.
    assert_eq!(ours.overpayment, ours.minted_per_debited, "{table}");
    assert_eq!(sdk.overpayment, sdk.minted_per_debited, "{table}");
    // A fresh signer ledger only ever starts on fresh params.
    assert_eq!(ours.reissued_nonces, 0, "{table}");
}
