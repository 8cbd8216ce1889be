//! Issue 11: the answers of every real server, read from what the server says (no dialect flag):
//! livepeer/node's lowercase state and flat error bodies, a JSON challenge in a payment 200,
//! refresh 404 ≡ 409, 409 "price changed", signer 483, 413/502, and a release signalled from
//! outside the payment path.

use std::string::String;
use std::vec::Vec;

use embassy_time::Instant;

use super::super::*;
use crate::{Endpoint, Event, ReleaseReason, Reply, State, StatusTable, Verdict};
use std::format;

use super::{at, funded};

fn events(engine: &mut Engine) -> Vec<Event> {
    core::iter::from_fn(|| engine.poll_event()).collect()
}

#[track_caller]
fn answer(engine: &mut Engine, now: Instant, status: u16, body: &[u8]) -> Request {
    let request = engine.poll_request(now).expect("a request");
    engine
        .handle_response(now, request.id, &Response::new(status, body))
        .expect("in flight");
    request
}

fn body_text(request: &Request) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

const NODE_MINTED: &[u8] =
    br#"{"payment":"UEFZ","segCreds":"U0VH","state":{"state":"bm9kZQ==","sig":"c2ln","v":2}}"#;

#[test]
fn a_lowercase_state_is_sent_back_byte_for_byte() {
    let mut engine = funded();
    answer(&mut engine, at(0), 200, NODE_MINTED);
    answer(&mut engine, at(10), 200, b"");
    let next = engine.poll_timeout().unwrap();
    engine.handle_timeout(next);
    let signer = engine.poll_request(next).expect("the next signer call");
    let text = body_text(&signer);
    assert!(
        text.ends_with(r#","state":{"state":"bm9kZQ==","sig":"c2ln","v":2}}"#),
        "{text}"
    );
    // Secret in Debug all the same.
    assert!(!format!("{:?}", engine.protocol()).contains("bm9kZQ=="));
}

#[test]
fn a_json_challenge_in_a_payment_200_replaces_the_params_but_not_the_url() {
    let mut engine = funded();
    let url = String::from(engine.protocol().payment_url());
    answer(&mut engine, at(0), 200, NODE_MINTED);
    let fresh = br#"{"payment_params":"RlJFU0g=","manifest_id":"session_Ab3xYz9QwE","payment_url":"http://elsewhere.example/payment"}"#;
    answer(&mut engine, at(10), 200, fresh);
    assert_eq!(engine.protocol().params_renewed(), 1);
    assert_eq!(engine.protocol().payment_url(), url);
    let next = engine.poll_timeout().unwrap();
    engine.handle_timeout(next);
    let signer = engine.poll_request(next).unwrap();
    assert!(body_text(&signer).contains(r#""orchestrator":"RlJFU0g=""#));
    // An empty or protobuf 200 changes nothing.
    let mut engine = funded();
    answer(&mut engine, at(0), 200, NODE_MINTED);
    answer(&mut engine, at(10), 200, b"\x0a\x02\x08\x01");
    assert_eq!(engine.protocol().params_renewed(), 0);
}

/// Funds one cycle whose payment POST gets `status` and `body`; returns the events after the
/// stop is answered.
fn rejected_payment(status: u16, body: &[u8]) -> (Engine, Vec<Event>) {
    let mut engine = funded();
    answer(&mut engine, at(0), 200, NODE_MINTED);
    answer(&mut engine, at(10), status, body);
    let stop = answer(&mut engine, at(20), 200, b"");
    assert_eq!(stop.endpoint, Endpoint::Stop);
    let seen = events(&mut engine);
    (engine, seen)
}

#[test]
fn a_409_price_changed_releases_with_its_own_reason_after_the_stop() {
    for body in [
        &br#"{"error":"runner price changed; request a new payment challenge"}"#[..],
        b"Runner price changed",
    ] {
        let (engine, _) = rejected_payment(409, body);
        assert_eq!(
            engine.state(),
            State::Released {
                reason: ReleaseReason::PriceChanged
            }
        );
    }
    // Another 409 stays a plain rejection.
    let (engine, _) = rejected_payment(
        409,
        br#"{"error":{"message":"fixed-price sessions do not accept follow-up payments"}}"#,
    );
    assert_eq!(
        engine.state(),
        State::Released {
            reason: ReleaseReason::Rejected {
                endpoint: Endpoint::Payment,
                reply: Reply::Status(409)
            }
        }
    );
}

#[test]
fn a_signer_483_releases_as_credit_exhausted_after_the_stop() {
    let mut engine = funded();
    answer(&mut engine, at(0), 483, br#"{"error":"insufficient credit"}"#);
    let stop = answer(&mut engine, at(10), 200, b"");
    assert_eq!(stop.endpoint, Endpoint::Stop);
    assert_eq!(
        engine.state(),
        State::Released {
            reason: ReleaseReason::SignerCreditExhausted
        }
    );
}

#[test]
fn statuses_of_the_newer_servers_are_classified() {
    let table = StatusTable::new();
    // Refresh 404 (livepeer/node) means what 409 means (go-livepeer): terminal.
    assert_eq!(
        table.verdict(Endpoint::Refresh, Reply::Status(404)),
        Verdict::Rejected
    );
    assert_eq!(
        table.verdict(Endpoint::Refresh, Reply::Status(409)),
        Verdict::Rejected
    );
    // 503 (busy, a stale rate) and 502 are transient; 413 is terminal.
    for endpoint in [Endpoint::Signer, Endpoint::Payment] {
        assert_eq!(table.verdict(endpoint, Reply::Status(503)), Verdict::Transient);
        assert_eq!(table.verdict(endpoint, Reply::Status(502)), Verdict::Transient);
        assert_eq!(table.verdict(endpoint, Reply::Status(413)), Verdict::Rejected);
    }
    // 483 is terminal, with a reason of its own row.
    assert_eq!(
        table.verdict(Endpoint::Signer, Reply::Status(483)),
        Verdict::CreditExhausted
    );
}

#[test]
fn a_release_signal_stops_funding_at_once_and_sends_nothing() {
    let mut engine = funded();
    answer(&mut engine, at(0), 200, NODE_MINTED);
    answer(&mut engine, at(10), 200, b"");
    engine.handle_release_signal(at(20));
    assert_eq!(
        engine.state(),
        State::Released {
            reason: ReleaseReason::ReleasedByServer
        }
    );
    assert_eq!(engine.poll_request(at(20)), None);
    assert_eq!(engine.poll_timeout(), None);
    assert!(events(&mut engine).contains(&Event::StateChanged {
        from: State::Funding,
        to: State::Released {
            reason: ReleaseReason::ReleasedByServer
        }
    }));
}

#[test]
fn an_expiring_credential_is_replaced_before_it_ends_and_after_a_401() {
    use embassy_time::Duration;
    let mut engine = funded();
    let token = |value: &str| Credential {
        name: "Authorization".into(),
        value: value.into(),
        expires_in: Some(Duration::from_secs(20)),
    };
    engine.handle_credential(at(0), Some(&token("Bearer one")));
    // A signer call is due now, the credential is fresh: nothing to do.
    assert!(!engine.wants_credential(at(0)));
    let first = answer(&mut engine, at(0), 200, NODE_MINTED);
    assert!(
        first
            .headers
            .iter()
            .any(|(n, v)| n == "Authorization" && v == "Bearer one")
    );
    answer(&mut engine, at(10), 200, b"");
    // Fund on until the credential is due: 20 s less 2 s of margin.
    let due = loop {
        let t = engine.poll_timeout().expect("funding");
        engine.handle_timeout(t);
        if engine.wants_credential(t) {
            break t;
        }
        if engine.peek_peer().is_some() {
            answer(&mut engine, t, 200, NODE_MINTED);
            answer(&mut engine, t, 200, b"");
        }
    };
    assert!(due >= at(18_000), "{due:?}");
    engine.handle_credential(due, Some(&token("Bearer two")));
    assert!(!engine.wants_credential(due));
    // The signer refuses it (401): a transient failure; the retry waits for a new credential.
    answer(&mut engine, due, 401, br#"{"error":"token expired"}"#);
    let retry = engine.poll_timeout().unwrap();
    engine.handle_timeout(retry);
    assert!(engine.wants_credential(retry));
    engine.handle_credential(retry, Some(&token("Bearer three")));
    let again = engine.poll_request(retry).unwrap();
    let auth: Vec<_> = again
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .collect();
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].1, "Bearer three");
    assert!(format!("{:?}", token("Bearer s3cret")).contains("redacted"));
}
