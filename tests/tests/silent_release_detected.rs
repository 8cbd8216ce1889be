//! The orchestrator can release a session silently; the next payment POST then answers 404 and
//! the session is reported `Released(Gone)` at once, within one cycle of the release.

use livepay_core::{Endpoint, Event, ReleaseReason, Reply};
use livepay_tests::{Commands, Script, TransportCall, drive, secs};

#[test]
fn the_first_404_after_successful_cycles_releases_the_session() {
    // From 10 s on, the orchestrator no longer knows the session.
    let released_by_orchestrator = secs(10);
    let script = Script::new().starting_at(Endpoint::Payment, released_by_orchestrator, Reply::Status(404));
    let config = livepay_tests::live_config();
    let report = drive(config, script, Commands::new(), secs(60));

    report.assert_exit(Some(Some(ReleaseReason::Gone)));
    let accepted = report.events_where(|e| matches!(e, Event::PaymentAccepted { .. }));
    assert!(accepted.len() >= 4, "{}", report.timeline());
    assert!(accepted.iter().all(|&(t, _)| t < released_by_orchestrator));

    // Exactly one 404 was needed: the first payment POST after the release.
    let gone: Vec<_> = report
        .log
        .iter()
        .filter(|r| r.reply == Reply::Status(404))
        .collect();
    assert_eq!(gone.len(), 1, "{}", report.timeline());
    assert_eq!(gone[0].call, TransportCall::SendPayment);
    assert!(
        gone[0].at - released_by_orchestrator <= config.interval,
        "the next cycle after the release saw it"
    );
    assert_eq!(
        report.released(),
        Some((gone[0].answered_at, ReleaseReason::Gone))
    );
    report.assert_no_call_after(gone[0].at);
    report.assert_no_event("a retry", |e| matches!(e, Event::PaymentFailed { .. }));
}
