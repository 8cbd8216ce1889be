//! The other terminal answers: a signer 481 (price above a ceiling) or 400 (validation), and a
//! payment 400 (ticket processing failed), each met mid-session. Funding stops at once, the
//! session is stopped, and the release names the endpoint and the status; nothing is minted after.

use livepay_core::{Endpoint, ReleaseReason, Reply};
use livepay_tests::{Commands, Script, TransportCall, drive, secs};

#[track_caller]
fn terminal_after_two_cycles(endpoint: Endpoint, status: u16) {
    // Two healthy cycles, then the terminal answer on the third.
    let script = match endpoint {
        Endpoint::Signer => Script::new().repeat(Endpoint::Signer, 2, Reply::Status(200)),
        _ => Script::new().repeat(Endpoint::Payment, 2, Reply::Status(200)),
    }
    .then(endpoint, Reply::Status(status));
    let report = drive(livepay_tests::live_config(), script, Commands::new(), secs(60));

    let reason = ReleaseReason::Rejected {
        endpoint,
        reply: Reply::Status(status),
    };
    report.assert_exit(Some(Some(reason)));
    assert_eq!(report.pay_requests().len(), 3, "{}", report.timeline());
    let stops = report.times_of(TransportCall::Stop);
    assert_eq!(stops.len(), 1, "{}", report.timeline());
    report.assert_no_call_after(stops[0]);
}

#[test]
fn signer_481_is_terminal() {
    terminal_after_two_cycles(Endpoint::Signer, 481);
}

#[test]
fn signer_400_is_terminal() {
    terminal_after_two_cycles(Endpoint::Signer, 400);
}

#[test]
fn payment_400_is_terminal() {
    terminal_after_two_cycles(Endpoint::Payment, 400);
}
