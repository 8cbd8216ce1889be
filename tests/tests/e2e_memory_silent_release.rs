//! End to end on the faithful model, in memory: when funding stops, the orchestrator releases
//! the session silently at the first tick its balance cannot cover; funding started again learns
//! of it from the 404 on its first payment POST and reports `Released(Gone)`.

use futures::stream;
use livepay_core::engine::ProtocolError;
use livepay_core::{Command, Duration, Endpoint, Exit, ReleaseReason};
use livepay_mock::memory::MemoryNet;
use livepay_mock::model::{self, World};
use livepay_tests::memory::{command_at, fund, reserve_live, resume};

#[test]
fn a_session_released_while_unfunded_is_reported_gone_on_the_next_payment() {
    let net = MemoryNet::new(World::new(model::ModelConfig::default(), 3));
    let reserved = reserve_live(&net);
    let id = reserved.session_id.clone();
    let clock = net.clock();

    // Fund for 30 s, then stop funding (without closing).
    let stop_at = clock.now() + Duration::from_secs(30);
    let stop = command_at(clock, stop_at, Command::Stop);
    let (exit, mut engine) = fund(&net, reserved, &livepay_tests::live_config(), stop, |_, _| {});
    assert!(matches!(exit, Exit::Stopped { .. }), "{exit:?}");
    let stopped = clock.now();
    assert!(stopped - stop_at <= Duration::from_millis(100));
    let paid_before = engine.stats().payments_accepted;
    assert!(paid_before >= 10, "{:?}", engine.stats());
    assert_eq!(net.world().released_at(&id), None, "still funded when stopped");
    let funded_until = engine.funded_until();
    assert!(
        funded_until > stopped + Duration::from_secs(10),
        "runway {}",
        funded_until - stopped
    );

    // A minute of silence: the orchestrator releases the session on a tick, telling no one.
    clock.advance(Duration::from_secs(60));
    let (released_at, reason) = {
        let world = net.world();
        let s = world.orchestrator().session(&id).expect("the session");
        s.released().expect("released while unfunded")
    };
    assert!(matches!(reason, model::ReleaseCause::InsufficientBalance { fee, balance } if fee > balance));
    // The release came at the first 5 s tick past the end of the credit, which the core's
    // runway model had estimated (prepay plus the rounding surplus it built on purpose).
    assert!(
        released_at > funded_until - Duration::from_secs(1)
            && released_at <= funded_until + Duration::from_secs(5),
        "released at {released_at}, stopped at {stopped}, estimated end of credit {funded_until}"
    );
    assert_eq!(
        engine.stats().payments_accepted,
        paid_before,
        "nothing was sent meanwhile"
    );

    // Funding starts again: the first cycle mints, its POST answers 404, the session is gone.
    let restarted = clock.now();
    let exit = resume(&net, &mut engine, stream::pending(), |_, _| {});
    assert_eq!(exit.reason(), Some(ReleaseReason::Gone));
    assert!(
        clock.now() - restarted <= Duration::from_millis(100),
        "seen at once"
    );
    assert_eq!(
        engine.last_problem(),
        Some(&ProtocolError::Status {
            endpoint: Endpoint::Payment,
            status: 404,
            message: "session not found".to_owned(),
        })
    );
    let world = net.world();
    assert_eq!(world.orchestrator().stats().payments_rejected, 1);
    assert_eq!(world.orchestrator().stats().released_unpaid, 1);
    // The signer billed that last mint although no one credited it: one lost payment.
    assert_eq!(
        world.signer().stats().mints,
        world.orchestrator().stats().payments_accepted + 1
    );
    assert_eq!(engine.stats().payments_accepted, paid_before);
}
