//! Three payment POSTs in ten fail with 503: each failure is retried inside the runway and the
//! session stays funded.

mod common;

use common::{collect_until, count, fast_model, guarded, is_accepted, live_options, live_pricing, serve};
use livepay_core::{Endpoint, Event, ReleaseReason, Reply};
use livepay_hyper::LiveSession;
use livepay_mock::faults::FaultPlan;

#[tokio::test]
async fn transient_payment_failures_are_retried() {
    let mut plan = FaultPlan::clean();
    plan.payment.error_5xx = 0.3;
    let served = serve(fast_model(live_pricing()), plan, 6).await;
    let session = guarded(
        "the reservation",
        LiveSession::reserve(live_options(&served).with_start_payments(false)),
    )
    .await
    .expect("reservation");
    let id = session.session_id().to_owned();
    let mut events = session.events();
    session.start_payments().expect("start");

    let is_failure = |e: &Event| {
        matches!(
            e,
            Event::PaymentFailed {
                endpoint: Endpoint::Payment,
                reply: Reply::Status(503),
                ..
            }
        )
    };
    let seen = collect_until(&mut events, "ten payments and a failure", |seen| {
        count(seen, is_accepted) >= 10 && count(seen, is_failure) >= 1
    })
    .await;
    // Every failure is a retried 503 on the payment POST; nothing terminal, no lapse.
    assert_eq!(
        count(&seen, |e| matches!(e, Event::PaymentFailed { .. })),
        count(&seen, is_failure),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Lapsed { .. } | Event::PaymentAbandoned { .. })),
        "{seen:?}"
    );
    assert!(session.state().is_funding());
    let (active, rejected) = served.with_world(|w| {
        (
            w.orchestrator().session(&id).is_some_and(|s| s.is_active()),
            w.orchestrator().stats().released_unpaid,
        )
    });
    assert!(active);
    assert_eq!(rejected, 0);

    let reason = guarded("close", session.close()).await.expect("close");
    assert_eq!(reason, ReleaseReason::ClosedByClient);
    served.shutdown().await;
}
