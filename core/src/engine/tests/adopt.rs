//! [`ReserveFlow::adopt`]: a session reserved by another client, funded from its challenge and
//! its signer state.

use alloc::string::{String, ToString};

use super::at;
use crate::PaymentType;
use crate::engine::{
    Adoption, Engine, Output, PayerCache, ReserveError, ReserveFlow, ReserveOptions, Response,
};
use crate::{Config, FirstPayment, StatusTable};

const SIGNER: &str = "http://signer.example";
const CONTROL: &str = "http://orch.example/apps/runner/session/m1";
const STATE: &str = r#"{"State":"U1Q=","Sig":"U0c="}"#;

fn options() -> ReserveOptions {
    ReserveOptions::new("", Some(SIGNER.into()), PaymentType::Live)
}

fn adoption() -> Adoption {
    Adoption {
        session_id: "m1".into(),
        app_url: "http://orch.example/app/m1".into(),
        control_url: CONTROL.into(),
        payment_params: "cA==".into(),
        manifest_id: "m1".into(),
        payment_url: "http://orch.example/apps/runner/session/m1/payment".into(),
        signer_state: Some(STATE.into()),
        minted_at: Some(at(2_000)),
    }
}

fn cached() -> PayerCache {
    let mut cache = PayerCache::new();
    cache.insert(SIGNER, "0xabc");
    cache
}

/// The first funding request of an engine built from `reserved`, started at `now`.
fn first_signer_body(engine: &mut Engine, now: crate::Instant) -> String {
    engine.start(now);
    loop {
        match engine.poll_output(now) {
            Some(Output::Transmit(request)) => {
                return String::from_utf8(request.body).unwrap();
            }
            Some(Output::Timeout(_)) | None => panic!("no request at once"),
            Some(_) => {}
        }
    }
}

#[test]
fn a_known_payer_adopts_at_once_and_the_signer_state_goes_on() {
    let mut flow = ReserveFlow::adopt(options(), adoption(), &cached(), at(3_000)).unwrap();
    let Some(Output::Done(Ok(reserved))) = flow.poll_output(at(3_000)) else {
        panic!("done without a request");
    };
    assert_eq!(reserved.session_id, "m1");
    assert_eq!(reserved.control_url, CONTROL);
    assert_eq!(
        reserved.minted_at,
        at(2_000),
        "the runway counts from the other client's mint"
    );
    assert_eq!(reserved.payer_address.as_deref(), Some("0xabc"));
    let config = Config {
        first_payment: FirstPayment::Immediately,
        ..Config::default()
    };
    let mut engine = Engine::new(&config, reserved, StatusTable::new()).unwrap();
    assert_eq!(engine.funded_until(), at(12_000));
    let body = first_signer_body(&mut engine, at(3_000));
    assert!(
        body.contains(r#""state":{"State":"U1Q=","Sig":"U0c="}"#),
        "{body}"
    );
    assert!(body.contains(r#""ManifestID":"m1""#), "{body}");
}

#[test]
fn an_unknown_payer_is_asked_for_once_and_cached() {
    let mut cache = PayerCache::new();
    let mut flow = ReserveFlow::adopt(options(), adoption(), &cache, at(0)).unwrap();
    let Some(Output::Transmit(info)) = flow.poll_output(at(0)) else {
        panic!("the payer address is asked for first");
    };
    assert_eq!(info.endpoint.as_str(), "sign-orchestrator-info");
    assert!(info.url.starts_with(SIGNER));
    flow.handle_response(
        at(10),
        info.id,
        &Response::new(200, br#"{"address":"0xdef","signature":"0x1"}"#),
    );
    let Some(Output::Done(Ok(reserved))) = flow.poll_output(at(10)) else {
        panic!("done after the payer address");
    };
    assert_eq!(reserved.payer_address.as_deref(), Some("0xdef"));
    flow.update_cache(&mut cache);
    assert_eq!(cache.get(SIGNER), Some("0xdef"));
    // A refresh (after a 480) names the payer.
    let engine = Engine::new(&Config::default(), reserved, StatusTable::new()).unwrap();
    assert_eq!(engine.protocol().sender(), "0xdef");
}

#[test]
fn a_signer_refusing_the_payer_lookup_fails_the_adoption() {
    let mut flow = ReserveFlow::adopt(options(), adoption(), &PayerCache::new(), at(0)).unwrap();
    let Some(Output::Transmit(info)) = flow.poll_output(at(0)) else {
        panic!("a request");
    };
    flow.handle_response(at(1), info.id, &Response::new(401, br#"{"error":"no"}"#));
    let Some(Output::Done(Err(error))) = flow.poll_output(at(1)) else {
        panic!("done");
    };
    assert!(
        matches!(error, ReserveError::Signer { status: 401, .. }),
        "{error:?}"
    );
}

#[test]
fn an_unknown_reservation_instant_leaves_only_the_check_level() {
    let unknown = Adoption {
        minted_at: None,
        ..adoption()
    };
    let mut flow = ReserveFlow::adopt(options(), unknown, &cached(), at(60_000)).unwrap();
    let Some(Output::Done(Ok(reserved))) = flow.poll_output(at(60_000)) else {
        panic!("done");
    };
    let config = Config::default();
    let mut engine = Engine::new(&config, reserved, StatusTable::new()).unwrap();
    assert_eq!(
        engine.funded_until(),
        at(66_000),
        "the check level of runway, no more"
    );
    // It pays at once, whatever the first-payment phase says, and raises no alarm.
    engine.start(at(60_000));
    loop {
        match engine.poll_output(at(60_000)) {
            Some(Output::Transmit(request)) => {
                assert_eq!(request.endpoint.as_str(), "signer");
                break;
            }
            Some(Output::Event(event)) => assert!(
                !matches!(event, crate::Event::AtRisk { .. } | crate::Event::Lapsed { .. }),
                "{event:?}"
            ),
            Some(Output::Timeout(_)) | None => panic!("no request at once"),
            Some(_) => {}
        }
    }
}

#[test]
fn every_unusable_field_is_named_before_any_request() {
    type Spoil = fn(&mut Adoption);
    let cases: [(&str, Spoil); 9] = [
        ("control_url", |a| a.control_url = String::new()),
        ("control_url", |a| a.control_url = "ftp://orch.example/c".into()),
        ("payment_url", |a| a.payment_url = "not a url".into()),
        ("payment_url", |a| {
            a.payment_url = "http://elsewhere.example/pay".into();
        }),
        ("payment_params", |a| a.payment_params = " ".into()),
        ("manifest_id", |a| a.manifest_id = String::new()),
        ("session_id", |a| a.session_id = String::new()),
        ("signer_state", |a| a.signer_state = Some("[1,2]".into())),
        ("app_url", |a| a.app_url = "javascript:1".into()),
    ];
    for (field, spoil) in cases {
        let mut bad = adoption();
        spoil(&mut bad);
        let error = ReserveFlow::adopt(options(), bad, &cached(), at(0)).unwrap_err();
        assert!(
            matches!(error, ReserveError::BadAdoption { field: f, .. } if f == field),
            "{field}: {error:?}"
        );
        assert!(error.is_caller_input());
        assert!(error.to_string().contains(field), "{error}");
    }
    let no_signer = ReserveOptions::new("", None, PaymentType::Live);
    let error = ReserveFlow::adopt(no_signer, adoption(), &cached(), at(0)).unwrap_err();
    assert!(matches!(
        error,
        ReserveError::BadAdoption {
            field: "signer_url",
            ..
        }
    ));
    // Cross-origin tickets only when the caller allows them.
    let mut allowed = options();
    allowed.allow_cross_origin_payment_url = true;
    let elsewhere = Adoption {
        payment_url: "http://elsewhere.example/pay".into(),
        ..adoption()
    };
    assert!(ReserveFlow::adopt(allowed, elsewhere, &cached(), at(0)).is_ok());
}

#[test]
fn debug_shows_no_signer_state() {
    let shown = alloc::format!("{:?}", adoption());
    assert!(!shown.contains("U1Q="), "{shown}");
    assert!(shown.contains("m1"));
}
