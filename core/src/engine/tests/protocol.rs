use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use super::super::*;
use crate::wire::{PriceUnit, WireError};
use crate::{Endpoint, Failure, PaymentType, Reply, RequestId};
use embassy_time::Instant;

const T0: Instant = Instant::from_secs(0);
const ID: RequestId = RequestId::new(1);

const SIGNER: &str = "http://signer.test";
const RUNNER_URL: &str = "http://orch.test/apps/r1/session";
const PAYER: &str = "0x5ac0ffee5ac0ffee5ac0ffee5ac0ffee5ac0ffee";
const AUTH_SECRET: &str = "Bearer S3CR3T-T0KEN";
const STATE_SECRET: &str = "U1RBVEUtU0VDUkVU";
const SIG_SECRET: &str = "U0lHLVNFQ1JFVA==";
const PAYMENT_SECRET: &str = "UEFZTUVOVC1TRUNSRVQ=";
const SEG_SECRET: &str = "U0VHQ1JFRFMtU0VDUkVU";

fn challenge_body(manifest_id: &str) -> String {
    format!(
        r#"{{"payment_params":"PARAMS-{manifest_id}","orchestrator":"http://orch.test","manifest_id":"{manifest_id}","payment_url":"http://orch.test/apps/r1/session/{manifest_id}/payment"}}"#
    )
}

fn minted_body(n: u32) -> String {
    format!(
        r#"{{"payment":"{PAYMENT_SECRET}{n}","segCreds":"{SEG_SECRET}{n}","state":{{"State":"{STATE_SECRET}{n}","Sig":"{SIG_SECRET}{n}"}}}}"#
    )
}

fn reservation_body(id: &str) -> String {
    format!(
        r#"{{"session_id":"{id}","app_url":"http://orch.test/apps/r1/session/{id}/app","control_url":"http://orch.test/apps/r1/session/{id}"}}"#
    )
}

fn options() -> ReserveOptions {
    ReserveOptions::new(RUNNER_URL, Some(SIGNER.to_string()), PaymentType::Live)
        .with_signer_header("Authorization", AUTH_SECRET)
}

fn body_text(req: &Request) -> &str {
    core::str::from_utf8(&req.body).unwrap()
}

/// Drives `flow` through one request, checking its URL, and answers it.
#[track_caller]
fn step(flow: &mut ReserveFlow, url: &str, status: u16, body: &str) -> Request {
    let req = flow.poll_request(T0).expect("a request");
    assert_eq!(req.url, url);
    assert_eq!(req.method, Method::Post);
    assert_eq!(flow.poll_request(T0), None, "one request in flight at a time");
    flow.handle_response(T0, req.id, &Response::new(status, body.as_bytes()));
    req
}

/// A session reserved through the happy path, with the state of the reservation's mint (1).
fn reserved_session() -> ProtocolState {
    let mut flow = ReserveFlow::new(options()).unwrap();
    step(
        &mut flow,
        "http://signer.test/sign-orchestrator-info",
        200,
        &orch_info(),
    );
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    step(
        &mut flow,
        "http://signer.test/generate-live-payment",
        200,
        &minted_body(1),
    );
    step(&mut flow, RUNNER_URL, 200, &reservation_body("0a1b2c3d"));
    assert!(flow.poll_request(T0).is_none());
    flow.result().unwrap().payment.unwrap()
}

fn orch_info() -> String {
    format!(r#"{{"address":"{PAYER}","signature":"0xabcdef"}}"#)
}

// ---- reservation -----------------------------------------------------------------------------

#[test]
fn reserve_happy_path_builds_every_request() {
    let mut flow = ReserveFlow::new(options().with_app("live-app")).unwrap();

    let info = step(
        &mut flow,
        "http://signer.test/sign-orchestrator-info",
        200,
        &orch_info(),
    );
    assert_eq!(body_text(&info), "{}");
    assert_eq!(info.header("authorization"), Some(AUTH_SECRET));
    assert_eq!(info.header("Content-Type"), Some("application/json"));
    assert_eq!(flow.payer_address(), Some(PAYER));

    let unpaid = step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    assert_eq!(body_text(&unpaid), "{}");
    assert_eq!(unpaid.header("Livepeer-Payer-Address"), Some(PAYER));
    assert_eq!(unpaid.header("Livepeer-Payment"), None);
    assert_eq!(
        unpaid.header("Authorization"),
        None,
        "signer headers stay with the signer"
    );

    let mint = step(
        &mut flow,
        "http://signer.test/generate-live-payment",
        200,
        &minted_body(1),
    );
    assert_eq!(
        body_text(&mint),
        r#"{"orchestrator":"PARAMS-0a1b2c3d","type":"live","ManifestID":"0a1b2c3d","app":"live-app"}"#
    );
    assert_eq!(mint.header("Authorization"), Some(AUTH_SECRET));

    let paid = step(&mut flow, RUNNER_URL, 200, &reservation_body("0a1b2c3d"));
    assert_eq!(body_text(&paid), "{}");
    assert_eq!(paid.header("Livepeer-Payer-Address"), Some(PAYER));
    assert_eq!(
        paid.header("Livepeer-Payment"),
        Some(format!("{PAYMENT_SECRET}1").as_str())
    );
    assert_eq!(
        paid.header("Livepeer-Segment"),
        Some(format!("{SEG_SECRET}1").as_str())
    );

    assert!(flow.is_done());
    assert_eq!(flow.attempts(), 1);
    let reserved = flow.result().unwrap();
    assert_eq!(reserved.session_id, "0a1b2c3d");
    assert_eq!(reserved.control_url, "http://orch.test/apps/r1/session/0a1b2c3d");
    let session = reserved.payment.unwrap();
    assert_eq!(session.manifest_id(), "0a1b2c3d");
    assert_eq!(session.payment_params(), "PARAMS-0a1b2c3d");
    assert_eq!(
        session.payment_url(),
        "http://orch.test/apps/r1/session/0a1b2c3d/payment"
    );
    assert_eq!(session.control_url(), reserved.control_url);
    assert_eq!(session.sender(), PAYER);
    // The reservation's mint state is kept for the first funding call; its payment was spent.
    assert!(session.has_state());
    assert!(!session.has_minted());
    assert!(
        body_text(&session.signer_request(ID)).contains(&format!(r#""state":{{"State":"{STATE_SECRET}1""#))
    );
}

#[test]
fn known_payer_skips_orchestrator_info_and_unpriced_runner_needs_no_payment() {
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    let req = step(&mut flow, RUNNER_URL, 200, &reservation_body("free0001"));
    assert_eq!(req.header("Livepeer-Payer-Address"), Some(PAYER));
    let reserved = flow.result().unwrap();
    assert_eq!(reserved.session_id, "free0001");
    assert!(reserved.payment.is_none());
}

#[test]
fn offchain_sends_no_payer_and_a_402_is_payment_required() {
    let offchain = ReserveOptions::new(RUNNER_URL, None, PaymentType::Live);
    let mut flow = ReserveFlow::new(offchain.clone()).unwrap();
    let req = step(&mut flow, RUNNER_URL, 200, &reservation_body("free0001"));
    assert_eq!(req.header("Livepeer-Payer-Address"), None);
    assert!(flow.result().unwrap().payment.is_none());

    let mut flow = ReserveFlow::new(offchain).unwrap();
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    assert_eq!(flow.result().unwrap_err(), ReserveError::PaymentRequired);
}

#[test]
fn a_480_on_the_first_mint_restarts_with_a_fresh_challenge() {
    let mut flow = ReserveFlow::new(options()).unwrap();
    step(
        &mut flow,
        "http://signer.test/sign-orchestrator-info",
        200,
        &orch_info(),
    );
    step(&mut flow, RUNNER_URL, 402, &challenge_body("aaaaaaaa"));
    step(
        &mut flow,
        "http://signer.test/generate-live-payment",
        480,
        r#"{"error":{"message":"refresh required"}}"#,
    );
    // Back to a fresh 402 (no second orchestrator-info call).
    step(&mut flow, RUNNER_URL, 402, &challenge_body("bbbbbbbb"));
    let mint = step(
        &mut flow,
        "http://signer.test/generate-live-payment",
        200,
        &minted_body(2),
    );
    assert!(body_text(&mint).contains(r#""ManifestID":"bbbbbbbb""#));
    assert!(!body_text(&mint).contains("state"));
    step(&mut flow, RUNNER_URL, 200, &reservation_body("bbbbbbbb"));
    assert_eq!(flow.attempts(), 2);
    let session = flow.result().unwrap().payment.unwrap();
    assert_eq!(session.manifest_id(), "bbbbbbbb");
    assert_eq!(session.payment_params(), "PARAMS-bbbbbbbb");
}

#[test]
fn attempts_are_bounded() {
    let mut flow = ReserveFlow::new(options().with_max_attempts(3)).unwrap();
    step(
        &mut flow,
        "http://signer.test/sign-orchestrator-info",
        200,
        &orch_info(),
    );
    for i in 0..3 {
        step(
            &mut flow,
            RUNNER_URL,
            402,
            &challenge_body(&format!("0000000{i}")),
        );
        step(&mut flow, "http://signer.test/generate-live-payment", 480, "");
    }
    assert_eq!(flow.poll_request(T0), None);
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::TooManyAttempts { attempts: 3 }
    );
}

#[test]
fn a_402_without_the_challenge_fields_is_an_error() {
    for body in [
        r#"{"error":{"message":"invalid or missing payer address"}}"#,
        r#"{"payment_params":"p","manifest_id":"m"}"#,
        "Bad payment header",
    ] {
        let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
        step(&mut flow, RUNNER_URL, 402, body);
        let err = flow.result().unwrap_err();
        assert!(
            matches!(err, ReserveError::NotAChallenge { status: 402, .. }),
            "{err:?}"
        );
    }
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(
        &mut flow,
        RUNNER_URL,
        402,
        r#"{"error":{"message":"invalid or missing payer address"}}"#,
    );
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::NotAChallenge {
            status: 402,
            message: "invalid or missing payer address".to_string(),
        }
    );
}

#[test]
fn a_cross_origin_payment_url_is_refused_unless_allowed() {
    let evil = r#"{"payment_params":"p","manifest_id":"m","payment_url":"https://elsewhere.test/pay"}"#;
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(&mut flow, RUNNER_URL, 402, evil);
    assert_eq!(flow.result().unwrap_err(), ReserveError::CrossOriginPaymentUrl);

    let mut allowed = options().with_payer_address(PAYER);
    allowed.allow_cross_origin_payment_url = true;
    let mut flow = ReserveFlow::new(allowed).unwrap();
    step(&mut flow, RUNNER_URL, 402, evil);
    assert!(flow.poll_request(T0).is_some(), "goes on to the signer");

    // Same origin, spelt differently, is fine; a non-http(s) payment URL never is.
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    let same = r#"{"payment_params":"p","manifest_id":"m","payment_url":"HTTP://Orch.Test:80/pay"}"#;
    step(&mut flow, RUNNER_URL, 402, same);
    assert!(flow.poll_request(T0).is_some());
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    let ftp = r#"{"payment_params":"p","manifest_id":"m","payment_url":"ftp://orch.test/pay"}"#;
    step(&mut flow, RUNNER_URL, 402, ftp);
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::BadUrl { field: "payment_url" }
    );
}

#[test]
fn bad_urls_and_max_prices_are_refused_up_front() {
    for url in [
        "",
        "orch.test/apps/r/session",
        "ftp://orch.test/x",
        "http://",
        "http:///x",
        "http://h:99999/",
    ] {
        let err = ReserveFlow::new(ReserveOptions::new(url, None, PaymentType::Live)).unwrap_err();
        assert_eq!(err, ReserveError::BadUrl { field: "runner_url" }, "{url:?}");
    }
    let err = ReserveFlow::new(ReserveOptions::new(
        RUNNER_URL,
        Some("signer.test".into()),
        PaymentType::Live,
    ))
    .unwrap_err();
    assert_eq!(err, ReserveError::BadUrl { field: "signer_url" });
    for max in [
        MaxPrice::new("1e9", PriceUnit::Seconds),
        MaxPrice::new("", PriceUnit::Seconds),
        MaxPrice::new("100", PriceUnit::PixelSeconds720p),
    ] {
        let err = ReserveFlow::new(options().with_max_price(max)).unwrap_err();
        assert_eq!(err, ReserveError::BadMaxPrice);
    }
    // A control URL that is not http(s) is refused too.
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(
        &mut flow,
        RUNNER_URL,
        200,
        r#"{"session_id":"s","app_url":"a","control_url":"javascript:alert(1)"}"#,
    );
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::BadUrl { field: "control_url" }
    );
}

#[test]
fn other_answers_are_typed_errors() {
    // Signer refusals on the first mint.
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    step(
        &mut flow,
        "http://signer.test/generate-live-payment",
        481,
        r#"{"error":{"message":"orchestrator price above maxPrice"}}"#,
    );
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::Signer {
            status: 481,
            message: "orchestrator price above maxPrice".to_string(),
        }
    );
    // Orchestrator refusals, first and paid call (a 503 once its retries are spent).
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER).with_max_retries(0)).unwrap();
    step(
        &mut flow,
        RUNNER_URL,
        503,
        r#"{"error":{"message":"no capacity available"}}"#,
    );
    let err = flow.result().unwrap_err();
    assert!(
        matches!(err, ReserveError::Orchestrator { status: 503, .. }),
        "{err}"
    );
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    step(
        &mut flow,
        "http://signer.test/generate-live-payment",
        200,
        &minted_body(1),
    );
    step(&mut flow, RUNNER_URL, 403, "invalid segment credentials");
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::Orchestrator {
            status: 403,
            message: "invalid segment credentials".to_string(),
        }
    );
    // Signer refusal of the orchestrator-info call, and a malformed one.
    let mut flow = ReserveFlow::new(options()).unwrap();
    step(
        &mut flow,
        "http://signer.test/sign-orchestrator-info",
        401,
        "unauthorized",
    );
    assert!(matches!(
        flow.result().unwrap_err(),
        ReserveError::Signer { status: 401, .. }
    ));
    let mut flow = ReserveFlow::new(options()).unwrap();
    step(
        &mut flow,
        "http://signer.test/sign-orchestrator-info",
        200,
        r#"{"address":""}"#,
    );
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::Malformed {
            endpoint: Endpoint::OrchestratorInfo,
            error: WireError::EmptyField("address"),
        }
    );
    // A malformed mint.
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    step(
        &mut flow,
        "http://signer.test/generate-live-payment",
        200,
        r#"{"payment":"p"}"#,
    );
    assert!(matches!(
        flow.result().unwrap_err(),
        ReserveError::Malformed {
            endpoint: Endpoint::Signer,
            ..
        }
    ));
}

#[test]
fn network_failures_end_the_flow_and_stray_answers_are_ignored() {
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER).with_max_retries(0)).unwrap();
    // Nothing in flight: ignored.
    flow.handle_response(T0, ID, &Response::new(200, b"{}"));
    flow.handle_failure(T0, ID, Failure::Network);
    assert!(!flow.is_done());
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    let mint = flow.poll_request(T0).unwrap();
    // An answer naming another request is ignored too.
    flow.handle_failure(T0, ID, Failure::Network);
    assert!(!flow.is_done());
    flow.handle_failure(T0, mint.id, Failure::Timeout);
    assert_eq!(flow.poll_request(T0), None);
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::Unreachable {
            endpoint: Endpoint::Signer,
            reply: Reply::Timeout,
        }
    );
    let flow = ReserveFlow::new(options()).unwrap();
    assert_eq!(flow.result().unwrap_err(), ReserveError::Unfinished);
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(&mut flow, RUNNER_URL, 404, "runner not found");
    assert!(flow.poll_done().unwrap().is_err());
    assert!(flow.poll_done().is_none(), "taken once");
}

// ---- funded session --------------------------------------------------------------------------

#[test]
fn signer_request_shape_and_state_replacement() {
    let mut s = reserved_session();
    let first = s.signer_request(ID);
    assert_eq!(first.url, "http://signer.test/generate-live-payment");
    assert_eq!(first.header("Content-Type"), Some("application/json"));
    assert_eq!(first.header("Authorization"), Some(AUTH_SECRET));
    assert_eq!(
        body_text(&first),
        format!(
            r#"{{"orchestrator":"PARAMS-0a1b2c3d","type":"live","ManifestID":"0a1b2c3d","state":{{"State":"{STATE_SECRET}1","Sig":"{SIG_SECRET}1"}}}}"#
        )
    );

    let answer = s.on_signer_response(200, minted_body(2).as_bytes());
    assert_eq!(
        answer,
        Reading {
            reply: Reply::Status(200),
            error: None
        }
    );
    assert!(s.has_minted());
    assert!(body_text(&s.signer_request(ID)).contains(&format!("{STATE_SECRET}2")));

    // Error answers keep the state.
    for (status, body) in [
        (482, r#"{"error":{"message":"no tickets needed"}}"#),
        (480, ""),
        (500, "boom"),
    ] {
        let answer = s.on_signer_response(status, body.as_bytes());
        assert_eq!(answer.reply, Reply::Status(status));
        assert!(
            matches!(answer.error, Some(ProtocolError::Status { endpoint: Endpoint::Signer, status: st, .. }) if st == status)
        );
        assert!(body_text(&s.signer_request(ID)).contains(&format!("{STATE_SECRET}2")));
    }
    let answer = s.on_signer_response(482, br#"{"error":{"message":"no tickets needed"}}"#);
    assert_eq!(
        answer.error.unwrap().to_string(),
        "signer answered HTTP 482: no tickets needed"
    );
}

#[test]
fn max_price_is_sent_as_a_decimal_string() {
    let mut flow = ReserveFlow::new(
        options()
            .with_payer_address(PAYER)
            .with_max_price(MaxPrice::new("1012000000", PriceUnit::Seconds)),
    )
    .unwrap();
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    let mint = flow.poll_request(T0).unwrap();
    assert!(
        body_text(&mint).contains(r#""maxPrice":{"price":"1012000000","currency":"wei","unit":"seconds"}"#),
        "{}",
        body_text(&mint)
    );
    assert!(!body_text(&mint).contains("state"));
}

#[test]
fn a_malformed_200_is_malformed_and_keeps_the_state() {
    let mut s = reserved_session();
    for body in [
        "",
        "not json",
        r#"{"payment":"p","segCreds":"c"}"#,
        r#"{"payment":"","segCreds":"c","state":{"State":"s","Sig":"g"}}"#,
    ] {
        let answer = s.on_signer_response(200, body.as_bytes());
        assert_eq!(answer.reply, Reply::Malformed, "{body:?}");
        assert!(matches!(
            answer.error,
            Some(ProtocolError::Malformed {
                endpoint: Endpoint::Signer,
                ..
            })
        ));
        assert!(!s.has_minted());
        assert!(body_text(&s.signer_request(ID)).contains(&format!("{STATE_SECRET}1")));
    }
    let answer = s.on_signer_response(200, br#"{"payment":"p","segCreds":"c"}"#);
    assert_eq!(
        answer.error,
        Some(ProtocolError::Malformed {
            endpoint: Endpoint::Signer,
            error: WireError::MissingField("state"),
        })
    );
}

#[test]
fn the_minted_payment_is_kept_for_a_repost_until_it_is_credited() {
    let mut s = reserved_session();
    assert_eq!(s.payment_request(ID), None, "nothing minted yet");
    s.on_signer_response(200, minted_body(2).as_bytes());
    let req = s.payment_request(ID).unwrap();
    assert_eq!(req.url, "http://orch.test/apps/r1/session/0a1b2c3d/payment");
    assert!(req.body.is_empty());
    assert_eq!(
        req.header("Livepeer-Payment"),
        Some(format!("{PAYMENT_SECRET}2").as_str())
    );
    assert_eq!(
        req.header("Livepeer-Segment"),
        Some(format!("{SEG_SECRET}2").as_str())
    );
    assert_eq!(req.header("Authorization"), None);
    // A failed POST can be repeated, byte for byte, under the repost label.
    let again = s.repost_request(ID).unwrap();
    assert_eq!(
        (again.url.as_str(), again.endpoint.as_str()),
        (req.url.as_str(), "repost")
    );
    assert_eq!(again.headers, req.headers);
    assert_eq!(
        s.on_payment_response(200, b"\x0a\x01"),
        Reading {
            reply: Reply::Status(200),
            error: None
        }
    );
    assert_eq!(s.repost_request(ID), None, "credited: nothing is kept");
    assert!(!s.has_minted());
    let gone = s.on_payment_response(404, br#"{"error":{"message":"session not found"}}"#);
    assert_eq!(gone.reply, Reply::Status(404));
    assert_eq!(
        gone.error,
        Some(ProtocolError::Status {
            endpoint: Endpoint::Payment,
            status: 404,
            message: "session not found".to_string(),
        })
    );
}

#[test]
fn refresh_replaces_only_the_params() {
    let mut s = reserved_session();
    let req = s.refresh_request(ID);
    assert_eq!(req.url, "http://orch.test/refresh-payment");
    assert_eq!(req.header("Content-Type"), Some("application/json"));
    assert_eq!(
        body_text(&req),
        format!(r#"{{"sender":"{PAYER}","manifest_id":"0a1b2c3d"}}"#)
    );
    let fresh = r#"{"payment_params":"FRESH","orchestrator":"http://orch.test","manifest_id":"0a1b2c3d","payment_url":"http://orch.test/payment"}"#;
    assert_eq!(
        s.on_refresh_response(200, fresh.as_bytes()).reply,
        Reply::Status(200)
    );
    assert_eq!(s.payment_params(), "FRESH");
    assert_eq!(
        s.payment_url(),
        "http://orch.test/apps/r1/session/0a1b2c3d/payment"
    );
    assert!(body_text(&s.signer_request(ID)).contains(r#""orchestrator":"FRESH""#));

    let bad = s.on_refresh_response(200, br#"{"payment_params":"X"}"#);
    assert_eq!(bad.reply, Reply::Malformed);
    assert!(matches!(
        bad.error,
        Some(ProtocolError::Malformed {
            endpoint: Endpoint::Refresh,
            ..
        })
    ));
    let refused = s.on_refresh_response(409, br#"{"error":{"message":"no price pinned"}}"#);
    assert_eq!(refused.reply, Reply::Status(409));
    assert_eq!(s.payment_params(), "FRESH");
}

#[test]
fn stop_request_shape() {
    let mut s = reserved_session();
    let req = s.stop_request(ID);
    assert_eq!(req.url, "http://orch.test/apps/r1/session/0a1b2c3d/stop");
    assert!(req.body.is_empty() && req.headers.is_empty());
    assert_eq!(s.on_stop_response(204, b"").reply, Reply::Status(204));
    assert!(s.on_stop_response(404, b"runner not found").error.is_some());
}

#[test]
fn debug_redacts_every_secret() {
    let secrets = [
        AUTH_SECRET,
        STATE_SECRET,
        SIG_SECRET,
        PAYMENT_SECRET,
        SEG_SECRET,
        "hunter2",
    ];
    let mut texts: Vec<String> = Vec::new();

    let opts = options().with_signer_header("X-Api-Key", "hunter2");
    texts.push(format!("{opts:?}"));
    // A flow holding a minted payment (between the first mint and the paid retry).
    let mut flow = ReserveFlow::new(opts).unwrap();
    step(
        &mut flow,
        "http://signer.test/sign-orchestrator-info",
        200,
        &orch_info(),
    );
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    step(
        &mut flow,
        "http://signer.test/generate-live-payment",
        200,
        &minted_body(1),
    );
    texts.push(format!("{flow:?}"));
    let paid = flow.poll_request(T0).unwrap();
    texts.push(format!("{paid:?}"));
    flow.handle_response(
        T0,
        paid.id,
        &Response::new(200, reservation_body("0a1b2c3d").as_bytes()),
    );
    let reserved = flow.result().unwrap();
    texts.push(format!("{reserved:?}"));
    let mut s = reserved.payment.unwrap();
    texts.push(format!("{:?}", s.signer_request(ID)));
    s.on_signer_response(200, minted_body(2).as_bytes());
    texts.push(format!("{s:?}"));
    texts.push(format!("{s:#?}"));
    texts.push(format!("{:?}", s.payment_request(ID).unwrap()));
    texts.push(format!(
        "{:?}",
        ReserveError::Signer {
            status: 481,
            message: "too expensive".into()
        }
    ));

    for text in &texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    // Public values are still there.
    assert!(texts[1].contains("0a1b2c3d"), "{}", texts[1]);
    assert!(
        texts[2].contains(PAYER) && texts[2].contains("<redacted"),
        "{}",
        texts[2]
    );
    assert!(texts[4].contains("body: <"), "{}", texts[4]);
    assert!(texts[5].contains("X-Api-Key"), "{}", texts[5]);

    let with_userinfo = Request::post(ID, Endpoint::Signer, "https://user:pa55word@signer.test/x?y=1");
    let text = format!("{with_userinfo:?}");
    assert!(
        !text.contains("pa55word") && text.contains("signer.test/x") && !text.contains("y=1"),
        "{text}"
    );
}

#[test]
fn origin_normalises() {
    let cases = [
        ("http://orch.test/apps/r1/session", Some("http://orch.test")),
        ("HTTP://ORCH.test:80", Some("http://orch.test")),
        ("https://orch.test:443/x", Some("https://orch.test")),
        ("https://orch.test:8935?x", Some("https://orch.test:8935")),
        ("http://user:pw@orch.test:1/x", Some("http://orch.test:1")),
        ("http://127.0.0.1:8935#f", Some("http://127.0.0.1:8935")),
        ("http://[::1]/", Some("http://[::1]")),
        ("http://orch.test:/", Some("http://orch.test")),
        ("ws://orch.test", None),
        ("http://", None),
        ("http://:80/", None),
        ("http://[::1", None),
        ("http://orch test/", None),
        ("http://orch.test:12a/", None),
        ("http://orch.test:65536/", None),
        ("orch.test", None),
    ];
    for (url, expected) in cases {
        assert_eq!(origin(url).as_deref(), expected, "{url}");
    }
}

#[test]
fn errors_display_without_secrets() {
    let e = ReserveError::TooManyAttempts { attempts: 8 };
    assert_eq!(
        e.to_string(),
        "reservation: the signer asked for a refresh on all 8 challenges"
    );
    let e: &dyn core::error::Error = &ReserveError::Malformed {
        endpoint: Endpoint::PaidReservation,
        error: WireError::MissingField("session_id"),
    };
    assert!(e.source().is_some());
    assert_eq!(
        e.to_string(),
        "reservation: malformed paid-reservation answer: missing field `session_id`"
    );
    assert_eq!(
        ProtocolError::Status {
            endpoint: Endpoint::Payment,
            status: 404,
            message: String::new()
        }
        .to_string(),
        "payment answered HTTP 404"
    );
}

#[test]
fn transient_reservation_failures_are_retried_with_backoff_then_given_up() {
    // A signer timeout on the first mint, then an orchestrator 503: both retried.
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
    let mint = flow.poll_request(T0).unwrap();
    flow.handle_failure(T0, mint.id, Failure::Timeout);
    assert!(!flow.is_done());
    assert_eq!(flow.poll_request(T0), None, "the retry waits");
    let at = flow.poll_timeout().expect("a retry instant");
    assert_eq!(at, T0 + embassy_time::Duration::from_millis(500));
    let again = flow.poll_request(at).expect("the first mint again");
    assert!(again.url.ends_with("/generate-live-payment"));
    flow.handle_response(at, again.id, &Response::new(200, minted_body(1).as_bytes()));
    // The paid reservation answers 503: it starts over from a fresh challenge, 1 s later.
    let paid = flow.poll_request(at).unwrap();
    flow.handle_response(at, paid.id, &Response::new(503, b"no capacity"));
    let at = flow.poll_timeout().expect("a retry instant");
    assert_eq!(at, T0 + embassy_time::Duration::from_millis(1_500));
    let challenge = flow.poll_request(at).unwrap();
    assert!(
        !challenge
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("livepeer-payment"))
    );
    // The third transient failure is the last retried; the fourth ends the flow.
    flow.handle_response(at, challenge.id, &Response::new(502, b""));
    let at = flow.poll_timeout().unwrap();
    let challenge = flow.poll_request(at).unwrap();
    flow.handle_failure(at, challenge.id, Failure::Refused);
    assert_eq!(flow.poll_request(at), None);
    assert_eq!(flow.poll_timeout(), None);
    assert_eq!(
        flow.result().unwrap_err(),
        ReserveError::Unreachable {
            endpoint: Endpoint::Reservation,
            reply: Reply::Refused,
        }
    );
    // Terminal answers are never retried.
    let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
    step(&mut flow, RUNNER_URL, 404, "runner not found");
    assert!(flow.is_done());
}

#[test]
fn control_url_obeys_the_payment_url_origin_rule() {
    for control in [
        "http://elsewhere.test/apps/r/session/s",
        "https://orch.test/apps/r/session/s",
    ] {
        let mut flow = ReserveFlow::new(options().with_payer_address(PAYER)).unwrap();
        step(&mut flow, RUNNER_URL, 402, &challenge_body("0a1b2c3d"));
        step(
            &mut flow,
            "http://signer.test/generate-live-payment",
            200,
            &minted_body(1),
        );
        step(
            &mut flow,
            RUNNER_URL,
            200,
            &format!(r#"{{"session_id":"s","app_url":"a","control_url":"{control}"}}"#),
        );
        let err = flow.result().unwrap_err();
        assert_eq!(err, ReserveError::CrossOriginControlUrl, "{control}");
        assert!(err.is_protocol_violation());
    }
}

#[test]
fn caller_input_is_refused_before_any_request() {
    let bad = |o: ReserveOptions| ReserveFlow::new(o).unwrap_err();
    let e = bad(ReserveOptions::new(
        "http://u:p@orch.test/apps/r/session",
        None,
        PaymentType::Live,
    ));
    assert_eq!(e, ReserveError::UserInfoInUrl { field: "runner_url" });
    assert!(e.is_caller_input() && !e.to_string().contains("u:p"));
    let e = bad(ReserveOptions::new(
        "http://orch.test/a b",
        None,
        PaymentType::Live,
    ));
    assert_eq!(e, ReserveError::BadUrl { field: "runner_url" });
    let e = bad(options().with_signer_header("Content-Length", "99"));
    assert!(matches!(
        e,
        ReserveError::BadSignerHeader {
            problem: HeaderProblem::Reserved,
            ..
        }
    ));
    let e = bad(options().with_signer_header("Authorization", "Bearer s3cret\r\nX: y"));
    assert!(e.is_caller_input() && !e.to_string().contains("s3cret"), "{e}");
}
