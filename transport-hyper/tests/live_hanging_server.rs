//! A server that accepts connections and never answers: every request gives up at the request
//! timeout with a typed error, and nothing hangs: every wait runs under `guarded`, which fails the test
//! after its guard rather than waiting forever (no wall-clock assertions).

mod common;

use std::time::Duration as StdDuration;

use common::{
    collect_until, count, drain, fast_model, guarded, hanging_server, is_accepted, live_options,
    live_pricing, serve,
};
use livepay_core::engine::ReserveOptions;
use livepay_core::{Endpoint, Event, PaymentType, Reply};
use livepay_hyper::{HttpConfig, HttpError, LiveError, LiveOptions, LiveSession, WireProblem};
use livepay_mock::faults::FaultPlan;

fn impatient() -> HttpConfig {
    HttpConfig {
        request_timeout: StdDuration::from_millis(200),
        ..HttpConfig::default()
    }
}

#[tokio::test]
async fn a_silent_orchestrator_times_out_the_reservation() {
    let origin = hanging_server().await;
    let options = LiveOptions::new(ReserveOptions::new(
        format!("{origin}/apps/live-runner/session"),
        None,
        PaymentType::Live,
    ))
    .with_http(impatient());
    let error = guarded("the reservation", LiveSession::reserve(options))
        .await
        .expect_err("timeout");
    assert_eq!(
        error,
        LiveError::Unreachable {
            endpoint: Endpoint::Reservation,
            error: HttpError::Timeout
        }
    );
    assert_eq!(
        error.to_string(),
        "reservation: reservation got no usable answer: no answer before the request timeout"
    );
}

#[tokio::test]
async fn a_silent_signer_times_out_the_reservation() {
    let signer = hanging_server().await;
    let orchestrator = hanging_server().await;
    let options = LiveOptions::new(ReserveOptions::new(
        format!("{orchestrator}/apps/live-runner/session"),
        Some(signer),
        PaymentType::Live,
    ))
    .with_http(impatient());
    let error = guarded("the reservation", LiveSession::reserve(options))
        .await
        .expect_err("timeout");
    assert_eq!(
        error,
        LiveError::Unreachable {
            endpoint: Endpoint::OrchestratorInfo,
            error: HttpError::Timeout
        }
    );
}

#[tokio::test]
async fn a_stop_that_never_answers_fails_the_close_at_the_timeout() {
    let mut plan = FaultPlan::clean();
    plan.stop.timeout = 1.0;
    let served = serve(fast_model(live_pricing()), plan, 20).await;
    let mut http = impatient();
    http.request_timeout = StdDuration::from_millis(300);
    let session = guarded(
        "the reservation",
        LiveSession::reserve(live_options(&served).with_http(http)),
    )
    .await
    .expect("reservation");
    let mut events = session.events();
    collect_until(&mut events, "a payment", |seen| count(seen, is_accepted) >= 1).await;
    let error = guarded("close", session.close())
        .await
        .expect_err("stop times out");
    assert_eq!(
        error,
        LiveError::StopFailed {
            reply: Reply::Timeout,
            problem: Some(WireProblem::Http {
                endpoint: Endpoint::Stop,
                error: HttpError::Timeout
            })
        }
    );
    let rest = drain(&mut events).await;
    assert!(
        rest.contains(&Event::StopFailed {
            reply: Reply::Timeout
        }),
        "{rest:?}"
    );
    served.shutdown().await;
}
