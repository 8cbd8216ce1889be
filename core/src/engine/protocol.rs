//! The protocol state of a reserved session ([`ProtocolState`]): its URLs, the payment params,
//! the signer's state and the payment minted but not yet posted; how each request is built from
//! it, and how each answer updates it (`docs/protocol.md` §2).
//!
//! It makes **no funding decision**: what a status means is the [`StatusTable`](crate::StatusTable)'s
//! business and when to pay the [`Session`](crate::Session)'s. The
//! [`Engine`](super::Engine) calls it; nothing else needs to.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::request::{Request, header};
use crate::classify::{Endpoint, Reply};
use crate::config::PaymentType;
use crate::redact::{self, Len, Redacted};
use crate::sequencer::RequestId;
use crate::tickets::{MintedTickets, TicketValue, UnitPrice};
use crate::wire::{self, PriceUnit, WireError};

/// What the protocol layer read from one [`Response`](super::Response) to a request of a
/// [`ProtocolState`]: the [`Reply`] for the [`StatusTable`](crate::StatusTable), and what went
/// wrong, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// What to hand to the status table.
    pub reply: Reply,
    /// Why the answer was not a success: the error message of a non-success status, or the
    /// parse error of a malformed success (then `reply` is [`Reply::Malformed`]).
    pub error: Option<ProtocolError>,
}

impl Reading {
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
            reply: Reply::Malformed,
            error: Some(ProtocolError::Malformed { endpoint, error }),
        }
    }
}

/// What went wrong with one request of a funded session. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A success status whose body is not what the protocol says ([`Reply::Malformed`]).
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
    /// A payment POST was due, but no minted payment was held.
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

/// A `maxPrice` ceiling for the signer (`docs/protocol.md` §2.2), owned: a decimal string of wei per
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

/// The signer's opaque `state`, the JSON object as it sent it (secret): sent back byte for byte.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct OwnedState(pub(super) String);

impl OwnedState {
    fn as_wire(&self) -> wire::RawObject<'_> {
        // Built from a `RawObject`, so it is one.
        wire::RawObject::new(&self.0).unwrap_or(wire::RawObject::EMPTY)
    }
}

/// A minted payment waiting to be posted (secret).
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Minted {
    pub(super) payment: String,
    pub(super) seg_creds: String,
}

/// The protocol state of a reserved session: everything needed to mint, pay, refresh and stop.
/// Built by [`ReserveFlow`](super::ReserveFlow) from a reservation, carried by an
/// [`Engine`](super::Engine), and handed over whole (another task, process or funder adopts it).
///
/// Each request has a builder and an answer handler, one pair per [`Endpoint`]:
///
/// | endpoint | request | answer |
/// |---|---|---|
/// | signer | [`signer_request`](Self::signer_request) | [`on_signer_response`](Self::on_signer_response) |
/// | payment | [`payment_request`](Self::payment_request) | [`on_payment_response`](Self::on_payment_response) |
/// | refresh | [`refresh_request`](Self::refresh_request) | [`on_refresh_response`](Self::on_refresh_response) |
/// | stop | [`stop_request`](Self::stop_request) | [`on_stop_response`](Self::on_stop_response) |
///
/// `Debug` redacts the signer header values, the state and the minted payment.
#[derive(Clone)]
pub struct ProtocolState {
    pub(super) signer_url: String,
    pub(super) signer_headers: Vec<(String, String)>,
    pub(super) payment_type: PaymentType,
    pub(super) app: Option<String>,
    pub(super) max_price: Option<MaxPrice>,
    pub(super) manifest_id: String,
    pub(super) payment_params: String,
    pub(super) payment_url: String,
    pub(super) control_url: String,
    pub(super) sender: String,
    pub(super) state: Option<OwnedState>,
    pub(super) minted: Option<Minted>,
    /// The price the orchestrator debits this session at: the one its reservation's payment
    /// expected (go-livepeer fixes it at the first payment, `core/orchestrator.go` L148-151).
    pub(super) session_price: Option<UnitPrice>,
    /// What the tickets of the last mint buy at that price, when they could be read.
    pub(super) last_mint_value: Option<TicketValue>,
    /// Payment answers that carried fresh params ([`params_renewed`](Self::params_renewed)).
    pub(super) params_renewed: u32,
}

/// The parts of a [`ProtocolState`] fixed at the reservation.
pub(crate) struct SessionParts {
    pub(crate) signer_url: String,
    pub(crate) signer_headers: Vec<(String, String)>,
    pub(crate) payment_type: PaymentType,
    pub(crate) app: Option<String>,
    pub(crate) max_price: Option<MaxPrice>,
    pub(crate) sender: String,
}

impl ProtocolState {
    /// The state of an unpriced session: only its id and control URL (nothing is ever minted).
    pub(crate) fn unpriced(session_id: &str, control_url: &str) -> Self {
        Self {
            signer_url: String::new(),
            signer_headers: Vec::new(),
            payment_type: PaymentType::Live,
            app: None,
            max_price: None,
            manifest_id: session_id.to_string(),
            payment_params: String::new(),
            payment_url: String::new(),
            control_url: control_url.to_string(),
            sender: String::new(),
            state: None,
            minted: None,
            session_price: None,
            last_mint_value: None,
            params_renewed: 0,
        }
    }

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
            session_price: None,
            last_mint_value: None,
            params_renewed: 0,
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

    /// Whether a minted payment is held: the last one minted, kept until the next mint replaces
    /// it, so that a failed POST can be repeated ([`repost_request`](Self::repost_request)).
    pub fn has_minted(&self) -> bool {
        self.minted.is_some()
    }

    // ---- requests and answers ------------------------------------------------------------

    /// `POST {signer}/generate-live-payment` with the current params and the latest state (no
    /// `state` key before the first mint).
    pub fn signer_request(&self, id: RequestId) -> Request {
        self.signer_request_with(id, self.state.as_ref())
    }

    /// `POST {signer}/generate-live-payment` with no state at all, as a reservation's first call:
    /// the signer starts a fresh ledger ([`Action::Resync`](crate::Action::Resync)). The state it
    /// answers with replaces the previous one.
    pub fn fresh_signer_request(&self, id: RequestId) -> Request {
        self.signer_request_with(id, None)
    }

    fn signer_request_with(&self, id: RequestId, state: Option<&OwnedState>) -> Request {
        let body = wire::PaymentRequest {
            orchestrator: &self.payment_params,
            payment_type: self.payment_type,
            manifest_id: &self.manifest_id,
            app: self.app.as_deref(),
            max_price: self.max_price.as_ref().map(MaxPrice::as_wire),
            state: state.map(OwnedState::as_wire),
        };
        let hint = self.payment_params.len()
            + self.manifest_id.len()
            + self.app.as_ref().map_or(0, String::len)
            + self.max_price.as_ref().map_or(0, |m| m.price.len())
            + state.map_or(0, |s| s.0.len());
        // `ReserveFlow::new` checked the max price, the only value `write` can refuse; should it
        // fail anyway the empty body earns a 400 from the signer: terminal, never silent.
        let body = write_vec(hint, |out| body.write(out)).unwrap_or_default();
        signer_post(
            id,
            Endpoint::Signer,
            &self.signer_url,
            &self.signer_headers,
            "generate-live-payment",
        )
        .with_json(body)
    }

    /// Handles the signer's answer. A 200 with a complete body stores the minted payment and
    /// replaces the state; a malformed 200 is [`Reply::Malformed`] and keeps the previous state;
    /// any other status keeps it too.
    pub fn on_signer_response(&mut self, status: u16, body: &[u8]) -> Reading {
        if status != 200 {
            return Reading::status(Endpoint::Signer, status, body);
        }
        let mut scratch = vec![0; body.len()];
        self.last_mint_value = None;
        match wire::PaymentResponse::parse(body, &mut scratch) {
            Ok(minted) => {
                self.last_mint_value = self.value_of(minted.payment);
                self.minted = Some(Minted {
                    payment: minted.payment.to_string(),
                    seg_creds: minted.seg_creds.to_string(),
                });
                self.state = Some(OwnedState(minted.state.as_str().to_string()));
                Reading::ok(status)
            }
            Err(error) => Reading::malformed(Endpoint::Signer, error),
        }
    }

    /// What the tickets of a `live` payment buy at the session's price (the first payment
    /// read fixes it); `None` when the payment cannot be read (a signer that does not mint
    /// `net.Payment` tickets) or the session is not priced per second.
    fn value_of(&mut self, payment: &str) -> Option<TicketValue> {
        if self.payment_type != PaymentType::Live {
            return None;
        }
        let tickets = MintedTickets::read(payment).ok()?;
        if self.session_price.is_none() {
            self.session_price = tickets.price;
        }
        tickets.value_at(self.session_price?)
    }

    /// Sets signer header `name` to `value` (replacing one of the same name, any case), for every
    /// later signer request: a rotated credential.
    pub fn set_signer_header(&mut self, name: &str, value: &str) {
        self.signer_headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.signer_headers.push((name.to_string(), value.to_string()));
    }

    /// How many payment answers carried fresh payment params that replaced ours (a JSON
    /// challenge in the 200, go-livepeer #4029 and livepeer/node): each is a 480-and-refresh
    /// round trip the signer did not need.
    pub fn params_renewed(&self) -> u32 {
        self.params_renewed
    }

    /// The session's price as its payments state it, once one could be read.
    pub fn session_price(&self) -> Option<UnitPrice> {
        self.session_price
    }

    /// What the tickets of the last mint buy, when they could be read (see
    /// [`Session::handle_ticket_value`](crate::Session::handle_ticket_value)).
    pub fn last_mint_value(&self) -> Option<TicketValue> {
        self.last_mint_value
    }

    /// `POST {payment_url}` with the minted payment: `None` when nothing was minted. The payment
    /// is kept (until the next mint replaces it), so that a failed POST can be repeated.
    pub fn payment_request(&self, id: RequestId) -> Option<Request> {
        self.post_minted(id, Endpoint::Payment)
    }

    /// The same POST again, for a [`Action::Repost`](crate::Action::Repost): the same payment,
    /// the same headers. `None` when nothing was minted.
    pub fn repost_request(&self, id: RequestId) -> Option<Request> {
        self.post_minted(id, Endpoint::Repost)
    }

    fn post_minted(&self, id: RequestId, endpoint: Endpoint) -> Option<Request> {
        let minted = self.minted.as_ref()?;
        Some(
            Request::post(id, endpoint, self.payment_url.clone())
                .with_header(header::PAYMENT, minted.payment.clone())
                .with_header(header::SEGMENT, minted.seg_creds.clone()),
        )
    }

    /// Handles the payment POST's answer (the 200 body, a protobuf `PaymentResult`, is ignored).
    pub fn on_payment_response(&mut self, status: u16, body: &[u8]) -> Reading {
        if (200..300).contains(&status) {
            // Credited: nothing is left to repeat, and the secret need not be kept.
            self.minted = None;
            // go-livepeer #4029 and livepeer/node answer with a fresh JSON challenge: its params
            // replace ours (a refresh the signer will not need to ask for); `payment_url` stays the
            // session-scoped one. A protobuf `PaymentResult` or an empty body changes nothing.
            if body.first() == Some(&b'{') {
                let mut scratch = vec![0; body.len()];
                if let Ok(fresh) = wire::Challenge::parse(body, &mut scratch)
                    && fresh.payment_params != self.payment_params
                {
                    self.payment_params = fresh.payment_params.to_string();
                    self.params_renewed = self.params_renewed.saturating_add(1);
                }
            }
            Reading::ok(status)
        } else {
            Reading::status(Endpoint::Payment, status, body)
        }
    }

    /// `POST {origin of payment_url}/refresh-payment` with `{"sender", "manifest_id"}`.
    pub fn refresh_request(&self, id: RequestId) -> Request {
        let origin = origin(&self.payment_url).unwrap_or_default();
        let body = wire::RefreshRequest {
            sender: &self.sender,
            manifest_id: &self.manifest_id,
        };
        let body =
            write_vec(self.sender.len() + self.manifest_id.len(), |out| body.write(out)).unwrap_or_default();
        Request::post(id, Endpoint::Refresh, origin + "/refresh-payment").with_json(body)
    }

    /// Handles refresh-payment's answer: a success replaces only `payment_params` (the answer
    /// names the generic payment URL; the session-scoped one is kept).
    pub fn on_refresh_response(&mut self, status: u16, body: &[u8]) -> Reading {
        if !(200..300).contains(&status) {
            return Reading::status(Endpoint::Refresh, status, body);
        }
        let mut scratch = vec![0; body.len()];
        match wire::Challenge::parse(body, &mut scratch) {
            Ok(fresh) => {
                self.payment_params = fresh.payment_params.to_string();
                Reading::ok(status)
            }
            Err(error) => Reading::malformed(Endpoint::Refresh, error),
        }
    }

    /// `POST {control_url}/stop`, empty body.
    pub fn stop_request(&self, id: RequestId) -> Request {
        let url = self.control_url.trim_end_matches('/').to_string() + "/stop";
        Request::post(id, Endpoint::Stop, url)
    }

    /// Handles the stop's answer.
    pub fn on_stop_response(&mut self, status: u16, body: &[u8]) -> Reading {
        if (200..300).contains(&status) {
            Reading::ok(status)
        } else {
            Reading::status(Endpoint::Stop, status, body)
        }
    }
}

impl fmt::Debug for ProtocolState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolState")
            .field("signer_url", &redact::url(&self.signer_url))
            .field("signer_headers", &redact::Headers(&self.signer_headers))
            .field("payment_type", &self.payment_type)
            .field("app", &self.app)
            .field("max_price", &self.max_price)
            .field("manifest_id", &self.manifest_id)
            .field("payment_params", &Len(self.payment_params.len()))
            .field("payment_url", &redact::url(&self.payment_url))
            .field("control_url", &redact::url(&self.control_url))
            .field("sender", &self.sender)
            .field("state", &self.state.as_ref().map(|s| Redacted(s.0.len())))
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

/// A `POST {base}/{path}` to the signer with the caller's signer headers.
pub(crate) fn signer_post(
    id: RequestId,
    endpoint: Endpoint,
    base: &str,
    headers: &[(String, String)],
    path: &str,
) -> Request {
    let url = alloc::format!("{}/{path}", base.trim_end_matches('/'));
    let mut req = Request::post(id, endpoint, url);
    for (name, value) in headers {
        req.headers.push((Cow::Owned(name.clone()), value.clone()));
    }
    req
}

/// Most bytes a serialised request body may take.
const MAX_BODY: usize = 16 << 20;

/// Serialises with `write` into a `Vec`, growing it while the buffer is too small.
pub(crate) fn write_vec(
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
/// use livepay_core::engine::origin;
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
pub(crate) fn is_decimal(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(s),
    }
}
