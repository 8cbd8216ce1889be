//! A signer whose tickets are worth 30 s of service answers 482 most cycles: funding goes on,
//! nothing is dropped, and the skipped cycles are counted.

use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

#[test]
fn a_482_stream_is_healthy() {
    let mut config = sim_config(FaultPlan::clean(), 20, 60);
    config.model.ticket_ev_wei = 30 * config.model.price_wei;
    let (ours, sdk, table) = both(&config);
    assert_eq!(ours.drops + sdk.drops, 0, "{table}");
    assert!(ours.payments_skipped > ours.payments_accepted, "{table}");
    assert!(sdk.payments_skipped > sdk.payments_accepted, "{table}");
}
