//! [`LiveOptions`]: what [`LiveSession::reserve`](super::LiveSession::reserve) needs.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use livepay_core::engine::{Credential, ReserveOptions};
use livepay_core::{Config, StatusTable};

use crate::http::{HttpClient, HttpConfig};

/// Where fresh signer credentials come from: called before the reservation, again before the
/// current one expires (a tenth of its life, at most 30 s, before), and after the signer
/// refuses one (401, 403). `None` from it keeps the current headers.
#[derive(Clone)]
pub struct CredentialSource(Arc<dyn Fn() -> BoxFuture<'static, Option<Credential>> + Send + Sync>);

impl CredentialSource {
    /// A source calling `refresh` for each new credential.
    pub fn new<F>(refresh: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Option<Credential>> + Send + Sync + 'static,
    {
        Self(Arc::new(refresh))
    }

    /// A fresh credential.
    pub async fn fetch(&self) -> Option<Credential> {
        (self.0)().await
    }
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialSource(..)")
    }
}

/// Default capacity of the event channel behind [`LiveSession::events`](super::LiveSession::events).
pub const DEFAULT_EVENT_CAPACITY: usize = 256;

/// Everything a [`LiveSession`](super::LiveSession) needs: the reservation, the funding
/// configuration, the HTTP settings. Build it with [`LiveOptions::new`] and the `with_*` methods,
/// or adjust the public fields.
///
/// `Debug` redacts the signer header values (see [`ReserveOptions`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LiveOptions {
    /// The reservation: runner URL, signer, payment type, signer headers, …
    pub reserve: ReserveOptions,
    /// The funding machine's configuration. Its `payment_type` must equal
    /// `reserve.payment_type`; `offchain` is ignored (the reservation's answer decides whether
    /// there is anything to fund: [`Engine::new`](livepay_core::engine::Engine::new)). Default:
    /// [`Config::new`]`(reserve.payment_type)`.
    pub config: Config,
    /// HTTP settings for a client of the session's own. Ignored when [`client`](Self::client) is
    /// set.
    pub http: HttpConfig,
    /// A shared client (its pools, its payer cache and its configuration), e.g. one per process.
    /// Default `None`: the session builds one from [`http`](Self::http).
    pub client: Option<HttpClient>,
    /// Start funding as soon as the reservation succeeds. Default `true`; with `false`, call
    /// [`LiveSession::start_payments`](super::LiveSession::start_payments) (e.g. once the media
    /// transport is open, or after subscribing to events).
    pub start_payments: bool,
    /// What every status means. Default: [`StatusTable::new`] (`docs/protocol.md` §2).
    pub table: StatusTable,
    /// How many events a slow [`events`](super::LiveSession::events) subscriber may fall behind
    /// before it skips the oldest. Default [`DEFAULT_EVENT_CAPACITY`]; clamped to `1..=65536`.
    pub event_capacity: usize,
    /// Expiring signer credentials (a token command, a JWT issuer); `None` (the default): the
    /// static signer headers of [`reserve`](Self::reserve) only.
    pub credentials: Option<CredentialSource>,
}

impl LiveOptions {
    /// Options for `reserve` with the documented defaults.
    pub fn new(reserve: ReserveOptions) -> Self {
        Self {
            config: Config::new(reserve.payment_type),
            reserve,
            http: HttpConfig::default(),
            client: None,
            start_payments: true,
            table: StatusTable::new(),
            event_capacity: DEFAULT_EVENT_CAPACITY,
            credentials: None,
        }
    }

    /// Sets where fresh signer credentials come from.
    #[must_use]
    pub fn with_credentials(mut self, source: CredentialSource) -> Self {
        self.credentials = Some(source);
        self
    }

    /// Sets the funding configuration.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the HTTP settings (for a client of the session's own).
    #[must_use]
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Uses a shared HTTP client.
    #[must_use]
    pub fn with_client(mut self, client: HttpClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Whether to start funding right after the reservation.
    #[must_use]
    pub fn with_start_payments(mut self, start: bool) -> Self {
        self.start_payments = start;
        self
    }

    /// Sets the status table.
    #[must_use]
    pub fn with_table(mut self, table: StatusTable) -> Self {
        self.table = table;
        self
    }

    /// Sets the event channel capacity.
    #[must_use]
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }
}
