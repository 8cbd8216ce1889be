//! `Command::Close` stops funding at once; the stop request goes out only once the action in
//! flight is answered, and nothing is paid after it. `run` returns `Released(ClosedByClient)`.

use livepay_core::{Command, Duration, Endpoint, Event, ReleaseReason, Reply, State};
use livepay_tests::{Commands, START, Script, TransportCall, at_ms, drive, secs};

const FUNDING_STOPPED: Event = Event::StateChanged {
    from: State::Funding,
    to: State::Reserved,
};

#[test]
fn close_during_a_slow_payment_sends_the_stop_after_the_payment_completes() {
    // Cycle 1's payment POST takes 2 s; the client closes 1 s in.
    let script = Script::new().then_after(Endpoint::Payment, Duration::from_secs(2), Reply::Status(200));
    let commands = Commands::new().at(secs(1), Command::Close);
    let report = drive(livepay_tests::live_config(), script, commands, secs(30));

    report.assert_exit(Some(Some(ReleaseReason::ClosedByClient)));
    // Funding stops when the close arrives…
    assert_eq!(
        report.first_event(|e| *e == FUNDING_STOPPED),
        Some((secs(1), FUNDING_STOPPED))
    );
    // …the payment in flight completes and is accounted for…
    let paid_at = at_ms(2_020);
    assert_eq!(
        report.first_event(|e| matches!(e, Event::PaymentAccepted { .. })),
        Some((
            paid_at,
            Event::PaymentAccepted {
                cycle: 1,
                latency: Duration::from_millis(2_020)
            }
        ))
    );
    // …and only then does the stop go out; nothing follows it.
    assert_eq!(
        report.calls,
        [
            (START, TransportCall::RequestPayment { cycle: 1 }),
            (at_ms(20), TransportCall::SendPayment),
            (paid_at, TransportCall::Stop),
        ],
        "{}",
        report.timeline()
    );
    assert_eq!(
        report.released(),
        Some((at_ms(2_040), ReleaseReason::ClosedByClient))
    );
}

#[test]
fn close_while_idle_sends_the_stop_at_once() {
    let commands = Commands::new().at(secs(1), Command::Close);
    let report = drive(livepay_tests::live_config(), Script::new(), commands, secs(30));

    report.assert_exit(Some(Some(ReleaseReason::ClosedByClient)));
    assert_eq!(report.times_of(TransportCall::Stop), [secs(1)]);
    assert_eq!(report.calls.last(), Some(&(secs(1), TransportCall::Stop)));
    assert_eq!(report.pay_requests(), [(START, 1)], "{}", report.timeline());
    assert_eq!(
        report.released(),
        Some((at_ms(1_020), ReleaseReason::ClosedByClient))
    );
}
