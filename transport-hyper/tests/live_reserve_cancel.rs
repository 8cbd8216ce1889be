//! Issue 17, item 13: a reservation interrupted before its payment leaves is cancelled at no
//! cost (nothing reserved, nothing paid); interrupted after, it finishes, so that the caller
//! stops the session it paid for rather than leaving it to run on its prepay.

mod common;

use common::{guarded, live_options, serve_live};
use livepay_hyper::{LiveError, LiveSession};
use livepay_mock::model::ReleaseCause;

#[tokio::test]
async fn cancelled_before_the_payment_leaves_nothing_is_reserved() {
    let served = serve_live(1).await;
    let cancelled = guarded(
        "the cancel",
        LiveSession::reserve_until(live_options(&served), async {}),
    )
    .await;
    assert!(
        matches!(cancelled, Err(LiveError::Cancelled)),
        "{:?}",
        cancelled.err()
    );
    let stats = served.with_world(|w| w.orchestrator().stats().clone());
    assert_eq!(
        (stats.sessions_created, stats.payments_accepted),
        (0, 0),
        "nothing paid"
    );
}

#[tokio::test]
async fn cancelled_after_the_payment_left_it_finishes_and_the_caller_stops_it() {
    let served = serve_live(2).await;
    // The interrupt comes once the orchestrator has the paid session: too late to cancel.
    let paid = async {
        while served.with_world(|w| w.orchestrator().stats().sessions_created) == 0 {
            tokio::task::yield_now().await;
        }
    };
    let session = guarded(
        "the reservation",
        LiveSession::reserve_until(live_options(&served), paid),
    )
    .await
    .expect("finished, not cancelled");
    let id = session.session_id().to_owned();
    guarded("the stop", session.close()).await.expect("stopped");
    let released = served.with_world(|w| {
        w.orchestrator()
            .session(&id)
            .and_then(|s| s.released())
            .map(|(_, c)| c)
    });
    assert_eq!(released, Some(ReleaseCause::Stopped));
}
