//! The protocol engine on arbitrary answers: the reservation flow and a funded engine never
//! panic, every request the engine asks for is answerable, the reservation ends within its bound,
//! and an engine given arbitrary statuses, bodies, failures and time steps never has more than
//! one request in flight nor produces a request once released.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livepay_core::engine::{Engine, ReserveFlow, ReserveOptions, Response};
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
    loop {
        let Some(request) = flow.poll_request(now) else {
            match flow.poll_timeout() {
                Some(at) => {
                    now = now.max(at);
                    continue;
                }
                None => break,
            }
        };
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
    let Ok(reserved) = flow.result() else {
        return;
    };
    let Ok(mut engine) = Engine::new(&Config::default(), reserved, StatusTable::new()) else {
        return;
    };
    engine.start(now);
    for answer in answers {
        while engine.poll_event().is_some() {}
        let released = engine.state().is_released();
        let request = engine.poll_request(now);
        assert!(!(released && request.is_some()), "a request after the release");
        let id = request.map(|r| r.id).or(engine.in_flight());
        assert!(engine.poll_request(now).is_none(), "two requests in flight");
        match (answer, id) {
            (Input::Http { status, body }, Some(id)) => {
                let answered = engine.handle_response(now, id, &Response::new(status, &body));
                assert!(answered.is_ok(), "{answered:?}");
            }
            (Input::Failed(kind), Some(id)) => {
                let answered = engine.handle_failure(now, id, failure(kind));
                assert!(answered.is_ok(), "{answered:?}");
            }
            (Input::Wait(ms), _) => {
                now += Duration::from_millis(u64::from(ms));
                engine.handle_timeout(now);
            }
            (Input::Close, _) => engine.close(now),
            (_, None) => {
                if let Some(at) = engine.poll_timeout() {
                    assert!(at >= now, "a timeout in the past");
                    now = at;
                    engine.handle_timeout(now);
                }
            }
        }
    }
});
