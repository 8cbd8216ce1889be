//! The protocol engine on arbitrary answers: the reservation flow and a funded engine never
//! panic, every request the engine asks for is answerable, the reservation ends within its bound,
//! and an engine given arbitrary statuses, bodies, failures and time steps never has more than
//! one request in flight nor produces a request once released.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livepay_core::engine::{Engine, Output, ReserveFlow, ReserveOptions, Response};
use livepay_core::{Config, Duration, Failure, Instant, PaymentType, StatusTable};

#[derive(Debug, Arbitrary)]
enum Input {
    Http { status: u16, body: Vec<u8> },
    Failed(u8),
    Wait(u16),
    Close,
}

fn failure(kind: u8) -> Failure {
    [
        Failure::Refused,
        Failure::Network,
        Failure::Timeout,
        Failure::BadUrl,
        Failure::Tls,
        Failure::TooLarge,
    ][usize::from(kind % 6)]
}

fuzz_target!(|answers: Vec<Input>| {
    let options = ReserveOptions::new(
        "http://orch.invalid/apps/r/session",
        Some("http://signer.invalid".into()),
        PaymentType::Live,
    );
    let Ok(mut flow) = ReserveFlow::new(options) else {
        return;
    };
    let mut now = Instant::from_secs(0);
    let mut answers = answers.into_iter();
    let mut requests = 0;
    let reserved = loop {
        match flow.poll_output(now) {
            Some(Output::Transmit(request)) => {
                requests += 1;
                assert!(requests <= 64, "the reservation flow must end");
                match answers.next() {
                    Some(Input::Http { status, body }) => {
                        flow.handle_response(now, request.id, &Response::new(status, &body));
                    }
                    Some(Input::Failed(kind)) => flow.handle_failure(now, request.id, failure(kind)),
                    Some(Input::Wait(ms)) => now += Duration::from_millis(u64::from(ms)),
                    Some(Input::Close) | None => flow.handle_failure(now, request.id, Failure::Network),
                }
            }
            Some(Output::Timeout(at)) => now = now.max(at),
            Some(Output::Done(result)) => break result,
            Some(other) => panic!("a reservation asked for {other:?}"),
            None => return,
        }
    };
    let Ok(reserved) = reserved else {
        return;
    };
    let Ok(engine) = Engine::new(&Config::default(), reserved, StatusTable::new()) else {
        return;
    };
    // With a store: every new state is held until persisted, every credit checkpointed.
    let mut engine = engine.with_write_ahead();
    engine.start(now);
    let mut in_flight = None;
    let mut held = None;
    let mut ended = false;
    for answer in answers {
        // The pump: drain every output; it must settle.
        let mut wake = None;
        let mut outputs = 0;
        while let Some(output) = engine.poll_output(now) {
            outputs += 1;
            assert!(outputs < 10_000, "poll_output must settle");
            match output {
                Output::Transmit(request) => {
                    assert!(!ended, "a request after the end of the run");
                    assert!(in_flight.is_none(), "two requests in flight");
                    assert!(held.is_none(), "a request while a new state is not yet durable");
                    in_flight = Some(request.id);
                }
                Output::Persist { id, snapshot } => {
                    assert!(
                        snapshot.payment.is_some_and(|p| p.minted.is_some()),
                        "a persist holds its mint"
                    );
                    held = Some(id);
                }
                Output::Checkpoint(snapshot) => {
                    assert!(
                        snapshot.payment.is_none_or(|p| p.minted.is_none()),
                        "a checkpoint holds no mint"
                    );
                }
                Output::Cancel(id) => {
                    assert_eq!(in_flight, Some(id), "only the request in flight is cancelled");
                    in_flight = None;
                }
                Output::NeedCredential => engine.handle_credential(now, None),
                Output::Event(_) => {}
                Output::Done(_) => {
                    assert!(in_flight.is_none(), "the run ended with a request in flight");
                    ended = true;
                }
                Output::Timeout(at) => {
                    wake = Some(at);
                    break;
                }
            }
        }
        match (answer, in_flight) {
            (Input::Http { status, body }, Some(id)) => {
                in_flight = None;
                let answered = engine.handle_response(now, id, &Response::new(status, &body));
                assert!(answered.is_ok(), "{answered:?}");
            }
            (Input::Failed(kind), Some(id)) => {
                in_flight = None;
                let answered = engine.handle_failure(now, id, failure(kind));
                assert!(answered.is_ok(), "{answered:?}");
            }
            (Input::Wait(ms), _) => {
                now += Duration::from_millis(u64::from(ms));
                engine.handle_timeout(now);
            }
            (Input::Close, _) => {
                engine.close(now);
                ended = false;
            }
            (Input::Http { status, .. }, None) if held.is_some() => {
                let answered =
                    engine.handle_persisted(held.take().unwrap_or_else(|| unreachable!()), status % 2 == 0);
                assert!(answered.is_ok(), "{answered:?}");
            }
            (_, None) => {
                if let Some(at) = wake {
                    assert!(at >= now, "a timeout in the past");
                    now = at;
                    engine.handle_timeout(now);
                }
            }
        }
    }
});
