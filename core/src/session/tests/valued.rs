//! Valued credit: the tickets of every delivered payment, read by the adapter, make the runway
//! exact and independent of the signer's ledger.

use super::*;
use crate::tickets::TicketValue;

fn tickets(count: u32, each_ms: u64) -> TicketValue {
    TicketValue {
        count,
        each: Duration::from_millis(each_ms),
    }
}

/// Reserved at 0 with `reservation` of tickets, started at once.
fn valued(reservation: TicketValue) -> H {
    let mut h = H::new(cfg());
    h.s.handle_reservation_value(reservation);
    h.s.start(h.now);
    h.drain();
    h
}

/// Answers the signer 200 of the action in flight at `at_ms` with `value`.
fn minted(h: &mut H, at_ms: u64, value: TicketValue) {
    h.s.handle_minted(ms(at_ms));
    h.s.handle_ticket_value(value);
}

#[test]
fn valued_credit_is_the_reservations_mint_plus_every_delivered_value() {
    let mut h = valued(tickets(10, 1_000));
    assert!(h.s.is_valued());
    assert_eq!(h.s.funded_until(), ms(10_000));
    assert_eq!(h.action(), Action::Pay { cycle: 1 });
    minted(&mut h, 10, tickets(3, 2_500));
    h.answer_at(30, PAID);
    // 10 s + 7.5 s from the reservation's mint, whatever was billed.
    assert_eq!(h.s.funded_until(), ms(17_500));
    assert!(h.s.is_valued());
}

#[test]
fn a_delivered_payment_without_a_value_ends_the_valuation() {
    let mut h = valued(tickets(2, 60_000));
    assert_eq!(h.s.funded_until(), ms(120_000));
    h.action();
    h.s.handle_minted(ms(10));
    h.answer_at(30, PAID);
    assert!(!h.s.is_valued());
    // Back to what the signer billed: the 10 s prepay (the mint at 0 billed nothing more).
    assert_eq!(h.s.funded_until(), ms(10_000));
}

#[test]
fn a_held_payment_counts_its_value_only_when_a_repost_is_credited() {
    let mut h = valued(tickets(10, 1_000));
    h.action();
    minted(&mut h, 10, tickets(4, 1_000));
    h.answer_at(30, transient(Endpoint::Payment, Reply::Status(503)));
    assert_eq!(h.s.funded_until(), ms(10_000), "not delivered yet");
    let action = loop {
        if let Some(action) = h.s.poll_action() {
            break action;
        }
        h.next();
    };
    assert_eq!(action, Action::Repost { cycle: 1 });
    // A value given now is for no mint in flight: ignored.
    h.s.handle_ticket_value(tickets(100, 1_000));
    h.answer(10, PAID);
    assert_eq!(h.s.funded_until(), ms(14_000));
    assert!(h.s.is_valued());
}

#[test]
fn a_refused_replay_counts_no_value_and_the_credit_stays_exact() {
    let mut h = valued(tickets(10, 1_000));
    h.action();
    minted(&mut h, 10, tickets(4, 1_000));
    h.answer_at(30, transient(Endpoint::Payment, Reply::Timeout));
    let action = loop {
        if let Some(action) = h.s.poll_action() {
            break action;
        }
        h.next();
    };
    assert_eq!(action, Action::Repost { cycle: 1 });
    h.answer(10, Outcome::ReplayRefused);
    // Perhaps credited by the first POST, perhaps not: counted as not.
    assert_eq!(h.s.funded_until(), ms(10_000));
    assert!(h.s.is_valued());
    assert!(!h.s.in_sync());
}

#[test]
fn a_reservation_value_after_start_is_ignored() {
    let mut h = H::started_at(cfg(), 0);
    h.s.handle_reservation_value(tickets(100, 1_000));
    assert!(!h.s.is_valued());
    assert_eq!(h.s.funded_until(), ms(10_000));
}

#[test]
fn a_value_for_a_refresh_or_a_stop_is_ignored() {
    let mut h = valued(tickets(10, 1_000));
    h.action();
    h.answer(10, Outcome::RefreshRequired);
    assert_eq!(h.action(), Action::Refresh);
    h.s.handle_minted(ms(20));
    h.s.handle_ticket_value(tickets(50, 1_000));
    h.answer(10, Outcome::Refreshed);
    assert_eq!(h.action(), Action::Pay { cycle: 1 });
    h.answer(10, PAID);
    // Delivered with no value given for it.
    assert!(!h.s.is_valued());
}
