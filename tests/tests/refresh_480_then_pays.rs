//! A signer 480 (stale payment params) triggers a refresh, after which the same cycle asks the
//! signer again and pays.

use livepay_core::{Duration, Endpoint, Event, Reply};
use livepay_tests::{Commands, START, Script, TransportCall, at_ms, drive, secs};

#[test]
fn a_480_is_followed_by_a_refresh_then_the_same_cycle_pays() {
    let script = Script::new().then(Endpoint::Signer, Reply::Status(480));
    let report = drive(livepay_tests::live_config(), script, Commands::new(), secs(1));
    report.assert_exit(None);

    assert_eq!(
        report.calls,
        [
            (START, TransportCall::RequestPayment { cycle: 1 }),
            (at_ms(20), TransportCall::Refresh),
            (at_ms(40), TransportCall::RequestPayment { cycle: 1 }),
            (at_ms(60), TransportCall::SendPayment),
        ],
        "{}",
        report.timeline()
    );
    let interesting = report.events_where(|e| !matches!(e, Event::StateChanged { .. }));
    assert_eq!(
        interesting,
        [
            (at_ms(20), Event::RefreshRequired { attempt: 1 }),
            (at_ms(40), Event::Refreshed { attempt: 1 }),
            (
                at_ms(80),
                Event::PaymentAccepted {
                    cycle: 1,
                    latency: Duration::from_millis(40)
                }
            ),
        ]
    );
    assert_eq!(report.stats.refreshes, 1);
    assert_eq!(report.stats.payments_accepted, 1);
    assert_eq!(report.stats.failures, 0);
}
