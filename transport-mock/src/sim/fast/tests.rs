//! Tests of the fast model on its own; `sim/tests.rs` checks it against the faithful model.

use super::*;

const S: u64 = MICROS;

fn none() -> i64 {
    0
}

#[track_caller]
fn mint(s: &mut FastLedger, c: &FastConfig, at: u64) -> Mint {
    match s.generate(c, at, false) {
        SignerAnswer::Minted(m) => m,
        other => panic!("no mint at {at}: {other:?}"),
    }
}

#[test]
fn reservation_prepays_ten_seconds_and_an_unpaid_session_is_released_at_fifteen() {
    let c = FastConfig::default();
    let mut s = FastLedger::reserve(&c, 0, 0);
    assert_eq!(s.credited, 10 * c.price_wei);
    s.catch_up(&c, 14 * S, none);
    assert_eq!(s.released_at(), None);
    s.catch_up(&c, 15 * S, none);
    assert_eq!(s.released_at(), Some(15 * S));
    assert_eq!(s.dropped_at(), Some(15 * S));
    let m = mint(&mut s, &c, 16 * S);
    assert_eq!(s.pay(&c, 16 * S, &m, none), PayAnswer::Gone);
}

#[test]
fn a_mint_every_3_007_s_is_billed_4_s() {
    let c = FastConfig::default();
    let mut s = FastLedger::reserve(&c, 0, 0);
    let mut t = 0;
    for _ in 0..100 {
        t += 3_007_000;
        let m = mint(&mut s, &c, t);
        assert_eq!(m.ev, 4 * c.price_wei);
        assert_eq!(s.pay(&c, t, &m, none), PayAnswer::Credited { ev: m.ev });
    }
    // Billed 4/3.007 of the time: about a third too much.
    let ratio = s.billed as f64 / (t as f64 / S as f64 + 10.0) / c.price_wei as f64;
    assert!((1.30..1.34).contains(&ratio), "{ratio}");
    assert_eq!(s.credited, s.minted);
}

#[test]
fn skip_482_when_the_signer_balance_covers_fee_and_ev() {
    let c = FastConfig::default().with_ev_seconds(30.0);
    assert_eq!(c.ev_seconds(), 30.0);
    let mut s = FastLedger::reserve(&c, 0, 0);
    // Prepay: one 30 s ticket for a 10 s fee leaves 20 s, under one ticket's EV: mint.
    assert_eq!(mint(&mut s, &c, 3 * S).ev, 30 * c.price_wei);
    // 20 + 30 − 3 = 47 s on the books covers max(fee, EV) until the fee exceeds 47 s.
    assert_eq!(s.generate(&c, 6 * S, false), SignerAnswer::NoTickets);
    assert_eq!(s.generate(&c, 50 * S, false), SignerAnswer::NoTickets);
    assert_eq!(mint(&mut s, &c, 51 * S).ev, 30 * c.price_wei);
}

#[test]
fn a_last_update_not_in_the_past_is_billed_the_prepay() {
    let c = FastConfig::default().with_ev_seconds(4.0);
    let mut s = FastLedger::reserve(&c, 0, 0);
    // 3 tickets (12 s) for the 10 s prepay: 2 s left on the signer's books.
    assert_eq!(s.signer_balance(), 2 * c.price_wei);
    let m = mint(&mut s, &c, 3 * S);
    assert_eq!((m.tickets, s.signer_balance()), (1, 3 * c.price_wei));
    // Again at the same instant: billableSecs 0 is a first call, 10 s: 2 tickets, 1 s left.
    let again = mint(&mut s, &c, 3 * S);
    assert_eq!((again.tickets, s.signer_balance()), (2, c.price_wei));
    assert_eq!(again.first_nonce, m.first_nonce + m.tickets);
}

#[test]
fn refresh_required_after_the_param_lifetime_and_refresh_restores() {
    let c = FastConfig::default();
    let mut s = FastLedger::reserve(&c, 0, 0);
    let mut t = 0;
    while t < 480 * S - 3 * S {
        t += 3 * S;
        let m = mint(&mut s, &c, t);
        assert!(matches!(s.pay(&c, t, &m, none), PayAnswer::Credited { .. }));
    }
    assert_eq!(s.generate(&c, 480 * S, false), SignerAnswer::RefreshRequired);
    assert_eq!(s.refresh(&c, 480 * S, none), 200);
    let m = mint(&mut s, &c, 480 * S);
    // New params, a new nonce space.
    assert_eq!((m.params, m.first_nonce), (1, 1));
}

#[test]
fn a_payment_is_credited_once_and_a_replay_of_a_credited_one_is_already_seen() {
    let c = FastConfig::default();
    let mut s = FastLedger::reserve(&c, 0, 0);
    let m = mint(&mut s, &c, 3 * S);
    assert_eq!(s.pay(&c, 3 * S, &m, none), PayAnswer::Credited { ev: m.ev });
    let credited = s.credited;
    // The answer was lost; the client posts it again: refused, nothing new credited.
    assert_eq!(s.pay(&c, 4 * S, &m, none), PayAnswer::AlreadySeen);
    assert_eq!(PayAnswer::AlreadySeen.status(), 400);
    assert_eq!((s.credited, s.already_seen), (credited, 1));
    // A mint whose POST never arrived: its replay is its first arrival.
    let lost = mint(&mut s, &c, 6 * S);
    assert_eq!(s.pay(&c, 7 * S, &lost, none), PayAnswer::Credited { ev: lost.ev });
    assert_eq!(s.pay(&c, 8 * S, &lost, none), PayAnswer::AlreadySeen);
    assert_eq!(s.credited, credited + lost.ev);
    // A mint superseded by a newer one is still its own payment.
    let older = mint(&mut s, &c, 9 * S);
    let newer = mint(&mut s, &c, 10 * S);
    assert!(matches!(
        s.pay(&c, 10 * S, &newer, none),
        PayAnswer::Credited { .. }
    ));
    assert!(matches!(
        s.pay(&c, 10 * S, &older, none),
        PayAnswer::Credited { .. }
    ));
    assert_eq!(s.credited + (s.minted - s.credited), s.minted);
}

#[test]
fn expired_params_are_refused_after_the_grace_and_an_expired_auth_token_is_403() {
    let c = FastConfig {
        prepay: Duration::from_secs(90),
        ..FastConfig::default()
    };
    let mut s = FastLedger::reserve(&c, 0, 0);
    for t in (60..=420).step_by(60) {
        let m = mint(&mut s, &c, t * S);
        assert!(matches!(s.pay(&c, t * S, &m, none), PayAnswer::Credited { .. }));
    }
    let late = mint(&mut s, &c, 479 * S);
    let later = late;
    // Within the one-block grace after the params' lifetime: credited.
    assert!(matches!(
        s.pay(&c, 491 * S - 1, &late, none),
        PayAnswer::Credited { .. }
    ));
    let m = mint(&mut s, &c, 479 * S + 1);
    assert_eq!(s.pay(&c, 492 * S, &m, none), PayAnswer::Expired);
    assert_eq!(s.expired, 1);
    // Refused means seen: a second replay is "already seen".
    assert_eq!(s.pay(&c, 493 * S, &m, none), PayAnswer::AlreadySeen);
    assert_eq!(s.pay(&c, 493 * S, &later, none), PayAnswer::AlreadySeen);
    let c = FastConfig {
        auth_lifetime: Duration::from_secs(60),
        auth_refresh_percent: 0,
        prepay: Duration::from_secs(90),
        ..FastConfig::default()
    };
    let mut s = FastLedger::reserve(&c, 0, 0);
    let m = mint(&mut s, &c, 59 * S);
    assert_eq!(s.pay(&c, 60 * S, &m, none), PayAnswer::AuthExpired);
}

#[test]
fn a_fresh_ledger_after_a_refresh_bills_the_prepay_from_a_zero_balance() {
    let c = FastConfig::default().with_ev_seconds(4.0);
    let mut s = FastLedger::reserve(&c, 0, 0);
    // Minted and lost: the signer's balance counts credit the orchestrator never got.
    let _lost = mint(&mut s, &c, 3 * S);
    assert_eq!(s.signer_balance(), 3 * c.price_wei);
    assert_eq!(s.refresh(&c, 4 * S, none), 200);
    let SignerAnswer::Minted(fresh) = s.generate(&c, 5 * S, true) else {
        panic!("no fresh mint");
    };
    // 10 s from a zero balance: 3 tickets, 2 s left; nonces from 1 under the new params.
    assert_eq!((fresh.tickets, fresh.params, fresh.first_nonce), (3, 1, 1));
    assert_eq!(s.signer_balance(), 2 * c.price_wei);
    assert_eq!(s.reissued_nonces, 0);
    assert!(matches!(
        s.pay(&c, 5 * S, &fresh, none),
        PayAnswer::Credited { .. }
    ));
    // A fresh ledger on params already used is outside the contract: counted, credits nothing.
    let SignerAnswer::Minted(reused) = s.generate(&c, 6 * S, true) else {
        panic!("no fresh mint");
    };
    assert_eq!(s.reissued_nonces, 1);
    assert_eq!(s.pay(&c, 6 * S, &reused, none), PayAnswer::AlreadySeen);
}

#[test]
fn fractional_carry_and_runway() {
    let c = FastConfig::default();
    let mut s = FastLedger::reserve(&c, 0, 0);
    // A tick 5.5 s after creation bills 5 s and carries 0.5 s.
    s.next_tick = 5_500_000;
    s.catch_up(&c, 6 * S, none);
    assert_eq!(s.debited, 5 * c.price_wei);
    assert_eq!(s.runway_us(&c, 6 * S), 10 * S - 6 * S);
}

#[test]
fn the_nonce_limit_answers_480_until_a_refresh_restarts_the_nonces() {
    let c = FastConfig {
        refresh_at_nonce: Some(12),
        ..FastConfig::default()
    };
    // The 10-ticket prepay leaves nonce 10; a 5-ticket mint takes it to 15.
    let mut s = FastLedger::reserve(&c, 0, 0);
    let m = mint(&mut s, &c, 5 * S);
    assert_eq!(m.first_nonce + m.tickets - 1, 15);
    assert_eq!(s.generate(&c, 10 * S, false), SignerAnswer::RefreshRequired);
    assert_eq!(s.refresh(&c, 10 * S, none), 200);
    let after = mint(&mut s, &c, 10 * S);
    assert_eq!((after.params, after.first_nonce), (1, 1));
}

#[test]
fn a_challenge_in_the_payment_answer_renews_the_params_only_when_read() {
    let c = FastConfig {
        challenge_in_payment: true,
        param_lifetime: Duration::from_secs(30),
        ..FastConfig::default()
    };
    let mut s = FastLedger::reserve(&c, 0, 0);
    // Without the renewal the params would be past their life at 30 s.
    for t in (5..=60).step_by(5) {
        let m = mint(&mut s, &c, t * S);
        assert!(matches!(s.pay(&c, t * S, &m, none), PayAnswer::Credited { .. }));
        s.renew_params(t * S);
    }
    let c = FastConfig {
        refresh_refused_status: 404,
        record_idle_expiry: Duration::from_secs(1),
        ..c
    };
    assert_eq!(s.refresh(&c, 200 * S, none), 404);
}
