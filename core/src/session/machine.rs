//! [`Machine`]: what the [`Sequencer`](crate::Sequencer) drives, and its impl for [`Session`].

use embassy_time::Instant;

use super::{Action, OutcomeError, Session, Stats};
use crate::classify::Outcome;
use crate::event::{Event, State};
use crate::tickets::TicketValue;

/// A funding policy: actions out, outcomes in, with its timers, events, state and counters.
/// [`Session`] is livepay's; the simulation's baseline of the upstream SDK's loop is another, so
/// that both are carried out by the same [`Sequencer`](crate::Sequencer) and driven by the same
/// code. The one trait for a machine.
pub trait Machine {
    /// Starts funding ([`Session::start`]).
    fn start(&mut self, now: Instant);
    /// Lets time pass ([`Session::handle_timeout`]).
    fn handle_timeout(&mut self, now: Instant);
    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next event, oldest first.
    fn poll_event(&mut self) -> Option<Event>;
    /// The current state.
    fn state(&self) -> State;
    /// Counters so far.
    fn stats(&self) -> Stats;
    /// The session will end at `at` ([`Session::plan_end`]); a policy without the notion
    /// ignores it (the default).
    fn plan_end(&mut self, now: Instant, at: Instant) {
        let _ = (now, at);
    }
    /// The action that [`poll_action`](Self::poll_action) would return, without taking it.
    fn peek_action(&self) -> Option<Action>;
    /// Takes the next action, putting it in flight.
    fn poll_action(&mut self) -> Option<Action>;
    /// The first request of the action in flight left at `at` ([`Session::handle_sent`]).
    fn handle_sent(&mut self, at: Instant);
    /// The signer minted for the action in flight; its answer arrived at `at`
    /// ([`Session::handle_minted`]). Optional.
    fn handle_minted(&mut self, at: Instant) {
        let _ = at;
    }
    /// The reservation's payment carries `value` ([`Session::handle_reservation_value`]).
    /// Optional.
    fn handle_reservation_value(&mut self, value: TicketValue) {
        let _ = value;
    }
    /// The payment minted for the action in flight carries `value`
    /// ([`Session::handle_ticket_value`]). Optional.
    fn handle_ticket_value(&mut self, value: TicketValue) {
        let _ = value;
    }
    /// Answers the action in flight.
    ///
    /// # Errors
    ///
    /// When no action is in flight or the outcome cannot answer it.
    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) -> Result<(), OutcomeError>;
}

impl Machine for Session {
    fn start(&mut self, now: Instant) {
        Self::start(self, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Self::handle_timeout(self, now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Self::poll_timeout(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Self::poll_event(self)
    }
    fn state(&self) -> State {
        Self::state(self)
    }
    fn stats(&self) -> Stats {
        Self::stats(self)
    }
    fn plan_end(&mut self, now: Instant, at: Instant) {
        Self::plan_end(self, now, at);
    }
    fn peek_action(&self) -> Option<Action> {
        Self::peek_action(self)
    }
    fn poll_action(&mut self) -> Option<Action> {
        Self::poll_action(self)
    }
    fn handle_sent(&mut self, at: Instant) {
        Self::handle_sent(self, at);
    }
    fn handle_minted(&mut self, at: Instant) {
        Self::handle_minted(self, at);
    }
    fn handle_reservation_value(&mut self, value: TicketValue) {
        Self::handle_reservation_value(self, value);
    }
    fn handle_ticket_value(&mut self, value: TicketValue) {
        Self::handle_ticket_value(self, value);
    }
    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) -> Result<(), OutcomeError> {
        Self::handle_outcome(self, now, outcome)
    }
}

impl<M: Machine + ?Sized> Machine for &mut M {
    fn start(&mut self, now: Instant) {
        (**self).start(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn poll_event(&mut self) -> Option<Event> {
        (**self).poll_event()
    }
    fn state(&self) -> State {
        (**self).state()
    }
    fn stats(&self) -> Stats {
        (**self).stats()
    }
    fn plan_end(&mut self, now: Instant, at: Instant) {
        (**self).plan_end(now, at);
    }
    fn peek_action(&self) -> Option<Action> {
        (**self).peek_action()
    }
    fn poll_action(&mut self) -> Option<Action> {
        (**self).poll_action()
    }
    fn handle_sent(&mut self, at: Instant) {
        (**self).handle_sent(at);
    }
    fn handle_minted(&mut self, at: Instant) {
        (**self).handle_minted(at);
    }
    fn handle_reservation_value(&mut self, value: TicketValue) {
        (**self).handle_reservation_value(value);
    }
    fn handle_ticket_value(&mut self, value: TicketValue) {
        (**self).handle_ticket_value(value);
    }
    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) -> Result<(), OutcomeError> {
        (**self).handle_outcome(now, outcome)
    }
}
