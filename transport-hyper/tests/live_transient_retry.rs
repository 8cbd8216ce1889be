//! Three payment POSTs in ten fail with 503: each failure is retried inside the runway and the
//! session stays funded.

mod common;

use common::{
    close, collect_until, count, fast_model, is_accepted, live_pricing, reserve_live, serve,
    start_with_events,
};
use livepay_core::{Endpoint, Event, ReleaseReason, Reply};
use livepay_mock::faults::FaultPlan;

#[tokio::test]
async fn transient_payment_failures_are_retried() {
    let mut plan = FaultPlan::clean();
    plan.payment.error_5xx = 0.3;
    let served = serve(fast_model(live_pricing()), plan, 6).await;
    let (session, id) = reserve_live(&served, false).await;
    let mut events = start_with_events(&session);

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

    assert_eq!(close(session).await, ReleaseReason::ClosedByClient);
    served.shutdown().await;
}
