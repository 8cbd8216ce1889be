//! Issue 17: a snapshot crosses a trust boundary. Every number beyond what a real session
//! reaches, every unsendable or cross-origin URL and every id no server gives is refused with its
//! field named, before it reaches arithmetic; a session resumed from a bare point saturates.

use std::vec::Vec;
use std::{format, vec};

use embassy_time::{Duration, Instant};

use super::super::*;
use crate::session::{MAX_BILLED_MS, MAX_COUNT, MAX_SPAN_MS};
use crate::{Config, FirstPayment, Session, StatusTable};

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A way to spoil a good snapshot.
type Spoil = fn(&mut Snapshot);

fn config() -> Config {
    Config {
        first_payment: FirstPayment::Immediately,
        ..Config::default()
    }
}

fn good() -> Snapshot {
    Engine::new(&config(), doc_reserved(at(0)), StatusTable::new())
        .unwrap()
        .snapshot(at(0))
}

fn resume(s: Snapshot) -> Result<Engine, ResumeError> {
    Engine::resume(
        &config(),
        s,
        Vec::new(),
        at(0),
        Duration::from_ticks(0),
        StatusTable::new(),
    )
}

#[track_caller]
fn refused(s: Snapshot, field: &str, why: Range) {
    assert_eq!(s.check(), Err((field, why)), "{field}");
    match resume(s) {
        Err(ResumeError::OutOfRange { field: f, why: w }) => assert_eq!((f, w), (field, why)),
        other => panic!("{field}: {:?}", other.err()),
    }
}

#[test]
fn a_real_snapshot_passes_and_the_bounds_themselves_are_accepted() {
    assert_eq!(good().check(), Ok(()));
    let mut s = good();
    s.funding.runway_ms = MAX_SPAN_MS;
    s.funding.stats.billed_ms = MAX_BILLED_MS;
    s.funding.stats.payments_sent = MAX_COUNT;
    assert_eq!(s.check(), Ok(()));
    assert!(resume(s).is_ok());
}

#[test]
fn every_impossible_number_is_refused_by_its_path() {
    let cases: Vec<(&str, Spoil)> = vec![
        ("funding.stats.billed_ms", |s| {
            s.funding.stats.billed_ms = u64::MAX;
        }),
        ("funding.stats.surplus_ms", |s| {
            s.funding.stats.surplus_ms = MAX_BILLED_MS + 1;
        }),
        ("funding.runway_ms", |s| s.funding.runway_ms = u32::MAX),
        ("funding.ticket_ms", |s| s.funding.ticket_ms = MAX_SPAN_MS + 1),
        ("funding.ev_floor_ms", |s| s.funding.ev_floor_ms = u32::MAX),
        ("funding.last_fee_ms", |s| s.funding.last_fee_ms = u32::MAX),
        ("funding.cycle", |s| s.funding.cycle = u32::MAX),
        ("funding.stats.payments_sent", |s| {
            s.funding.stats.payments_sent = u32::MAX;
        }),
        ("funding.stats.lapses", |s| s.funding.stats.lapses = MAX_COUNT + 1),
        ("funding.held.billed_ms", |s| {
            s.funding.held = Some(crate::session::HeldMint {
                billed_ms: u32::MAX,
                fresh: false,
                value_ms: None,
            });
        }),
        ("payment.last_mint_value", |s| {
            s.payment.as_mut().unwrap().last_mint_value = Some((u32::MAX, 1_000));
        }),
    ];
    for (field, spoil) in cases {
        let mut s = good();
        spoil(&mut s);
        refused(s, field, Range::TooLarge);
    }
    let mut s = good();
    s.version = 0;
    refused(s, "version", Range::TooSmall);
    let mut s = good();
    s.payment.as_mut().unwrap().session_price = Some((0, 1));
    refused(s, "payment.session_price", Range::TooSmall);
}

#[test]
fn ids_a_server_never_gives_are_refused() {
    for (id, why) in [
        ("", Range::Empty),
        ("   ", Range::BadCharacter),
        ("a\u{1b}[31mred", Range::BadCharacter),
        ("caf\u{e9}", Range::BadCharacter),
    ] {
        let mut s = good();
        s.session_id = id.into();
        if id.is_empty() {
            // Refused by name before the range check, as before.
            assert_eq!(resume(s).err(), Some(ResumeError::Field("session_id")));
        } else {
            refused(s, "session_id", why);
        }
    }
    let mut s = good();
    s.session_id = "x".repeat(50_000);
    refused(s, "session_id", Range::TooLong);
    let mut s = good();
    s.payment.as_mut().unwrap().signer_state = Some(format!("{{\"k\":\"{}\"}}", "x".repeat(70_000)));
    refused(s, "payment.signer_state", Range::TooLong);
}

#[test]
fn urls_are_checked_as_a_reservations_are() {
    let cases: Vec<(&str, Range, Spoil)> = vec![
        ("payment.signer_url", Range::BadUrl, |s| {
            s.payment.as_mut().unwrap().signer_url = "gopher://signer.example".into();
        }),
        ("payment.signer_url", Range::BadUrl, |s| {
            s.payment.as_mut().unwrap().signer_url = "http://user:pw@signer.example".into();
        }),
        ("control_url", Range::BadUrl, |s| {
            s.control_url = "http://orch.example/x\r\nHost: evil".into();
        }),
        ("payment.payment_url", Range::CrossOrigin, |s| {
            s.payment.as_mut().unwrap().payment_url = "http://elsewhere.example/payment".into();
        }),
        ("app_url", Range::BadUrl, |s| {
            s.app_url = "javascript:alert(1)".into();
        }),
    ];
    for (field, why, spoil) in cases {
        let mut s = good();
        spoil(&mut s);
        refused(s, field, why);
    }
}

#[test]
fn a_session_resumed_from_a_bare_point_saturates_instead_of_panicking() {
    let session = Session::new(&config(), at(0)).unwrap();
    let mut point = session.resume_point(at(0));
    point.stats.billed_ms = u64::MAX;
    point.stats.surplus_ms = u64::MAX;
    point.runway_ms = u32::MAX;
    let mut resumed = Session::resume(&config(), at(0), &point, Duration::from_ticks(0)).unwrap();
    resumed.start(at(0));
    // Its first payment comes due and is asked for: the budget and runway arithmetic runs.
    let due = resumed.poll_timeout().unwrap_or(at(0));
    resumed.handle_timeout(due);
    assert!(resumed.poll_action().is_some());
    assert_eq!(resumed.stats().billed, Duration::from_millis(MAX_BILLED_MS));
}
