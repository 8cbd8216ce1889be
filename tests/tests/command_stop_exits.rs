//! `Command::Stop` stops funding without releasing the session: `run` returns `Exit::Stopped`
//! (once any action in flight is answered), having sent nothing more, not even a stop request.

use livepay_core::{Command, Duration, Endpoint, Event, Reply, State};
use livepay_tests::{Commands, START, Script, TransportCall, at_ms, drive, secs};

const FUNDING_STOPPED: Event = Event::StateChanged {
    from: State::Funding,
    to: State::Reserved,
};

#[test]
fn stop_while_idle_exits_at_once() {
    let commands = Commands::new().at(secs(1), Command::Stop);
    let report = drive(livepay_tests::live_config(), Script::new(), commands, secs(30));

    report.assert_exit(Some(None));
    assert_eq!(report.end, secs(1));
    assert_eq!(
        report.calls,
        [
            (START, TransportCall::RequestPayment { cycle: 1 }),
            (at_ms(20), TransportCall::SendPayment)
        ],
        "{}",
        report.timeline()
    );
    assert_eq!(report.events.last(), Some(&(secs(1), FUNDING_STOPPED)));
    assert_eq!(report.state, State::Reserved);
}

#[test]
fn stop_during_a_payment_exits_once_it_is_answered() {
    let script = Script::new().then_after(Endpoint::Payment, Duration::from_secs(2), Reply::Status(200));
    let commands = Commands::new().at(secs(1), Command::Stop);
    let report = drive(livepay_tests::live_config(), script, commands, secs(30));

    report.assert_exit(Some(None));
    assert_eq!(report.end, at_ms(2_020), "run waits for the payment in flight");
    assert_eq!(
        report.first_event(|e| *e == FUNDING_STOPPED),
        Some((secs(1), FUNDING_STOPPED))
    );
    assert_eq!(
        report.events.last(),
        Some(&(
            at_ms(2_020),
            Event::PaymentAccepted {
                cycle: 1,
                latency: Duration::from_millis(2_020)
            }
        ))
    );
    report.assert_no_call_after(at_ms(20));
    assert_eq!(report.times_of(TransportCall::Stop), []);
    assert_eq!(report.state, State::Reserved);
}
