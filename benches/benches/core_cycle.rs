//! One full funding cycle, at three depths, side by side with a bare enum state step (the
//! physical floor on this machine):
//!
//! - `funding_cycle`: the machine alone: `handle_timeout` at the due instant → `poll_action`
//!   (`Pay`) → `handle_outcome(Paid)` → drain `poll_event` and `poll_timeout`;
//! - `engine_cycle`: the protocol engine, every byte included: `handle_timeout` → `poll_request`
//!   (the signer request, its JSON body built) → `handle_response` (the signer's answer parsed,
//!   the state kept) → `poll_request` (the payment POST with the minted tickets) →
//!   `handle_response(200)` → drain events and `poll_timeout`;
//! - `bare_enum_step`: a three-state enum transition.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use livepay_core::engine::{Engine, Output, Response, doc_reserved};
use livepay_core::{Config, Duration, Endpoint, Instant, Outcome, Session, StatusTable};

/// What the signer answers a `generate-live-payment`: tickets, segment credentials, new state.
const SIGNER_ANSWER: &[u8] = br#"{"payment":"cA==","segCreds":"cw==","state":{"State":"eA==","Sig":"eQ=="}}"#;

/// Runs `cycles` full funding cycles of the machine.
fn funding_cycles(session: &mut Session, now: &mut Instant, cycles: u64) {
    for _ in 0..cycles {
        let due = session.poll_timeout().expect("funding sessions have a timer");
        *now = due;
        session.handle_timeout(due);
        if let Some(action) = session.poll_action() {
            black_box(action);
            *now += Duration::from_millis(20);
            session.handle_outcome(*now, Outcome::Paid).expect("in flight");
        }
        while let Some(event) = session.poll_event() {
            black_box(event);
        }
        black_box(session.poll_timeout());
    }
}

/// Runs `cycles` full funding cycles of the engine: both requests built, both answers read.
fn engine_cycles(engine: &mut Engine, now: &mut Instant, cycles: u64) {
    for _ in 0..cycles {
        let due = engine.poll_timeout().expect("funding sessions have a timer");
        *now = due;
        engine.handle_timeout(due);
        // The pump: every output until the timer.
        while let Some(output) = engine.poll_output(*now) {
            match output {
                Output::Transmit(request) => {
                    let body = match request.endpoint {
                        Endpoint::Signer => SIGNER_ANSWER,
                        _ => b"",
                    };
                    black_box(&request);
                    *now += Duration::from_millis(10);
                    engine
                        .handle_response(*now, request.id, &Response::new(200, body))
                        .expect("in flight");
                }
                Output::Timeout(at) => {
                    black_box(at);
                    break;
                }
                other => {
                    black_box(other);
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Light {
    Red,
    Green,
    Amber,
}

fn bare_enum_step(light: Light, input: u8) -> Light {
    match (light, input & 1) {
        (Light::Red, 1) => Light::Green,
        (Light::Green, 1) => Light::Amber,
        (Light::Amber, 1) => Light::Red,
        (l, _) => l,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("core");
    group.bench_function("funding_cycle", |b| {
        let mut now = Instant::from_millis(0);
        let mut session = Session::new(&Config::default(), now).expect("valid");
        session.start(now);
        // Warm up past the buffer-building phase so the steady state is measured.
        funding_cycles(&mut session, &mut now, 64);
        b.iter(|| funding_cycles(&mut session, &mut now, 1));
    });
    group.bench_function("engine_cycle", |b| {
        let mut now = Instant::from_millis(0);
        let mut engine =
            Engine::new(&Config::default(), doc_reserved(now), StatusTable::new()).expect("valid");
        engine.start(now);
        engine_cycles(&mut engine, &mut now, 64);
        assert!(
            engine.stats().payments_accepted >= 64,
            "{:?}",
            engine.last_problem()
        );
        b.iter(|| engine_cycles(&mut engine, &mut now, 1));
    });
    group.bench_function("bare_enum_step", |b| {
        let mut light = Light::Red;
        let mut i = 0u8;
        b.iter(|| {
            i = i.wrapping_add(1);
            light = bare_enum_step(black_box(light), black_box(i));
            light
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
