//! A signer 482 means the balance is current: the cycle is skipped (state `Skipped`), nothing is
//! POSTed to the orchestrator, and funding goes on.

use livepay_core::{Endpoint, Event, Reply, State};
use livepay_tests::{Commands, DEFAULT_LATENCY, Script, TransportCall, drive, secs};

#[test]
fn a_482_stream_skips_cycles_without_a_payment_post_and_funding_continues() {
    // Cycle 1 mints; cycles 2, 3 and 4 are skipped; every later cycle mints again.
    let script = Script::new().then(Endpoint::Signer, Reply::Status(200)).repeat(
        Endpoint::Signer,
        3,
        Reply::Status(482),
    );
    let report = drive(livepay_tests::live_config(), script, Commands::new(), secs(30));
    report.assert_exit(None);

    let requests = report.pay_requests();
    assert!(requests.len() >= 8, "{}", report.timeline());
    let cycles: Vec<u32> = requests.iter().map(|&(_, c)| c).collect();
    assert_eq!(
        cycles[..6],
        [1, 2, 3, 4, 5, 6],
        "a skip is not retried: the next cycle comes"
    );

    // A payment POST follows every mint and none of the skips.
    let sends = report.times_of(TransportCall::SendPayment);
    // (The last request may still be in flight when the run ends.)
    for &(at, cycle) in requests
        .iter()
        .filter(|&&(at, _)| at + DEFAULT_LATENCY < report.end)
    {
        let posted = sends.contains(&(at + DEFAULT_LATENCY));
        assert_eq!(
            posted,
            !(2..=4).contains(&cycle),
            "cycle {cycle}:\n{}",
            report.timeline()
        );
    }
    let answered = requests
        .iter()
        .filter(|&&(at, _)| at + DEFAULT_LATENCY < report.end)
        .count();
    assert_eq!(sends.len(), answered - 3);

    // Each skip is reported when the 482 arrives; the state says so until the next mint pays.
    let skipped = report.events_where(|e| matches!(e, Event::CycleSkipped { .. }));
    let expected: Vec<_> = requests[1..4]
        .iter()
        .map(|&(at, cycle)| (at + DEFAULT_LATENCY, Event::CycleSkipped { cycle }))
        .collect();
    assert_eq!(skipped, expected);
    let changes = report.events_where(|e| matches!(e, Event::StateChanged { .. }));
    let paid_5 = report
        .first_event(|e| matches!(e, Event::PaymentAccepted { cycle: 5, .. }))
        .expect("cycle 5 paid")
        .0;
    assert_eq!(
        changes,
        [
            (
                requests[0].0,
                Event::StateChanged {
                    from: State::Reserved,
                    to: State::Funding
                }
            ),
            (
                requests[1].0 + DEFAULT_LATENCY,
                Event::StateChanged {
                    from: State::Funding,
                    to: State::Skipped
                }
            ),
            (
                paid_5,
                Event::StateChanged {
                    from: State::Skipped,
                    to: State::Funding
                }
            ),
        ]
    );

    // Being paid up is not a failure, nor a risk.
    report.assert_no_event("failure or risk", |e| {
        matches!(
            e,
            Event::PaymentFailed { .. } | Event::AtRisk { .. } | Event::Lapsed { .. }
        )
    });
    assert_eq!(report.stats.cycles_skipped, 3);
    assert_eq!(report.state, State::Funding);
}
