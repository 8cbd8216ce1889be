//! A sans-IO protocol client (feature `alloc`): turns the protocol's steps into [`HttpRequest`]s
//! and HTTP answers into [`Reply`]s, keeping the protocol state (protocol.md §2).
//!
//! It makes **no funding decision**: what a status means is the [`StatusTable`](crate::StatusTable)'s
//! business and when to pay the [`Session`](crate::Session)'s. It only builds requests, parses
//! bodies and keeps state, so any transport (in-memory, hyper, embedded) can carry it:
//!
//! - [`ReserveFlow`]: the reservation (§2.1, §2.3): payer address, 402 challenge, first mint, paid
//!   retry, restart on a first-call 480. Drive it with [`ReserveFlow::poll_request`] and answer
//!   each request with [`ReserveFlow::handle_response`] or [`ReserveFlow::handle_failure`];
//! - [`PaymentSession`]: the funded session's state after the reservation, with one
//!   `*_request` / `on_*_response` pair per [`Transport`](crate::Transport) method.
//!
//! Secrets (signer header values, the signer `state`, minted payments and segment credentials)
//! never appear in `Debug` output or error messages.
//!
//! ```
//! use livepay_core::client::{PaymentSession, ReserveFlow, ReserveOptions};
//! use livepay_core::PaymentType;
//!
//! let options = ReserveOptions::new(
//!     "https://orch.example/apps/runner-1/session",
//!     Some("https://signer.example".into()),
//!     PaymentType::Live,
//! );
//! let mut flow = ReserveFlow::new(options)?;
//! let first = flow.poll_request().expect("the payer address comes first");
//! assert_eq!(first.url, "https://signer.example/sign-orchestrator-info");
//! // …send it, then: flow.handle_response(status, &body), until `flow.poll_done()` is `Some`.
//! # Ok::<(), livepay_core::client::ReserveError>(())
//! ```

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::classify::{Endpoint, Reply};
use crate::config::PaymentType;
use crate::wire::{self, PriceUnit, WireError};

mod reserve;
#[cfg(test)]
mod tests;

pub use reserve::{ReserveEndpoint, ReserveError, ReserveFlow, ReserveOptions, Reserved};

/// Header names of the protocol, as spelt in protocol.md.
pub mod header {
    /// The payer address on a reservation (§2.3).
    pub const PAYER_ADDRESS: &str = "Livepeer-Payer-Address";
    /// Base64 tickets (secret).
    pub const PAYMENT: &str = "Livepeer-Payment";
    /// Base64 segment credentials (secret).
    pub const SEGMENT: &str = "Livepeer-Segment";
    /// `Content-Type`.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// `Authorization` (secret).
    pub const AUTHORIZATION: &str = "Authorization";
    /// The media type of every JSON body.
    pub const JSON: &str = "application/json";
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The method name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// One request for a transport to send.
///
/// Header names are `Cow` because caller-supplied signer headers have names only known at run
/// time. `Debug` shows the values of only a few public headers (`Content-Type`,
/// `Livepeer-Payer-Address`, …) and redacts every other value, caller-supplied ones included; it
/// shows the body's length, never the body (a signer request carries the secret `state`), and
/// hides any `user:password@` in the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A `POST` to `url` without headers or body.
    pub fn post(url: impl Into<String>) -> Self {
        Self {
            method: Method::Post,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// This request with one more header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// This request with a JSON body and its `Content-Type`.
    #[must_use]
    pub fn with_json(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self.with_header(header::CONTENT_TYPE, header::JSON)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Headers whose values `Debug` may show; every other value is redacted.
const PUBLIC_HEADERS: [&str; 6] = [
    header::CONTENT_TYPE,
    header::PAYER_ADDRESS,
    "Accept",
    "Content-Length",
    "Host",
    "User-Agent",
];

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(Cow<'static, str>, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_map();
                for (name, value) in self.0 {
                    if PUBLIC_HEADERS.iter().any(|p| p.eq_ignore_ascii_case(name)) {
                        list.entry(name, value);
                    } else {
                        list.entry(name, &Redacted(value.len()));
                    }
                }
                list.finish()
            }
        }
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &SafeUrl(&self.url))
            .field("headers", &Headers(&self.headers))
            .field("body", &Len(self.body.len()))
            .finish()
    }
}

/// The answer to one request of a [`PaymentSession`]: the [`Reply`] for the
/// [`StatusTable`](crate::StatusTable), and what went wrong, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What to hand to the status table.
    pub reply: Reply,
    /// Why the answer was not a success: the error message of a non-success status, or the
    /// parse error of a malformed success (then `reply` is [`Reply::Network`]).
    pub error: Option<ProtocolError>,
}

impl Answer {
    const fn ok(status: u16) -> Self {
        Self {
            reply: Reply::Status(status),
            error: None,
        }
    }

    fn status(endpoint: Endpoint, status: u16, body: &[u8]) -> Self {
        Self {
            reply: Reply::Status(status),
            error: Some(ProtocolError::Status {
                endpoint,
                status,
                message: wire::error_message(body).to_string(),
            }),
        }
    }

    const fn malformed(endpoint: Endpoint, error: WireError) -> Self {
        Self {
            reply: Reply::Network,
            error: Some(ProtocolError::Malformed { endpoint, error }),
        }
    }
}

/// What went wrong with one request of a funded session. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A success status whose body is not what the protocol says; treated as a network error.
    Malformed {
        /// Which request.
        endpoint: Endpoint,
        /// What is wrong with the body.
        error: WireError,
    },
    /// A non-success status, with the reason from its body (at most
    /// [`MAX_ERROR_MESSAGE_LEN`](wire::MAX_ERROR_MESSAGE_LEN) bytes).
    Status {
        /// Which request.
        endpoint: Endpoint,
        /// The HTTP status.
        status: u16,
        /// The reason the body gives (may be empty).
        message: String,
    },
    /// [`PaymentSession::payment_request`] had no minted payment to send.
    NothingMinted,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { endpoint, error } => {
                write!(f, "{}: malformed success body: {error}", endpoint.as_str())
            }
            Self::Status {
                endpoint,
                status,
                message,
            } => {
                write!(f, "{} answered HTTP {status}", endpoint.as_str())?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Self::NothingMinted => f.write_str("payment: no minted payment to send"),
        }
    }
}

impl core::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A `maxPrice` ceiling for the signer (protocol.md §2.2), owned: a decimal string of wei per
/// `unit` (`"1000000000"`, `"0.0000361"`), sent as a JSON string so that no precision is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPrice {
    /// Wei per unit, as a decimal (digits, optionally `.` and more digits).
    pub price: String,
    /// What the price is per; must match the payment type
    /// ([`PaymentType::price_unit`]).
    pub unit: PriceUnit,
}

impl MaxPrice {
    /// `price` wei per `unit`.
    pub fn new(price: impl Into<String>, unit: PriceUnit) -> Self {
        Self {
            price: price.into(),
            unit,
        }
    }

    fn as_wire(&self) -> wire::MaxPrice<'_> {
        wire::MaxPrice {
            price: &self.price,
            unit: self.unit,
        }
    }
}

/// The signer's opaque `state` (secret).
#[derive(Clone, PartialEq, Eq)]
struct OwnedState {
    state: String,
    sig: String,
}

impl OwnedState {
    fn as_wire(&self) -> wire::SignerState<'_> {
        wire::SignerState {
            state: &self.state,
            sig: &self.sig,
        }
    }
}

/// A minted payment waiting to be posted (secret).
#[derive(Clone, PartialEq, Eq)]
struct Minted {
    payment: String,
    seg_creds: String,
}

/// The protocol state of a funded session: everything needed to mint, pay, refresh and stop.
/// Built by [`ReserveFlow`] from a paid reservation.
///
/// Each request has a builder and an answer handler; hand the answer's [`Answer::reply`] to the
/// [`StatusTable`](crate::StatusTable):
///
/// | transport method | request | answer |
/// |---|---|---|
/// | `request_payment` | [`signer_request`](Self::signer_request) | [`on_signer_response`](Self::on_signer_response) |
/// | `send_payment` | [`payment_request`](Self::payment_request) | [`on_payment_response`](Self::on_payment_response) |
/// | `refresh` | [`refresh_request`](Self::refresh_request) | [`on_refresh_response`](Self::on_refresh_response) |
/// | `stop` | [`stop_request`](Self::stop_request) | [`on_stop_response`](Self::on_stop_response) |
///
/// `Debug` redacts the signer header values, the state and the minted payment.
#[derive(Clone)]
pub struct PaymentSession {
    signer_url: String,
    signer_headers: Vec<(String, String)>,
    payment_type: PaymentType,
    app: Option<String>,
    max_price: Option<MaxPrice>,
    manifest_id: String,
    payment_params: String,
    payment_url: String,
    control_url: String,
    sender: String,
    state: Option<OwnedState>,
    minted: Option<Minted>,
}

/// The parts of a [`PaymentSession`] fixed at the reservation.
pub(crate) struct SessionParts {
    pub(crate) signer_url: String,
    pub(crate) signer_headers: Vec<(String, String)>,
    pub(crate) payment_type: PaymentType,
    pub(crate) app: Option<String>,
    pub(crate) max_price: Option<MaxPrice>,
    pub(crate) sender: String,
}

impl PaymentSession {
    /// A session for `challenge`, before its first mint (no state, no control URL yet).
    pub(crate) fn from_challenge(parts: SessionParts, challenge: &wire::Challenge<'_>) -> Self {
        Self {
            signer_url: parts.signer_url,
            signer_headers: parts.signer_headers,
            payment_type: parts.payment_type,
            app: parts.app,
            max_price: parts.max_price,
            manifest_id: challenge.manifest_id.to_string(),
            payment_params: challenge.payment_params.to_string(),
            payment_url: challenge.payment_url.to_string(),
            control_url: String::new(),
            sender: parts.sender,
            state: None,
            minted: None,
        }
    }

    pub(crate) fn set_control_url(&mut self, control_url: &str) {
        self.control_url = control_url.to_string();
    }

    /// The minted payment `(payment, segCreds)`, taken.
    pub(crate) fn take_minted(&mut self) -> Option<(String, String)> {
        self.minted.take().map(|m| (m.payment, m.seg_creds))
    }

    // ---- getters -------------------------------------------------------------------------

    /// The manifest id (the session id).
    pub fn manifest_id(&self) -> &str {
        &self.manifest_id
    }

    /// The current `payment_params` (replaced by each refresh).
    pub fn payment_params(&self) -> &str {
        &self.payment_params
    }

    /// The session-scoped payment URL of the challenge (a refresh never changes it).
    pub fn payment_url(&self) -> &str {
        &self.payment_url
    }

    /// The session's control URL.
    pub fn control_url(&self) -> &str {
        &self.control_url
    }

    /// The payer address (`sender` of refresh-payment).
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// The signer's base URL.
    pub fn signer_url(&self) -> &str {
        &self.signer_url
    }

    /// The payment type.
    pub fn payment_type(&self) -> PaymentType {
        self.payment_type
    }

    /// Whether the session holds a signer state (it does from the reservation's mint on).
    pub fn has_state(&self) -> bool {
        self.state.is_some()
    }

    /// Whether a minted payment waits for [`payment_request`](Self::payment_request).
    pub fn has_minted(&self) -> bool {
        self.minted.is_some()
    }

    // ---- requests and answers ------------------------------------------------------------

    /// `POST {signer}/generate-live-payment` with the current params and the latest state (no
    /// `state` key before the first mint).
    pub fn signer_request(&self) -> HttpRequest {
        let body = wire::PaymentRequest {
            orchestrator: &self.payment_params,
            payment_type: self.payment_type,
            manifest_id: &self.manifest_id,
            app: self.app.as_deref(),
            max_price: self.max_price.as_ref().map(MaxPrice::as_wire),
            state: self.state.as_ref().map(OwnedState::as_wire),
        };
        let hint = self.payment_params.len()
            + self.manifest_id.len()
            + self.app.as_ref().map_or(0, String::len)
            + self.max_price.as_ref().map_or(0, |m| m.price.len())
            + self.state.as_ref().map_or(0, |s| s.state.len() + s.sig.len());
        // `ReserveFlow::new` checked the max price, the only value `write` can refuse; should it
        // fail anyway the empty body earns a 400 from the signer: terminal, never silent.
        let body = write_vec(hint, |out| body.write(out)).unwrap_or_default();
        self.signer_post("generate-live-payment").with_json(body)
    }

    /// A `POST {signer}/{path}` with the signer headers.
    pub(crate) fn signer_post(&self, path: &str) -> HttpRequest {
        signer_post(&self.signer_url, &self.signer_headers, path)
    }

    /// Handles the signer's answer. A 200 with a complete body stores the minted payment and
    /// replaces the state; a malformed 200 is [`Reply::Network`] and keeps the previous state;
    /// any other status keeps it too.
    pub fn on_signer_response(&mut self, status: u16, body: &[u8]) -> Answer {
        if status != 200 {
            return Answer::status(Endpoint::Signer, status, body);
        }
        let mut scratch = vec![0; body.len()];
        match wire::PaymentResponse::parse(body, &mut scratch) {
            Ok(minted) => {
                self.minted = Some(Minted {
                    payment: minted.payment.to_string(),
                    seg_creds: minted.seg_creds.to_string(),
                });
                self.state = Some(OwnedState {
                    state: minted.state.state.to_string(),
                    sig: minted.state.sig.to_string(),
                });
                Answer::ok(status)
            }
            Err(error) => Answer::malformed(Endpoint::Signer, error),
        }
    }

    /// `POST {payment_url}` with the minted payment, which it takes: `None` when nothing is
    /// minted (a payment is sent at most once).
    pub fn payment_request(&mut self) -> Option<HttpRequest> {
        let minted = self.minted.take()?;
        Some(
            HttpRequest::post(self.payment_url.clone())
                .with_header(header::PAYMENT, minted.payment)
                .with_header(header::SEGMENT, minted.seg_creds),
        )
    }

    /// Handles the payment POST's answer (the 200 body, a protobuf `PaymentResult`, is ignored).
    pub fn on_payment_response(&mut self, status: u16, body: &[u8]) -> Answer {
        if (200..300).contains(&status) {
            Answer::ok(status)
        } else {
            Answer::status(Endpoint::Payment, status, body)
        }
    }

    /// `POST {origin of payment_url}/refresh-payment` with `{"sender", "manifest_id"}`.
    pub fn refresh_request(&self) -> HttpRequest {
        let origin = origin(&self.payment_url).unwrap_or_default();
        let body = wire::RefreshRequest {
            sender: &self.sender,
            manifest_id: &self.manifest_id,
        };
        let body =
            write_vec(self.sender.len() + self.manifest_id.len(), |out| body.write(out)).unwrap_or_default();
        HttpRequest::post(origin + "/refresh-payment").with_json(body)
    }

    /// Handles refresh-payment's answer: a success replaces only `payment_params` (the answer
    /// names the generic payment URL; the session-scoped one is kept).
    pub fn on_refresh_response(&mut self, status: u16, body: &[u8]) -> Answer {
        if !(200..300).contains(&status) {
            return Answer::status(Endpoint::Refresh, status, body);
        }
        let mut scratch = vec![0; body.len()];
        match wire::Challenge::parse(body, &mut scratch) {
            Ok(fresh) => {
                self.payment_params = fresh.payment_params.to_string();
                Answer::ok(status)
            }
            Err(error) => Answer::malformed(Endpoint::Refresh, error),
        }
    }

    /// `POST {control_url}/stop`, empty body.
    pub fn stop_request(&self) -> HttpRequest {
        HttpRequest::post(self.control_url.trim_end_matches('/').to_string() + "/stop")
    }

    /// Handles the stop's answer.
    pub fn on_stop_response(&mut self, status: u16, body: &[u8]) -> Answer {
        if (200..300).contains(&status) {
            Answer::ok(status)
        } else {
            Answer::status(Endpoint::Stop, status, body)
        }
    }
}

impl fmt::Debug for PaymentSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentSession")
            .field("signer_url", &SafeUrl(&self.signer_url))
            .field("signer_headers", &RedactedHeaders(&self.signer_headers))
            .field("payment_type", &self.payment_type)
            .field("app", &self.app)
            .field("max_price", &self.max_price)
            .field("manifest_id", &self.manifest_id)
            .field("payment_params", &Len(self.payment_params.len()))
            .field("payment_url", &SafeUrl(&self.payment_url))
            .field("control_url", &SafeUrl(&self.control_url))
            .field("sender", &self.sender)
            .field(
                "state",
                &self.state.as_ref().map(|s| Redacted(s.state.len() + s.sig.len())),
            )
            .field(
                "minted",
                &self
                    .minted
                    .as_ref()
                    .map(|m| Redacted(m.payment.len() + m.seg_creds.len())),
            )
            .finish()
    }
}

/// A `POST {base}/{path}` with the caller's signer headers.
fn signer_post(base: &str, headers: &[(String, String)], path: &str) -> HttpRequest {
    let mut req = HttpRequest::post(alloc::format!("{}/{path}", base.trim_end_matches('/')));
    for (name, value) in headers {
        req.headers.push((Cow::Owned(name.clone()), value.clone()));
    }
    req
}

/// Most bytes a serialised request body may take.
const MAX_BODY: usize = 16 << 20;

/// Serialises with `write` into a `Vec`, growing it while the buffer is too small.
fn write_vec(
    hint: usize,
    write: impl Fn(&mut [u8]) -> Result<usize, WireError>,
) -> Result<Vec<u8>, WireError> {
    // Field names and punctuation fit in 256 bytes; escapes rarely double a string.
    let mut buf = vec![0; hint.saturating_mul(2).saturating_add(256).min(MAX_BODY)];
    loop {
        match write(&mut buf) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Err(WireError::BufferTooSmall) if buf.len() < MAX_BODY => {
                let len = buf.len().saturating_mul(2).min(MAX_BODY);
                buf.resize(len, 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The origin of an `http`/`https` URL, `scheme://host[:port]`: scheme and host lowercased, a
/// default port (80, 443) dropped, any `user:password@` dropped. `None` for another scheme, an
/// empty or invalid host, or an invalid port. Used to compare origins and to build
/// `refresh-payment`'s URL.
///
/// ```
/// use livepay_core::client::origin;
///
/// assert_eq!(origin("HTTPS://Orch.Example:443/apps/r/session").as_deref(), Some("https://orch.example"));
/// assert_eq!(origin("http://[::1]:8935/x?y").as_deref(), Some("http://[::1]:8935"));
/// assert_eq!(origin("ftp://orch.example/"), None);
/// assert_eq!(origin("http:///path"), None);
/// ```
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = if scheme.eq_ignore_ascii_case("http") {
        "http"
    } else if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else {
        return None;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port.find(']')?;
        let after = &host_port[close + 1..];
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (&host_port[..=close], port)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let bracketed = host.starts_with('[');
    let valid_host = !host.is_empty()
        && host != "[]"
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')
                || (bracketed && matches!(b, b'[' | b']' | b':'))
        });
    if !valid_host {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    let default = if scheme == "http" { 80 } else { 443 };
    let mut out = String::with_capacity(scheme.len() + 3 + host.len() + 6);
    out.push_str(scheme);
    out.push_str("://");
    out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    if let Some(port) = port.filter(|&p| p != default) {
        out.push(':');
        out.push_str(&port.to_string());
    }
    Some(out)
}

/// Whether `s` is digits with an optional fraction (`123`, `123.45`), as `maxPrice.price` must be.
fn is_decimal(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(s),
    }
}

/// `Debug` stand-in for a secret: its length only.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0)
    }
}

/// `Debug` stand-in for a long public value: its length only.
struct Len(usize);

impl fmt::Debug for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// Caller-supplied headers: names shown, values redacted.
struct RedactedHeaders<'a>(&'a [(String, String)]);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(n, v)| (n, Redacted(v.len()))))
            .finish()
    }
}

/// A URL with any `user:password@` hidden.
struct SafeUrl<'a>(&'a str);

impl fmt::Debug for SafeUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        if let Some((scheme, rest)) = url.split_once("://") {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            if let Some((_, host)) = rest[..end].rsplit_once('@') {
                return write!(f, "\"{scheme}://<redacted>@{host}{}\"", &rest[end..]);
            }
        }
        fmt::Debug::fmt(url, f)
    }
}
