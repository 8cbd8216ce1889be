//! The ticket EV is a dimension of the simulation: tickets worth more than a second of price
//! leave residuals on the signer's books and bring 482s, and a short session pays for whatever a
//! ticket rounds its credit up to. Over-payment is what the orchestrator received ÷ debited.

use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

#[test]
fn tickets_worth_a_second_never_skip_and_bigger_ones_do() {
    let (ours, sdk, table) = both(&sim_config(FaultPlan::clean(), 10, 10));
    assert_eq!(ours.payments_skipped + sdk.payments_skipped, 0, "{table}");
    for ev in [10.0, 60.0] {
        let config = sim_config(FaultPlan::clean(), 10, 10).with_ev_seconds(ev);
        assert_eq!(config.ev_seconds(), ev);
        let (ours, sdk, table) = both(&config);
        assert_eq!(table.ev_seconds, ev);
        assert!(sdk.payments_skipped > 0, "EV {ev} s: {table}");
        assert!(
            ours.payments_skipped + sdk.payments_skipped > 0,
            "EV {ev} s: {table}"
        );
        assert_eq!(ours.drops + sdk.drops, 0, "EV {ev} s: {table}");
    }
}

#[test]
fn a_one_minute_session_with_three_minute_tickets_pays_for_three_minutes() {
    // The reservation's single ticket already buys 180 s; one minute is debited.
    let config = sim_config(FaultPlan::clean(), 10, 1).with_ev_seconds(180.0);
    let (ours, sdk, table) = both(&config);
    for p in [&ours, &sdk] {
        assert!(p.overpayment >= 2.9, "{table}");
        assert_eq!(p.overpayment, p.minted_per_debited, "nothing lost: {table}");
        assert_eq!(p.drops, 0, "{table}");
    }
}
