//! A hand-written server answering the reservation with bodies no orchestrator should send:
//! oversized, malformed JSON, not JSON, truncated, not HTTP. Each is a typed error; nothing panics.

mod common;

use common::{canned_server, guarded, http_response};
use livepay_core::Endpoint;
use livepay_core::PaymentType;
use livepay_core::engine::{ReserveError, ReserveOptions};
use livepay_hyper::{HttpConfig, HttpError, LiveError, LiveOptions, LiveSession};

/// Reserves against a server answering `response` to everything. With `paid`, a signer is
/// configured and the payer known, so the first request is still the reservation and a 402 is
/// read as a challenge.
async fn reserve_against(response: Vec<u8>, paid: bool) -> LiveError {
    let origin = canned_server(response).await;
    let reserve = if paid {
        ReserveOptions::new(
            format!("{origin}/apps/live-runner/session"),
            Some(origin.clone()),
            PaymentType::Live,
        )
        .with_payer_address("0x5ac0ffee5ac0ffee5ac0ffee5ac0ffee5ac0ffee")
    } else {
        ReserveOptions::new(
            format!("{origin}/apps/live-runner/session"),
            None,
            PaymentType::Live,
        )
    };
    let http = HttpConfig {
        max_body_bytes: 1024,
        request_timeout: std::time::Duration::from_secs(2),
        ..HttpConfig::default()
    };
    let options = LiveOptions::new(reserve).with_http(http);
    match guarded("the reservation", LiveSession::reserve(options)).await {
        Ok(session) => panic!("reserved {session:?}"),
        Err(error) => {
            // Every error prints.
            assert!(!error.to_string().is_empty());
            error
        }
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_at_the_cap() {
    let body = vec![b'x'; 4096];
    let error = reserve_against(http_response(200, "application/json", &body), false).await;
    assert_eq!(
        error,
        LiveError::Unreachable {
            endpoint: Endpoint::Reservation,
            error: HttpError::BodyTooLarge { limit: 1024 }
        }
    );
}

#[tokio::test]
async fn malformed_json_is_a_typed_error() {
    let error = reserve_against(
        http_response(200, "application/json", br#"{"session_id": "abc", "app_url": "#),
        false,
    )
    .await;
    assert!(
        matches!(
            error,
            LiveError::Reserve(ReserveError::Malformed {
                endpoint: Endpoint::Reservation,
                ..
            })
        ),
        "{error:?}"
    );
    let error = reserve_against(
        http_response(
            402,
            "application/json",
            br#"{"payment_params": "abc", "manifest_id": "#,
        ),
        true,
    )
    .await;
    assert!(
        matches!(
            error,
            LiveError::Reserve(ReserveError::NotAChallenge { status: 402, .. })
        ),
        "{error:?}"
    );
    // Well-formed JSON without the reservation's fields.
    let error = reserve_against(
        http_response(200, "application/json", br#"{"session_id": "abc"}"#),
        false,
    )
    .await;
    assert!(
        matches!(error, LiveError::Reserve(ReserveError::Malformed { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn non_json_bodies_are_typed_errors() {
    let error = reserve_against(http_response(200, "text/html", b"<html>hello</html>"), false).await;
    assert!(
        matches!(
            error,
            LiveError::Reserve(ReserveError::Malformed {
                endpoint: Endpoint::Reservation,
                ..
            })
        ),
        "{error:?}"
    );
    let error = reserve_against(http_response(402, "text/plain", b"invalid payment header"), true).await;
    assert_eq!(
        error,
        LiveError::Reserve(ReserveError::NotAChallenge {
            status: 402,
            message: "invalid payment header".into()
        })
    );
    let error = reserve_against(
        http_response(402, "application/octet-stream", &[0xff, 0xfe, 0x00, 0x80]),
        true,
    )
    .await;
    assert!(
        matches!(
            error,
            LiveError::Reserve(ReserveError::NotAChallenge { status: 402, .. })
        ),
        "{error:?}"
    );
    let error = reserve_against(http_response(503, "text/plain", b"no capacity"), false).await;
    assert_eq!(
        error,
        LiveError::Reserve(ReserveError::Orchestrator {
            status: 503,
            message: "no capacity".into()
        })
    );
}

#[tokio::test]
async fn truncated_bodies_and_non_http_answers_are_io_errors() {
    let mut truncated =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n".to_vec();
    truncated.extend_from_slice(br#"{"session_"#);
    let error = reserve_against(truncated, false).await;
    assert!(
        matches!(
            error,
            LiveError::Unreachable {
                endpoint: Endpoint::Reservation,
                error: HttpError::Io(_)
            }
        ),
        "{error:?}"
    );
    let error = reserve_against(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(), false).await;
    assert!(
        matches!(
            error,
            LiveError::Unreachable {
                endpoint: Endpoint::Reservation,
                error: HttpError::Io(_)
            }
        ),
        "{error:?}"
    );
    // An empty answer: the connection closes before a status line.
    let error = reserve_against(Vec::new(), false).await;
    assert!(
        matches!(
            error,
            LiveError::Unreachable {
                endpoint: Endpoint::Reservation,
                error: HttpError::Io(_)
            }
        ),
        "{error:?}"
    );
}
