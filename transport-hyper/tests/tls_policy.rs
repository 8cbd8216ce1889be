//! The TLS policy, against a self-signed HTTPS server on loopback: certificates are verified by
//! default; `insecure_orchestrator_tls` accepts the self-signed orchestrator but not a signer;
//! `insecure_signer_tls` is a separate opt-in. A refused certificate is a TLS failure
//! (`Failure::Tls`, terminal), not a failure to connect.

mod common;

use common::bare_request;
use livepay_core::Failure;
use livepay_core::engine::Method;
use livepay_hyper::{HttpClient, HttpConfig, HttpError, Peer};
use tokio_rustls::rustls::pki_types::CertificateDer;

/// An HTTPS server with a self-signed certificate for `localhost` that answers 200 to anything.
async fn self_signed_server() -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let port = common::https_ok_server(vec![cert], certified.signing_key.serialize_der()).await;
    format!("https://localhost:{port}/")
}

async fn get(config: HttpConfig, peer: Peer, url: &str) -> Result<u16, HttpError> {
    let client = HttpClient::new(config).expect("client");
    client
        .execute(&bare_request(peer, Method::Get, url))
        .await
        .map(|r| r.status)
}

/// Whether `result` is a refused certificate, reported as a TLS failure.
fn is_refused_certificate(result: &Result<u16, HttpError>) -> bool {
    matches!(result, Err(error @ HttpError::Tls(why))
        if error.failure() == Failure::Tls && why.contains("invalid peer certificate"))
}

#[tokio::test]
async fn certificates_are_verified_by_default() {
    let url = self_signed_server().await;
    for peer in [Peer::Orchestrator, Peer::Signer] {
        let result = get(HttpConfig::default(), peer, &url).await;
        assert!(is_refused_certificate(&result), "{peer:?}: {result:?}");
    }
}

#[tokio::test]
async fn the_orchestrator_opt_in_accepts_a_self_signed_orchestrator_only() {
    let url = self_signed_server().await;
    let config = HttpConfig {
        insecure_orchestrator_tls: true,
        ..HttpConfig::default()
    };
    assert_eq!(get(config.clone(), Peer::Orchestrator, &url).await, Ok(200));
    let signer = get(config, Peer::Signer, &url).await;
    assert!(
        is_refused_certificate(&signer),
        "the signer stays verified: {signer:?}"
    );
}

#[tokio::test]
async fn the_signer_opt_out_is_separate() {
    let url = self_signed_server().await;
    let config = HttpConfig {
        insecure_signer_tls: true,
        ..HttpConfig::default()
    };
    assert_eq!(get(config.clone(), Peer::Signer, &url).await, Ok(200));
    assert!(is_refused_certificate(
        &get(config, Peer::Orchestrator, &url).await
    ));
}
