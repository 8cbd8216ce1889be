//! Stop funding and let the runway run out: the orchestrator releases the session without a
//! word. Starting again finds out (404 on the next payment): released, gone.

mod common;

use common::{collect_until, count, eventually, guarded, is_accepted, reserve_live, serve_live};
use livepay_core::{Event, ReleaseReason, State};
use livepay_hyper::LiveError;

#[tokio::test]
async fn a_lapsed_session_is_reported_gone() {
    let served = serve_live(5).await;
    let (session, id) = reserve_live(&served, true).await;
    let mut events = session.events();
    collect_until(&mut events, "a payment", |seen| count(seen, is_accepted) >= 1).await;

    guarded("stop", session.stop_payments()).await;
    assert_eq!(session.state(), State::Reserved);
    // Stopped means no request in flight and none to come.
    let calls = served.with_world(|w| w.signer().stats().calls);
    session.stop_payments().await; // idempotent

    eventually("the orchestrator's silent release", || {
        served.with_world(|w| w.orchestrator().released_at(&id).is_some())
    })
    .await;
    assert_eq!(served.with_world(|w| w.signer().stats().calls), calls);
    // The client cannot know yet.
    assert_eq!(session.state(), State::Reserved);

    session.start_payments().expect("start");
    let reason = guarded("the release", session.wait_released()).await;
    assert_eq!(reason, ReleaseReason::Gone);
    let seen = collect_until(&mut events, "the release event", |seen| {
        seen.iter().any(|e| {
            matches!(
                e,
                Event::StateChanged {
                    to: State::Released { .. },
                    ..
                }
            )
        })
    })
    .await;
    assert!(seen.contains(&Event::StateChanged {
        from: State::Funding,
        to: State::Released {
            reason: ReleaseReason::Gone
        }
    }));
    assert_eq!(
        session.state(),
        State::Released {
            reason: ReleaseReason::Gone
        }
    );
    assert_eq!(
        session.start_payments(),
        Err(LiveError::AlreadyClosed {
            reason: ReleaseReason::Gone
        })
    );
    // The payment that found the session gone is the last request: no stop for a gone session.
    let stops = served.with_world(|w| w.orchestrator().stats().released_stopped);
    let reason = guarded("close", session.close())
        .await
        .expect("close of a released session");
    assert_eq!(reason, ReleaseReason::Gone);
    assert_eq!(
        served.with_world(|w| w.orchestrator().stats().released_stopped),
        stops
    );
    served.shutdown().await;
}
