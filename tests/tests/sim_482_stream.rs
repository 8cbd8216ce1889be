//! A signer whose tickets are worth 30 s of service answers 482 to most calls made on a fixed
//! cadence. livepay reads the tickets it delivers, so it knows when the signer will mint and
//! calls only then; with payments it cannot read, it meets the 482 stream like the SDK does. Either
//! way funding goes on and nothing is dropped.

use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

#[test]
fn a_482_stream_is_healthy() {
    let mut config = sim_config(FaultPlan::clean(), 20, 60);
    config.model.ticket_ev_wei = 30 * config.model.price_wei;
    let (ours, sdk, table) = both(&config);
    assert_eq!(ours.drops + sdk.drops, 0, "{table}");
    assert!(sdk.payments_skipped > sdk.payments_accepted, "{table}");
    // Valued credit: the signer's next mint is predicted, so nearly no call meets a 482.
    assert!(ours.payments_skipped * 20 < ours.payments_accepted, "{table}");
    assert!(ours.signer_calls * 5 < sdk.signer_calls, "{table}");

    config.read_tickets = false;
    let (opaque, _, table) = both(&config);
    assert_eq!(opaque.drops, 0, "{table}");
    assert!(opaque.payments_skipped > opaque.payments_accepted, "{table}");
}
