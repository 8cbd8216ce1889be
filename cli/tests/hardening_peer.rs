//! Issue 10: what a hostile or broken peer sends. Control characters never reach the terminal,
//! protocol violations exit 6 with what was wrong, mid-session malformed answers are named, and
//! `control_url` obeys the same origin rule as `payment_url`.

mod common;

use common::raw::{RawServer, fake_runner, json};
use common::{run, stderr_one_line};

fn fund(server: &RawServer, extra: &[&str]) -> std::process::Output {
    let runner = format!("{}/apps/live-runner/session", server.base);
    let mut args = vec![
        "fund",
        "--runner-url",
        &runner,
        "--signer",
        &server.base,
        "--timeout",
        "2s",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn no_control_bytes(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes)
        .chars()
        .all(|c| c == '\n' || !c.is_control())
}

#[test]
fn control_characters_from_a_peer_are_escaped_on_stdout_and_stderr() {
    // An unpriced runner whose answer carries terminal escapes in the id and the app URL.
    let server = RawServer::start(|request| match request.path.as_str() {
        "/apps/live-runner/session" => json(
            200,
            r#"{"session_id":"ab\u001b[2J\rforged","app_url":"http://127.0.0.1:1/\u001b]0;title\u0007","control_url":"http://127.0.0.1:1/x"}"#,
        ),
        _ => json(200, "{}"),
    });
    let runner = format!("{}/apps/live-runner/session", server.base);
    let out = run(&["fund", "--runner-url", &runner, "--duration", "200ms"]);
    assert!(
        no_control_bytes(&out.stdout),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        no_control_bytes(&out.stderr),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An error body with escapes, on stderr.
    let server = RawServer::start(|_| {
        json(
            400,
            "{\"error\":{\"message\":\"no\\u001b[2J\\r\\nlivepay: all good\"}}",
        )
    });
    let runner = format!("{}/apps/live-runner/session", server.base);
    let out = run(&["fund", "--runner-url", &runner]);
    assert_eq!(out.status.code(), Some(4));
    let err = stderr_one_line(&out);
    assert!(no_control_bytes(err.trim_end().as_bytes()), "{err:?}");
}

/// A fake runner whose unpaid (402) or paid (200) reservation answer is `body`.
fn answering_reservation(paid: bool, body: String) -> RawServer {
    fake_runner(move |request, _| {
        let is_paid = request.head.to_ascii_lowercase().contains("livepeer-payment:");
        (request.path == "/apps/live-runner/session" && is_paid == paid)
            .then(|| json(if paid { 200 } else { 402 }, &body))
    })
}

/// `out` exited 6, naming `field` on its one stderr line.
#[track_caller]
fn assert_violation(out: &std::process::Output, field: &str) {
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stderr_one_line(out).contains(field));
}

#[test]
fn protocol_violations_by_a_peer_exit_6_naming_the_field() {
    // A payment_url that is relative, or not http(s).
    for payment_url in ["/relative/payment", "ftp://x/payment"] {
        let server = answering_reservation(
            false,
            format!(r#"{{"payment_params":"cA==","manifest_id":"abcd1234","payment_url":"{payment_url}"}}"#),
        );
        assert_violation(&fund(&server, &[]), "payment_url");
    }
    // A control_url that is not a URL.
    let server = answering_reservation(
        true,
        r#"{"session_id":"abcd1234","app_url":"http://x/a","control_url":"not a url"}"#.to_owned(),
    );
    assert_violation(&fund(&server, &[]), "control_url");
    // CRLF inside the signer's address or payment: a header it cannot be.
    for (path, field, body) in [
        (
            "/sign-orchestrator-info",
            "address",
            r#"{"address":"0xaa\r\nX-Injected: 1","signature":"0x01"}"#,
        ),
        (
            "/generate-live-payment",
            "payment",
            r#"{"payment":"cA==\r\nX-Injected: 1","segCreds":"cw==","state":{"State":"eA==","Sig":"eQ=="}}"#,
        ),
    ] {
        let server = fake_runner(move |request, _| (request.path == path).then(|| json(200, body)));
        assert_violation(&fund(&server, &[]), field);
        assert!(!server.paths().iter().any(|p| p.ends_with("/payment")));
    }
}

#[test]
fn a_cross_origin_or_downgraded_control_url_is_refused() {
    for control in [
        "http://elsewhere.example/apps/live-runner/session/abcd1234",
        "https://127.0.0.1:1/x",
    ] {
        let server = answering_reservation(
            true,
            format!(r#"{{"session_id":"abcd1234","app_url":"http://x/a","control_url":"{control}"}}"#),
        );
        assert_violation(&fund(&server, &["--duration", "200ms"]), "control_url");
    }
}

#[test]
fn a_malformed_mid_session_signer_answer_is_named() {
    // The reservation's mint is healthy; every later mint is a 200 that is not a signer answer.
    let server = fake_runner(|request, _| {
        let state = request.body.windows(7).any(|w| w == b"\"state\"");
        (request.path == "/generate-live-payment" && state).then(|| json(200, r#"{"unexpected":true}"#))
    });
    let out = fund(&server, &["--duration", "30s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("network error") && !err.contains("network error"),
        "{text}\n{err}"
    );
    assert!(err.contains("payment") && err.contains("missing"), "{err}");
    assert_eq!(out.status.code(), Some(6), "{text}\n{err}");
    // Mid-session: after the reservation, not in it.
    assert!(text.contains("reserved session"), "{text}\n{err}");
    assert!(!err.contains("reservation"), "{err}");
}

#[test]
fn a_signer_refusal_exits_4_with_the_status() {
    let server = fake_runner(|request, _| {
        (request.path == "/generate-live-payment").then(|| {
            json(
                481,
                r#"{"error":{"message":"orchestrator price exceeds the ceiling"}}"#,
            )
        })
    });
    let out = fund(&server, &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr_one_line(&out).contains("481"));
}

#[test]
fn transient_reservation_failures_are_retried_before_giving_up() {
    // The first mint answers 503 twice, then mints: the reservation succeeds.
    let failures = std::sync::atomic::AtomicU32::new(0);
    let server = fake_runner(move |request, _| {
        let retry = request.path == "/generate-live-payment"
            && failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 2;
        retry.then(|| json(503, r#"{"error":{"message":"signer busy"}}"#))
    });
    let out = fund(&server, &["--duration", "200ms"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mints = server
        .paths()
        .iter()
        .filter(|p| *p == "/generate-live-payment")
        .count();
    assert_eq!(mints, 3);
    // An orchestrator answering 503 for ever: retried, then exit 4 with the status.
    let server = fake_runner(|request, _| {
        (request.path == "/apps/live-runner/session")
            .then(|| json(503, r#"{"error":{"message":"no capacity"}}"#))
    });
    let out = fund(&server, &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr_one_line(&out).contains("503"));
    let tries = server
        .paths()
        .iter()
        .filter(|p| *p == "/apps/live-runner/session")
        .count();
    assert_eq!(tries, 4, "one try and three retries");
}

#[test]
fn a_bad_orchestrator_ca_file_is_bad_input() {
    let server = fake_runner(|_, _| None);
    let out = fund(&server, &["--orchestrator-ca", "/nonexistent/ca.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_one_line(&out).contains("--orchestrator-ca"));
    let dir = std::env::temp_dir().join(format!("livepay-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let not_a_cert = dir.join("empty.pem");
    std::fs::write(&not_a_cert, "not a certificate").expect("write");
    let out = fund(
        &server,
        &["--orchestrator-ca", not_a_cert.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_one_line(&out).contains("--orchestrator-ca"));
    let _ = std::fs::remove_dir_all(dir);
}
