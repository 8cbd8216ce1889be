//! What cannot be funded: a price above the signer's ceiling (481), a fixed-price session, a
//! fixed-price runner reserved as `live`, an unpriced runner; and a stop the orchestrator does
//! not acknowledge.

mod common;

use common::{
    RUNNER, collect_until, drain, fast_config, fast_model, guarded, live_options, live_pricing, quick_http,
    serve,
};
use livepay_core::engine::{ProtocolError, ReserveError, ReserveOptions};
use livepay_core::{ConfigError, Endpoint, Event, PaymentType, ReleaseReason, Reply, State};
use livepay_hyper::{LiveError, LiveOptions, LiveSession, WireProblem};
use livepay_mock::faults::FaultPlan;
use livepay_mock::model::{Pricing, ReleaseCause as ModelRelease};

#[tokio::test]
async fn a_price_above_the_signer_ceiling_fails_the_reservation_with_481() {
    let mut model = fast_model(live_pricing());
    model.signer.max_price_wei = Some(500_000_000);
    let served = serve(model, FaultPlan::clean(), 10).await;
    let error = guarded("the reservation", LiveSession::reserve(live_options(&served)))
        .await
        .expect_err("481");
    assert_eq!(
        error,
        LiveError::Reserve(ReserveError::Signer {
            status: 481,
            message: "orchestrator price above the signer's maximum".into()
        })
    );
    assert_eq!(
        error.to_string(),
        "reservation: signer answered HTTP 481: orchestrator price above the signer's maximum"
    );
    let (challenges, created) = served.with_world(|w| {
        let stats = w.orchestrator().stats();
        (stats.challenges, stats.sessions_created)
    });
    assert_eq!((challenges, created), (1, 0));
    served.shutdown().await;
}

fn fixed_options(served: &livepay_mock::serve::ServedModel, payment_type: PaymentType) -> LiveOptions {
    LiveOptions::new(ReserveOptions::new(
        served.runner_url(RUNNER),
        Some(served.signer_url()),
        payment_type,
    ))
    .with_http(quick_http())
}

#[tokio::test]
async fn a_fixed_price_session_has_nothing_to_fund_and_closes() {
    let served = serve(
        fast_model(Pricing::Fixed { wei: 3_000_000_000 }),
        FaultPlan::clean(),
        11,
    )
    .await;
    let session = guarded(
        "the reservation",
        LiveSession::reserve(fixed_options(&served, PaymentType::Fixed)),
    )
    .await
    .expect("reservation");
    let id = session.session_id().to_owned();
    assert!(!session.is_metered());
    assert_eq!(session.payment_url(), None);
    let mut events = session.events();
    session.start_payments().expect("a no-op");
    session.start_payments().expect("still a no-op");
    guarded("stop", session.stop_payments()).await;
    assert_eq!(session.state(), State::Reserved);

    let reason = guarded("close", session.close()).await.expect("close");
    assert_eq!(reason, ReleaseReason::ClosedByClient);
    assert_eq!(
        drain(&mut events).await,
        [Event::StateChanged {
            from: State::Reserved,
            to: State::Released {
                reason: ReleaseReason::ClosedByClient
            }
        }]
    );
    let (released, payments, signer_calls) = served.with_world(|w| {
        let s = w.orchestrator().session(&id).expect("session");
        (s.released(), s.payments(), w.signer().stats().calls)
    });
    assert!(
        matches!(released, Some((_, ModelRelease::Stopped))),
        "{released:?}"
    );
    // The paid reservation only.
    assert_eq!((payments, signer_calls), (1, 1));
    served.shutdown().await;
}

/// The model's signer checks the requested type against the orchestrator's params, so a
/// fixed-price runner reserved as `live` never gets as far as a payment (whose answer would be
/// 409, rejected): the first mint is refused with 400.
#[tokio::test]
async fn a_fixed_price_runner_reserved_as_live_is_refused_by_the_signer() {
    let served = serve(
        fast_model(Pricing::Fixed { wei: 3_000_000_000 }),
        FaultPlan::clean(),
        12,
    )
    .await;
    let options = fixed_options(&served, PaymentType::Live).with_config(fast_config());
    let error = guarded("the reservation", LiveSession::reserve(options))
        .await
        .expect_err("400");
    assert_eq!(
        error,
        LiveError::Reserve(ReserveError::Signer {
            status: 400,
            message: "type does not match the orchestrator's pricing".into()
        })
    );
    let (rejected_400, created) = served.with_world(|w| {
        (
            w.signer().stats().rejected_400,
            w.orchestrator().stats().sessions_created,
        )
    });
    assert_eq!((rejected_400, created), (1, 0));
    served.shutdown().await;
}

#[tokio::test]
async fn bad_configurations_fail_before_any_request() {
    let served = serve(fast_model(live_pricing()), FaultPlan::clean(), 13).await;
    let options = fixed_options(&served, PaymentType::Lv2v).with_config(fast_config());
    assert_eq!(
        LiveSession::reserve(options).await.expect_err("mismatch"),
        LiveError::PaymentTypeMismatch {
            reserve: PaymentType::Lv2v,
            config: PaymentType::Live
        }
    );
    let mut config = fast_config();
    config.interval = livepay_core::Duration::from_ticks(0);
    let options = live_options(&served).with_config(config);
    assert_eq!(
        LiveSession::reserve(options).await.expect_err("zero interval"),
        LiveError::Config(ConfigError::Zero("interval"))
    );
    assert_eq!(served.with_world(|w| w.orchestrator().stats().challenges), 0);
    served.shutdown().await;
}

#[tokio::test]
async fn an_unpriced_session_is_closed_with_the_engines_stop() {
    let served = serve(fast_model(Pricing::Unpriced), FaultPlan::clean(), 14).await;
    let options = LiveOptions::new(ReserveOptions::new(
        served.runner_url(RUNNER),
        None,
        PaymentType::Live,
    ))
    .with_http(quick_http());
    let session = guarded("the reservation", LiveSession::reserve(options))
        .await
        .expect("reservation");
    let id = session.session_id().to_owned();
    assert!(!session.is_metered());
    session.start_payments().expect("a no-op");
    let reason = guarded("close", session.close()).await.expect("close");
    assert_eq!(reason, ReleaseReason::ClosedByClient);
    let released = served.with_world(|w| w.orchestrator().session(&id).and_then(|s| s.released()));
    assert!(
        matches!(released, Some((_, ModelRelease::Stopped))),
        "{released:?}"
    );
    served.shutdown().await;
}

#[tokio::test]
async fn a_failed_stop_is_reported_and_funding_stays_stopped() {
    let mut plan = FaultPlan::clean();
    plan.stop.error_5xx = 1.0;
    let served = serve(fast_model(live_pricing()), plan, 15).await;
    let session = guarded("the reservation", LiveSession::reserve(live_options(&served)))
        .await
        .expect("reservation");
    let id = session.session_id().to_owned();
    let mut events = session.events();
    collect_until(&mut events, "a payment", |seen| {
        seen.iter().any(|e| matches!(e, Event::PaymentAccepted { .. }))
    })
    .await;
    let error = guarded("close", session.close()).await.expect_err("stop fails");
    let LiveError::StopFailed { reply, problem } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*reply, Reply::Status(503));
    assert!(
        matches!(
            problem,
            Some(p @ WireProblem::Protocol(ProtocolError::Status { endpoint: Endpoint::Stop, status: 503, .. }))
                if p.to_string().starts_with("stop answered HTTP 503")
        ),
        "{problem:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("stop failed (HTTP 503); funding is stopped"),
        "{error}"
    );
    let rest = drain(&mut events).await;
    assert!(
        rest.contains(&Event::StopFailed {
            reply: Reply::Status(503)
        }),
        "{rest:?}"
    );
    // Funding stopped: the session lapses on the orchestrator, unpaid.
    let mints = served.with_world(|w| w.signer().stats().mints);
    common::eventually("the unpaid release", || {
        served.with_world(|w| w.orchestrator().released_at(&id).is_some())
    })
    .await;
    assert_eq!(served.with_world(|w| w.signer().stats().mints), mints);
    assert_eq!(served.with_world(|w| w.orchestrator().stats().released_unpaid), 1);

    // The same for an unpriced session: nothing to fund, but its stop is the engine's too.
    let mut plan = FaultPlan::clean();
    plan.stop.error_5xx = 1.0;
    let served_unpriced = serve(fast_model(Pricing::Unpriced), plan, 16).await;
    let options = LiveOptions::new(ReserveOptions::new(
        served_unpriced.runner_url(RUNNER),
        None,
        PaymentType::Live,
    ))
    .with_http(quick_http());
    let session = guarded("the reservation", LiveSession::reserve(options))
        .await
        .expect("reservation");
    let mut events = session.events();
    let error = guarded("close", session.close()).await.expect_err("stop fails");
    assert!(
        matches!(
            &error,
            LiveError::StopFailed {
                reply: Reply::Status(503),
                problem: Some(WireProblem::Protocol(ProtocolError::Status {
                    endpoint: Endpoint::Stop,
                    ..
                }))
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        drain(&mut events).await,
        [
            Event::StopFailed {
                reply: Reply::Status(503)
            },
            Event::StateChanged {
                from: State::Reserved,
                to: State::Released {
                    reason: ReleaseReason::ClosedByClient
                }
            }
        ]
    );
    served_unpriced.shutdown().await;
    served.shutdown().await;
}
