//! No async runtime at all: a plain loop drives a `livepay_core::Session` against the in-memory
//! model on virtual time, with the core's sans-IO `PaymentSession` building every request. A
//! template for bare-metal loops: replace `net.execute` with your blocking HTTP call and
//! `clock.advance_to` with a sleep until the instant.
//!
//! `cargo run -p livepay-mock --example blocking_loop`
#![allow(clippy::print_stdout)]

use livepay_core::client::PaymentSession;
use livepay_core::{
    Action, Config, Duration, Endpoint, Event, PaymentType, Reply, Session, StatusTable, Step,
};
use livepay_mock::memory::{MemoryNet, reserve};
use livepay_mock::model::{self, World};

/// One request of the protocol, carried out at once: build it, send it, hand the answer back.
fn call(net: &MemoryNet, payment: &mut PaymentSession, endpoint: Endpoint) -> Reply {
    let request = match endpoint {
        Endpoint::Signer => payment.signer_request(),
        Endpoint::Payment => match payment.payment_request() {
            Some(request) => request,
            None => return Reply::Network,
        },
        Endpoint::Refresh => payment.refresh_request(),
        Endpoint::Stop => payment.stop_request(),
    };
    let Ok((status, body)) = net.execute(&request) else {
        return Reply::Network;
    };
    let answer = match endpoint {
        Endpoint::Signer => payment.on_signer_response(status, &body),
        Endpoint::Payment => payment.on_payment_response(status, &body),
        Endpoint::Refresh => payment.on_refresh_response(status, &body),
        Endpoint::Stop => payment.on_stop_response(status, &body),
    };
    answer.reply
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let net = MemoryNet::new(World::new(model::Config::default(), 7));
    let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live))?;
    let mut payment = reserved.payment.ok_or("the runner is unpriced")?;
    println!("reserved {}", reserved.session_id);

    let clock = net.clock();
    let table = StatusTable::new();
    let mut session = Session::new(&Config::new(PaymentType::Live), clock.now())?;
    session.start(clock.now());
    let close_at = clock.now() + Duration::from_secs(30);
    let mut closing = false;
    loop {
        // (1) Carry out what the session asks for; each answer goes through the status table.
        while let Some(action) = session.poll_action() {
            let (first, then) = match action {
                Action::Pay { .. } => (Endpoint::Signer, Some(Endpoint::Payment)),
                Action::Refresh => (Endpoint::Refresh, None),
                Action::Stop => (Endpoint::Stop, None),
            };
            let mut step = table.classify(first, call(&net, &mut payment, first));
            if let (Step::Continue, Some(next)) = (step, then) {
                let reply = call(&net, &mut payment, next);
                step = table.classify(next, reply);
                if step == Step::Continue {
                    step = Step::Done(livepay_core::Outcome::Transient {
                        endpoint: next,
                        reply,
                    });
                }
            }
            if let Step::Done(outcome) = step {
                session.handle_outcome(clock.now(), outcome)?;
            }
        }
        // (2) Report what happened.
        while let Some(event) = session.poll_event() {
            let ms = clock.now().as_millis();
            println!("{:>3}.{:03}s  {event}", ms / 1000, ms % 1000);
            if let Event::StateChanged { to, .. } = event
                && to.is_released()
            {
                let world = net.world();
                // The model records the client's stop as a release too; its reason says which.
                println!("model: {:?}", world.orchestrator().releases());
                println!("stats: {:?}", session.stats());
                return Ok(());
            }
        }
        // (3) Sleep until the next timer (virtual time: jump there), or close when it is time.
        let next = session.poll_timeout().unwrap_or(close_at);
        if !closing && next >= close_at {
            clock.advance_to(close_at);
            closing = true;
            session.close(clock.now());
        } else {
            clock.advance_to(next);
            session.handle_timeout(clock.now());
        }
    }
}
