//! The sans-IO protocol client on arbitrary answers: the reservation flow and a funded session's
//! four answer handlers never panic, and the flow always ends within its bound of requests.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livepay_core::PaymentType;
use livepay_core::client::{ReserveFlow, ReserveOptions};

#[derive(Debug, Arbitrary)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

fuzz_target!(|answers: Vec<Answer>| {
    let options = ReserveOptions::new(
        "http://orch.invalid/apps/r/session",
        Some("http://signer.invalid".into()),
        PaymentType::Live,
    );
    let Ok(mut flow) = ReserveFlow::new(options) else {
        return;
    };
    let mut answers = answers.into_iter();
    let mut requests = 0;
    while let Some(_request) = flow.poll_request() {
        requests += 1;
        assert!(requests <= 64, "the reservation flow must end");
        match answers.next() {
            Some(a) => flow.handle_response(a.status, &a.body),
            None => flow.handle_failure(livepay_core::Reply::Network),
        }
    }
    if let Ok(reserved) = flow.result()
        && let Some(mut session) = reserved.payment
    {
        for a in answers {
            let _ = session.signer_request();
            let _ = session.on_signer_response(a.status, &a.body);
            if session.payment_request().is_some() {
                let _ = session.on_payment_response(a.status, &a.body);
            }
            let _ = session.on_refresh_response(a.status, &a.body);
            let _ = session.on_stop_response(a.status, &a.body);
        }
    }
});
