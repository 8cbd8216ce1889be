//! The TLS policy, against a self-signed HTTPS server on loopback: certificates are verified by
//! default; `insecure_orchestrator_tls` accepts the self-signed orchestrator but not a signer;
//! `insecure_signer_tls` is a separate opt-in. A refused certificate is a TLS failure
//! (`Failure::Tls`, terminal), not a failure to connect.

mod common;

use std::sync::Arc;

use common::bare_request;
use livepay_core::Failure;
use livepay_core::engine::Method;
use livepay_hyper::{HttpClient, HttpConfig, HttpError, Peer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// An HTTPS server with a self-signed certificate for `localhost` that answers 200 to anything.
async fn self_signed_server() -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
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
