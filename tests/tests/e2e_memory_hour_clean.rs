//! End to end on the faithful model, in memory: a session reserved over the model and funded by
//! the core's `Engine` for an hour, then closed, is never released by the orchestrator and pays
//! within 5 % of the price.

use livepay_core::{Duration, ReleaseReason};
use livepay_mock::memory::MemoryNet;
use livepay_mock::model::{self, DEFAULT_PRICE_WEI, World};
use livepay_tests::memory::{fund_then_close, reserve_live};

const HOUR: u64 = 3600;

#[test]
fn an_hour_of_funding_is_never_released_and_pays_close_to_the_price() {
    let net = MemoryNet::new(World::new(model::ModelConfig::default(), 1));
    let reserved = reserve_live(&net);
    let id = reserved.session_id.clone();
    let (exit, engine, close_at) = fund_then_close(&net, reserved, Duration::from_secs(HOUR), |_, _| {});

    assert_eq!(exit.reason(), Some(ReleaseReason::ClosedByClient));
    let world = net.world();
    let orch = world.orchestrator();
    let report = format!(
        "client {:?}\norchestrator {:?}\nsigner {:?}",
        engine.stats(),
        orch.stats(),
        world.signer().stats()
    );

    // Released exactly once: by the client's stop, at the close.
    assert_eq!(orch.stats().released_unpaid, 0, "{report}");
    assert_eq!(orch.releases().len(), 1, "{report}");
    let release = &orch.releases()[0];
    assert_eq!(release.reason, model::ReleaseCause::Stopped);
    assert!(release.at >= close_at && release.at - close_at <= Duration::from_millis(100));

    // The whole hour was debited, tick by tick, and covered.
    let s = orch.session(&id).expect("the session");
    assert_eq!(s.ticks(), HOUR / 5, "{report}");
    assert_eq!(s.debited(), u128::from(HOUR) * DEFAULT_PRICE_WEI, "{report}");
    assert!(s.credited() >= s.debited(), "{report}");
    // Over-payment (prepay and whole-second rounding) stays within 5 %.
    assert!(s.credited() * 100 <= s.debited() * 105, "{report}");

    // About one payment per 15 s once the runway is built (a fifth of one per 3 s interval),
    // every one accepted, none lost, no refresh missed.
    let stats = engine.stats();
    assert!((200..=300).contains(&stats.payments_accepted), "{report}");
    assert_eq!(
        u64::from(stats.payments_accepted) + 1,
        s.payments(),
        "reservation + funding"
    );
    assert_eq!(
        stats.failures + stats.lost_mints + stats.at_risk + stats.lapses,
        0,
        "{report}"
    );
    assert_eq!(world.signer().stats().rejected_400, 0, "{report}");
}
