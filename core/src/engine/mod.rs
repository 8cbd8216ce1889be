//! The protocol engine (feature `alloc`): every byte of the protocol, built and read in one
//! place, so that an adapter only moves bytes.
//!
//! An [`Engine`] owns a reserved session's funding machine ([`Session`]), its
//! [`Sequencer`] (which request of an action follows which answer) and its [`ProtocolState`]
//! (URLs, payment params, signer state, the payment minted but not yet posted). Its shape is
//! quinn-proto's `poll_transmit`:
//!
//! - [`poll_request`](Engine::poll_request) gives the next [`Request`] to send, with an id, the
//!   [`Peer`] it goes to, and its method, URL, headers and body;
//! - [`handle_sent`](Engine::handle_sent) says when its bytes actually left (so that a queue in
//!   the adapter never skews billing or latency);
//! - [`handle_response`](Engine::handle_response) or [`handle_failure`](Engine::handle_failure)
//!   answers it;
//! - [`poll_timeout`](Engine::poll_timeout), [`handle_timeout`](Engine::handle_timeout),
//!   [`poll_event`](Engine::poll_event), [`stats`](Engine::stats) and the commands
//!   ([`start`](Engine::start), [`stop`](Engine::stop), [`close`](Engine::close),
//!   [`payment_due`](Engine::payment_due)) are the machine's.
//!
//! The reservation is its sibling of the same shape, [`ReserveFlow`]; its [`Reserved`] result
//! is what an engine funds. [`Engine::run`] is the whole loop as an `async fn` over any [`Http`]
//! and [`Clock`](crate::Clock).
//!
//! ## The run loop, by hand
//!
//! ```
//! use livepay_core::engine::{Engine, Reserved, Response};
//! use livepay_core::{Config, Duration, Instant, StatusTable};
//! # use livepay_core::engine::doc_reserved as reserved_by_hand;
//!
//! let mut now = Instant::from_secs(0);
//! let reserved: Reserved = reserved_by_hand(now); // from a ReserveFlow
//! let mut engine = Engine::new(&Config::default(), reserved, StatusTable::new())?;
//! engine.start(now);
//! while now < Instant::from_secs(30) {
//!     while let Some(request) = engine.poll_request(now) {
//!         // Send `request.method`, `request.url`, `request.headers`, `request.body` to
//!         // `request.peer`; this example's signer and orchestrator answer after 10 ms.
//!         now += Duration::from_millis(10);
//!         let body: &[u8] = match request.what {
//!             "signer" => br#"{"payment":"cA==","segCreds":"cw==","state":{"State":"eA==","Sig":"eQ=="}}"#,
//!             _ => b"",
//!         };
//!         engine.handle_response(now, request.id, &Response::new(200, body))?;
//!     }
//!     while let Some(event) = engine.poll_event() {
//!         let _ = event; // log it, count it, react to it
//!     }
//!     now = engine.poll_timeout().expect("a funding session has a timer");
//!     engine.handle_timeout(now);
//! }
//! assert!(engine.stats().payments_accepted >= 9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::string::String;

use embassy_time::{Duration, Instant};

use crate::classify::{Endpoint, Failure, Peer, Reply, StatusTable};
use crate::config::{Config, ConfigError, PaymentType};
use crate::driver::Command;
use crate::event::{Event, ReleaseReason, State};
use crate::sequencer::{CallError, RequestId, Sequencer};
use crate::session::{Session, Stats};

mod checks;
mod discovery;
mod drive;
mod protocol;
mod release_watch;
mod request;
mod reserve;
mod snapshot;
pub mod spend;
#[cfg(test)]
mod tests;

pub use checks::{HeaderProblem, UrlProblem, check_signer_header, check_url};
pub use discovery::{DiscoveredPrice, DiscoveredRunner, DiscoveryError, DiscoveryQuery};
pub use drive::{Answered, Credential, Delivery, Http};
pub use protocol::{Answer, MaxPrice, ProtocolError, ProtocolState, origin};
pub use release_watch::release_announced;
pub use request::{Method, Request, Response, header};
pub use reserve::{PayerCache, ReserveEndpoint, ReserveError, ReserveFlow, ReserveOptions, Reserved};
pub use snapshot::{MaxPriceSnapshot, PaymentSnapshot, ResumeError, SNAPSHOT_VERSION, Snapshot};

/// Funds one reserved session: builds every request, reads every answer, decides nothing an
/// adapter could get wrong. See the [module docs](self).
///
/// # Method taxonomy
///
/// (A) getters: [`state`](Self::state), [`stats`](Self::stats), [`runway`](Self::runway),
/// [`deadline`](Self::deadline), [`session_id`](Self::session_id), [`protocol`](Self::protocol),
/// [`last_problem`](Self::last_problem), [`peek_peer`](Self::peek_peer), …;
/// (B) inputs: [`handle_timeout`](Self::handle_timeout), [`handle_sent`](Self::handle_sent),
/// [`handle_response`](Self::handle_response), [`handle_failure`](Self::handle_failure);
/// (C) commands: [`start`](Self::start), [`stop`](Self::stop), [`close`](Self::close),
/// [`payment_due`](Self::payment_due);
/// (D) outputs, drained after every (B) or (C) call in this order:
/// [`poll_request`](Self::poll_request), [`poll_timeout`](Self::poll_timeout),
/// [`poll_event`](Self::poll_event).
///
/// At most one request is in flight; each is answered once, by id. `Debug` redacts every secret.
#[derive(Debug, Clone)]
pub struct Engine {
    calls: Sequencer<Session>,
    protocol: ProtocolState,
    session_id: String,
    app_url: String,
    last_problem: Option<ProtocolError>,
    /// [`Config::stop_timeout`], put on every stop request.
    stop_timeout: embassy_time::Duration,
    /// When the signer credential should be replaced: its expiry less a margin; `None`: no
    /// known expiry.
    credential_due: Option<Instant>,
    /// The signer refused the credential (401, 403) since it was last set.
    credential_refused: bool,
    /// [`Config::prepay`]: what the reservation bought, for [`spend_wei`](Self::spend_wei).
    prepay: embassy_time::Duration,
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
            stop_timeout: config.stop_timeout,
            prepay: config.prepay,
            credential_due: None,
            credential_refused: false,
        })
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

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<RequestId> {
        self.calls.in_flight().map(|c| c.id)
    }

    /// The peer the request [`poll_request`](Self::poll_request) would return goes to, without
    /// taking it: an adapter with a concurrency limit per peer polls only when it has room.
    pub fn peek_peer(&self) -> Option<Peer> {
        self.calls.peek_call().map(peer_of)
    }

    // ---- (C) commands --------------------------------------------------------------------

    /// Starts funding ([`Session::start`]).
    pub fn start(&mut self, now: Instant) {
        self.calls.machine_mut().start(now);
    }

    /// Stops funding without releasing ([`Session::stop`]).
    pub fn stop(&mut self, now: Instant) {
        self.calls.machine_mut().stop(now);
    }

    /// Stops funding, then stops the session ([`Session::close`]).
    pub fn close(&mut self, now: Instant) {
        self.calls.machine_mut().close(now);
    }

    /// A payment is due now ([`Session::payment_due`]).
    pub fn payment_due(&mut self, now: Instant) {
        self.calls.machine_mut().payment_due(now);
    }

    /// The session will be closed at `at` ([`Session::plan_end`]): stop building runway and let
    /// the credit run out then.
    pub fn plan_end(&mut self, now: Instant, at: Instant) {
        self.calls.machine_mut().plan_end(now, at);
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

    /// A fresh signer credential (or `None`: the source had none): it replaces the header of the
    /// same name on every later signer request. A credential with an expiry is due again a tenth
    /// of its life (at most 30 s) before it ends.
    pub fn handle_credential(&mut self, now: Instant, credential: Option<&Credential>) {
        self.credential_refused = false;
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
    /// ([`Session::handle_release_signal`]): funding stops at once, no stop is sent.
    pub fn handle_release_signal(&mut self, now: Instant) {
        self.calls.machine_mut().handle_release_signal(now);
    }

    /// Applies `command` at `now`.
    pub fn apply(&mut self, command: Command, now: Instant) {
        command.apply(self.calls.machine_mut(), now);
    }

    // ---- (B) inputs ----------------------------------------------------------------------

    /// Lets time pass ([`Session::handle_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.calls.machine_mut().handle_timeout(now);
    }

    /// Request `id`'s bytes left at `at`. Optional: without it the instant of
    /// [`poll_request`](Self::poll_request) counts. Ignored for a request not in flight.
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
        };
        if call.endpoint == Endpoint::Signer && matches!(status, 401 | 403) {
            // The table retries it (transient); the credential is replaced before the retry.
            self.credential_refused = true;
        }
        if let Some(reason) = refined_rejection(call.endpoint, answer.error.as_ref()) {
            self.calls.machine_mut().set_rejection_reason(reason);
        }
        if answer.error.is_some() {
            self.last_problem = answer.error;
        }
        self.calls.handle_reply(now, id, answer.reply)?;
        if call.endpoint == Endpoint::Signer
            && answer.reply == Reply::Status(200)
            && let Some(value) = self.protocol.last_mint_value()
        {
            self.calls.machine_mut().handle_ticket_value(value);
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

    // ---- (D) outputs ---------------------------------------------------------------------

    /// The next request to send, if any; taking it at `now` puts it in flight.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
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
            };
            if let Some(request) = request {
                return Some(request);
            }
            self.last_problem = Some(ProtocolError::NothingMinted);
            let _ = self.calls.handle_reply(now, call.id, Reply::Malformed);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session().poll_timeout()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.calls.machine_mut().poll_event()
    }
}

/// The server a request to `endpoint` goes to.
const fn peer_of(endpoint: Endpoint) -> Peer {
    match endpoint {
        Endpoint::Signer => Peer::Signer,
        Endpoint::Payment | Endpoint::Repost | Endpoint::Refresh | Endpoint::Stop => Peer::Orchestrator,
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
    while let Some(request) = flow.poll_request(now) {
        let (status, body) = (statuses[turn % 4], answers[turn % 4]);
        flow.handle_response(now, request.id, &Response::new(status, body));
        turn += 1;
    }
    flow.result()
        .unwrap_or_else(|_| unreachable!("the scripted reservation succeeds"))
}

/// What a rejection means when its status or body says more than "rejected": livepeer/node's
/// 409 "runner price changed" on a payment, pymthouse's signer 483 (credit exhausted).
fn refined_rejection(endpoint: Endpoint, error: Option<&ProtocolError>) -> Option<ReleaseReason> {
    let Some(ProtocolError::Status { status, message, .. }) = error else {
        return None;
    };
    match (endpoint, *status) {
        (Endpoint::Payment | Endpoint::Repost, 409)
            if message.to_ascii_lowercase().contains("price changed") =>
        {
            Some(ReleaseReason::PriceChanged)
        }
        (Endpoint::Signer, 483) => Some(ReleaseReason::SignerCreditExhausted),
        _ => None,
    }
}
