//! The gateway's terminal answers to a payment POST each end funding after that one payment:
//! 404 means the orchestrator already released the session (`Gone`, no stop request), while
//! 403 and 409 are rejections: the session is stopped, then reported released with the reason.

use livepay_core::{Endpoint, Event, ReleaseReason, Reply, State};
use livepay_tests::{Commands, Report, START, Script, TransportCall, at_ms, drive, secs};

fn first_payment_answers(status: u16) -> Report {
    let script = Script::new().then(Endpoint::Payment, Reply::Status(status));
    drive(livepay_tests::live_config(), script, Commands::new(), secs(60))
}

#[test]
fn payment_404_is_gone_without_a_stop_request() {
    let report = first_payment_answers(404);

    report.assert_exit(Some(Some(ReleaseReason::Gone)));
    assert_eq!(
        report.calls,
        [
            (START, TransportCall::RequestPayment { cycle: 1 }),
            (at_ms(20), TransportCall::SendPayment)
        ],
        "{}",
        report.timeline()
    );
    assert_eq!(report.released(), Some((at_ms(40), ReleaseReason::Gone)));
    assert_eq!(report.end, at_ms(40), "run returns when the 404 arrives");
}

#[track_caller]
fn assert_rejected_after_a_stop(status: u16) {
    let report = first_payment_answers(status);
    let reason = ReleaseReason::Rejected {
        endpoint: Endpoint::Payment,
        reply: Reply::Status(status),
    };

    report.assert_exit(Some(Some(reason)));
    assert_eq!(
        report.calls,
        [
            (START, TransportCall::RequestPayment { cycle: 1 }),
            (at_ms(20), TransportCall::SendPayment),
            (at_ms(40), TransportCall::Stop),
        ],
        "HTTP {status}:\n{}",
        report.timeline()
    );
    // Funding stops when the rejection arrives; the release follows the stop's answer.
    let changes = report.events_where(|e| matches!(e, Event::StateChanged { .. }));
    assert_eq!(
        changes[1..],
        [
            (
                at_ms(40),
                Event::StateChanged {
                    from: State::Funding,
                    to: State::Reserved
                }
            ),
            (
                at_ms(60),
                Event::StateChanged {
                    from: State::Reserved,
                    to: State::Released { reason }
                }
            ),
        ],
        "HTTP {status}"
    );
}

#[test]
fn payment_403_is_rejected_after_a_stop_request() {
    assert_rejected_after_a_stop(403);
}

#[test]
fn payment_409_is_rejected_after_a_stop_request() {
    assert_rejected_after_a_stop(409);
}
