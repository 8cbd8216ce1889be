//! A transient failure (a 503 on the payment POST) is retried after a backoff, by POSTing the
//! same minted payment again (a repost, not a new mint), and funding goes on: later cycles pay as
//! usual.

use livepay_core::{Duration, Endpoint, Event, Reply};
use livepay_tests::{Commands, Script, TransportCall, drive, rel, secs};

#[test]
fn a_503_on_the_payment_post_is_retried_and_payments_continue() {
    // Cycle 1's POST succeeds, cycle 2's answers 503, every later one succeeds.
    let script = Script::new()
        .then(Endpoint::Payment, Reply::Status(200))
        .then(Endpoint::Payment, Reply::Status(503));
    let report = drive(livepay_tests::live_config(), script, Commands::new(), secs(30));

    report.assert_exit(None);
    let failed = report
        .log
        .iter()
        .find(|r| r.reply == Reply::Status(503))
        .expect("the 503 was served");
    assert_eq!(failed.call, TransportCall::SendPayment);

    // The failure is reported when the 503 arrives, as the first in a row, with its retry time.
    let failures = report.events_where(|e| matches!(e, Event::PaymentFailed { .. }));
    assert_eq!(failures.len(), 1, "{}", report.timeline());
    let (at, event) = failures[0];
    assert_eq!(at, failed.answered_at);
    let Event::PaymentFailed {
        endpoint,
        reply,
        consecutive,
        next_retry,
    } = event
    else {
        unreachable!()
    };
    assert_eq!(
        (endpoint, reply, consecutive),
        (Endpoint::Payment, Reply::Status(503), 1)
    );
    // First backoff: 250 ms ± 20 % jitter, never under the 250 ms floor.
    let backoff = next_retry - at;
    assert!(
        (Duration::from_millis(250)..=Duration::from_millis(300)).contains(&backoff),
        "retry {} ms after the failure",
        backoff.as_millis()
    );

    // The retry goes out exactly then, as the same payment POSTed again, and pays; the next
    // signer call is the next cycle.
    let after: Vec<_> = report.calls.iter().filter(|&&(t, _)| t > at).collect();
    assert_eq!(
        *after[0],
        (next_retry, TransportCall::SendPayment),
        "retry at {}",
        rel(next_retry)
    );
    assert_eq!(after[1].1, TransportCall::RequestPayment { cycle: 3 });
    let accepted_after = report
        .events_where(|e| matches!(e, Event::PaymentAccepted { .. }))
        .into_iter()
        .filter(|&(t, _)| t > at)
        .count();
    assert!(accepted_after >= 6, "{accepted_after} payments after the failure");

    // Funding never stopped and never came near lapsing.
    assert!(report.state.is_funding(), "{:?}", report.state);
    report.assert_no_event(
        "state change",
        |e| matches!(e, Event::StateChanged { to, .. } if !to.is_funding()),
    );
    report.assert_no_event("risk", |e| {
        matches!(e, Event::AtRisk { .. } | Event::Lapsed { .. })
    });
    let stats = report.stats;
    assert_eq!(
        (
            stats.failures,
            stats.lost_mints,
            stats.reposts,
            stats.reposts_credited
        ),
        (1, 0, 1, 1)
    );
}
