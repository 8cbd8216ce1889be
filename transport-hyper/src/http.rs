//! The HTTP layer: pooled keep-alive hyper 1.x clients on tokio, with per-request timeouts,
//! connect timeouts, `TCP_NODELAY`, response-body caps and a TLS policy per [`Peer`].
//!
//! It moves the bytes of a core [`Request`] and hands back what came back; it never reads a
//! status or a body. hyper has no timeouts of its own: every request, including the body read,
//! runs under one `tokio::time::timeout`.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use livepay_core::engine::{Answered, Method, PayerCache, Request};
use livepay_core::{Endpoint, Failure, Peer, redact};
use rustls::pki_types::CertificateDer;

use crate::tls::{self, TlsConfigError, TlsFailure, TlsProblem};

/// HTTP settings, with documented defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Whole-request deadline, body read included. Default 5 s (the upstream SDK's).
    pub request_timeout: Duration,
    /// TCP connect deadline. Default 3 s.
    pub connect_timeout: Duration,
    /// Largest response body accepted. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Accept ANY certificate from orchestrators: no chain, name or expiry check at all, so
    /// anyone on the path can impersonate the orchestrator (the handshake only proves the peer
    /// holds the key of whatever certificate it shows). Default `false`: verified against the
    /// webpki roots and [`orchestrator_ca`](Self::orchestrator_ca).
    ///
    /// For a self-signed or privately issued orchestrator, trust its certificate or CA instead
    /// ([`with_orchestrator_ca_pem`](Self::with_orchestrator_ca_pem)): that keeps every check.
    /// When both are set, this wins.
    pub insecure_orchestrator_tls: bool,
    /// Extra trust anchors for orchestrators only, on top of the webpki roots: the self-signed
    /// certificate of an orchestrator, or the private CA that issued its certificate (self-signed
    /// certificates are common on Livepeer). Chains, names and expiry are still verified. The
    /// signer never trusts them. Default empty.
    ///
    /// [`with_orchestrator_ca_pem`](Self::with_orchestrator_ca_pem) fills it from a PEM file and
    /// checks each certificate; one set directly is checked by [`HttpClient::new`].
    pub orchestrator_ca: Vec<CertificateDer<'static>>,
    /// Accept any certificate from the signer. Default `false`; the signer holds the key, so this
    /// is a separate, explicit opt-out.
    pub insecure_signer_tls: bool,
    /// Idle keep-alive connections kept per host. Default 256 (a `Funder` shares one client).
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept. Default 90 s.
    pub pool_idle_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            max_body_bytes: 1 << 20,
            insecure_orchestrator_tls: false,
            orchestrator_ca: Vec::new(),
            insecure_signer_tls: false,
            max_idle_per_host: 256,
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

impl HttpConfig {
    /// This configuration, also trusting the certificates in `pem` for orchestrators (see
    /// [`orchestrator_ca`](Self::orchestrator_ca)): the contents of a `--orchestrator-ca` file,
    /// one or more `CERTIFICATE` sections (other sections, such as a key, are skipped). Calls add
    /// up.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError`] when `pem` holds no certificate, is not well-formed PEM, or holds a
    /// section that is not a valid X.509 certificate. No certificate of a refused file is
    /// added; `self` is consumed either way (clone it first to keep it).
    pub fn with_orchestrator_ca_pem(mut self, pem: &[u8]) -> Result<Self, TlsConfigError> {
        self.orchestrator_ca.extend(tls::parse_ca_pem(pem)?);
        Ok(self)
    }
}

/// Lists the CA certificates by count: their bytes only clutter logs.
impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            request_timeout,
            connect_timeout,
            max_body_bytes,
            insecure_orchestrator_tls,
            orchestrator_ca,
            insecure_signer_tls,
            max_idle_per_host,
            pool_idle_timeout,
        } = self;
        f.debug_struct("HttpConfig")
            .field("request_timeout", request_timeout)
            .field("connect_timeout", connect_timeout)
            .field("max_body_bytes", max_body_bytes)
            .field("insecure_orchestrator_tls", insecure_orchestrator_tls)
            .field("orchestrator_ca", &orchestrator_ca.len())
            .field("insecure_signer_tls", insecure_signer_tls)
            .field("max_idle_per_host", max_idle_per_host)
            .field("pool_idle_timeout", pool_idle_timeout)
            .finish()
    }
}

/// Why a request got no usable HTTP answer. Messages hold no secret: URLs are shown without
/// user-info and query, and no header value or body is quoted.
///
/// [`failure`](Self::failure) is what the core is told; the variants keep the detail for logs
/// and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not an absolute `http`/`https` URL with a host, or the request cannot be built
    /// from it (an invalid header). Nothing was sent.
    BadUrl(String),
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection could not be made: refused, DNS, connect timeout. Nothing was sent.
    Connect(String),
    /// The TLS handshake failed: an untrusted or invalid certificate, no common protocol, the
    /// peer hung up mid-handshake. Nothing was sent. Why, typed, is
    /// [`tls_problem`](Self::tls_problem).
    Tls(TlsFailure),
    /// The connection failed mid-request, or the answer was not valid HTTP.
    Io(String),
    /// The body exceeded the cap.
    BodyTooLarge {
        /// The cap, bytes.
        limit: usize,
    },
    /// The TLS configuration could not be built (no request was made), e.g. a bad certificate
    /// in [`HttpConfig::orchestrator_ca`].
    TlsConfig(String),
}

impl HttpError {
    /// What the core's engine is told ([`Engine::handle_failure`]), and so what its status
    /// table decides on: a refused connection is transient, a TLS failure or an oversized body
    /// terminal (`docs/protocol.md` §2; overridable per row).
    ///
    /// [`Engine::handle_failure`]: livepay_core::engine::Engine::handle_failure
    pub const fn failure(&self) -> Failure {
        match self {
            Self::BadUrl(_) => Failure::BadUrl,
            Self::Timeout => Failure::Timeout,
            Self::Connect(_) => Failure::Refused,
            Self::Tls(_) | Self::TlsConfig(_) => Failure::Tls,
            Self::Io(_) => Failure::Network,
            Self::BodyTooLarge { .. } => Failure::TooLarge,
        }
    }

    /// Why the TLS handshake was refused, when it was: so that a front end can add what to do
    /// (for [`TlsProblem::UnknownIssuer`] on an orchestrator, trust its CA). `None` for any other
    /// error, a TLS configuration error included.
    pub const fn tls_problem(&self) -> Option<TlsProblem> {
        match self {
            Self::Tls(failure) => Some(failure.problem()),
            _ => None,
        }
    }

    /// The refused handshake, when it was one: the peer, the [`TlsProblem`] and the detail.
    pub const fn tls_failure(&self) -> Option<&TlsFailure> {
        match self {
            Self::Tls(failure) => Some(failure),
            _ => None,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl(url) => write!(f, "bad URL `{url}`: expected an absolute http(s) URL"),
            Self::Timeout => f.write_str("no answer before the request timeout"),
            Self::Connect(why) => write!(f, "could not connect: {why}"),
            Self::Tls(failure) => fmt::Display::fmt(failure, f),
            Self::Io(why) => write!(f, "connection failed: {why}"),
            Self::BodyTooLarge { limit } => write!(f, "response body larger than {limit} bytes"),
            Self::TlsConfig(why) => write!(f, "TLS configuration: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

type Pool = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Two pooled keep-alive clients (orchestrators, signer) sharing one configuration, and the payer
/// address of each signer already asked (a core [`PayerCache`]). Cheap to clone: clones share the
/// pools and the cache.
#[derive(Clone)]
pub struct HttpClient {
    orchestrator: Pool,
    signer: Pool,
    config: Arc<HttpConfig>,
    payers: Arc<Mutex<PayerCache>>,
    observer: Option<Arc<dyn Observer>>,
}

/// Told of every exchange an [`HttpClient`] makes (for metrics): which request it was (the
/// core's [`Request::endpoint`]), how long it took, and the status, if an answer came (a label,
/// never read for its meaning). Called on the client's task: keep it cheap and never block.
pub trait Observer: Send + Sync {
    /// One exchange ended after `latency`; `status` is `None` when no answer came.
    fn on_exchange(&self, endpoint: Endpoint, latency: std::time::Duration, status: Option<u16>);
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .field("payers_cached", &self.payers().len())
            .finish_non_exhaustive()
    }
}

fn pool(
    config: &HttpConfig,
    insecure: bool,
    extra_roots: &[CertificateDer<'static>],
) -> Result<Pool, HttpError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    let tls = tls::client_config(insecure, extra_roots).map_err(HttpError::TlsConfig)?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(config.max_idle_per_host)
        .pool_idle_timeout(config.pool_idle_timeout)
        .build(https))
}

impl HttpClient {
    /// Clients with `config`.
    ///
    /// # Errors
    ///
    /// [`HttpError::TlsConfig`] when a TLS configuration cannot be built: a certificate in
    /// [`HttpConfig::orchestrator_ca`] that is not valid DER X.509.
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
        Ok(Self {
            orchestrator: pool(&config, config.insecure_orchestrator_tls, &config.orchestrator_ca)?,
            // The orchestrator's extra CAs are never the signer's.
            signer: pool(&config, config.insecure_signer_tls, &[])?,
            config: Arc::new(config),
            payers: Arc::default(),
            observer: None,
        })
    }

    /// The same client (sharing its pools and cache), telling `observer` of every exchange.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells the observer, if any, of an exchange with `endpoint` that started at `started`.
    pub(crate) fn observe(
        &self,
        endpoint: Endpoint,
        started: tokio::time::Instant,
        result: &Result<Answered<Bytes>, HttpError>,
    ) {
        if let Some(observer) = &self.observer {
            let status = result.as_ref().ok().map(|r| r.status);
            observer.on_exchange(endpoint, started.elapsed(), status);
        }
    }

    /// The payer address cached for the signer at `signer_url` (the exact
    /// [`ReserveOptions::signer_url`](livepay_core::engine::ReserveOptions::signer_url)), if a
    /// reservation over this client (or a clone) learnt it.
    pub fn cached_payer(&self, signer_url: &str) -> Option<String> {
        self.payers().get(signer_url).map(str::to_owned)
    }

    /// Caches `address` as the payer of the signer at `signer_url`: later reservations over
    /// this client (or a clone) do not ask the signer for it.
    pub fn cache_payer(&self, signer_url: &str, address: &str) {
        self.payers().insert(signer_url, address);
    }

    /// The payer cache shared by this client and its clones, locked. Hold the guard briefly
    /// (never across an `.await`).
    pub fn payers(&self) -> MutexGuard<'_, PayerCache> {
        // Every update is a single insert or remove: recover a poisoned guard.
        self.payers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends `request` to `request.peer()` and reads the whole answer, under the request timeout
    /// (or the request's own [`deadline`](Request::deadline), when shorter) and the body cap. Copies the body; [`execute_owned`](Self::execute_owned) does not.
    ///
    /// # Errors
    ///
    /// Why no usable answer came back ([`HttpError::failure`] says what to tell the core).
    pub async fn execute(&self, request: &Request) -> Result<Answered<Bytes>, HttpError> {
        let prepared = self.prepare(request, Bytes::copy_from_slice(&request.body))?;
        let started = tokio::time::Instant::now();
        let result = within(request.deadline, self.exchange(request.peer(), prepared)).await;
        self.observe(request.endpoint, started, &result);
        result
    }

    /// As [`execute`](Self::execute), taking the request (its body is sent without a copy).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn execute_owned(&self, request: Request) -> Result<Answered<Bytes>, HttpError> {
        let (endpoint, deadline) = (request.endpoint, request.deadline);
        let prepared = self.prepare_owned(request)?;
        let started = tokio::time::Instant::now();
        let result = within(deadline, self.exchange(endpoint.peer(), prepared)).await;
        self.observe(endpoint, started, &result);
        result
    }

    /// The hyper request of `request`, with its body moved out.
    pub(crate) fn prepare_owned(
        &self,
        mut request: Request,
    ) -> Result<http::Request<Full<Bytes>>, HttpError> {
        let body = Bytes::from(std::mem::take(&mut request.body));
        self.prepare(&request, body)
    }

    /// The hyper request of `request` with `body`.
    fn prepare(&self, request: &Request, body: Bytes) -> Result<http::Request<Full<Bytes>>, HttpError> {
        let bad_url = || HttpError::BadUrl(redact::url(&request.url).to_string());
        let uri: http::Uri = request.url.parse().map_err(|_| bad_url())?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(bad_url());
        }
        let method = match request.method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
        };
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_ref(), value.as_str());
        }
        // `http::Error` names the problem (an invalid header name or value), never the value.
        builder
            .body(Full::new(body))
            .map_err(|e| HttpError::BadUrl(format!("{}: {e}", redact::url(&request.url))))
    }

    /// Sends a prepared request to `peer`'s pool and reads the whole answer.
    pub(crate) async fn exchange(
        &self,
        peer: Peer,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Answered<Bytes>, HttpError> {
        let pool = match peer {
            Peer::Orchestrator => &self.orchestrator,
            Peer::Signer => &self.signer,
        };
        let limit = self.config.max_body_bytes;
        let exchange = async {
            let response = pool.request(request).await.map_err(|e| classify(&e, peer))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                        HttpError::BodyTooLarge { limit }
                    } else {
                        HttpError::Io(chain(&*e))
                    }
                })?
                .to_bytes();
            Ok(Answered {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(self.config.request_timeout, exchange)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }
}

/// Sorts a hyper-util client error from `peer`. A connect error is a TLS failure when the
/// handshake failed (a rustls error, whose kind is the [`TlsProblem`], or the peer hanging up
/// mid-handshake: plain TCP connecting reads nothing), and otherwise a failure to connect; any
/// other error happened after connecting.
fn classify(error: &hyper_util::client::legacy::Error, peer: Peer) -> HttpError {
    let text = chain(error);
    if !error.is_connect() {
        return HttpError::Io(text);
    }
    match handshake_problem(error) {
        Some(problem) => HttpError::Tls(TlsFailure::new(peer, problem, text)),
        None => HttpError::Connect(text),
    }
}

/// The [`TlsProblem`] of a connect error, when it is a failed handshake: the first rustls error
/// in the chain says which, and hanging up mid-handshake is [`TlsProblem::HandshakeFailed`].
fn handshake_problem(error: &(dyn StdError + 'static)) -> Option<TlsProblem> {
    let mut hung_up = false;
    for link in links(error) {
        if let Some(rustls) = link.downcast_ref::<rustls::Error>() {
            return Some(TlsProblem::of(rustls));
        }
        hung_up |= link
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::UnexpectedEof);
    }
    hung_up.then_some(TlsProblem::HandshakeFailed)
}

/// `error` and its causes. `io::Error::source` skips the error it wraps (it returns the wrapped
/// error's source), so an `io::Error`'s next link is the error it wraps: that is where rustls's
/// errors sit.
fn links<'a>(error: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&link| {
        match link.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => link.source(),
        }
    })
}

/// An error and its causes, one line, each cause once.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = String::new();
    for link in links(error) {
        let part = link.to_string();
        // An `io::Error` displays as the error it wraps: skip the repeat.
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// `exchange` under the request's own deadline (the stop's), when the engine set one: every
/// sender (the Funder, LiveSession, discovery) keeps it, however the client's timeout is set.
async fn within(
    deadline: Option<livepay_core::Duration>,
    exchange: impl std::future::Future<Output = Result<Answered<Bytes>, HttpError>>,
) -> Result<Answered<Bytes>, HttpError> {
    match deadline {
        Some(limit) => tokio::time::timeout(std::time::Duration::from_micros(limit.as_micros()), exchange)
            .await
            .unwrap_or(Err(HttpError::Timeout)),
        None => exchange.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown_issuer() -> TlsFailure {
        TlsFailure::new(
            Peer::Orchestrator,
            TlsProblem::UnknownIssuer,
            "invalid peer certificate: UnknownIssuer",
        )
    }

    #[test]
    fn every_error_maps_to_its_failure() {
        let cases = [
            (HttpError::BadUrl("x".into()), Failure::BadUrl),
            (HttpError::Timeout, Failure::Timeout),
            (HttpError::Connect("refused".into()), Failure::Refused),
            (HttpError::Tls(unknown_issuer()), Failure::Tls),
            (HttpError::Io("reset".into()), Failure::Network),
            (HttpError::BodyTooLarge { limit: 1 }, Failure::TooLarge),
            (HttpError::TlsConfig("x".into()), Failure::Tls),
        ];
        for (error, failure) in cases {
            assert_eq!(error.failure(), failure, "{error}");
        }
    }

    /// Issue 8: a bad URL, a TLS failure and an oversized body were reported as network errors,
    /// so the core retried them as transient. They are terminal by the default table now; what
    /// may have reached the server, or never connected, is still retried.
    #[test]
    fn the_default_table_retries_only_what_may_succeed_again() {
        use livepay_core::{Endpoint, Next, Outcome, Reply, StatusTable};
        let table = StatusTable::new();
        let terminal = [
            HttpError::BadUrl("x".into()),
            HttpError::Tls(unknown_issuer()),
            HttpError::BodyTooLarge { limit: 1 },
        ];
        for error in terminal {
            let next = table.next(Endpoint::Signer, Reply::from(error.failure()));
            assert!(
                matches!(next, Next::Done(Outcome::Rejected { .. })),
                "{error}: {next:?}"
            );
        }
        let transient = [
            HttpError::Connect("refused".into()),
            HttpError::Io("reset".into()),
            HttpError::Timeout,
        ];
        for error in transient {
            let next = table.next(Endpoint::Payment, Reply::from(error.failure()));
            assert!(
                matches!(next, Next::Done(Outcome::Transient { .. })),
                "{error}: {next:?}"
            );
        }
    }

    #[test]
    fn the_chain_sees_through_io_errors() {
        let rustls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = io::Error::other(io::Error::new(io::ErrorKind::InvalidData, rustls));
        let found = links(&wrapped).any(|l| l.downcast_ref::<rustls::Error>().is_some());
        assert!(found);
        assert_eq!(
            chain(&wrapped),
            "invalid peer certificate: UnknownIssuer",
            "each cause once"
        );
        assert_eq!(handshake_problem(&wrapped), Some(TlsProblem::UnknownIssuer));
    }

    #[test]
    fn a_hang_up_mid_handshake_is_a_failed_handshake_and_a_refusal_is_none() {
        let eof = io::Error::other(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(handshake_problem(&eof), Some(TlsProblem::HandshakeFailed));
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(handshake_problem(&refused), None);
    }

    #[test]
    fn only_a_tls_failure_has_a_tls_problem() {
        let tls = HttpError::Tls(unknown_issuer());
        assert_eq!(tls.tls_problem(), Some(TlsProblem::UnknownIssuer));
        assert_eq!(
            tls.to_string(),
            "TLS handshake with the orchestrator failed: the certificate is not signed by a \
             trusted authority (self-signed, or from a private CA?) (invalid peer certificate: \
             UnknownIssuer)"
        );
        for other in [
            HttpError::TlsConfig("x".into()),
            HttpError::Connect("refused".into()),
            HttpError::Timeout,
        ] {
            assert_eq!(other.tls_problem(), None, "{other}");
            assert!(other.tls_failure().is_none(), "{other}");
        }
    }
}
