//! Issue 16: the one output. Every decision a driver used to make (a 2xx minted or credited, a
//! state to write ahead, a request to abandon, the end of a run) comes out of `poll_output`.

use std::vec::Vec;

use embassy_time::Instant;

use super::super::*;
use crate::{Config, Endpoint, Event, ReleaseReason, State, StatusTable};

const MINTED: &[u8] = br#"{"payment":"UEFZ","segCreds":"U0VH","state":{"State":"U1Q=","Sig":"U0c="}}"#;

use super::{at, funded};

/// Every output up to and including the drain's last (a timeout, or nothing).
fn drain(engine: &mut Engine, now: Instant) -> Vec<Output> {
    let mut outputs = Vec::new();
    while let Some(output) = engine.poll_output(now) {
        let last = matches!(output, Output::Timeout(_));
        outputs.push(output);
        if last {
            break;
        }
    }
    outputs
}

fn transmits(outputs: &[Output]) -> Vec<&Request> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn persisted(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Persist { .. }))
        .count()
}

fn checkpoints(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Checkpoint(_)))
        .count()
}

#[track_caller]
fn only_request(outputs: &[Output]) -> Request {
    let sent = transmits(outputs);
    assert_eq!(sent.len(), 1, "{outputs:?}");
    sent[0].clone()
}

#[test]
fn a_new_signer_state_is_written_ahead_of_its_post_and_a_credit_is_checkpointed() {
    let mut engine = funded().with_write_ahead();
    let signer = only_request(&drain(&mut engine, at(0)));
    assert_eq!(signer.endpoint, Endpoint::Signer);
    engine
        .handle_response(at(10), signer.id, &Response::new(200, MINTED))
        .unwrap();
    let after_mint = drain(&mut engine, at(10));
    assert_eq!(persisted(&after_mint), 1, "{after_mint:?}");
    assert!(
        transmits(&after_mint).is_empty(),
        "the POST waits for the store: {after_mint:?}"
    );
    let Some(Output::Persist { id, snapshot }) =
        after_mint.iter().find(|o| matches!(o, Output::Persist { .. }))
    else {
        unreachable!()
    };
    assert_eq!(*id, signer.id);
    assert!(
        snapshot.payment.is_some(),
        "the snapshot holds the minted payment"
    );
    // Nothing more until the store answers, however often the driver asks.
    assert!(transmits(&drain(&mut engine, at(11))).is_empty());
    assert!(engine.handle_persisted(RequestId::new(999), true).is_err());
    engine.handle_persisted(*id, true).unwrap();
    let post = only_request(&drain(&mut engine, at(12)));
    assert_eq!(post.endpoint, Endpoint::Payment);
    engine
        .handle_response(at(20), post.id, &Response::new(200, b""))
        .unwrap();
    let after_credit = drain(&mut engine, at(20));
    assert_eq!(checkpoints(&after_credit), 1, "{after_credit:?}");
    assert_eq!(persisted(&after_credit), 0);
    assert!(
        after_credit
            .iter()
            .any(|o| matches!(o, Output::Event(Event::PaymentAccepted { .. })))
    );
}

#[test]
fn a_refresh_200_and_a_malformed_signer_200_are_neither_checkpointed_nor_written_ahead() {
    let mut engine = funded().with_write_ahead();
    let signer = only_request(&drain(&mut engine, at(0)));
    engine
        .handle_response(at(10), signer.id, &Response::new(480, b""))
        .unwrap();
    let refresh = only_request(&drain(&mut engine, at(10)));
    assert_eq!(refresh.endpoint, Endpoint::Refresh);
    let challenge = br#"{"payment_params":"cDI=","manifest_id":"0a1b2c3d","payment_url":"http://orch.example/apps/runner/session/0a1b2c3d/payment"}"#;
    engine
        .handle_response(at(20), refresh.id, &Response::new(200, challenge))
        .unwrap();
    let after_refresh = drain(&mut engine, at(20));
    assert_eq!(
        checkpoints(&after_refresh),
        0,
        "a refresh credits nothing: {after_refresh:?}"
    );
    assert_eq!(persisted(&after_refresh), 0);
    assert_eq!(engine.stats().refreshes, 1);
    // The mint that follows the refresh answers a 200 that is not a payment.
    let (mut outputs, mut next) = (after_refresh, at(20));
    while transmits(&outputs).is_empty() {
        let Some(Output::Timeout(due)) = outputs.last() else {
            panic!("the next mint is timed: {outputs:?}")
        };
        next = *due;
        engine.handle_timeout(next);
        outputs = drain(&mut engine, next);
        assert_eq!(checkpoints(&outputs) + persisted(&outputs), 0);
    }
    let again = only_request(&outputs);
    assert_eq!(again.endpoint, Endpoint::Signer);
    let answered = next + embassy_time::Duration::from_millis(10);
    engine
        .handle_response(answered, again.id, &Response::new(200, br#"{"not":"a payment"}"#))
        .unwrap();
    let after_bad = drain(&mut engine, answered);
    assert_eq!(
        persisted(&after_bad),
        0,
        "a malformed 200 minted nothing: {after_bad:?}"
    );
    assert_eq!(checkpoints(&after_bad), 0);
    assert!(
        transmits(&after_bad)
            .iter()
            .all(|r| r.endpoint != Endpoint::Payment)
    );
}

#[test]
fn without_a_store_nothing_is_persisted_and_nothing_held() {
    let mut engine = funded();
    let signer = only_request(&drain(&mut engine, at(0)));
    engine
        .handle_response(at(10), signer.id, &Response::new(200, MINTED))
        .unwrap();
    let outputs = drain(&mut engine, at(10));
    assert_eq!(persisted(&outputs) + checkpoints(&outputs), 0);
    assert_eq!(only_request(&outputs).endpoint, Endpoint::Payment);
}

#[test]
fn a_close_cancels_the_funding_request_in_flight_then_the_stop_goes_and_the_run_ends_once() {
    let mut engine = funded();
    let signer = only_request(&drain(&mut engine, at(0)));
    engine.close(at(5));
    let outputs = drain(&mut engine, at(5));
    assert!(
        matches!(outputs.first(), Some(Output::Cancel(id)) if *id == signer.id),
        "{outputs:?}"
    );
    let stop = only_request(&outputs);
    assert_eq!(stop.endpoint, Endpoint::Stop);
    // The abandoned request's late answer is refused and changes nothing.
    assert!(
        engine
            .handle_response(at(6), signer.id, &Response::new(200, MINTED))
            .is_err()
    );
    engine
        .handle_response(at(7), stop.id, &Response::new(204, b""))
        .unwrap();
    let end = drain(&mut engine, at(7));
    let done: Vec<_> = end
        .iter()
        .filter_map(|o| match o {
            Output::Done(exit) => Some(*exit),
            _ => None,
        })
        .collect();
    assert_eq!(done.len(), 1, "{end:?}");
    assert_eq!(done[0].reason(), Some(ReleaseReason::ClosedByClient));
    assert_eq!(done[0].stats(), engine.stats());
    assert!(
        drain(&mut engine, at(8)).is_empty(),
        "Done once; a released engine has no timer"
    );
}

#[test]
fn a_stop_waits_for_the_request_in_flight_then_the_run_ends_stopped() {
    let mut engine = funded();
    let signer = only_request(&drain(&mut engine, at(0)));
    engine.stop(at(5));
    let waiting = drain(&mut engine, at(5));
    assert!(
        !waiting
            .iter()
            .any(|o| matches!(o, Output::Cancel(_) | Output::Done(_))),
        "{waiting:?}"
    );
    engine
        .handle_response(at(10), signer.id, &Response::new(482, b""))
        .unwrap();
    let end = drain(&mut engine, at(10));
    assert!(
        end.iter()
            .any(|o| matches!(o, Output::Done(Exit::Stopped { .. }))),
        "{end:?}"
    );
    assert_eq!(engine.state(), State::Reserved);
    // A new run: started again, it funds again.
    engine.start(at(11));
    assert!(
        !drain(&mut engine, at(11))
            .iter()
            .any(|o| matches!(o, Output::Done(_)))
    );
}

#[test]
fn a_refused_credential_is_asked_for_before_the_signer_is_asked_again() {
    let mut engine = funded();
    let signer = only_request(&drain(&mut engine, at(0)));
    engine
        .handle_response(at(10), signer.id, &Response::new(401, b"expired"))
        .unwrap();
    let mut outputs = drain(&mut engine, at(10));
    if let Some(Output::Timeout(retry)) = outputs.last() {
        let retry = *retry;
        engine.handle_timeout(retry);
        outputs = drain(&mut engine, retry);
    }
    assert!(
        outputs.iter().any(|o| matches!(o, Output::NeedCredential)),
        "{outputs:?}"
    );
    assert!(
        transmits(&outputs).is_empty(),
        "the retry waits for the credential"
    );
    let credential = Credential {
        name: "Authorization".into(),
        value: "Bearer fresh".into(),
        expires_in: None,
    };
    engine.handle_credential(at(2_000), Some(&credential));
    let retry = only_request(&drain(&mut engine, at(2_000)));
    assert_eq!(retry.header("Authorization"), Some("Bearer fresh"));
}

#[test]
fn an_unstarted_engine_ends_its_run_at_once_stopped() {
    let mut engine = Engine::new(&Config::default(), doc_reserved(at(0)), StatusTable::new()).unwrap();
    let outputs = drain(&mut engine, at(0));
    assert!(
        matches!(outputs.as_slice(), [Output::Done(Exit::Stopped { .. }), ..]),
        "{outputs:?}"
    );
}
