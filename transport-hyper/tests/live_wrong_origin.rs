//! A 402 challenge whose `payment_url` is on another origin than the runner: refused before any
//! ticket is minted, since payments would carry tickets to a host the caller never chose.

mod common;

use common::{canned_server, guarded, hanging_server, http_response};
use livepay_core::PaymentType;
use livepay_core::engine::{ReserveError, ReserveOptions};
use livepay_hyper::{HttpConfig, LiveError, LiveOptions, LiveSession};

fn challenge(payment_url: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"payment_params":"CgRwYXJhbXM=","orchestrator":"http://orch.example","manifest_id":"abcd1234","payment_url":"{payment_url}"}}"#
    );
    http_response(402, "application/json", body.as_bytes())
}

async fn reserve_with_payment_url(payment_url: impl FnOnce(&str) -> String) -> LiveError {
    // `payment_url` gets an origin that is not the runner's.
    let origin = canned_server(challenge(&payment_url("http://127.0.0.1:1"))).await;
    // A signer that never answers: reaching it would turn the refusal into a timeout.
    let signer = hanging_server().await;
    let reserve = ReserveOptions::new(
        format!("{origin}/apps/live-runner/session"),
        Some(signer),
        PaymentType::Live,
    )
    .with_payer_address("0x5ac0ffee5ac0ffee5ac0ffee5ac0ffee5ac0ffee");
    let http = HttpConfig {
        request_timeout: std::time::Duration::from_millis(500),
        ..HttpConfig::default()
    };
    match guarded(
        "the reservation",
        LiveSession::reserve(LiveOptions::new(reserve).with_http(http)),
    )
    .await
    {
        Ok(session) => panic!("reserved {session:?}"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_payment_url_on_another_host_is_refused() {
    let error =
        reserve_with_payment_url(|_| "https://evil.example/apps/live-runner/session/abcd1234/payment".into())
            .await;
    assert_eq!(error, LiveError::Reserve(ReserveError::CrossOriginPaymentUrl));
    assert_eq!(
        error.to_string(),
        "reservation: the challenge's payment_url is on another origin than the runner"
    );
}

#[tokio::test]
async fn a_payment_url_on_another_port_is_refused() {
    let error =
        reserve_with_payment_url(|other| format!("{other}/apps/live-runner/session/abcd1234/payment")).await;
    assert_eq!(error, LiveError::Reserve(ReserveError::CrossOriginPaymentUrl));
}

#[tokio::test]
async fn a_payment_url_that_is_not_http_is_refused() {
    let error = reserve_with_payment_url(|_| "file:///etc/passwd".into()).await;
    assert_eq!(
        error,
        LiveError::Reserve(ReserveError::BadUrl { field: "payment_url" })
    );
}
