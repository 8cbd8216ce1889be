//! The HTTP layer: pooled keep-alive hyper 1.x clients on tokio, with per-request timeouts,
//! connect timeouts, `TCP_NODELAY`, response-body caps and a TLS policy per peer.
//!
//! hyper has no timeouts of its own: every request, including the body read, runs under one
//! `tokio::time::timeout`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use livepay_core::Reply;
use livepay_core::client::{HttpRequest, Method};

use crate::tls;

/// Which side a request goes to: each has its own TLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// The orchestrator (often self-signed on Livepeer).
    Orchestrator,
    /// The remote signer (holds the key: always verified unless separately opted out).
    Signer,
}

/// HTTP settings, with documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Whole-request deadline, body read included. Default 5 s (the upstream SDK's).
    pub request_timeout: Duration,
    /// TCP connect deadline. Default 3 s.
    pub connect_timeout: Duration,
    /// Largest response body accepted. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Accept any certificate from orchestrators (self-signed certificates are common on
    /// Livepeer). Default `false`: verified against the webpki roots.
    pub insecure_orchestrator_tls: bool,
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
            insecure_signer_tls: false,
            max_idle_per_host: 256,
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// Why a request got no usable HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not an absolute `http`/`https` URL.
    BadUrl(String),
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection could not be made (refused, DNS, TLS handshake, connect timeout).
    Connect(String),
    /// The connection failed mid-request, or the answer was not valid HTTP.
    Io(String),
    /// The body exceeded the cap.
    BodyTooLarge {
        /// The cap, bytes.
        limit: usize,
    },
    /// The TLS configuration could not be built.
    Tls(String),
}

impl HttpError {
    /// What the core's status table sees: a timeout, or no answer at all.
    pub fn reply(&self) -> Reply {
        match self {
            Self::Timeout => Reply::Timeout,
            _ => Reply::Network,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl(url) => write!(f, "bad URL `{url}`: expected an absolute http(s) URL"),
            Self::Timeout => f.write_str("no answer before the request timeout"),
            Self::Connect(why) => write!(f, "could not connect: {why}"),
            Self::Io(why) => write!(f, "connection failed: {why}"),
            Self::BodyTooLarge { limit } => write!(f, "response body larger than {limit} bytes"),
            Self::Tls(why) => write!(f, "TLS configuration: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A status and a (capped) body.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body, at most `max_body_bytes`.
    pub body: Bytes,
}

/// Bodies may carry signer state or tickets: print only their size.
impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

type Pool = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Payer addresses by signer URL (protocol.md §2.1: cache it per signer).
type Payers = Arc<Mutex<HashMap<String, String>>>;

/// Two pooled keep-alive clients (orchestrators, signer) sharing one configuration, and the payer
/// address of each signer already asked. Cheap to clone: clones share the pools and the cache.
#[derive(Clone)]
pub struct HttpClient {
    orchestrator: Pool,
    signer: Pool,
    config: Arc<HttpConfig>,
    payers: Payers,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn pool(config: &HttpConfig, insecure: bool) -> Result<Pool, HttpError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    let tls = tls::client_config(insecure).map_err(|e| HttpError::Tls(e.to_string()))?;
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
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
        Ok(Self {
            orchestrator: pool(&config, config.insecure_orchestrator_tls)?,
            signer: pool(&config, config.insecure_signer_tls)?,
            config: Arc::new(config),
            payers: Payers::default(),
        })
    }

    /// The payer address cached for the signer at `signer_url` (the exact
    /// [`ReserveOptions::signer_url`](livepay_core::client::ReserveOptions::signer_url)), if a
    /// reservation over this client (or a clone) learnt it.
    pub fn cached_payer(&self, signer_url: &str) -> Option<String> {
        self.payers().get(signer_url).cloned()
    }

    /// Caches `address` as the payer of the signer at `signer_url`: later reservations over
    /// this client (or a clone) skip `sign-orchestrator-info`.
    pub fn cache_payer(&self, signer_url: &str, address: String) {
        self.payers().insert(signer_url.to_owned(), address);
    }

    /// Drops the payer cached for `signer_url` if it is still `address`.
    pub(crate) fn forget_payer(&self, signer_url: &str, address: &str) {
        let mut payers = self.payers();
        if payers.get(signer_url).is_some_and(|cached| cached == address) {
            payers.remove(signer_url);
        }
    }

    fn payers(&self) -> MutexGuard<'_, HashMap<String, String>> {
        // Every update is a single insert or remove: recover a poisoned guard.
        self.payers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends `request` to `peer` and reads the whole answer, under the request timeout and the
    /// body cap.
    pub async fn execute(&self, peer: Peer, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let uri: http::Uri = request
            .url
            .parse()
            .map_err(|_| HttpError::BadUrl(crate::redact_url(&request.url)))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(HttpError::BadUrl(crate::redact_url(&request.url)));
        }
        let method = match request.method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
        };
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_ref(), value.as_str());
        }
        let http_request = builder
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|e| HttpError::BadUrl(format!("{}: {e}", crate::redact_url(&request.url))))?;
        let pool = match peer {
            Peer::Orchestrator => &self.orchestrator,
            Peer::Signer => &self.signer,
        };
        let limit = self.config.max_body_bytes;
        let exchange = async {
            let response = pool.request(http_request).await.map_err(|e| {
                if e.is_connect() {
                    HttpError::Connect(error_chain(&e))
                } else {
                    HttpError::Io(error_chain(&e))
                }
            })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                        HttpError::BodyTooLarge { limit }
                    } else {
                        HttpError::Io(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(HttpResponse { status, body })
        };
        tokio::time::timeout(self.config.request_timeout, exchange)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }
}

/// An error and its sources, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
