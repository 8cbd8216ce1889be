//! The protocol engine (feature `alloc`): every byte of the protocol, built and read in one
//! place, and every decision made in one place, so that a driver is a pump.
//!
//! An [`Engine`] owns a reserved session's funding machine ([`Session`]), its
//! [`Sequencer`] (which request of an action follows which answer) and its [`ProtocolState`]
//! (URLs, payment params, signer state, the payment minted but not yet posted). Its shape is
//! str0m's: one output, [`poll_output`](Engine::poll_output), drained after every input:
//!
//! - [`Output::Transmit`]: a [`Request`] to send to its peer, answered by id with
//!   [`handle_response`](Engine::handle_response) or [`handle_failure`](Engine::handle_failure)
//!   ([`handle_sent`](Engine::handle_sent) says when its bytes actually left, so that a queue in
//!   the driver never skews billing or latency);
//! - [`Output::Persist`] and [`Output::Checkpoint`]: the session as data, when a store must (or
//!   may) keep it ([`with_write_ahead`](Engine::with_write_ahead));
//! - [`Output::NeedCredential`], [`Output::Cancel`], [`Output::Event`];
//! - [`Output::Timeout`] (the last output of a drain) and [`Output::Done`] (once per run).
//!
//! The engine never reads a clock: every input carries `now`. The reservation is its sibling of
//! the same shape and the same outputs, [`ReserveFlow`]; its [`Reserved`] result is what an
//! engine funds. [`Engine::run`] is the whole pump as an `async fn` over any [`Http`] and
//! [`Clock`](crate::Clock).
//!
//! ## The pump, by hand
//!
//! ```
//! use livepay_core::engine::{Engine, Output, Reserved, Response};
//! use livepay_core::{Config, Duration, Endpoint, Instant, StatusTable};
//! # use livepay_core::engine::doc_reserved as reserved_by_hand;
//!
//! let mut now = Instant::from_secs(0);
//! let reserved: Reserved = reserved_by_hand(now); // from a ReserveFlow
//! let mut engine = Engine::new(&Config::default(), reserved, StatusTable::new())?;
//! engine.start(now);
//! while now < Instant::from_secs(30) {
//!     match engine.poll_output(now) {
//!         Some(Output::Transmit(request)) => {
//!             // Send `request.method`, `request.url`, `request.headers`, `request.body` to
//!             // `request.peer()`; this example's signer and orchestrator answer after 10 ms.
//!             now += Duration::from_millis(10);
//!             let body: &[u8] = match request.endpoint {
//!                 Endpoint::Signer => br#"{"payment":"cA==","segCreds":"cw==","state":{"State":"eA==","Sig":"eQ=="}}"#,
//!                 _ => b"",
//!             };
//!             engine.handle_response(now, request.id, &Response::new(200, body))?;
//!         }
//!         Some(Output::Timeout(at)) => {
//!             now = at;
//!             engine.handle_timeout(now);
//!         }
//!         Some(Output::NeedCredential) => engine.handle_credential(now, None),
//!         Some(Output::Event(event)) => drop(event), // log it, count it, react to it
//!         Some(other) => unreachable!("nothing else without a store or a close: {other:?}"),
//!         None => break,
//!     }
//! }
//! assert!(engine.stats().payments_accepted >= 9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::string::String;

use embassy_time::{Duration, Instant};

use crate::classify::{Endpoint, Failure, Outcome, Peer, Reply, StatusTable, Verdict};
use crate::config::{Config, ConfigError, PaymentType};
use crate::driver::{Command, Exit};
use crate::event::{Event, State};
use crate::sequencer::{CallError, RequestId, Sequencer};
use crate::session::{Session, Stats};

mod adopt;
mod checks;
mod discovery;
mod drive;
mod output;
mod payers;
mod protocol;
mod release_watch;
mod request;
mod reserve;
mod snapshot;
pub mod spend;
#[cfg(test)]
mod tests;

pub use adopt::Adoption;
pub use checks::{HeaderProblem, UrlProblem, check_signer_header, check_url};
pub use discovery::{DiscoveredPrice, DiscoveredRunner, DiscoveryError, DiscoveryQuery};
pub use drive::{Answered, Credential, Delivery, Http};
pub use output::Output;
pub use payers::PayerCache;
pub use protocol::{MaxPrice, ProtocolError, ProtocolState, Reading, origin};
pub use release_watch::release_announced;
pub use request::{Method, Request, Response, header};
pub use reserve::{ReserveError, ReserveFlow, ReserveOptions, Reserved};
pub use snapshot::{MaxPriceSnapshot, PaymentSnapshot, Range, ResumeError, SNAPSHOT_VERSION, Snapshot};
/// The bounds of [`Snapshot::check`].
pub mod bounds {
    pub use super::snapshot::{
        MAX_BILLED_MS, MAX_COUNT, MAX_ID_LEN, MAX_OPAQUE_LEN, MAX_SPAN_MS, MAX_TICKETS, MAX_URL_LEN,
    };
}

/// Funds one reserved session: builds every request, reads every answer, decides nothing an
/// adapter could get wrong. See the [module docs](self).
///
/// # Method taxonomy
///
/// (A) getters: [`state`](Self::state), [`stats`](Self::stats), [`runway`](Self::runway),
/// [`deadline`](Self::deadline), [`session_id`](Self::session_id), [`protocol`](Self::protocol),
/// [`last_problem`](Self::last_problem), [`peek_peer`](Self::peek_peer), …;
/// (B) inputs: [`handle_timeout`](Self::handle_timeout), [`handle_sent`](Self::handle_sent),
/// [`handle_response`](Self::handle_response), [`handle_failure`](Self::handle_failure),
/// [`handle_persisted`](Self::handle_persisted), [`handle_credential`](Self::handle_credential);
/// (C) commands: [`start`](Self::start), [`stop`](Self::stop), [`close`](Self::close),
/// [`payment_due`](Self::payment_due), …;
/// (D) the one output, drained after every (B) or (C) call: [`poll_output`](Self::poll_output).
///
/// At most one request is in flight; each is answered once, by id. `Debug` redacts every secret.
#[derive(Debug, Clone)]
pub struct Engine {
    calls: Sequencer<Session>,
    protocol: ProtocolState,
    session_id: String,
    app_url: String,
    last_problem: Option<ProtocolError>,
    /// How many problems were recorded ([`problems`](Self::problems)).
    problems: u64,
    /// [`Config::stop_timeout`], put on every stop request.
    stop_timeout: embassy_time::Duration,
    /// When the signer credential should be replaced: its expiry less a margin; `None`: no
    /// known expiry.
    credential_due: Option<Instant>,
    /// The signer refused the credential (401, 403) since it was last set.
    credential_refused: bool,
    /// [`Config::prepay`]: what the reservation bought, for [`spend_wei`](Self::spend_wei).
    prepay: embassy_time::Duration,
    /// Whether a store keeps this session ([`with_write_ahead`](Self::with_write_ahead)).
    write_ahead: bool,
    /// A new signer state and the POST it holds.
    persist: Hold,
    /// A credited payment asks for a checkpoint.
    checkpoint_due: bool,
    /// [`Output::NeedCredential`] was produced and not yet answered.
    credential_asked: bool,
    /// A request abandoned by a close, for [`Output::Cancel`].
    cancelled: Option<RequestId>,
    /// [`Output::Done`] was produced in this run.
    done: bool,
    /// Owner changes so far ([`Snapshot::generation`]).
    generation: u64,
}

/// A write-ahead hold: the signer state minted by request `id` must be durable before the POST
/// that carries its tickets leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Nothing held.
    Clear,
    /// [`Output::Persist`] is due.
    Due(RequestId),
    /// Produced; waiting for [`Engine::handle_persisted`].
    Awaiting(RequestId),
}

impl Engine {
    /// An engine funding `reserved` with `config`, reading answers with `table`. The runway
    /// starts at [`Reserved::minted_at`]. The reservation decides what there is to fund:
    /// `config.payment_type` is replaced by the reservation's, and an unpriced reservation (no
    /// [`Reserved::payment`]) funds nothing (it can only be closed).
    ///
    /// # Errors
    ///
    /// The configuration is invalid ([`Config::validate`]).
    pub fn new(config: &Config, reserved: Reserved, table: StatusTable) -> Result<Self, ConfigError> {
        let mut config = *config;
        let protocol = match reserved.payment {
            Some(protocol) => {
                config.payment_type = protocol.payment_type();
                config.offchain = false;
                protocol
            }
            None => {
                config.offchain = true;
                ProtocolState::unpriced(&reserved.session_id, &reserved.control_url)
            }
        };
        let mut session = Session::new(&config, reserved.minted_at)?;
        if let Some(value) = protocol.last_mint_value() {
            session.handle_reservation_value(value);
        }
        Ok(Self {
            calls: Sequencer::new(session, table),
            protocol,
            session_id: reserved.session_id,
            app_url: reserved.app_url,
            last_problem: None,
            problems: 0,
            stop_timeout: config.stop_timeout,
            prepay: config.prepay,
            credential_due: None,
            credential_refused: false,
            write_ahead: false,
            persist: Hold::Clear,
            checkpoint_due: false,
            credential_asked: false,
            cancelled: None,
            done: false,
            generation: 0,
        })
    }

    /// The same engine, kept by a store: every new signer state is produced as
    /// [`Output::Persist`] and the POST that carries its tickets is held until
    /// [`handle_persisted`](Self::handle_persisted); every credited payment is produced as
    /// [`Output::Checkpoint`]. Without it (the default) neither is produced.
    #[must_use]
    pub fn with_write_ahead(mut self) -> Self {
        self.write_ahead = true;
        self
    }

    /// [`with_write_ahead`](Self::with_write_ahead), on a held engine.
    pub fn set_write_ahead(&mut self, on: bool) {
        self.write_ahead = on;
    }

    // ---- (A) getters ---------------------------------------------------------------------

    /// The funding machine.
    pub fn session(&self) -> &Session {
        self.calls.machine()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.session().state()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.session().stats()
    }

    /// What the session has cost so far, in wei: the reservation's prepay and every delivered
    /// mint's bill ([`Stats::billed`]) at the session's price, as the payments state it. `None`
    /// until a payment's price has been read (an unpriced session, or payments that cannot be
    /// read). An estimate from the bills the machine tracks, never above what the signer billed.
    pub fn spend_wei(&self) -> Option<u128> {
        let price = self.protocol.session_price()?;
        let prepay = if self.session().is_metered() {
            self.prepay
        } else {
            Duration::from_ticks(0)
        };
        Some(price.wei_for(prepay + self.stats().billed))
    }

    /// Estimated time from `now` until the orchestrator's credit runs out.
    pub fn runway(&self, now: Instant) -> Duration {
        self.session().runway(now)
    }

    /// The instant by which the next success must land ([`Session::deadline`]).
    pub fn deadline(&self) -> Option<Instant> {
        self.session().deadline()
    }

    /// Estimated end of the orchestrator's credit ([`Session::funded_until`]).
    pub fn funded_until(&self) -> Instant {
        self.session().funded_until()
    }

    /// Whether anything is funded after the reservation (`live`, `lv2v`).
    pub fn is_metered(&self) -> bool {
        self.session().is_metered()
    }

    /// The session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Where the app is served.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// The session's protocol state (secrets stay redacted in its `Debug`).
    pub fn protocol(&self) -> &ProtocolState {
        &self.protocol
    }

    /// The most recent problem with an answer: a non-success status with the reason its body
    /// gives, or what was wrong with a malformed success. Never a secret.
    pub fn last_problem(&self) -> Option<&ProtocolError> {
        self.last_problem.as_ref()
    }

    /// How many problems the engine has recorded so far ([`last_problem`](Self::last_problem)
    /// is the latest): a driver that reports problems tells a new one from the same one again
    /// by this count, never by reading a status.
    pub fn problems(&self) -> u64 {
        self.problems
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<RequestId> {
        self.calls.in_flight().map(|c| c.id)
    }

    /// The peer the next [`Output::Transmit`] would go to, without taking it (for inspection;
    /// a pump takes the request and queues it itself).
    pub fn peek_peer(&self) -> Option<Peer> {
        self.calls.peek_call().map(Endpoint::peer)
    }

    // ---- (C) commands --------------------------------------------------------------------

    /// Starts funding ([`Session::start`]).
    pub fn start(&mut self, now: Instant) {
        self.apply(Command::Start, now);
    }

    /// Stops funding without releasing ([`Session::stop`]): a request in flight is answered
    /// first.
    pub fn stop(&mut self, now: Instant) {
        self.apply(Command::Stop, now);
    }

    /// Stops funding, then stops the session ([`Session::close`]). A funding request in flight
    /// is abandoned ([`Output::Cancel`]; it counts as a [`Failure::Network`]: it may have
    /// arrived), so that the stop goes out at once instead of after the request's timeout.
    pub fn close(&mut self, now: Instant) {
        self.apply(Command::Close, now);
    }

    /// A payment is due now ([`Session::payment_due`]).
    pub fn payment_due(&mut self, now: Instant) {
        self.apply(Command::PaymentDue, now);
    }

    /// The session will be closed at `at` ([`Session::plan_end`]): stop building runway and let
    /// the credit run out then.
    pub fn plan_end(&mut self, now: Instant, at: Instant) {
        self.apply(Command::PlanEnd(at), now);
    }

    /// Whether the session is being closed: nothing but the stop will be sent again
    /// ([`Session::is_closing`]).
    pub fn is_closing(&self) -> bool {
        self.calls.machine().is_closing()
    }

    /// Whether the signer credential should be replaced before the next signer request: it
    /// expires within a tenth of its life (at most 30 s), or the signer refused it (401, 403).
    /// Only the signer's requests carry it, so it is asked for only when one is due.
    pub fn wants_credential(&self, now: Instant) -> bool {
        let due = self.credential_refused || self.credential_due.is_some_and(|at| now >= at);
        due && self.peek_peer() == Some(Peer::Signer)
    }

    /// The credential in hand may be stale (a source of fresh ones was just attached): the next
    /// signer request waits for a fresh one ([`Output::NeedCredential`]).
    pub fn request_credential(&mut self) {
        self.credential_refused = true;
    }

    /// A fresh signer credential (or `None`: the source had none): it replaces the header of the
    /// same name on every later signer request. A credential with an expiry is due again a tenth
    /// of its life (at most 30 s) before it ends.
    pub fn handle_credential(&mut self, now: Instant, credential: Option<&Credential>) {
        self.credential_refused = false;
        self.credential_asked = false;
        let Some(credential) = credential else {
            self.credential_due = None;
            return;
        };
        self.protocol
            .set_signer_header(&credential.name, &credential.value);
        self.credential_due = credential.expires_in.map(|life| {
            let margin = (life / 10).min(Duration::from_secs(30));
            now + (life - margin)
        });
    }

    /// The server released the session, as something outside the payment path says
    /// ([`Session::handle_release_signal`]): funding stops at once, no stop is sent, and a
    /// request in flight is abandoned ([`Output::Cancel`]).
    pub fn handle_release_signal(&mut self, now: Instant) {
        self.apply(Command::ServerReleased, now);
    }

    /// Applies `command` at `now`: a new run starts (its [`Output::Done`] is produced again when
    /// it ends). A close or a release abandons a funding request in flight.
    pub fn apply(&mut self, command: Command, now: Instant) {
        command.apply(self.calls.machine_mut(), now);
        self.done = false;
        if !(self.is_closing() || self.state().is_released()) {
            return;
        }
        if let Some(call) = self.calls.in_flight()
            && call.endpoint != Endpoint::Stop
        {
            // The driver drops the request; what it may have done is what a lost answer does.
            let _ = self.calls.handle_reply(now, call.id, Reply::Network);
            self.cancelled = Some(call.id);
        }
    }

    // ---- (B) inputs ----------------------------------------------------------------------

    /// Lets time pass ([`Session::handle_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.calls.machine_mut().handle_timeout(now);
    }

    /// Request `id`'s bytes left at `at`. Optional: without it the instant of
    /// [`Output::Transmit`] was produced counts. Ignored for a request not in flight.
    pub fn handle_sent(&mut self, at: Instant, id: RequestId) {
        let _ = self.calls.handle_sent(at, id);
    }

    /// Request `id` got `response` at `now`.
    ///
    /// # Errors
    ///
    /// [`CallError::Unknown`] when `id` is not in flight; nothing changes then.
    pub fn handle_response(
        &mut self,
        now: Instant,
        id: RequestId,
        response: &Response<'_>,
    ) -> Result<(), CallError> {
        let call = self
            .calls
            .in_flight()
            .filter(|c| c.id == id)
            .ok_or(CallError::Unknown(id))?;
        let (status, body) = (response.status, response.body);
        let answer = match call.endpoint {
            Endpoint::Signer => self.protocol.on_signer_response(status, body),
            Endpoint::Payment | Endpoint::Repost => self.protocol.on_payment_response(status, body),
            Endpoint::Refresh => self.protocol.on_refresh_response(status, body),
            Endpoint::Stop => self.protocol.on_stop_response(status, body),
            // Never a funding call (the reservation is `ReserveFlow`'s).
            Endpoint::OrchestratorInfo
            | Endpoint::Reservation
            | Endpoint::PaidReservation
            | Endpoint::Discovery
            | Endpoint::Events => return Err(CallError::Unknown(id)),
        };
        let message = match &answer.error {
            Some(ProtocolError::Status { message, .. }) => message.as_str(),
            _ => "",
        };
        // Only an answer the protocol layer found wrong can refuse a credential: a success skips
        // the second look at the table.
        if answer.error.is_some()
            && self
                .calls
                .table()
                .verdict_with(call.endpoint, answer.reply, message)
                == Verdict::CredentialRefused
        {
            // The table retries it (transient); the credential is replaced before the retry.
            self.credential_refused = true;
        }
        let outcome = self.calls.handle_answer(now, id, answer.reply, message)?;
        if answer.error.is_some() {
            self.last_problem = answer.error;
            self.problems = self.problems.wrapping_add(1);
        }
        match outcome {
            // The action goes on: the signer minted, and the POST of its tickets is next.
            None => {
                if let Some(value) = self.protocol.last_mint_value() {
                    self.calls.machine_mut().handle_ticket_value(value);
                }
                if self.write_ahead {
                    self.persist = Hold::Due(id);
                }
            }
            Some(Outcome::Paid) if self.write_ahead => self.checkpoint_due = true,
            Some(_) => {}
        }
        Ok(())
    }

    /// Request `id` got no HTTP answer at `now`, for the reason `failure`.
    ///
    /// # Errors
    ///
    /// [`CallError::Unknown`] when `id` is not in flight; nothing changes then.
    pub fn handle_failure(&mut self, now: Instant, id: RequestId, failure: Failure) -> Result<(), CallError> {
        self.calls.handle_reply(now, id, Reply::from(failure)).map(|_| ())
    }

    /// The state minted by request `id` is durable ([`Output::Persist`]): the POST it held may
    /// go. `durable: false` says the store gave up (a failing disk): the POST goes all the same
    /// (availability over crash safety), and a crash before the next durable state resumes from
    /// the one before.
    ///
    /// # Errors
    ///
    /// [`CallError::Unknown`] when no state minted by `id` is held; nothing changes then.
    pub fn handle_persisted(&mut self, id: RequestId, durable: bool) -> Result<(), CallError> {
        let _ = durable;
        match self.persist {
            Hold::Due(held) | Hold::Awaiting(held) if held == id => {
                self.persist = Hold::Clear;
                Ok(())
            }
            _ => Err(CallError::Unknown(id)),
        }
    }

    // ---- (D) the output ------------------------------------------------------------------

    /// The next thing to do at `now` ([`Output`]), in this order: an abandoned request to
    /// cancel, an event, a state to persist, a checkpoint, a credential to fetch, a request to
    /// send, the end of the run, and last the instant of the next timer. `None` when there is
    /// nothing to do and no timer (a request in flight, or a credential or persist awaited).
    ///
    /// Drain it after every input, until [`Output::Timeout`] or `None`.
    pub fn poll_output(&mut self, now: Instant) -> Option<Output> {
        if let Some(id) = self.cancelled.take() {
            return Some(Output::Cancel(id));
        }
        if let Some(event) = self.poll_event() {
            return Some(Output::Event(event));
        }
        if let Hold::Due(id) = self.persist {
            self.persist = Hold::Awaiting(id);
            return Some(Output::Persist {
                id,
                snapshot: alloc::boxed::Box::new(self.snapshot(now)),
            });
        }
        if core::mem::take(&mut self.checkpoint_due) && self.state().is_funding() {
            return Some(Output::Checkpoint(alloc::boxed::Box::new(self.snapshot(now))));
        }
        if !self.credential_asked && self.wants_credential(now) {
            self.credential_asked = true;
            return Some(Output::NeedCredential);
        }
        if self.persist == Hold::Clear && !self.credential_asked {
            if let Some(request) = self.poll_request(now) {
                return Some(Output::Transmit(request));
            }
            // A POST with nothing minted is answered inside `poll_request`, with events.
            if let Some(event) = self.poll_event() {
                return Some(Output::Event(event));
            }
        }
        if !self.done && self.in_flight().is_none() && self.has_ended() {
            self.done = true;
            return Some(Output::Done(Exit::of(self.state(), self.stats())));
        }
        self.poll_timeout().map(Output::Timeout)
    }

    /// Whether the run is over: released, or reserved with nothing left to send.
    fn has_ended(&self) -> bool {
        match self.state() {
            State::Released { .. } => true,
            State::Reserved => self.persist == Hold::Clear && self.peek_peer().is_none(),
            State::Funding | State::Skipped => false,
        }
    }

    /// The next request to send, if any; taking it at `now` puts it in flight. Part of
    /// [`poll_output`](Self::poll_output), which holds it back while a state is persisted or a
    /// credential fetched.
    pub(crate) fn poll_request(&mut self, now: Instant) -> Option<Request> {
        // Each turn answers an action, so this ends: a payment POST with nothing minted (which
        // the sequence never asks for) is answered as malformed, which stops the session.
        loop {
            let call = self.calls.poll_call()?;
            let _ = self.calls.handle_sent(now, call.id);
            let request = match call.endpoint {
                Endpoint::Signer if call.action.fresh_state() => {
                    Some(self.protocol.fresh_signer_request(call.id))
                }
                Endpoint::Signer => Some(self.protocol.signer_request(call.id)),
                Endpoint::Payment => self.protocol.payment_request(call.id),
                Endpoint::Repost => self.protocol.repost_request(call.id),
                Endpoint::Refresh => Some(self.protocol.refresh_request(call.id)),
                Endpoint::Stop => {
                    let mut stop = self.protocol.stop_request(call.id);
                    stop.deadline = Some(self.stop_timeout);
                    Some(stop)
                }
                // The sequencer carries out funding actions only.
                Endpoint::OrchestratorInfo
                | Endpoint::Reservation
                | Endpoint::PaidReservation
                | Endpoint::Discovery
                | Endpoint::Events => None,
            };
            if let Some(request) = request {
                return Some(request);
            }
            self.last_problem = Some(ProtocolError::NothingMinted);
            self.problems = self.problems.wrapping_add(1);
            let _ = self.calls.handle_reply(now, call.id, Reply::Malformed);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called (the instant
    /// [`Output::Timeout`] gives).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session().poll_timeout()
    }

    /// The next event, oldest first. Part of [`poll_output`](Self::poll_output).
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.calls.machine_mut().poll_event()
    }
}

/// A reservation as a [`ReserveFlow`] would have made it, for the documentation's examples.
#[doc(hidden)]
pub fn doc_reserved(now: Instant) -> Reserved {
    let mut flow = ReserveFlow::new(ReserveOptions::new(
        "http://orch.example/apps/runner/session",
        Some("http://signer.example".into()),
        PaymentType::Live,
    ))
    .unwrap_or_else(|_| unreachable!("valid options"));
    let answers: [&[u8]; 4] = [
        br#"{"address":"0x0000000000000000000000000000000000000001","signature":"0x01"}"#,
        br#"{"payment_params":"cA==","manifest_id":"0a1b2c3d","payment_url":"http://orch.example/apps/runner/session/0a1b2c3d/payment"}"#,
        br#"{"payment":"cA==","segCreds":"cw==","state":{"State":"eA==","Sig":"eQ=="}}"#,
        br#"{"session_id":"0a1b2c3d","app_url":"http://orch.example/app","control_url":"http://orch.example/apps/runner/session/0a1b2c3d"}"#,
    ];
    let statuses = [200, 402, 200, 200];
    let mut turn = 0;
    loop {
        match flow.poll_output(now) {
            Some(Output::Transmit(request)) => {
                let (status, body) = (statuses[turn % 4], answers[turn % 4]);
                flow.handle_response(now, request.id, &Response::new(status, body));
                turn += 1;
            }
            Some(Output::Done(result)) => {
                return result.unwrap_or_else(|_| unreachable!("the scripted reservation succeeds"));
            }
            _ => unreachable!("the scripted reservation neither waits nor fails"),
        }
    }
}
