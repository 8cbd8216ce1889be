//! Issue 10, defects 4 and 9: a signal stops funding at once (the request in flight is
//! cancelled), the stop goes out under a short deadline, a second Ctrl-C exits at once, SIGHUP is
//! SIGTERM, `--duration` ends on time, and peers unreachable for ever end in exit 5.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::raw::{RawReply, RawServer, fake_runner};
use common::{Served, livepay, signal, wait_within};

fn fund_raw(server: &RawServer, extra: &[&str]) -> std::process::Child {
    let runner = format!("{}/apps/live-runner/session", server.base);
    let mut args = vec!["fund", "--runner-url", &runner, "--signer", &server.base];
    args.extend_from_slice(extra);
    livepay(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn hang_payments(request: &common::raw::RawRequest, _: &str) -> Option<RawReply> {
    request.path.ends_with("/payment").then_some(RawReply::Hang)
}

#[test]
fn ctrl_c_cancels_the_payment_in_flight_and_sends_the_stop() {
    let server = fake_runner(hang_payments);
    let child = fund_raw(&server, &["--timeout", "600s"]);
    server.wait_for("/payment");
    signal(child.id(), "INT");
    // The payment in flight would hold the close for its 600 s timeout: exiting within the
    // guard at all shows it was cancelled.
    let status = wait_within(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    server.wait_for("/stop");
}

#[test]
fn a_second_ctrl_c_exits_at_once_with_130() {
    let server = fake_runner(|request, _| {
        (request.path.ends_with("/payment") || request.path.ends_with("/stop")).then_some(RawReply::Hang)
    });
    let child = fund_raw(&server, &["--timeout", "600s"]);
    server.wait_for("/payment");
    let pid = child.id();
    signal(pid, "INT");
    server.wait_for("/stop");
    signal(pid, "INT");
    // 130, not the stop's own outcome (its 2 s deadline ends in exit 5): the second Ctrl-C
    // exited without waiting for it.
    let status = wait_within(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130));
}

#[test]
fn sighup_closes_like_sigterm() {
    let served = Served::clean();
    let mut child = served.fund(&[]).stdout(Stdio::piped()).spawn().expect("spawn");
    // Wait for the first line (reserved), then hang up.
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("a line");
    signal(child.id(), "HUP");
    let rest = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let status = wait_within(child, Duration::from_secs(20));
    let rest = rest.join().expect("reader");
    assert_eq!(status.code(), Some(0), "{line}{rest}");
    assert!(rest.contains("closed by the client"), "{rest}");
    assert_eq!(served.model.with_world(|w| w.orchestrator().releases().len()), 1);
}

#[test]
fn a_duration_ends_on_time_even_with_a_payment_in_flight() {
    let server = fake_runner(hang_payments);
    // 12 s is past the reservation's 10 s prepay: a payment goes out (and hangs) before the end.
    let child = fund_raw(&server, &["--timeout", "600s", "--duration", "12s"]);
    // Without the cancel, the close would wait out the payment's 600 s timeout.
    let status = wait_within(child, Duration::from_secs(60));
    // The hanging payment never delivers: the 10 s of credit lapse first, and the exit says so.
    assert_eq!(status.code(), Some(3));
    server.wait_for("/payment");
    server.wait_for("/stop");
}

#[test]
fn peers_unreachable_for_ever_end_in_exit_5_after_the_give_up_span() {
    // After the reservation, every request hangs up at once: nothing ever succeeds again.
    let server = fake_runner(|request, _| {
        let reservation =
            request.path == "/apps/live-runner/session" || request.path == "/sign-orchestrator-info";
        let first_mint =
            request.path == "/generate-live-payment" && !request.body.windows(7).any(|w| w == b"\"state\"");
        (!(reservation || first_mint)).then(|| RawReply::Bytes(Vec::new()))
    });
    let child = fund_raw(&server, &["--timeout", "1s", "--give-up-after", "2s"]);
    // The 10 s prepay lapses about 9 s in; the give-up follows 2 s later. Without it the
    // process never exits.
    let status = wait_within(child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(5));
}
