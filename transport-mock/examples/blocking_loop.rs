//! No async runtime at all: a plain loop drives livepay-core's protocol `Engine` against the
//! in-memory model on virtual time. The engine builds every request and reads every answer; the
//! loop only moves bytes. A template for bare-metal loops: replace `net.execute` with your
//! blocking HTTP call and `clock.advance_to` with a sleep until the instant.
//!
//! `cargo run -p livepay-mock --example blocking_loop`
#![allow(clippy::print_stdout)]

use livepay_core::engine::{Engine, Output, Response};
use livepay_core::{Config, Duration, PaymentType, StatusTable};
use livepay_mock::memory::{MemoryNet, reserve};
use livepay_mock::model::{self, World};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let net = MemoryNet::new(World::new(model::ModelConfig::default(), 7));
    let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live))?;
    println!("reserved {}", reserved.session_id);

    let clock = net.clock();
    let mut engine = Engine::new(&Config::new(PaymentType::Live), reserved, StatusTable::new())?;
    engine.start(clock.now());
    let close_at = clock.now() + Duration::from_secs(30);
    let mut closing = false;
    loop {
        // The pump: carry out each output until the engine asks to wait.
        let next = loop {
            match engine.poll_output(clock.now()) {
                // (1) Send what the engine asks for, and hand back what came back.
                Some(Output::Transmit(request)) => match net.execute(&request) {
                    Ok(answer) => {
                        let response = Response::new(answer.status, &answer.body);
                        engine.handle_response(clock.now(), request.id, &response)?;
                    }
                    Err(failure) => engine.handle_failure(clock.now(), request.id, failure)?,
                },
                // (2) Report what happened.
                Some(Output::Event(event)) => {
                    let ms = clock.now().as_millis();
                    println!("{:>3}.{:03}s  {event}", ms / 1000, ms % 1000);
                }
                // (3) The run is over: the engine says why, with its final counters.
                Some(Output::Done(exit)) => {
                    let world = net.world();
                    // The model records the client's stop as a release too; its reason says which.
                    println!("model: {:?}", world.orchestrator().releases());
                    println!("exit: {exit:?}");
                    return Ok(());
                }
                // No credential source here: the static headers stay.
                Some(Output::NeedCredential) => engine.handle_credential(clock.now(), None),
                Some(Output::Timeout(at)) => break at,
                // Nothing is stored or cancelled in this loop.
                Some(_) => {}
                None => break close_at,
            }
        };
        // (4) Sleep until the next timer (virtual time: jump there), or close when it is time.
        if !closing && next >= close_at {
            clock.advance_to(close_at);
            closing = true;
            engine.close(clock.now());
        } else {
            clock.advance_to(next);
            engine.handle_timeout(clock.now());
        }
    }
}
