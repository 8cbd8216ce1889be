//! Issue 12: an engine as data. A snapshot taken between a signer answer and its POST resumes
//! with the same signer state, verbatim, and reposts the payment first; the runway carries over
//! less the time away; a snapshot's `Debug` holds no secret.

use std::string::String;
use std::vec::Vec;
use std::{format, vec};

use embassy_time::{Duration, Instant};

use super::super::*;
use crate::{Config, FirstPayment, State, StatusTable};

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn config() -> Config {
    Config {
        first_payment: FirstPayment::Immediately,
        ..Config::default()
    }
}

const MINTED: &[u8] =
    br#"{"payment":"UEFZLTE=","segCreds":"U0VHLTE=","state":{"state":"c2VjcmV0LTE=","sig":"c2ln","k":[1,2]}}"#;

fn headers() -> Vec<(String, String)> {
    vec![("Authorization".into(), "Bearer t".into())]
}

#[test]
fn a_snapshot_between_the_signer_answer_and_its_post_resumes_with_a_repost_of_that_payment() {
    let mut engine = Engine::new(&config(), doc_reserved(at(0)), StatusTable::new()).unwrap();
    engine.start(at(0));
    let signer = engine.poll_request(at(0)).expect("the signer call");
    engine
        .handle_response(at(50), signer.id, &Response::new(200, MINTED))
        .expect("in flight");
    // The write-ahead point: the state is new, its payment not yet posted.
    let snapshot = engine.snapshot(at(50));
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snapshot);
    assert!(snapshot.funding.held.is_some(), "{:?}", snapshot.funding);
    // Another process, another clock: resumed 3 s later at its own instant 0.
    let mut resumed = Engine::resume(
        &config(),
        back,
        headers(),
        at(0),
        Duration::from_secs(3),
        StatusTable::new(),
    )
    .unwrap();
    assert_eq!(resumed.state(), State::Reserved);
    resumed.start(at(0));
    let repost = resumed.poll_request(at(0)).expect("the repost");
    assert_eq!(repost.endpoint.as_str(), "repost", "{repost:?}");
    let payment = repost
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(header::PAYMENT))
        .map(|(_, v)| v.as_str());
    assert_eq!(payment, Some("UEFZLTE="));
    resumed
        .handle_response(at(20), repost.id, &Response::new(200, b""))
        .expect("in flight");
    // The next signer call carries the state the orchestrator saw, byte for byte.
    let next = loop {
        if let Some(request) = resumed.poll_request(at(0)) {
            break request;
        }
        let wake = resumed.poll_timeout().expect("a timer");
        resumed.handle_timeout(wake);
        if let Some(request) = resumed.poll_request(wake) {
            break request;
        }
    };
    let body = String::from_utf8(next.body.clone()).unwrap();
    assert!(
        body.contains(r#""state":{"state":"c2VjcmV0LTE=","sig":"c2ln","k":[1,2]}"#),
        "{body}"
    );
    assert!(
        next.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("authorization") && v == "Bearer t")
    );
}

#[test]
fn the_runway_is_carried_less_the_time_away_and_debug_shows_no_secret() {
    let mut engine = Engine::new(&config(), doc_reserved(at(0)), StatusTable::new()).unwrap();
    engine.start(at(0));
    let signer = engine.poll_request(at(0)).unwrap();
    engine
        .handle_response(at(50), signer.id, &Response::new(200, MINTED))
        .unwrap();
    let post = engine.poll_request(at(50)).unwrap();
    engine
        .handle_response(at(80), post.id, &Response::new(200, b""))
        .unwrap();
    let snapshot = engine.snapshot(at(1_000));
    assert!(snapshot.funding.held.is_none());
    let runway = engine.session().runway(at(1_000));
    let resumed = Engine::resume(
        &config(),
        snapshot.clone(),
        headers(),
        at(0),
        Duration::from_secs(2),
        StatusTable::new(),
    )
    .unwrap();
    assert_eq!(resumed.session().runway(at(0)), runway - Duration::from_secs(2));
    let shown = format!("{snapshot:?}");
    for secret in ["c2VjcmV0LTE=", "UEFZLTE=", "U0VHLTE="] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn unusable_snapshots_are_refused_by_name() {
    let engine = Engine::new(&config(), doc_reserved(at(0)), StatusTable::new()).unwrap();
    let good = engine.snapshot(at(0));
    let resume = |s: Snapshot| {
        Engine::resume(
            &config(),
            s,
            Vec::new(),
            at(0),
            Duration::from_ticks(0),
            StatusTable::new(),
        )
    };
    let mut newer = good.clone();
    newer.version = SNAPSHOT_VERSION + 1;
    assert!(matches!(resume(newer), Err(ResumeError::Version(_))));
    let mut bad_state = good.clone();
    bad_state.payment.as_mut().unwrap().signer_state = Some("[1]".into());
    assert_eq!(resume(bad_state).err(), Some(ResumeError::SignerState));
    let mut no_params = good;
    no_params.payment.as_mut().unwrap().payment_params.clear();
    assert_eq!(
        resume(no_params).err(),
        Some(ResumeError::OutOfRange {
            field: "payment.payment_params",
            why: Range::Empty
        })
    );
}
