//! Reserve a `live` session on the served model, see a few payments credited, close it: the
//! session is released by the client, the model shows it stopped, and nothing is paid after.

mod common;

use common::{close, collect_until, count, drain, is_accepted, reserve_live, serve_live, start_with_events};
use livepay_core::{Event, ReleaseReason, State};
use livepay_mock::model::ReleaseCause as ModelRelease;

#[tokio::test]
async fn reserve_fund_close() {
    let served = serve_live(1).await;
    let (session, id) = reserve_live(&served, false).await;
    assert!(session.is_metered());
    assert_eq!(session.state(), State::Reserved);
    assert_eq!(
        session.control_url(),
        format!("{}/apps/live-runner/session/{id}", served.orchestrator_url())
    );
    assert_eq!(
        session.payment_url().as_deref(),
        Some(
            format!(
                "{}/apps/live-runner/session/{id}/payment",
                served.orchestrator_url()
            )
            .as_str()
        )
    );
    assert!(served.with_world(|w| w.orchestrator().session(&id).is_some_and(|s| s.is_active())));

    let mut events = start_with_events(&session);
    session.start_payments().expect("start is idempotent");
    let seen = collect_until(&mut events, "three payments", |seen| {
        count(seen, is_accepted) >= 3
    })
    .await;
    assert_eq!(
        seen.first(),
        Some(&Event::StateChanged {
            from: State::Reserved,
            to: State::Funding
        })
    );
    assert!(session.state().is_funding());
    // The engine's counters are published before its events: every payment seen is counted.
    let stats = session.stats();
    assert!(
        stats.payments_accepted as usize >= count(&seen, is_accepted),
        "{stats:?}"
    );
    assert!(stats.payments_sent >= stats.payments_accepted, "{stats:?}");
    assert_eq!((stats.failures, stats.lapses), (0, 0), "{stats:?}");

    assert_eq!(close(session).await, ReleaseReason::ClosedByClient);

    // The stream ends once the session and its task are gone: nothing can be sent after this.
    let rest = drain(&mut events).await;
    assert_eq!(
        rest.last(),
        Some(&Event::StateChanged {
            from: State::Reserved,
            to: State::Released {
                reason: ReleaseReason::ClosedByClient
            }
        }),
        "{rest:?}"
    );
    let accepted = count(&seen, is_accepted) + count(&rest, is_accepted);

    let (released, payments, stats) = served.with_world(|w| {
        let session = w
            .orchestrator()
            .session(&id)
            .expect("the model knows the session");
        (
            session.released(),
            session.payments(),
            w.orchestrator().stats().clone(),
        )
    });
    assert!(
        matches!(released, Some((_, ModelRelease::Stopped))),
        "{released:?}"
    );
    assert_eq!(stats.released_stopped, 1);
    assert_eq!(stats.released_unpaid, 0);
    // The paid reservation plus every payment the client saw credited, and nothing else.
    assert_eq!(payments, accepted as u64 + 1);
    assert_eq!(stats.payments_rejected, 0);
    assert_eq!(
        served.with_world(|w| w.signer().stats().mints),
        accepted as u64 + 1
    );
    served.shutdown().await;
}

#[tokio::test]
async fn funding_starts_by_default_and_drop_stops_it_without_a_stop() {
    let served = serve_live(2).await;
    let (session, id) = reserve_live(&served, true).await;
    let mut events = session.events();
    collect_until(&mut events, "a payment", |seen| count(seen, is_accepted) >= 1).await;
    drop(session);
    // The task is aborted: the stream ends, and no stop was sent.
    drain(&mut events).await;
    let mints = served.with_world(|w| w.signer().stats().mints);
    let stopped = served.with_world(|w| w.orchestrator().stats().released_stopped);
    assert_eq!(stopped, 0);
    // No more mints after the drop: wait for the model to release the session on its own.
    common::eventually("the silent release", || {
        served.with_world(|w| w.orchestrator().released_at(&id).is_some())
    })
    .await;
    assert_eq!(served.with_world(|w| w.signer().stats().mints), mints);
    served.shutdown().await;
}

/// Issue 10: the first `events()` call gets every event since the reservation, even when it
/// subscribes after funding started (it used to miss the first `StateChanged` in most runs).
#[tokio::test]
async fn the_first_subscriber_sees_funding_start_even_when_it_subscribes_late() {
    let served = serve_live(1).await;
    let (session, _) = reserve_live(&served, true).await;
    // Let the funding task run before anyone subscribes.
    tokio::task::yield_now().await;
    let mut events = session.events();
    let seen = collect_until(&mut events, "the first state change", |seen| !seen.is_empty()).await;
    assert_eq!(
        seen.first(),
        Some(&Event::StateChanged {
            from: State::Reserved,
            to: State::Funding
        })
    );
    assert_eq!(close(session).await, ReleaseReason::ClosedByClient);
}
