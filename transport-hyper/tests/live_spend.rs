//! `LiveSession::runway` and `LiveSession::spend_wei` against the served model: the runway is
//! positive while funding and never beyond what the orchestrator's balance for the session
//! covers, and the spend is `None` because the model's payments cannot be read (the CLI prices
//! the bought time at the discovered price instead; `cli/tests/spend.rs`).

mod common;

use common::{close, collect_until, count, is_accepted, reserve_live, serve_live, start_with_events};
use livepay_core::{Event, ReleaseReason};

/// The model's price, wei per second ([`common::live_pricing`]).
const PRICE_WEI_PER_S: f64 = 1e9;

/// Slack for the model's billing: it debits per 500 ms tick, so its balance may still hold up to
/// one tick the client has already used up (and the estimate is read a moment after it).
const TICK_S: f64 = 0.5;

#[tokio::test]
async fn runway_stays_within_the_orchestrators_balance_while_funding() {
    let served = serve_live(3).await;
    let (session, id) = reserve_live(&served, false).await;
    // Reserved, not funding yet: the runway is what the reservation bought (a 1 s prepay in the
    // fast configuration), never more.
    assert!(
        session.runway().as_micros() <= 1_000_000,
        "{:?}",
        session.runway()
    );

    let mut events = start_with_events(&session);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let more = collect_until(&mut events, "a payment", |s| s.last().is_some_and(is_accepted)).await;
        seen.extend(more);
        // The model's balance first, then the estimate: time only shrinks the latter.
        let balance = served
            .with_world(|w| w.session_balance(&id))
            .expect("the model holds a balance for the funded session");
        let runway = session.runway();
        #[allow(clippy::cast_precision_loss)]
        let covered_s = balance as f64 / PRICE_WEI_PER_S;
        let runway_s = runway.as_micros() as f64 / 1e6;
        assert!(session.state().is_funding(), "{:?}", session.state());
        assert!(
            runway_s > 0.0,
            "a positive runway just after a payment: {runway:?}"
        );
        assert!(
            runway_s <= covered_s + TICK_S,
            "the runway {runway_s} s exceeds the {covered_s} s the balance covers"
        );
    }
    assert!(count(&seen, is_accepted) >= 4, "{seen:?}");
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Lapsed { .. })),
        "{seen:?}"
    );
    assert_eq!(close(session).await, ReleaseReason::ClosedByClient);
    served.shutdown().await;
}

#[tokio::test]
async fn spend_is_unknown_when_the_payments_cannot_be_read() {
    let served = serve_live(4).await;
    let (session, _) = reserve_live(&served, false).await;
    // The model mints payments that are not protobuf: no price can be read from them.
    assert_eq!(session.spend_wei(), None);
    let mut events = start_with_events(&session);
    collect_until(&mut events, "two payments", |seen| count(seen, is_accepted) >= 2).await;
    // Time was bought and billed, but its price is not in the payments.
    assert!(session.stats().billed.as_micros() > 0, "{:?}", session.stats());
    assert_eq!(session.spend_wei(), None);
    assert_eq!(close(session).await, ReleaseReason::ClosedByClient);
    served.shutdown().await;
}
