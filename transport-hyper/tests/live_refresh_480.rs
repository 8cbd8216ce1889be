//! Ticket params that live two seconds: the signer asks for a refresh (480), the session
//! refreshes them and pays on, always to the challenge's session-scoped payment URL.

mod common;

use common::{
    close, collect_until, count, fast_model, is_accepted, live_pricing, reserve_live, serve,
    start_with_events,
};
use livepay_core::{Duration, Event, ReleaseReason};
use livepay_mock::faults::FaultPlan;

#[tokio::test]
async fn stale_params_are_refreshed_and_the_payment_url_kept() {
    let mut model = fast_model(live_pricing());
    model.param_lifetime = Duration::from_secs(2);
    let served = serve(model, FaultPlan::clean(), 4).await;
    let (session, id) = reserve_live(&served, false).await;
    let payment_url = format!(
        "{}/apps/live-runner/session/{id}/payment",
        served.orchestrator_url()
    );
    assert_eq!(session.payment_url().as_deref(), Some(payment_url.as_str()));
    let mut events = start_with_events(&session);

    // Two refreshes, and a payment credited after the second.
    let is_refreshed = |e: &Event| matches!(e, Event::Refreshed { .. });
    let seen = collect_until(&mut events, "two refreshes and a payment after", |seen| {
        let Some(second) = seen
            .iter()
            .enumerate()
            .filter(|(_, e)| is_refreshed(e))
            .nth(1)
            .map(|(i, _)| i)
        else {
            return false;
        };
        seen[second..].iter().any(is_accepted)
    })
    .await;
    assert!(
        count(&seen, |e| matches!(e, Event::RefreshRequired { attempt: 1 })) >= 2,
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::PaymentFailed { .. } | Event::Lapsed { .. })),
        "{seen:?}"
    );
    assert_eq!(session.payment_url().as_deref(), Some(payment_url.as_str()));

    let (refreshes, refresh_480, payments, active) = served.with_world(|w| {
        let s = w.orchestrator().session(&id).expect("session");
        (
            w.orchestrator().stats().refreshes,
            w.signer().stats().refresh_480,
            s.payments(),
            s.is_active(),
        )
    });
    assert!(refreshes >= 2 && refresh_480 >= 2, "{refreshes} {refresh_480}");
    assert!(active);
    // Every credited payment reached the session (the generic URL would not count here).
    assert_eq!(payments, count(&seen, is_accepted) as u64 + 1);

    assert_eq!(close(session).await, ReleaseReason::ClosedByClient);
    served.shutdown().await;
}
