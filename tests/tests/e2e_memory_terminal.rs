//! End to end on the faithful model, in memory: price ceilings are terminal at the reservation
//! (signer 481, typed), while a runner price change during a funded session is not seen by that
//! session at all: the model pins the session's price at reservation, through refreshes too.

use livepay_core::engine::{MaxPrice, ReserveError};
use livepay_core::wire::PriceUnit;
use livepay_core::{Duration, PaymentType, ReleaseReason};
use livepay_mock::memory::{MemoryNet, reserve};
use livepay_mock::model::{self, DEFAULT_PRICE_WEI, Pricing, SignerConfig, World};
use livepay_tests::memory::{fund_then_close, reserve_with};

const RUNNER: &str = "live-runner";

#[test]
fn a_signer_maximum_below_the_runner_price_fails_the_reservation_with_481() {
    let config = model::ModelConfig {
        signer: SignerConfig {
            max_price_wei: Some(DEFAULT_PRICE_WEI - 1),
            ..SignerConfig::default()
        },
        ..model::ModelConfig::default()
    };
    let net = MemoryNet::new(World::new(config, 4));
    let err = reserve(&net, net.reserve_options(RUNNER, PaymentType::Live)).unwrap_err();
    assert_eq!(
        err,
        ReserveError::Signer {
            status: 481,
            message: "orchestrator price above the signer's maximum".to_owned(),
        }
    );
    assert_eq!(
        err.to_string(),
        "reservation: signer answered HTTP 481: orchestrator price above the signer's maximum"
    );
    let world = net.world();
    assert_eq!(world.signer().stats().price_481, 1);
    assert_eq!(world.signer().stats().mints, 0);
    assert_eq!(world.orchestrator().stats().challenges, 1);
    assert_eq!(world.orchestrator().stats().sessions_created, 0);
}

#[test]
fn a_max_price_below_the_runner_price_fails_the_reservation_with_481() {
    let net = MemoryNet::new(World::new(model::ModelConfig::default(), 5));
    let below = MaxPrice::new((DEFAULT_PRICE_WEI - 1).to_string(), PriceUnit::Seconds);
    let options = net
        .reserve_options(RUNNER, PaymentType::Live)
        .with_max_price(below);
    assert_eq!(
        reserve(&net, options).unwrap_err(),
        ReserveError::Signer {
            status: 481,
            message: "orchestrator price above maxPrice".to_owned(),
        }
    );
    // At the price exactly, the reservation goes through.
    let at = MaxPrice::new(DEFAULT_PRICE_WEI.to_string(), PriceUnit::Seconds);
    let options = net.reserve_options(RUNNER, PaymentType::Live).with_max_price(at);
    assert!(reserve(&net, options).expect("reserved").payment.is_some());
}

#[test]
fn a_price_change_mid_session_does_not_reach_the_funded_session() {
    let net = MemoryNet::new(World::new(model::ModelConfig::default(), 6));
    let ceiling = MaxPrice::new("1500000000", PriceUnit::Seconds);
    let options = net
        .reserve_options(RUNNER, PaymentType::Live)
        .with_max_price(ceiling.clone());
    let reserved = reserve_with(&net, options);
    let id = reserved.session_id.clone();
    let change_at = net.now() + Duration::from_secs(5 * 60);
    let mut changed = false;
    let (exit, engine, _) = fund_then_close(&net, reserved, Duration::from_secs(20 * 60), |now, _| {
        if !changed && now >= change_at {
            // Double the runner's price, above the session's maxPrice.
            let doubled = Pricing::Live {
                wei_per_second: 2 * DEFAULT_PRICE_WEI,
            };
            assert!(
                net.world_mut()
                    .orchestrator_mut()
                    .set_runner_pricing(RUNNER, doubled)
            );
            changed = true;
        }
    });
    assert!(changed);

    // Funding went on to the close: refreshes after the change still carried the pinned price,
    // so the signer never answered 481 and the orchestrator never 400 (price mismatch).
    assert_eq!(exit.reason(), Some(ReleaseReason::ClosedByClient));
    let world = net.world();
    let report = format!(
        "client {:?}\norchestrator {:?}\nsigner {:?}",
        engine.stats(),
        world.orchestrator().stats(),
        world.signer().stats()
    );
    assert!(engine.stats().refreshes >= 2, "{report}");
    assert_eq!(world.signer().stats().price_481, 0, "{report}");
    assert_eq!(world.signer().stats().rejected_400, 0, "{report}");
    assert_eq!(world.orchestrator().stats().payments_rejected, 0, "{report}");
    assert_eq!(world.orchestrator().stats().released_unpaid, 0, "{report}");
    let s = world.orchestrator().session(&id).expect("the session");
    assert_eq!(
        s.pricing(),
        Pricing::Live {
            wei_per_second: DEFAULT_PRICE_WEI
        }
    );
    assert_eq!(s.debited(), 20 * 60 * DEFAULT_PRICE_WEI, "{report}");
    drop(world);

    // A new reservation sees the new price: the same ceiling now fails with 481.
    let options = net
        .reserve_options(RUNNER, PaymentType::Live)
        .with_max_price(ceiling);
    assert_eq!(
        reserve(&net, options).unwrap_err(),
        ReserveError::Signer {
            status: 481,
            message: "orchestrator price above maxPrice".to_owned(),
        }
    );
    let fresh = reserve(&net, net.reserve_options(RUNNER, PaymentType::Live)).expect("reserved");
    let world = net.world();
    let pricing = world
        .orchestrator()
        .session(&fresh.session_id)
        .expect("new session")
        .pricing();
    assert_eq!(
        pricing,
        Pricing::Live {
            wei_per_second: 2 * DEFAULT_PRICE_WEI
        }
    );
}
