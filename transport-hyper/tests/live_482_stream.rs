//! A ticket worth five seconds of service: most cycles the signer answers 482 (balance current).
//! The session reports skipped cycles and stays funded.

mod common;

use common::{
    close, collect_until, count, fast_model, is_accepted, live_pricing, reserve_live, serve,
    start_with_events,
};
use livepay_core::{Event, ReleaseReason, State};
use livepay_mock::faults::FaultPlan;

#[tokio::test]
async fn large_tickets_skip_cycles_and_stay_funded() {
    let mut model = fast_model(live_pricing());
    model.ticket_ev_wei = 5_000_000_000;
    let served = serve(model, FaultPlan::clean(), 3).await;
    let (session, id) = reserve_live(&served, false).await;
    let mut events = start_with_events(&session);

    let is_skip = |e: &Event| matches!(e, Event::CycleSkipped { .. });
    let seen = collect_until(&mut events, "four skipped cycles", |seen| {
        count(seen, is_skip) >= 4
    })
    .await;
    assert!(count(&seen, is_accepted) >= 1, "{seen:?}");
    assert!(seen.contains(&Event::StateChanged {
        from: State::Funding,
        to: State::Skipped
    }));
    assert!(
        !seen.iter().any(|e| matches!(
            e,
            Event::PaymentFailed { .. }
                | Event::Lapsed { .. }
                | Event::StateChanged {
                    to: State::Released { .. },
                    ..
                }
        )),
        "{seen:?}"
    );
    assert!(session.state().is_funding());
    let (skips, active) = served.with_world(|w| {
        let active = w.orchestrator().session(&id).is_some_and(|s| s.is_active());
        (w.signer().stats().no_tickets_482, active)
    });
    assert!(skips >= 4, "{skips}");
    assert!(active);

    assert_eq!(close(session).await, ReleaseReason::ClosedByClient);
    assert_eq!(served.with_world(|w| w.orchestrator().stats().released_unpaid), 0);
    served.shutdown().await;
}
