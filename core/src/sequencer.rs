//! The one place that knows which request of an action follows which answer.
//!
//! A [`Session`](crate::Session) decides *what* to do ([`Action`]s) and learns what happened
//! ([`Outcome`]s). Between the two sits a sequence of requests: a `Pay` is the signer's
//! `generate-live-payment`, then, on a 200, the payment POST. The [`Sequencer`] turns each action
//! into those requests one at a time ([`Call`]s) and each [`Reply`] into the next call or the
//! action's outcome, through the [`StatusTable`]. Every driver in the workspace goes through it:
//! the async [`run`](crate::run), the protocol `engine::Engine`, the simulation.
//! No adapter writes the sequence itself.
//!
//! ```
//! use livepay_core::{Config, Endpoint, Instant, Reply, Sequencer, Session, StatusTable};
//!
//! let reserved = Instant::from_secs(0);
//! let mut session = Session::new(&Config::default(), reserved)?;
//! session.start(reserved);
//! let mut calls = Sequencer::new(session, StatusTable::new());
//! // The first payment goes out when the schedule says (about one interval after the reservation).
//! assert_eq!(calls.poll_call(), None);
//! let now = calls.machine().poll_timeout().expect("a timer");
//! calls.machine_mut().handle_timeout(now);
//! let call = calls.poll_call().expect("the first payment");
//! assert_eq!(call.endpoint, Endpoint::Signer);
//! calls.handle_reply(now, call.id, Reply::Status(200))?; // minted: the POST comes next
//! let post = calls.poll_call().expect("the payment POST");
//! assert_eq!(post.endpoint, Endpoint::Payment);
//! calls.handle_reply(now, post.id, Reply::Status(200))?;
//! assert_eq!(calls.machine().stats().payments_accepted, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use embassy_time::Instant;

use crate::classify::{Endpoint, Next, Outcome, Reply, StatusTable};
use crate::session::{Action, Machine, OutcomeError};

/// Identifies one request; answers name the request they answer. Unique per [`Sequencer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    #[cfg(feature = "alloc")]
    pub(crate) const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The id as a number (from 1, increasing).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One request to make: which endpoint, for which action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// Names the request in [`Sequencer::handle_sent`] and [`Sequencer::handle_reply`].
    pub id: RequestId,
    /// The request.
    pub endpoint: Endpoint,
    /// The action it carries out.
    pub action: Action,
}

/// Why [`Sequencer::handle_reply`] (or [`handle_sent`](Sequencer::handle_sent)) refused an answer.
/// The sequencer is unchanged then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No request with this id is in flight (never issued, already answered, or superseded).
    Unknown(RequestId),
    /// The machine refused the outcome (a bug in a custom [`Machine`]).
    Outcome(OutcomeError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(id) => write!(f, "no request {id} is in flight"),
            Self::Outcome(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl core::error::Error for CallError {}

impl From<OutcomeError> for CallError {
    fn from(error: OutcomeError) -> Self {
        Self::Outcome(error)
    }
}

/// Where the action in flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Current {
    action: Action,
    endpoint: Endpoint,
    /// The id of the request of `endpoint`; `None` while it waits to be taken.
    id: Option<RequestId>,
}

/// Carries out a [`Machine`]'s actions as calls, one request at a time. No allocation, `Copy`
/// when the machine is.
///
/// # Method taxonomy
///
/// (A) getters: [`machine`](Self::machine), [`peek_call`](Self::peek_call),
/// [`in_flight`](Self::in_flight); (B) inputs: [`handle_sent`](Self::handle_sent),
/// [`handle_reply`](Self::handle_reply); (D) outputs: [`poll_call`](Self::poll_call). The
/// machine's own commands, timeouts and events are reached through
/// [`machine_mut`](Self::machine_mut); drain `poll_call` after each of them.
///
/// At most one request is in flight; each is answered by exactly one `handle_reply`.
#[derive(Debug, Clone)]
pub struct Sequencer<M> {
    machine: M,
    table: StatusTable,
    current: Option<Current>,
    next_id: u64,
}

impl<M: Machine> Sequencer<M> {
    /// Carries out `machine`'s actions, reading replies with `table`.
    pub const fn new(machine: M, table: StatusTable) -> Self {
        Self {
            machine,
            table,
            current: None,
            next_id: 1,
        }
    }

    /// The machine.
    pub const fn machine(&self) -> &M {
        &self.machine
    }

    /// The machine, for its commands and timeouts; drain [`poll_call`](Self::poll_call) after.
    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }

    /// The machine, given back.
    pub fn into_machine(self) -> M {
        self.machine
    }

    /// The table replies are read with.
    pub const fn table(&self) -> &StatusTable {
        &self.table
    }

    /// The request in flight, if any: taken by [`poll_call`](Self::poll_call), not yet answered.
    pub fn in_flight(&self) -> Option<Call> {
        self.current.and_then(|c| {
            c.id.map(|id| Call {
                id,
                endpoint: c.endpoint,
                action: c.action,
            })
        })
    }

    /// The endpoint [`poll_call`](Self::poll_call) would call now, without taking the call: for
    /// adapters that only take a request once they have room to send it.
    pub fn peek_call(&self) -> Option<Endpoint> {
        match self.current {
            Some(Current {
                id: None, endpoint, ..
            }) => Some(endpoint),
            Some(_) => None,
            None => self.machine.peek_action().map(Action::first_request),
        }
    }

    /// The next request to make, if any. Taking it puts it in flight.
    pub fn poll_call(&mut self) -> Option<Call> {
        let current = match self.current {
            Some(c) if c.id.is_some() => return None,
            Some(c) => c,
            None => {
                let action = self.machine.poll_action()?;
                Current {
                    action,
                    endpoint: action.first_request(),
                    id: None,
                }
            }
        };
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.current = Some(Current {
            id: Some(id),
            ..current
        });
        Some(Call {
            id,
            endpoint: current.endpoint,
            action: current.action,
        })
    }

    fn check(&self, id: RequestId) -> Result<Current, CallError> {
        self.current
            .filter(|c| c.id == Some(id))
            .ok_or(CallError::Unknown(id))
    }

    /// Request `id` left at `at` (see [`Session::handle_sent`](crate::Session::handle_sent)).
    ///
    /// # Errors
    ///
    /// [`CallError::Unknown`] when `id` is not in flight.
    pub fn handle_sent(&mut self, at: Instant, id: RequestId) -> Result<(), CallError> {
        let current = self.check(id)?;
        if current.endpoint == current.action.first_request() {
            self.machine.handle_sent(at);
        }
        Ok(())
    }

    /// Request `id` got `reply`. Returns the action's outcome once it is answered (after the
    /// machine has seen it), or `None` when another request of the action follows.
    ///
    /// # Errors
    ///
    /// [`CallError::Unknown`] when `id` is not in flight; [`CallError::Outcome`] when the machine
    /// refuses the outcome.
    pub fn handle_reply(
        &mut self,
        now: Instant,
        id: RequestId,
        reply: Reply,
    ) -> Result<Option<Outcome>, CallError> {
        self.handle_answer(now, id, reply, "")
    }

    /// [`handle_reply`](Self::handle_reply) for an answer whose body gave `message` (its error
    /// text, read by the protocol layer): the table reads it for the one row that depends on it
    /// ([`StatusTable::verdict_with`]).
    ///
    /// # Errors
    ///
    /// As [`handle_reply`](Self::handle_reply).
    pub fn handle_answer(
        &mut self,
        now: Instant,
        id: RequestId,
        reply: Reply,
        message: &str,
    ) -> Result<Option<Outcome>, CallError> {
        let current = self.check(id)?;
        match self.table.next_with(current.endpoint, reply, message) {
            // Only the first request of an action continues it; anything else would loop.
            Next::Request(endpoint) if current.endpoint == current.action.first_request() => {
                // Only a signer 200 continues an action: the signer minted, and anchored its
                // billing no later than now.
                self.machine.handle_minted(now);
                self.current = Some(Current {
                    endpoint,
                    id: None,
                    ..current
                });
                Ok(None)
            }
            Next::Request(_) => self.answer(
                now,
                Outcome::Transient {
                    endpoint: current.endpoint,
                    reply,
                },
            ),
            Next::Done(outcome) => self.answer(now, outcome),
        }
    }

    fn answer(&mut self, now: Instant, outcome: Outcome) -> Result<Option<Outcome>, CallError> {
        self.machine.handle_outcome(now, outcome)?;
        self.current = None;
        Ok(Some(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Session};

    fn funding(now: Instant) -> Sequencer<Session> {
        let config = Config {
            first_payment: crate::FirstPayment::Immediately,
            ..Config::default()
        };
        let mut session = Session::new(&config, now).unwrap();
        session.start(now);
        Sequencer::new(session, StatusTable::new())
    }

    #[test]
    fn a_pay_is_the_signer_then_on_a_200_the_post() {
        let t0 = Instant::from_secs(0);
        let mut s = funding(t0);
        assert_eq!(s.peek_call(), Some(Endpoint::Signer));
        let signer = s.poll_call().unwrap();
        assert_eq!(signer.endpoint, Endpoint::Signer);
        assert_eq!(s.poll_call(), None, "one request at a time");
        assert_eq!(s.peek_call(), None);
        assert_eq!(s.handle_reply(t0, signer.id, Reply::Status(200)), Ok(None));
        assert_eq!(s.peek_call(), Some(Endpoint::Payment));
        let post = s.poll_call().unwrap();
        assert_eq!((post.endpoint, post.action), (Endpoint::Payment, signer.action));
        assert_ne!(post.id, signer.id);
        assert_eq!(
            s.handle_reply(t0, post.id, Reply::Status(200)),
            Ok(Some(Outcome::Paid))
        );
        assert_eq!(s.machine().stats().payments_accepted, 1);
    }

    #[test]
    fn a_482_answers_the_pay_without_a_post() {
        let t0 = Instant::from_secs(0);
        let mut s = funding(t0);
        let signer = s.poll_call().unwrap();
        assert_eq!(
            s.handle_reply(t0, signer.id, Reply::Status(482)),
            Ok(Some(Outcome::Skipped))
        );
        assert_eq!(s.in_flight(), None);
    }

    #[test]
    fn stale_and_unknown_ids_are_refused_and_change_nothing() {
        let t0 = Instant::from_secs(0);
        let mut s = funding(t0);
        let signer = s.poll_call().unwrap();
        s.handle_reply(t0, signer.id, Reply::Status(200)).unwrap();
        assert_eq!(
            s.handle_reply(t0, signer.id, Reply::Status(200)),
            Err(CallError::Unknown(signer.id))
        );
        assert_eq!(s.handle_sent(t0, signer.id), Err(CallError::Unknown(signer.id)));
        let post = s.poll_call().unwrap();
        assert_eq!(s.in_flight(), Some(post));
    }

    #[test]
    fn the_send_instant_of_the_signer_request_anchors_billing() {
        let t0 = Instant::from_secs(0);
        let mut s = funding(t0);
        let signer = s.poll_call().unwrap();
        // Queued for 2 s before it left.
        let sent = Instant::from_secs(2);
        s.handle_sent(sent, signer.id).unwrap();
        let answered = Instant::from_millis(2_030);
        s.handle_reply(answered, signer.id, Reply::Status(200)).unwrap();
        let post = s.poll_call().unwrap();
        s.handle_reply(answered, post.id, Reply::Status(200)).unwrap();
        let mut latency = None;
        while let Some(event) = s.machine_mut().poll_event() {
            if let crate::Event::PaymentAccepted { latency: l, .. } = event {
                latency = Some(l);
            }
        }
        assert_eq!(latency, Some(embassy_time::Duration::from_millis(30)));
        // Billed from the reservation to the send: 2 s, not the 0 s of the production instant.
        assert_eq!(s.machine().stats().billed, embassy_time::Duration::from_secs(2));
    }
}
