//! Trusting a self-signed (or privately issued) orchestrator without accepting every certificate
//! (issue 10), against HTTPS servers on loopback with certificates made at test time:
//! - a refused certificate says why in plain words, with a typed [`TlsProblem`] the CLI can act
//!   on, and stays `Failure::Tls` for the core;
//! - [`HttpConfig::with_orchestrator_ca_pem`] trusts the certificate (or the private CA that
//!   issued it) for orchestrators, and never for the signer;
//! - a PEM file that holds no usable certificate is refused when the configuration is built, with
//!   a typed [`TlsConfigError`].

mod common;

use common::bare_request;
use livepay_core::Failure;
use livepay_core::engine::Method;
use livepay_hyper::{HttpClient, HttpConfig, HttpError, Peer, TlsConfigError, TlsProblem};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// A certificate the test servers present: the chain (leaf first) and its PEM for the client.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: KeyPair,
    /// What a user would pass as `--orchestrator-ca`: the self-signed certificate itself, or the
    /// private CA that issued the leaf.
    trust_pem: String,
}

/// A self-signed certificate for `names` (DNS names or IP addresses).
fn self_signed(names: &[&str]) -> Identity {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(owned(names)).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    Identity {
        trust_pem: cert.pem(),
        chain: vec![cert.der().clone()],
        key,
    }
}

/// A leaf for `names` issued by a fresh private CA; the CA's PEM is the one to trust.
fn issued_by_private_ca(names: &[&str]) -> Identity {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "livepay test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("leaf key");
    let mut leaf_params = CertificateParams::new(owned(names)).expect("leaf params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "livepay test orchestrator");
    let leaf = leaf_params.signed_by(&key, &ca).expect("leaf certificate");
    Identity {
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key,
        trust_pem: ca.pem(),
    }
}

/// A self-signed certificate for `localhost` whose validity ended in 2001.
fn expired_localhost() -> Identity {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(owned(&["localhost"])).expect("params");
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2001, 1, 1);
    let cert = params.self_signed(&key).expect("certificate");
    Identity {
        trust_pem: cert.pem(),
        chain: vec![cert.der().clone()],
        key,
    }
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

/// An HTTPS server on loopback presenting `identity`, answering 200 to anything. Returns its
/// port.
async fn https_server(identity: &Identity) -> u16 {
    common::https_ok_server(identity.chain.clone(), identity.key.serialize_der()).await
}

/// A TCP server on loopback that reads the client's first flight and then writes `answer` (if
/// any) and hangs up: the handshake never completes. Returns its port.
async fn not_tls_server(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the ClientHello first: closing with unread data would reset the
                // connection, which is a failure to connect rather than a handshake failure.
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(answer).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    port
}

async fn get(config: &HttpConfig, peer: Peer, url: &str) -> Result<u16, HttpError> {
    let client = HttpClient::new(config.clone()).expect("client");
    client
        .execute(&bare_request(peer, Method::Get, url))
        .await
        .map(|r| r.status)
}

/// The error of `result`, which must be a TLS failure reported to the core as `Failure::Tls`.
fn tls_error(result: Result<u16, HttpError>) -> HttpError {
    let error = result.expect_err("the handshake must fail");
    assert_eq!(error.failure(), Failure::Tls, "{error}");
    error
}

fn trusting(pem: &str) -> HttpConfig {
    HttpConfig::default()
        .with_orchestrator_ca_pem(pem.as_bytes())
        .expect("a valid CA PEM")
}

#[tokio::test]
async fn a_self_signed_orchestrator_is_refused_as_an_unknown_issuer_in_plain_words() {
    let identity = self_signed(&["localhost", "127.0.0.1"]);
    let port = https_server(&identity).await;
    let error = tls_error(
        get(
            &HttpConfig::default(),
            Peer::Orchestrator,
            &format!("https://localhost:{port}/"),
        )
        .await,
    );
    assert_eq!(error.tls_problem(), Some(TlsProblem::UnknownIssuer), "{error}");
    let failure = error.tls_failure().expect("a TLS failure");
    assert_eq!(failure.peer(), Peer::Orchestrator);
    assert!(
        failure.detail().contains("UnknownIssuer"),
        "the technical detail is kept: {failure:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("orchestrator") && message.contains("not signed by a trusted authority"),
        "plain words: {message}"
    );
    assert!(
        TlsProblem::UnknownIssuer.to_string().contains("self-signed"),
        "the problem alone names the likely cause"
    );
}

#[tokio::test]
async fn the_orchestrator_ca_makes_the_same_request_succeed() {
    let identity = self_signed(&["localhost", "127.0.0.1"]);
    let port = https_server(&identity).await;
    let config = trusting(&identity.trust_pem);
    assert_eq!(config.orchestrator_ca.len(), 1);
    assert!(!config.insecure_orchestrator_tls, "no blanket opt-out");
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{port}/");
        assert_eq!(get(&config, Peer::Orchestrator, &url).await, Ok(200), "{url}");
    }
}

#[tokio::test]
async fn a_private_ca_is_trusted_for_the_certificates_it_issued() {
    let identity = issued_by_private_ca(&["localhost"]);
    let port = https_server(&identity).await;
    let url = format!("https://localhost:{port}/");
    let error = tls_error(get(&HttpConfig::default(), Peer::Orchestrator, &url).await);
    assert_eq!(error.tls_problem(), Some(TlsProblem::UnknownIssuer), "{error}");
    assert_eq!(
        get(&trusting(&identity.trust_pem), Peer::Orchestrator, &url).await,
        Ok(200)
    );
}

#[tokio::test]
async fn the_signer_never_trusts_the_orchestrator_ca() {
    let identity = self_signed(&["localhost", "127.0.0.1"]);
    let port = https_server(&identity).await;
    let config = trusting(&identity.trust_pem);
    let url = format!("https://localhost:{port}/");
    assert_eq!(get(&config, Peer::Orchestrator, &url).await, Ok(200));
    let error = tls_error(get(&config, Peer::Signer, &url).await);
    assert_eq!(error.tls_problem(), Some(TlsProblem::UnknownIssuer), "{error}");
    assert_eq!(error.tls_failure().map(|f| f.peer()), Some(Peer::Signer));
    assert!(error.to_string().contains("signer"), "{error}");
}

#[tokio::test]
async fn a_trusted_certificate_for_another_name_is_not_valid_for_the_name() {
    let identity = self_signed(&["orchestrator.example"]);
    let port = https_server(&identity).await;
    let config = trusting(&identity.trust_pem);
    let error = tls_error(get(&config, Peer::Orchestrator, &format!("https://localhost:{port}/")).await);
    assert_eq!(error.tls_problem(), Some(TlsProblem::NotValidForName), "{error}");
    assert!(error.to_string().contains("not valid for"), "{error}");
}

#[tokio::test]
async fn a_trusted_but_expired_certificate_is_expired() {
    let identity = expired_localhost();
    let port = https_server(&identity).await;
    let config = trusting(&identity.trust_pem);
    let error = tls_error(get(&config, Peer::Orchestrator, &format!("https://localhost:{port}/")).await);
    assert_eq!(error.tls_problem(), Some(TlsProblem::Expired), "{error}");
    assert!(error.to_string().contains("expired"), "{error}");
}

#[tokio::test]
async fn a_peer_hanging_up_mid_handshake_is_a_failed_handshake() {
    let port = not_tls_server(b"").await;
    let error = tls_error(
        get(
            &HttpConfig::default(),
            Peer::Orchestrator,
            &format!("https://127.0.0.1:{port}/"),
        )
        .await,
    );
    assert_eq!(error.tls_problem(), Some(TlsProblem::HandshakeFailed), "{error}");
    assert!(
        error.to_string().contains("did not complete a TLS handshake"),
        "{error}"
    );
}

#[tokio::test]
async fn an_https_url_to_a_plain_http_server_is_a_failed_handshake() {
    let port = not_tls_server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    let error = tls_error(
        get(
            &HttpConfig::default(),
            Peer::Signer,
            &format!("https://127.0.0.1:{port}/"),
        )
        .await,
    );
    assert_eq!(error.tls_problem(), Some(TlsProblem::HandshakeFailed), "{error}");
    assert!(
        !error.tls_failure().is_some_and(|f| f.orchestrator_ca_may_help()),
        "no CA fixes this: {error}"
    );
}

#[test]
fn a_pem_without_a_certificate_is_a_typed_config_error() {
    let key_only = KeyPair::generate().expect("key").serialize_pem();
    for pem in ["", "not a PEM file at all\n", key_only.as_str()] {
        assert_eq!(
            HttpConfig::default().with_orchestrator_ca_pem(pem.as_bytes()),
            Err(TlsConfigError::NoCertificate),
            "{pem:.20}"
        );
    }
    let message = TlsConfigError::NoCertificate.to_string();
    assert!(message.contains("no certificate"), "{message}");
}

#[test]
fn a_bad_certificate_is_a_typed_config_error_naming_which() {
    let good = self_signed(&["localhost"]).trust_pem;
    // Valid base64 in a CERTIFICATE section, but not DER.
    let junk = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    let bundle = format!("{good}{junk}");
    let error = HttpConfig::default()
        .with_orchestrator_ca_pem(bundle.as_bytes())
        .expect_err("the second certificate is bad");
    assert!(
        matches!(error, TlsConfigError::BadCertificate { index: 2, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("certificate 2"), "{error}");
}

#[test]
fn a_malformed_pem_is_a_typed_config_error_that_quotes_nothing() {
    let key = KeyPair::generate().expect("key").serialize_pem();
    // A key followed by a certificate section that never ends.
    let truncated = format!("{key}-----BEGIN CERTIFICATE-----\nMIIB\n");
    let error = HttpConfig::default()
        .with_orchestrator_ca_pem(truncated.as_bytes())
        .expect_err("truncated");
    assert!(matches!(error, TlsConfigError::MalformedPem { .. }), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("MIIB") && !shown.contains("PRIVATE"), "{shown}");
}

#[test]
fn several_certificates_in_one_file_and_several_files_add_up() {
    let bundle = format!(
        "{}{}",
        self_signed(&["a.example"]).trust_pem,
        self_signed(&["b.example"]).trust_pem
    );
    let config = HttpConfig::default()
        .with_orchestrator_ca_pem(bundle.as_bytes())
        .and_then(|c| c.with_orchestrator_ca_pem(self_signed(&["c.example"]).trust_pem.as_bytes()))
        .expect("valid PEMs");
    assert_eq!(config.orchestrator_ca.len(), 3);
    assert!(HttpClient::new(config.clone()).is_ok());
    let debug = format!("{config:?}");
    assert!(
        debug.contains("orchestrator_ca: 3") && debug.len() < 1_000,
        "Debug counts the certificates rather than dumping them: {debug}"
    );
}

#[test]
fn a_bad_der_set_directly_is_refused_when_the_client_is_built() {
    let config = HttpConfig {
        orchestrator_ca: vec![CertificateDer::from(b"not DER".to_vec())],
        ..HttpConfig::default()
    };
    let error = HttpClient::new(config).expect_err("bad DER");
    assert!(matches!(error, HttpError::TlsConfig(_)), "{error:?}");
    assert_eq!(error.failure(), Failure::Tls);
    assert_eq!(error.tls_problem(), None, "not a handshake");
}
