//! End to end on the faithful model, in memory: with tickets worth 30 s of service each, one
//! mint covers many cycles and the signer answers most of them 482 ("balance current"). Funding
//! treats those as healthy: it goes on, pays whenever the signer mints, and the orchestrator
//! never releases the session.

use livepay_core::engine::Engine;
use livepay_core::{Duration, ReleaseReason};
use livepay_mock::memory::MemoryNet;
use livepay_mock::model::{self, DEFAULT_PRICE_WEI, World};
use livepay_tests::memory::{fund_then_close, reserve_live};

const HALF_HOUR: u64 = 30 * 60;

/// Funds a session for half an hour against tickets worth 30 s each, then closes it.
fn half_hour_of_30_s_tickets() -> (MemoryNet, Engine, String) {
    let config = model::ModelConfig {
        ticket_ev_wei: 30 * DEFAULT_PRICE_WEI,
        ..model::ModelConfig::default()
    };
    let net = MemoryNet::new(World::new(config, 8));
    let reserved = reserve_live(&net);
    let id = reserved.session_id.clone();
    let (exit, engine, _) = fund_then_close(&net, reserved, Duration::from_secs(HALF_HOUR), |_, _| {});
    assert_eq!(exit.reason(), Some(ReleaseReason::ClosedByClient));
    (net, engine, id)
}

fn report(net: &MemoryNet, engine: &Engine) -> String {
    let world = net.world();
    format!(
        "client {:?}\norchestrator {:?}\nsigner {:?}",
        engine.stats(),
        world.orchestrator().stats(),
        world.signer().stats()
    )
}

#[test]
fn a_stream_of_482_keeps_the_session_funded() {
    let (net, engine, id) = half_hour_of_30_s_tickets();
    let report = report(&net, &engine);
    let world = net.world();
    let stats = engine.stats();

    // Many cycles were skipped, each one a signer 482, and funding went on through them.
    assert!(stats.cycles_skipped * 10 >= stats.payments_sent * 4, "{report}");
    assert_eq!(
        u64::from(stats.cycles_skipped),
        world.signer().stats().no_tickets_482
    );
    assert!(stats.payments_accepted >= 50, "a mint about every 30 s: {report}");
    assert_eq!(stats.lapses + stats.failures, 0, "{report}");

    // The orchestrator never released the session: it billed all of it, and was paid for it.
    assert_eq!(world.orchestrator().stats().released_unpaid, 0, "{report}");
    assert_eq!(world.orchestrator().stats().payments_rejected, 0, "{report}");
    let s = world.orchestrator().session(&id).expect("the session");
    assert_eq!(s.debited(), u128::from(HALF_HOUR) * DEFAULT_PRICE_WEI, "{report}");
    assert!(s.credited() >= s.debited(), "{report}");
}

/// Regression: after a 482 the core once aimed the next mint at an instant already past and
/// polled the signer once per request latency (~100,000 calls in 30 min). It must never poll
/// faster than the interval; with the ticket value learnt from the 482s it polls far less: the
/// 482s prove the runway past each mint, so a check is due only when that runway falls to the
/// refill level.
#[test]
fn skipped_cycles_do_not_poll_the_signer_faster_than_the_interval() {
    let (net, engine, _) = half_hour_of_30_s_tickets();
    let report = report(&net, &engine);
    let calls = net.world().signer().stats().calls;
    // Under a third of one call per 3 s (the SDK's 600), refresh retries and the reservation's
    // mint included.
    assert!(calls <= HALF_HOUR / 9, "{calls} signer calls: {report}");
}
