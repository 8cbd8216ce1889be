//! End to end on the faithful model, in memory: with the default 8-minute ticket-param lifetime
//! the signer asks for a refresh (480) several times an hour; each refresh swaps in fresh params,
//! keeps the session-scoped payment URL, and the cycle pays at once, so funding never lapses.

use livepay_core::{Duration, Event, ReleaseReason};
use livepay_mock::memory::MemoryNet;
use livepay_mock::model::{self, World};
use livepay_tests::memory::{fund_then_close, reserve_live};

#[test]
fn refreshes_on_480_keep_the_payment_url_and_funding_never_lapses() {
    let config = model::ModelConfig::default();
    assert_eq!(config.param_lifetime, Duration::from_secs(8 * 60));
    let net = MemoryNet::new(World::new(config, 2));
    let reserved = reserve_live(&net);
    let id = reserved.session_id.clone();
    let (payment_url, first_params) = {
        let payment = reserved.payment.as_ref().expect("priced");
        (
            payment.payment_url().to_owned(),
            payment.payment_params().to_owned(),
        )
    };
    let mut events = Vec::new();
    let (exit, engine, _) = fund_then_close(&net, reserved, Duration::from_secs(3600), |t, e| {
        events.push((t, e));
    });
    assert_eq!(exit.reason(), Some(ReleaseReason::ClosedByClient));

    let world = net.world();
    let stats = engine.stats();
    let report = format!(
        "client {stats:?}\norchestrator {:?}\nsigner {:?}",
        world.orchestrator().stats(),
        world.signer().stats()
    );
    // 60 min / 8 min: a refresh every 8 minutes, each answering one signer 480.
    assert!(stats.refreshes >= 5, "{report}");
    assert_eq!(
        u64::from(stats.refreshes),
        world.orchestrator().stats().refreshes,
        "{report}"
    );
    assert_eq!(
        world.signer().stats().refresh_480,
        world.orchestrator().stats().refreshes
    );
    let refreshed: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Refreshed { .. }))
        .map(|&(t, _)| t)
        .collect();
    assert_eq!(refreshed.len(), stats.refreshes as usize);
    for pair in refreshed.windows(2) {
        let gap = pair[1] - pair[0];
        // The 480 comes at the first signer call after the params turn 8 minutes old; calls
        // are at most the longest gap (30 s) apart.
        assert!(gap <= Duration::from_secs(8 * 60 + 30), "refresh gap {gap}");
    }
    // Each refresh is followed by the cycle's payment at once.
    for &t in &refreshed {
        let paid = events
            .iter()
            .find(|&&(at, e)| at >= t && matches!(e, Event::PaymentAccepted { .. }))
            .map(|&(at, _)| at);
        assert!(
            paid.is_some_and(|at| at - t <= Duration::from_millis(100)),
            "{report}"
        );
    }

    // The params changed; the session-scoped payment URL did not (the refresh answer names the
    // generic `/payment`).
    let kept = engine.protocol();
    assert_eq!(kept.payment_url(), payment_url);
    assert_ne!(kept.payment_params(), first_params);
    assert!(payment_url.ends_with(&format!("/session/{id}/payment")));

    // Funding never lapsed: no gap between credited payments exceeded the longest gap (30 s;
    // the built runway covers it), no warning, and the orchestrator never released the session
    // for lack of balance.
    let paid: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::PaymentAccepted { .. }))
        .map(|&(t, _)| t)
        .collect();
    let widest = paid.windows(2).map(|p| p[1] - p[0]).max().unwrap_or_default();
    assert!(widest <= Duration::from_secs(30), "widest gap {widest}");
    assert_eq!(stats.lapses + stats.at_risk + stats.failures, 0, "{report}");
    assert_eq!(world.orchestrator().stats().released_unpaid, 0, "{report}");
    assert_eq!(world.orchestrator().stats().payments_rejected, 0, "{report}");
}
