//! The engine end to end on scripted answers: requests out, answers in, by id.

use std::format;
use std::string::String;
use std::vec::Vec;

use embassy_time::{Duration, Instant};

use super::super::*;
use crate::{
    Config, Endpoint, Event, Failure, FirstPayment, PaymentType, Peer, ReleaseReason, Reply, RequestId,
    State, StatusTable, Verdict,
};

const MINTED: &[u8] = br#"{"payment":"UEFZ","segCreds":"U0VH","state":{"State":"U1Q=","Sig":"U0c="}}"#;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The defaults, with the first payment at once (the tests start from a request in flight).
fn immediate() -> Config {
    Config {
        first_payment: FirstPayment::Immediately,
        ..Config::default()
    }
}

fn funded(table: StatusTable) -> Engine {
    let mut engine = Engine::new(&immediate(), doc_reserved(at(0)), table).unwrap();
    engine.start(at(0));
    engine
}

fn unpriced() -> Reserved {
    Reserved {
        session_id: "free0001".into(),
        app_url: "http://orch.example/app".into(),
        control_url: "http://orch.example/apps/runner/session/free0001".into(),
        minted_at: at(0),
        payer_address: None,
        payment: None,
    }
}

fn events(engine: &mut Engine) -> Vec<Event> {
    core::iter::from_fn(|| engine.poll_event()).collect()
}

#[track_caller]
fn answer(engine: &mut Engine, now: Instant, request: &Request, status: u16, body: &[u8]) {
    engine
        .handle_response(now, request.id, &Response::new(status, body))
        .expect("in flight");
}

#[test]
fn a_payment_is_a_signer_request_then_the_post_with_what_it_minted() {
    let mut engine = funded(StatusTable::new());
    assert_eq!(engine.peek_peer(), Some(Peer::Signer));
    let signer = engine.poll_request(at(0)).unwrap();
    assert_eq!(
        (signer.peer(), signer.endpoint.as_str(), signer.url.as_str()),
        (
            Peer::Signer,
            "signer",
            "http://signer.example/generate-live-payment"
        )
    );
    assert_eq!(engine.poll_request(at(0)), None, "one request in flight");
    assert_eq!(engine.peek_peer(), None);
    answer(&mut engine, at(10), &signer, 200, MINTED);
    assert_eq!(engine.peek_peer(), Some(Peer::Orchestrator));
    let post = engine.poll_request(at(10)).unwrap();
    assert_eq!(post.peer(), Peer::Orchestrator);
    assert_eq!(
        post.url,
        "http://orch.example/apps/runner/session/0a1b2c3d/payment"
    );
    assert_eq!(post.header("Livepeer-Payment"), Some("UEFZ"));
    assert_eq!(post.header("Livepeer-Segment"), Some("U0VH"));
    assert_ne!(post.id, signer.id);
    answer(&mut engine, at(20), &post, 200, b"");
    assert_eq!(engine.stats().payments_accepted, 1);
    assert_eq!(engine.state(), State::Funding);
}

#[test]
fn answers_naming_another_request_are_refused_and_change_nothing() {
    let mut engine = funded(StatusTable::new());
    let signer = engine.poll_request(at(0)).unwrap();
    let stray = RequestId::new(99);
    assert_eq!(
        engine.handle_response(at(5), stray, &Response::new(200, MINTED)),
        Err(CallError::Unknown(stray))
    );
    assert_eq!(
        engine.handle_failure(at(5), stray, Failure::Timeout),
        Err(CallError::Unknown(stray))
    );
    assert_eq!(engine.in_flight(), Some(signer.id));
    answer(&mut engine, at(10), &signer, 482, b"");
    assert_eq!(engine.stats().cycles_skipped, 1);
    assert_eq!(
        engine.handle_response(at(11), signer.id, &Response::new(200, MINTED)),
        Err(CallError::Unknown(signer.id)),
        "an answer is taken once"
    );
}

#[test]
fn the_send_instant_excludes_queue_time_from_billing_and_latency() {
    let mut engine = funded(StatusTable::new());
    let signer = engine.poll_request(at(0)).unwrap();
    // The adapter queued it for 1.5 s behind a concurrency limit.
    engine.handle_sent(at(1_500), signer.id);
    answer(&mut engine, at(1_510), &signer, 200, MINTED);
    let post = engine.poll_request(at(1_510)).unwrap();
    answer(&mut engine, at(1_520), &post, 200, b"");
    assert!(events(&mut engine).contains(&Event::PaymentAccepted {
        cycle: 1,
        latency: Duration::from_millis(20)
    }));
    assert_eq!(engine.stats().billed, Duration::from_secs(2), "ceil(1.5 s)");
}

#[test]
fn a_480_refreshes_at_the_payment_urls_origin_then_pays_again() {
    let mut engine = funded(StatusTable::new());
    let signer = engine.poll_request(at(0)).unwrap();
    answer(&mut engine, at(10), &signer, 480, b"");
    let refresh = engine.poll_request(at(10)).unwrap();
    assert_eq!(refresh.url, "http://orch.example/refresh-payment");
    let body = core::str::from_utf8(&refresh.body).unwrap();
    assert!(body.contains(r#""manifest_id":"0a1b2c3d""#), "{body}");
    answer(
        &mut engine,
        at(20),
        &refresh,
        200,
        br#"{"payment_params":"RlJFU0g=","manifest_id":"0a1b2c3d","payment_url":"http://orch.example/payment"}"#,
    );
    let again = engine.poll_request(at(20)).unwrap();
    assert_eq!(again.endpoint.as_str(), "signer");
    assert!(core::str::from_utf8(&again.body).unwrap().contains("RlJFU0g="));
    assert_eq!(
        engine.protocol().payment_url(),
        "http://orch.example/apps/runner/session/0a1b2c3d/payment",
        "the session-scoped payment URL is kept"
    );
}

#[test]
fn a_malformed_signer_200_is_terminal_with_the_reason_kept() {
    let mut engine = funded(StatusTable::new());
    let signer = engine.poll_request(at(0)).unwrap();
    answer(&mut engine, at(10), &signer, 200, br#"{"payment":"p"}"#);
    assert!(matches!(
        engine.last_problem(),
        Some(ProtocolError::Malformed {
            endpoint: Endpoint::Signer,
            ..
        })
    ));
    // Stop first, then released with the reason.
    let stop = engine.poll_request(at(10)).unwrap();
    assert_eq!(stop.url, "http://orch.example/apps/runner/session/0a1b2c3d/stop");
    answer(&mut engine, at(20), &stop, 204, b"");
    assert_eq!(
        engine.state(),
        State::Released {
            reason: ReleaseReason::Rejected {
                endpoint: Endpoint::Signer,
                reply: Reply::Malformed
            }
        }
    );
}

#[test]
fn failures_retrying_cannot_mend_are_terminal_unless_the_table_says_otherwise() {
    let mut engine = funded(StatusTable::new());
    let signer = engine.poll_request(at(0)).unwrap();
    engine.handle_failure(at(10), signer.id, Failure::Tls).unwrap();
    let stop = engine.poll_request(at(10)).unwrap();
    assert_eq!(stop.endpoint.as_str(), "stop");

    let table = StatusTable::new()
        .with_reply(Endpoint::Signer, Reply::Tls, Verdict::Transient)
        .unwrap();
    let mut engine = funded(table);
    let signer = engine.poll_request(at(0)).unwrap();
    engine.handle_failure(at(10), signer.id, Failure::Tls).unwrap();
    assert_eq!(engine.poll_request(at(10)), None, "a retry waits for its backoff");
    assert_eq!(engine.stats().failures, 1);
    let retry_at = engine.poll_timeout().unwrap();
    engine.handle_timeout(retry_at);
    assert_eq!(engine.poll_request(retry_at).unwrap().endpoint.as_str(), "signer");
}

#[test]
fn an_unpriced_session_funds_nothing_and_closes_through_its_control_url() {
    let mut engine = Engine::new(&Config::default(), unpriced(), StatusTable::new()).unwrap();
    assert!(!engine.is_metered());
    engine.start(at(0));
    assert_eq!(engine.poll_request(at(0)), None);
    assert!(events(&mut engine).contains(&Event::FundingNotRequired {
        why: crate::NotFunded::Offchain
    }));
    engine.close(at(5));
    let stop = engine.poll_request(at(5)).unwrap();
    assert_eq!(stop.url, "http://orch.example/apps/runner/session/free0001/stop");
    answer(&mut engine, at(10), &stop, 204, b"");
    assert_eq!(
        engine.state(),
        State::Released {
            reason: ReleaseReason::ClosedByClient
        }
    );
}

#[test]
fn a_failed_stop_is_reported_and_the_session_released_all_the_same() {
    let mut engine = Engine::new(&Config::default(), unpriced(), StatusTable::new()).unwrap();
    engine.close(at(0));
    let stop = engine.poll_request(at(0)).unwrap();
    engine.handle_failure(at(3), stop.id, Failure::Refused).unwrap();
    assert!(events(&mut engine).contains(&Event::StopFailed {
        reply: Reply::Refused
    }));
    assert!(engine.state().is_released());
}

#[test]
fn a_fixed_price_reservation_funds_nothing() {
    let mut reserved = doc_reserved(at(0));
    // The protocol state as a fixed-price reservation leaves it.
    reserved.payment = reserved_with(PaymentType::Fixed, MINTED).payment;
    let mut engine = Engine::new(&immediate(), reserved, StatusTable::new()).unwrap();
    assert!(!engine.is_metered());
    engine.start(at(0));
    assert_eq!(engine.poll_request(at(0)), None);
    assert!(events(&mut engine).contains(&Event::FundingNotRequired {
        why: crate::NotFunded::FixedPrice
    }));
}

#[test]
fn the_reservation_instant_is_when_its_mint_left() {
    let mut flow = ReserveFlow::new(
        ReserveOptions::new(
            "http://orch.example/apps/runner/session",
            Some("http://signer.example".into()),
            PaymentType::Live,
        )
        .with_payer_address("0x01"),
    )
    .unwrap();
    let challenge = flow.poll_request(at(0)).unwrap();
    flow.handle_response(
        at(5),
        challenge.id,
        &Response::new(
            402,
            br#"{"payment_params":"cA==","manifest_id":"m1","payment_url":"http://orch.example/apps/runner/session/m1/payment"}"#,
        ),
    );
    let mint = flow.poll_request(at(6)).unwrap();
    flow.handle_sent(at(400), mint.id);
    flow.handle_response(at(410), mint.id, &Response::new(200, MINTED));
    let paid = flow.poll_request(at(410)).unwrap();
    flow.handle_response(
        at(420),
        paid.id,
        &Response::new(
            200,
            br#"{"session_id":"m1","app_url":"http://orch.example/a","control_url":"http://orch.example/apps/runner/session/m1"}"#,
        ),
    );
    let reserved = flow.result().unwrap();
    assert_eq!(reserved.minted_at, at(400));
    assert_eq!(reserved.payer_address.as_deref(), Some("0x01"));
    let engine = Engine::new(&Config::default(), reserved, StatusTable::new()).unwrap();
    assert_eq!(engine.funded_until(), at(10_400), "the prepay runs from the mint");
}

#[test]
fn the_payer_cache_is_used_learnt_and_forgotten_on_failure() {
    let options = || {
        ReserveOptions::new(
            "http://orch.example/apps/runner/session",
            Some("http://signer.example".into()),
            PaymentType::Live,
        )
    };
    let mut cache = PayerCache::new();
    let mut flow = ReserveFlow::with_cache(options(), &cache).unwrap();
    let first = flow.poll_request(at(0)).unwrap();
    assert_eq!(first.endpoint.as_str(), "sign-orchestrator-info");
    flow.handle_response(
        at(0),
        first.id,
        &Response::new(200, br#"{"address":"0xabc","signature":"0x1"}"#),
    );
    let reserve = flow.poll_request(at(0)).unwrap();
    flow.handle_response(
        at(0),
        reserve.id,
        &Response::new(
            200,
            br#"{"session_id":"s","app_url":"http://orch.example/a","control_url":"http://orch.example/c"}"#,
        ),
    );
    flow.update_cache(&mut cache);
    assert_eq!(cache.get("http://signer.example"), Some("0xabc"));

    // A cached payer skips the signer; a failed flow that used it forgets it.
    let mut flow = ReserveFlow::with_cache(options(), &cache).unwrap();
    let reserve = flow.poll_request(at(0)).unwrap();
    assert_eq!(reserve.endpoint.as_str(), "reservation");
    assert_eq!(reserve.header("Livepeer-Payer-Address"), Some("0xabc"));
    flow.handle_response(
        at(0),
        reserve.id,
        &Response::new(402, br#"{"error":{"message":"invalid payer"}}"#),
    );
    flow.update_cache(&mut cache);
    assert!(cache.is_empty());
}

#[test]
fn debug_of_an_engine_shows_no_secret() {
    let mut engine = funded(StatusTable::new());
    let signer = engine.poll_request(at(0)).unwrap();
    answer(&mut engine, at(10), &signer, 200, MINTED);
    let text = format!("{engine:?}");
    for secret in ["UEFZ", "U0VH", "U1Q=", "U0c="] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let shown: String = format!("{:?}", engine.poll_request(at(10)).unwrap());
    assert!(!shown.contains("UEFZ"), "{shown}");
}

/// A signer 200 whose payment is a real `net.Payment`: 3 tickets of face value 1000 wei that
/// always win, expecting 10 wei per second (100 s a ticket).
const MINTED_READABLE: &[u8] = br#"{"payment":"CiYSAgPoGiD//////////////////////////////////////////xIUEREREREREREREREREREREREREREiAggHIgIICCICCAkqBAgKEAE=","segCreds":"U0VH","state":{"State":"U1Q=","Sig":"U0c="}}"#;

/// Reserves a session of `payment_type` whose first mint answers `minted`.
fn reserved_with(payment_type: PaymentType, minted: &[u8]) -> Reserved {
    let options = ReserveOptions::new(
        "http://orch.example/apps/runner/session",
        Some("http://signer.example".into()),
        payment_type,
    )
    .with_payer_address("0x01");
    let mut flow = ReserveFlow::new(options).unwrap();
    let challenge = flow.poll_request(at(0)).unwrap();
    flow.handle_response(
        at(0),
        challenge.id,
        &Response::new(
            402,
            br#"{"payment_params":"cA==","manifest_id":"m1","payment_url":"http://orch.example/apps/runner/session/m1/payment"}"#,
        ),
    );
    let mint = flow.poll_request(at(0)).unwrap();
    flow.handle_response(at(0), mint.id, &Response::new(200, minted));
    let paid = flow.poll_request(at(0)).unwrap();
    flow.handle_response(
        at(0),
        paid.id,
        &Response::new(
            200,
            br#"{"session_id":"m1","app_url":"http://orch.example/a","control_url":"http://orch.example/apps/runner/session/m1"}"#,
        ),
    );
    flow.result().unwrap()
}

#[test]
fn the_tickets_of_every_delivered_payment_make_the_credit_exact() {
    let reserved = reserved_with(PaymentType::Live, MINTED_READABLE);
    assert_eq!(
        reserved
            .payment
            .as_ref()
            .and_then(ProtocolState::last_mint_value)
            .map(|v| v.total()),
        Some(Duration::from_secs(300))
    );
    let mut engine = Engine::new(&immediate(), reserved, StatusTable::new()).unwrap();
    assert!(engine.session().is_valued());
    assert_eq!(engine.session().funded_until(), at(300_000));
    engine.start(at(0));
    let signer = engine.poll_request(at(0)).expect("the first payment");
    answer(&mut engine, at(10), &signer, 200, MINTED_READABLE);
    let post = engine.poll_request(at(10)).expect("its POST");
    answer(&mut engine, at(20), &post, 200, b"");
    assert!(engine.session().is_valued());
    assert_eq!(engine.session().funded_until(), at(600_000));
}

#[test]
fn a_payment_that_cannot_be_read_leaves_the_credit_to_the_bills() {
    let reserved = reserved_with(PaymentType::Live, MINTED);
    assert_eq!(
        reserved.payment.as_ref().and_then(ProtocolState::last_mint_value),
        None
    );
    let engine = Engine::new(&immediate(), reserved, StatusTable::new()).unwrap();
    assert!(!engine.session().is_valued());
    assert_eq!(engine.session().funded_until(), at(10_000));
    // Per pixel-second pricing: the value of a ticket in time is unknown.
    let reserved = reserved_with(PaymentType::Lv2v, MINTED_READABLE);
    let engine = Engine::new(&Config::new(PaymentType::Lv2v), reserved, StatusTable::new()).unwrap();
    assert!(!engine.session().is_valued());
}

#[test]
fn spend_is_the_prepay_and_every_delivered_bill_at_the_payments_price() {
    let reserved = reserved_with(PaymentType::Live, MINTED_READABLE);
    let mut engine = Engine::new(&immediate(), reserved, StatusTable::new()).unwrap();
    // 10 wei per second: the 10 s prepay.
    assert_eq!(engine.spend_wei(), Some(100));
    engine.start(at(0));
    let signer = engine.poll_request(at(5_000)).expect("the first payment");
    answer(&mut engine, at(5_010), &signer, 200, MINTED_READABLE);
    let post = engine.poll_request(at(5_010)).expect("its POST");
    answer(&mut engine, at(5_020), &post, 200, b"");
    let billed = engine.stats().billed;
    assert!(billed >= Duration::from_secs(5), "{billed:?}");
    assert_eq!(
        engine.spend_wei(),
        Some(100 + u128::from(billed.as_millis()) / 100)
    );
    // Payments whose price cannot be read: no figure rather than a guess.
    let unread = Engine::new(
        &immediate(),
        reserved_with(PaymentType::Live, MINTED),
        StatusTable::new(),
    )
    .unwrap();
    assert_eq!(unread.spend_wei(), None);
}

/// The reservation says when cancelling it costs nothing: until the paid retry is produced.
#[test]
fn a_reservation_can_be_dropped_for_free_until_its_paid_retry_is_produced() {
    let options = ReserveOptions::new(
        "http://orch.example/apps/runner/session",
        Some("http://signer.example".into()),
        PaymentType::Live,
    )
    .with_payer_address("0x01");
    let mut flow = ReserveFlow::new(options).unwrap();
    let challenge = flow.poll_request(at(0)).unwrap();
    assert!(!flow.payment_left());
    flow.handle_response(
        at(0),
        challenge.id,
        &Response::new(
            402,
            br#"{"payment_params":"cA==","manifest_id":"m1","payment_url":"http://orch.example/apps/runner/session/m1/payment"}"#,
        ),
    );
    let mint = flow.poll_request(at(0)).unwrap();
    assert!(!flow.payment_left(), "a mint not posted pays nothing");
    flow.handle_response(at(0), mint.id, &Response::new(200, MINTED_READABLE));
    let paid = flow.poll_request(at(0)).unwrap();
    assert_eq!(paid.endpoint, Endpoint::PaidReservation);
    assert!(flow.payment_left());
}
