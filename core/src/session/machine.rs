//! [`Machine`]: what the [`Sequencer`](crate::Sequencer) drives, and its impl for [`Session`].

use embassy_time::Instant;

use super::{Action, OutcomeError, Session};
use crate::classify::Outcome;
use crate::tickets::TicketValue;

/// What a [`Sequencer`](crate::Sequencer) needs of a funding policy: actions out, outcomes in.
/// [`Session`] is livepay's; the simulation's baseline of the upstream SDK's loop is another, so
/// that both are carried out by the same sequencing.
pub trait Machine {
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
