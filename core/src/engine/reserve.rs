//! The reservation (`docs/protocol.md` §2.1, §2.3) as a sans-IO state machine of the same shape
//! as the [`Engine`](super::Engine): requests out, answers in, by id.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use embassy_time::Instant;

use super::adopt::Adoption;
use super::checks::{HeaderProblem, UrlProblem, check_signer_header, check_url};
use super::output::Output;
use super::payers::PayerCache;
use super::protocol::{
    MaxPrice, ProtocolError, ProtocolState, Reading, SessionParts, is_decimal, signer_post,
};
use super::request::{Request, Response, header};
use crate::classify::{Endpoint, Failure, Reply, StatusTable, Verdict};
use crate::config::PaymentType;
use crate::redact;
use crate::sequencer::RequestId;
use crate::wire::{self, WireError};

/// What a reservation needs. Build it with [`ReserveOptions::new`] and the `with_*` methods, or
/// set the public fields. `Debug` redacts the signer header values.
#[derive(Clone, PartialEq, Eq)]
pub struct ReserveOptions {
    /// The reservation URL, `POST`ed twice: `{orch}/apps/{runner_id}/session` (the discovery
    /// answer's runner `url`).
    pub runner_url: String,
    /// The remote signer's base URL; `None` for an offchain (unpriced) runner.
    pub signer_url: Option<String>,
    /// Headers sent with every signer request (e.g. `Authorization`); the values are secret.
    pub signer_headers: Vec<(String, String)>,
    /// The signer `type`.
    pub payment_type: PaymentType,
    /// The runner's app name, sent to the signer as `app`.
    pub app: Option<String>,
    /// A price ceiling for the signer; its unit must be `payment_type.price_unit()`.
    pub max_price: Option<MaxPrice>,
    /// The payer address, when already known (cached per signer): skips
    /// `sign-orchestrator-info`.
    pub payer_address: Option<String>,
    /// Most 402 challenges to ask for (a first-call 480 asks for a fresh one). Default 8, as
    /// livepeer-gateway; 0 counts as 1.
    pub max_attempts: u8,
    /// Most retries of a transient failure (a signer 5xx or timeout, an orchestrator 503, a
    /// refused connection), after 0.5 s, 1 s, then 2 s and every 2 s. Default 3.
    pub max_retries: u8,
    /// Accept a challenge whose `payment_url`, or an answer whose `control_url`, is on another
    /// origin than `runner_url`. Default `false`: payments would carry tickets, and the stop
    /// would go, to a host (or over a scheme) the caller never chose.
    pub allow_cross_origin_payment_url: bool,
}

impl ReserveOptions {
    /// Options with the defaults: no signer headers, app, max price or known payer, 8 attempts,
    /// same-origin payment URL only.
    pub fn new(runner_url: impl Into<String>, signer_url: Option<String>, payment_type: PaymentType) -> Self {
        Self {
            runner_url: runner_url.into(),
            signer_url,
            signer_headers: Vec::new(),
            payment_type,
            app: None,
            max_price: None,
            payer_address: None,
            max_attempts: 8,
            max_retries: 3,
            allow_cross_origin_payment_url: false,
        }
    }

    /// Adds a header sent with every signer request.
    #[must_use]
    pub fn with_signer_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.signer_headers.push((name.into(), value.into()));
        self
    }

    /// Sets the app name.
    #[must_use]
    pub fn with_app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// Sets the price ceiling.
    #[must_use]
    pub fn with_max_price(mut self, max_price: MaxPrice) -> Self {
        self.max_price = Some(max_price);
        self
    }

    /// Sets the known payer address.
    #[must_use]
    pub fn with_payer_address(mut self, address: impl Into<String>) -> Self {
        self.payer_address = Some(address.into());
        self
    }

    /// Sets the most retries of a transient failure.
    #[must_use]
    pub fn with_max_retries(mut self, retries: u8) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the most challenges to ask for.
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u8) -> Self {
        self.max_attempts = attempts;
        self
    }
}

impl fmt::Debug for ReserveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReserveOptions")
            .field("runner_url", &redact::url(&self.runner_url))
            .field("signer_url", &self.signer_url.as_deref().map(redact::url))
            .field("signer_headers", &redact::Headers(&self.signer_headers))
            .field("payment_type", &self.payment_type)
            .field("app", &self.app)
            .field("max_price", &self.max_price)
            .field("payer_address", &self.payer_address)
            .field("max_attempts", &self.max_attempts)
            .field("max_retries", &self.max_retries)
            .field(
                "allow_cross_origin_payment_url",
                &self.allow_cross_origin_payment_url,
            )
            .finish()
    }
}

/// A successful reservation: what an [`Engine`](super::Engine) funds.
#[derive(Debug, Clone)]
pub struct Reserved {
    /// The session id.
    pub session_id: String,
    /// Where the app is served.
    pub app_url: String,
    /// The control URL (`POST {control_url}/stop` releases the session).
    pub control_url: String,
    /// When the reservation's payment was minted: the signer's prepay runs from the instant its
    /// request left ([`ReserveFlow::handle_sent`], or the instant it was polled). For an unpriced
    /// session, when the reservation was answered. On the clock of the flow's `now`.
    pub minted_at: Instant,
    /// The payer address the reservation used; `None` offchain.
    pub payer_address: Option<String>,
    /// The funded session's protocol state; `None` for an unpriced runner (200 at once). Present
    /// for a `fixed` price too, though there is nothing to fund then.
    pub payment: Option<ProtocolState>,
}

/// Why a reservation failed. Messages quote the server's error text (at most
/// [`MAX_ERROR_MESSAGE_LEN`](wire::MAX_ERROR_MESSAGE_LEN) bytes), never a secret or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReserveError {
    /// A URL is not `http`/`https` with a non-empty host; names the option or answer field.
    BadUrl {
        /// `runner_url`, `signer_url`, `payment_url` or `control_url`.
        field: &'static str,
    },
    /// `max_price` is not a decimal or its unit does not match the payment type.
    BadMaxPrice,
    /// A request got no HTTP answer.
    Unreachable {
        /// Which request.
        endpoint: Endpoint,
        /// What came back instead.
        reply: Reply,
    },
    /// The signer refused (e.g. 481: price above a ceiling; 400; 401).
    Signer {
        /// The HTTP status.
        status: u16,
        /// The reason from the body.
        message: String,
    },
    /// The orchestrator refused (404 runner not found, 503 no capacity, 400/403 on the paid
    /// retry, …).
    Orchestrator {
        /// The HTTP status.
        status: u16,
        /// The reason from the body.
        message: String,
    },
    /// A 402 without `payment_params`, `manifest_id` and `payment_url` (e.g. an invalid payer
    /// address): an error, not a challenge.
    NotAChallenge {
        /// The HTTP status (402).
        status: u16,
        /// The reason from the body.
        message: String,
    },
    /// Offchain (no signer), but the runner asked for payment.
    PaymentRequired,
    /// The challenge's `payment_url` is on another origin than `runner_url`.
    CrossOriginPaymentUrl,
    /// The reservation's `control_url` is on another origin than `runner_url` (the stop would go
    /// to a host, or over a scheme, the caller never chose).
    CrossOriginControlUrl,
    /// `runner_url` or `signer_url` carries user-info (`user:password@`).
    UserInfoInUrl {
        /// `runner_url` or `signer_url`.
        field: &'static str,
    },
    /// A signer header cannot be sent as given (its value is never quoted: it may be secret).
    BadSignerHeader {
        /// The header's name (empty when the name itself is the problem).
        name: String,
        /// What is wrong.
        problem: HeaderProblem,
    },
    /// A success answer whose body is not what the protocol says.
    Malformed {
        /// Which request.
        endpoint: Endpoint,
        /// What is wrong with the body.
        error: WireError,
    },
    /// Every challenge's first signer call answered 480 (refresh required).
    TooManyAttempts {
        /// Challenges asked for.
        attempts: u8,
    },
    /// [`ReserveFlow::result`] was called before the flow finished.
    Unfinished,
    /// An [`Adoption`] field is unusable (empty, not a URL, not a JSON object).
    BadAdoption {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl fmt::Display for ReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = |f: &mut fmt::Formatter<'_>, message: &str| {
            if message.is_empty() {
                Ok(())
            } else {
                write!(f, ": {message}")
            }
        };
        match self {
            Self::BadUrl { field } => write!(f, "reservation: `{field}` is not an http(s) URL with a host"),
            Self::BadMaxPrice => {
                f.write_str("reservation: max price is not a decimal in the payment type's unit")
            }
            Self::Unreachable { endpoint, reply } => {
                write!(f, "reservation: {} failed: {reply}", endpoint.as_str())
            }
            Self::Signer { status, message } => {
                write!(f, "reservation: signer answered HTTP {status}")?;
                reason(f, message)
            }
            Self::Orchestrator { status, message } => {
                write!(f, "reservation: orchestrator answered HTTP {status}")?;
                reason(f, message)
            }
            Self::NotAChallenge { status, message } => {
                write!(f, "reservation: HTTP {status} without a payment challenge")?;
                reason(f, message)
            }
            Self::PaymentRequired => {
                f.write_str("reservation: the runner requires payment but no signer is configured")
            }
            Self::CrossOriginPaymentUrl => {
                f.write_str("reservation: the challenge's payment_url is on another origin than the runner")
            }
            Self::CrossOriginControlUrl => f.write_str(
                "reservation: the answer's control_url is on another origin than the runner (host, port or scheme)",
            ),
            Self::UserInfoInUrl { field } => write!(f, "reservation: `{field}` {}", UrlProblem::UserInfo),
            Self::BadSignerHeader { name, problem } => {
                write!(f, "reservation: signer header `{name}` {problem}")
            }
            Self::Malformed { endpoint, error } => {
                write!(f, "reservation: malformed {} answer: {error}", endpoint.as_str())
            }
            Self::TooManyAttempts { attempts } => write!(
                f,
                "reservation: the signer asked for a refresh on all {attempts} challenges"
            ),
            Self::Unfinished => f.write_str("reservation: not finished"),
            Self::BadAdoption { field, problem } => write!(f, "adoption: `{field}` {problem}"),
        }
    }
}

impl ReserveError {
    /// Whether the error is the peer's: an answer that breaks the protocol (a malformed body, a
    /// URL that is not one, a cross-origin URL), as opposed to a refusal, an unreachable peer or
    /// the caller's own input.
    pub fn is_protocol_violation(&self) -> bool {
        match self {
            Self::Malformed { .. } | Self::CrossOriginPaymentUrl | Self::CrossOriginControlUrl => true,
            Self::BadUrl { field } => matches!(*field, "payment_url" | "control_url"),
            _ => false,
        }
    }

    /// Whether the error is in what the caller passed (a URL, a header, the max price), found
    /// before any request.
    pub fn is_caller_input(&self) -> bool {
        match self {
            Self::BadMaxPrice
            | Self::UserInfoInUrl { .. }
            | Self::BadSignerHeader { .. }
            | Self::BadAdoption { .. } => true,
            Self::BadUrl { field } => matches!(*field, "runner_url" | "signer_url"),
            _ => false,
        }
    }
}

impl core::error::Error for ReserveError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Where a [`ReserveFlow`] is.
#[derive(Debug)]
pub(super) enum Stage {
    /// Ask the signer for the payer address.
    OrchestratorInfo,
    /// Ask for a 402 challenge (or an unpriced 200).
    Challenge,
    /// The first signer call for the challenge, no state.
    FirstMint(ProtocolState),
    /// Retry the reservation with the first payment.
    PaidRetry(ProtocolState),
    /// Finished; the result not taken yet.
    Done(Result<Reserved, ReserveError>),
    /// Finished and taken.
    Taken,
}

/// The reservation as a sans-IO state machine (`docs/protocol.md` §2.1, §2.3):
///
/// 1. `POST {signer}/sign-orchestrator-info` for the payer address (skipped when known, and
///    offchain);
/// 2. `POST {runner_url}` with `Livepeer-Payer-Address` and `{}`: a 200 is an unpriced session; a
///    402 is the challenge;
/// 3. `POST {signer}/generate-live-payment` without state; a 480 drops the challenge and goes
///    back to 2 (at most `max_attempts` challenges);
/// 4. `POST {runner_url}` again, plus `Livepeer-Payment` and `Livepeer-Segment`: 200 is the
///    session, with the state of step 3 kept for the first funding call.
///
/// Pump it like an engine: drain [`poll_output`](Self::poll_output); send each
/// [`Output::Transmit`], optionally tell the flow when it left ([`handle_sent`](Self::handle_sent)),
/// and answer it with [`handle_response`](Self::handle_response) (an HTTP answer) or
/// [`handle_failure`](Self::handle_failure) (none); sleep until an [`Output::Timeout`]; the
/// result comes once as [`Output::Done`]. Answers naming a request not in flight are ignored.
/// `Debug` redacts every secret.
#[derive(Debug)]
pub struct ReserveFlow {
    pub(super) options: ReserveOptions,
    runner_origin: String,
    pub(super) payer: Option<String>,
    /// The payer address came from a [`PayerCache`]: forget it if the flow fails.
    payer_from_cache: bool,
    attempts: u8,
    pub(super) stage: Stage,
    in_flight: Option<RequestId>,
    /// Transient failures retried so far.
    retries: u8,
    /// When the next request may go out, after a transient failure.
    retry_at: Option<Instant>,
    next_id: u64,
    /// When the first mint's request left (the prepay runs from then).
    mint_sent: Instant,
    pub(super) succeeded: Option<bool>,
    /// A paid reservation request was produced: the payment may have reached the orchestrator.
    payment_left: bool,
    /// What every answer means.
    table: StatusTable,
    /// A session reserved elsewhere, done once the payer address is known
    /// ([`ReserveFlow::adopt`]).
    pub(super) adopting: Option<Box<Adoption>>,
}

impl ReserveFlow {
    /// Whether the paid reservation has been sent (or handed to the transport): from then on
    /// the orchestrator may hold a paid session, so an interrupted caller must finish the flow
    /// and stop the session rather than drop it. Before, dropping the flow cancels it at no cost
    /// (the signer's mint is never posted).
    pub const fn payment_left(&self) -> bool {
        self.payment_left
    }

    /// A flow for `options`.
    ///
    /// # Errors
    ///
    /// [`ReserveError::BadUrl`] when `runner_url` or `signer_url` is not `http`/`https` with a
    /// host; [`ReserveError::BadMaxPrice`] when the max price is not a decimal in the payment
    /// type's unit.
    pub fn new(options: ReserveOptions) -> Result<Self, ReserveError> {
        let url_error = |field: &'static str, problem: UrlProblem| match problem {
            UrlProblem::UserInfo => ReserveError::UserInfoInUrl { field },
            UrlProblem::NotHttp | UrlProblem::BadCharacter => ReserveError::BadUrl { field },
        };
        let runner_origin = check_url(&options.runner_url).map_err(|p| url_error("runner_url", p))?;
        if let Some(signer) = &options.signer_url {
            check_url(signer).map_err(|p| url_error("signer_url", p))?;
        }
        for (name, value) in &options.signer_headers {
            check_signer_header(name, value).map_err(|problem| ReserveError::BadSignerHeader {
                name: if problem == HeaderProblem::BadName {
                    String::new()
                } else {
                    name.clone()
                },
                problem,
            })?;
        }
        if let Some(max) = &options.max_price
            && (!is_decimal(&max.price) || max.unit != options.payment_type.price_unit())
        {
            return Err(ReserveError::BadMaxPrice);
        }
        let stage = if options.signer_url.is_some() && options.payer_address.is_none() {
            Stage::OrchestratorInfo
        } else {
            Stage::Challenge
        };
        Ok(Self {
            payer: options.payer_address.clone(),
            options,
            runner_origin,
            payer_from_cache: false,
            attempts: 0,
            stage,
            in_flight: None,
            retries: 0,
            retry_at: None,
            next_id: 1,
            mint_sent: Instant::from_ticks(0),
            succeeded: None,
            payment_left: false,
            table: StatusTable::new(),
            adopting: None,
        })
    }

    /// The same flow, reading answers with `table` (its reservation rows: `OrchestratorInfo`,
    /// `Reservation`, `Signer`, `PaidReservation`).
    #[must_use]
    pub const fn with_table(mut self, table: StatusTable) -> Self {
        self.table = table;
        self
    }

    /// The next thing for the driver to do, as for an [`Engine`](super::Engine)
    /// ([`Engine::poll_output`](super::Engine::poll_output)): a request to send
    /// ([`Output::Transmit`]), the instant of a retry to sleep until ([`Output::Timeout`]), or,
    /// once, the result ([`Output::Done`]). `None` while a request is in flight (or after the
    /// result was taken). Drain it after every input.
    pub fn poll_output(&mut self, now: Instant) -> Option<Output<Result<Reserved, ReserveError>>> {
        if let Some(request) = self.poll_request(now) {
            return Some(Output::Transmit(request));
        }
        if let Some(result) = self.poll_done() {
            return Some(Output::Done(result));
        }
        self.poll_timeout().map(Output::Timeout)
    }

    /// A flow for `options` that takes the payer address from `cache` when the options name
    /// none (skipping `sign-orchestrator-info`). After the flow, hand the cache to
    /// [`update_cache`](Self::update_cache).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_cache(mut options: ReserveOptions, cache: &PayerCache) -> Result<Self, ReserveError> {
        let cached = match (&options.payer_address, &options.signer_url) {
            (None, Some(signer)) => cache.get(signer).map(ToString::to_string),
            _ => None,
        };
        let from_cache = cached.is_some();
        if from_cache {
            options.payer_address = cached;
        }
        let mut flow = Self::new(options)?;
        flow.payer_from_cache = from_cache;
        Ok(flow)
    }

    /// Teaches `cache` what this finished flow learnt: a successful flow caches the payer address
    /// it used; a failed flow that used a cached address drops it, so a stale address costs one
    /// failed reservation at most. Does nothing before the flow is done.
    pub fn update_cache(&self, cache: &mut PayerCache) {
        let Some(signer) = &self.options.signer_url else {
            return;
        };
        match (self.succeeded, &self.payer) {
            (Some(true), Some(payer)) => cache.insert(signer, payer),
            (Some(false), Some(payer)) if self.payer_from_cache => cache.forget(signer, payer),
            _ => {}
        }
    }

    /// The payer address, once known.
    pub fn payer_address(&self) -> Option<&str> {
        self.payer.as_deref()
    }

    /// Challenges asked for so far.
    pub fn attempts(&self) -> u8 {
        self.attempts
    }

    /// Whether the flow has finished (its result may have been taken).
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done(_) | Stage::Taken)
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<RequestId> {
        self.in_flight
    }

    /// When the flow wants to be polled again although nothing is in flight: the instant a
    /// retry after a transient failure may go out. `None` otherwise.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
            .filter(|_| self.in_flight.is_none() && !self.is_done())
    }

    /// The next request to send at `now`; `None` while one is in flight, while a retry waits for
    /// [`poll_timeout`](Self::poll_timeout), and once the flow is done.
    pub(crate) fn poll_request(&mut self, now: Instant) -> Option<Request> {
        if self.in_flight.is_some() || self.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        self.retry_at = None;
        let id = RequestId::new(self.next_id);
        let req = match &mut self.stage {
            Stage::OrchestratorInfo => {
                let signer = self.options.signer_url.as_deref().unwrap_or_default();
                signer_post(
                    id,
                    Endpoint::OrchestratorInfo,
                    signer,
                    &self.options.signer_headers,
                    "sign-orchestrator-info",
                )
                .with_json(b"{}".to_vec())
            }
            Stage::Challenge => {
                self.attempts = self.attempts.saturating_add(1);
                self.reservation(id, Endpoint::Reservation)
            }
            Stage::FirstMint(session) => {
                self.mint_sent = now;
                session.signer_request(id)
            }
            Stage::PaidRetry(session) => {
                let Some((payment, seg_creds)) = session.take_minted() else {
                    // Unreachable: the stage is entered right after a mint.
                    self.finish(
                        now,
                        Err(ReserveError::Malformed {
                            endpoint: Endpoint::Signer,
                            error: WireError::MissingField("payment"),
                        }),
                    );
                    return None;
                };
                self.payment_left = true;
                self.reservation(id, Endpoint::PaidReservation)
                    .with_header(header::PAYMENT, payment)
                    .with_header(header::SEGMENT, seg_creds)
            }
            Stage::Done(_) | Stage::Taken => return None,
        };
        self.next_id += 1;
        self.in_flight = Some(id);
        Some(req)
    }

    /// Request `id` left at `at`: for the first mint, the signer's prepay runs from then.
    /// Ignored unless `id` is in flight.
    pub fn handle_sent(&mut self, at: Instant, id: RequestId) {
        if self.in_flight == Some(id) && matches!(self.stage, Stage::FirstMint(_)) {
            self.mint_sent = self.mint_sent.max(at);
        }
    }

    /// `POST {runner_url}` with `{}` and, when paying, the payer address.
    fn reservation(&self, id: RequestId, what: Endpoint) -> Request {
        let req = Request::post(id, what, self.options.runner_url.clone()).with_json(b"{}".to_vec());
        match (&self.options.signer_url, &self.payer) {
            (Some(_), Some(payer)) => req.with_header(header::PAYER_ADDRESS, payer.clone()),
            _ => req,
        }
    }

    /// The endpoint of the request in flight.
    fn endpoint(&self) -> Endpoint {
        match self.stage {
            Stage::OrchestratorInfo => Endpoint::OrchestratorInfo,
            Stage::FirstMint(_) => Endpoint::Signer,
            Stage::PaidRetry(_) => Endpoint::PaidReservation,
            Stage::Challenge | Stage::Done(_) | Stage::Taken => Endpoint::Reservation,
        }
    }

    /// Request `id` got no HTTP answer at `now`: the flow fails with
    /// [`ReserveError::Unreachable`]. Ignored unless `id` is in flight.
    pub fn handle_failure(&mut self, now: Instant, id: RequestId, failure: Failure) {
        if self.in_flight != Some(id) {
            return;
        }
        self.in_flight = None;
        let endpoint = self.endpoint();
        if self.table.verdict(endpoint, Reply::from(failure)) == Verdict::Transient && self.retry_later(now) {
            return;
        }
        self.finish(
            now,
            Err(ReserveError::Unreachable {
                endpoint,
                reply: Reply::from(failure),
            }),
        );
    }

    /// After a transient failure of the request just answered (the table's
    /// [`Verdict::Transient`]): schedules a retry and says so, while retries remain. A stateless
    /// request (the payer address, the challenge, the first mint) is sent again; a paid
    /// reservation that failed starts over from a fresh challenge, since its tickets may have
    /// been credited (a replay would be refused).
    fn retry_later(&mut self, now: Instant) -> bool {
        if self.retries >= self.options.max_retries {
            return false;
        }
        if matches!(self.stage, Stage::PaidRetry(_)) {
            if self.attempts >= self.options.max_attempts.max(1) {
                return false;
            }
            self.stage = Stage::Challenge;
        }
        let delay_ms = [500, 1_000]
            .get(usize::from(self.retries))
            .copied()
            .unwrap_or(2_000);
        self.retries += 1;
        self.retry_at = Some(now + embassy_time::Duration::from_millis(delay_ms));
        true
    }

    /// Request `id` got `response` at `now`. Ignored unless `id` is in flight.
    pub fn handle_response(&mut self, now: Instant, id: RequestId, response: &Response<'_>) {
        if self.in_flight != Some(id) {
            return;
        }
        self.in_flight = None;
        let (status, body) = (response.status, response.body);
        let verdict = self.table.verdict(self.endpoint(), Reply::Status(status));
        if verdict == Verdict::Transient && self.retry_later(now) {
            return;
        }
        let stage = core::mem::replace(&mut self.stage, Stage::Taken);
        let next = match stage {
            Stage::OrchestratorInfo => self.on_orchestrator_info(verdict, status, body),
            Stage::Challenge => self.on_reservation(verdict, status, body, now),
            Stage::FirstMint(session) => self.on_first_mint(session, status, body),
            Stage::PaidRetry(session) => self.on_paid_reservation(session, verdict, status, body),
            done @ (Stage::Done(_) | Stage::Taken) => done,
        };
        match next {
            Stage::Done(result) => self.finish(now, result),
            other => self.stage = other,
        }
    }

    fn on_orchestrator_info(&mut self, verdict: Verdict, status: u16, body: &[u8]) -> Stage {
        if verdict != Verdict::Success {
            return Stage::Done(Err(signer_error(status, body)));
        }
        let mut scratch = alloc::vec![0; body.len()];
        match wire::OrchestratorInfoSignature::parse(body, &mut scratch) {
            Ok(info) => {
                self.payer = Some(info.address.to_string());
                match self.adopting.take() {
                    Some(adoption) => Stage::Done(Ok(self.adopted(*adoption))),
                    None => Stage::Challenge,
                }
            }
            Err(error) => Stage::Done(Err(ReserveError::Malformed {
                endpoint: Endpoint::OrchestratorInfo,
                error,
            })),
        }
    }

    fn on_reservation(&mut self, verdict: Verdict, status: u16, body: &[u8], now: Instant) -> Stage {
        match verdict {
            Verdict::Success => {
                self.mint_sent = now;
                Stage::Done(self.reserved(body, None, Endpoint::Reservation))
            }
            Verdict::Challenge if self.options.signer_url.is_none() => {
                Stage::Done(Err(ReserveError::PaymentRequired))
            }
            Verdict::Challenge => {
                let mut scratch = alloc::vec![0; body.len()];
                let Ok(challenge) = wire::Challenge::parse(body, &mut scratch) else {
                    return Stage::Done(Err(ReserveError::NotAChallenge {
                        status,
                        message: wire::error_message(body).to_string(),
                    }));
                };
                match check_url(challenge.payment_url) {
                    Err(_) => return Stage::Done(Err(ReserveError::BadUrl { field: "payment_url" })),
                    Ok(o) if o != self.runner_origin && !self.options.allow_cross_origin_payment_url => {
                        return Stage::Done(Err(ReserveError::CrossOriginPaymentUrl));
                    }
                    Ok(_) => {}
                }
                let parts = SessionParts {
                    signer_url: self.options.signer_url.clone().unwrap_or_default(),
                    signer_headers: self.options.signer_headers.clone(),
                    payment_type: self.options.payment_type,
                    app: self.options.app.clone(),
                    max_price: self.options.max_price.clone(),
                    sender: self.payer.clone().unwrap_or_default(),
                };
                Stage::FirstMint(ProtocolState::from_challenge(parts, &challenge))
            }
            _ => Stage::Done(Err(orchestrator_error(status, body))),
        }
    }

    fn on_first_mint(&mut self, mut session: ProtocolState, status: u16, body: &[u8]) -> Stage {
        let Reading { reply, error } = session.on_signer_response(status, body);
        match (self.table.verdict(Endpoint::Signer, reply), error) {
            (Verdict::Minted, _) => Stage::PaidRetry(session),
            (Verdict::RefreshRequired, _) => {
                if self.attempts >= self.options.max_attempts.max(1) {
                    Stage::Done(Err(ReserveError::TooManyAttempts {
                        attempts: self.attempts,
                    }))
                } else {
                    // Drop this challenge; a fresh 402 brings a new manifest id.
                    Stage::Challenge
                }
            }
            (_, Some(ProtocolError::Malformed { error, .. })) => Stage::Done(Err(ReserveError::Malformed {
                endpoint: Endpoint::Signer,
                error,
            })),
            _ => Stage::Done(Err(signer_error(status, body))),
        }
    }

    /// The result, taken once the flow is done; `None` before, and after it was taken.
    pub(crate) fn poll_done(&mut self) -> Option<Result<Reserved, ReserveError>> {
        if !matches!(self.stage, Stage::Done(_)) {
            return None;
        }
        match core::mem::replace(&mut self.stage, Stage::Taken) {
            Stage::Done(result) => Some(result),
            _ => None,
        }
    }

    /// The result; [`ReserveError::Unfinished`] if the flow is not done (or the result was
    /// already taken with [`poll_output`](Self::poll_output)).
    ///
    /// # Errors
    ///
    /// Why the reservation failed.
    pub fn result(mut self) -> Result<Reserved, ReserveError> {
        self.poll_done().unwrap_or(Err(ReserveError::Unfinished))
    }

    fn finish(&mut self, _now: Instant, result: Result<Reserved, ReserveError>) {
        self.succeeded = Some(result.is_ok());
        self.stage = Stage::Done(result);
    }

    fn on_paid_reservation(
        &self,
        session: ProtocolState,
        verdict: Verdict,
        status: u16,
        body: &[u8],
    ) -> Stage {
        if verdict != Verdict::Success {
            return Stage::Done(Err(orchestrator_error(status, body)));
        }
        Stage::Done(self.reserved(body, Some(session), Endpoint::PaidReservation))
    }

    /// A reservation's 200 body as the result.
    fn reserved(
        &self,
        body: &[u8],
        payment: Option<ProtocolState>,
        endpoint: Endpoint,
    ) -> Result<Reserved, ReserveError> {
        let mut scratch = alloc::vec![0; body.len()];
        let r = wire::Reservation::parse(body, &mut scratch)
            .map_err(|error| ReserveError::Malformed { endpoint, error })?;
        match check_url(r.control_url) {
            Err(_) => return Err(ReserveError::BadUrl { field: "control_url" }),
            Ok(o) if o != self.runner_origin && !self.options.allow_cross_origin_payment_url => {
                return Err(ReserveError::CrossOriginControlUrl);
            }
            Ok(_) => {}
        }
        let payment = payment.map(|mut p| {
            p.set_control_url(r.control_url);
            p
        });
        Ok(Reserved {
            session_id: r.session_id.to_string(),
            app_url: r.app_url.to_string(),
            control_url: r.control_url.to_string(),
            minted_at: self.mint_sent,
            payer_address: self.payer.clone().filter(|_| self.options.signer_url.is_some()),
            payment,
        })
    }
}

fn signer_error(status: u16, body: &[u8]) -> ReserveError {
    ReserveError::Signer {
        status,
        message: wire::error_message(body).to_string(),
    }
}

fn orchestrator_error(status: u16, body: &[u8]) -> ReserveError {
    ReserveError::Orchestrator {
        status,
        message: wire::error_message(body).to_string(),
    }
}
