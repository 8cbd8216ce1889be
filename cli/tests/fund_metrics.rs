//! `livepay fund --metrics-addr`: the Prometheus series of the funded session, scraped while it
//! runs against the served model, and an address that cannot be served is bad input (exit 2)
//! before anything is reserved.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::{Served, run_exiting, signal, stderr_one_line, wait_within};

/// `GET /metrics` on `addr`: the status line, the head and the body; `None` while nothing
/// answers.
fn scrape(addr: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: livepay\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    Some((head.to_owned(), body.to_owned()))
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_funded_session_is_scraped_while_it_runs() {
    let served = Served::clean();
    // 12 s: past the reservation's 10 s prepay (less the margin), so that funding buys more and
    // a payment is accepted (about 3 s in); the test ends it with SIGTERM once it has scraped.
    let mut child = served
        .fund(&["--duration", "12s", "--metrics-addr", "127.0.0.1:0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // The address is the first line on stderr, printed before the reservation.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("stderr is UTF-8");
    let addr = first
        .trim_end()
        .strip_prefix("livepay: metrics http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the metrics address on stderr: {first:?}"))
        .to_owned();
    assert!(!addr.ends_with(":0"), "the bound port, not 0: {addr}");
    // Collected while it runs, so that neither pipe fills; read back on failure.
    let rest_of_stderr = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });
    let stdout = child.stdout.take().expect("stdout");
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stdout).read_to_string(&mut text);
        text
    });

    // Poll until a payment is counted: bounded (20 s, a failure guard), never an assertion on
    // how long it took.
    let mut last = None;
    for _ in 0..200 {
        if let Some((head, body)) = scrape(&addr) {
            let accepted = sample(&body, "livepay_payments_total{outcome=\"accepted\"}");
            last = Some((head, body));
            if accepted.is_some_and(|n| n >= 1.0) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (head, body) = last.expect("the metrics server answered");
    signal(pid, "TERM");
    let status = wait_within(child, Duration::from_secs(30));
    let printed = stdout.join().expect("stdout reader");
    let diagnostics = rest_of_stderr.join().expect("stderr reader");
    let context = format!("{body}\nstdout:\n{printed}\nstderr:\n{diagnostics}");

    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{context}");
    let at_least_one = |series: &str| {
        let n = sample(&body, series).unwrap_or_else(|| panic!("no `{series}` in {context}"));
        assert!(n >= 1.0, "{series} = {n}: {context}");
    };
    at_least_one("livepay_payments_total{outcome=\"accepted\"}");
    at_least_one("livepay_request_duration_seconds_count{endpoint=\"signer\"}");
    at_least_one("livepay_request_duration_seconds_count{endpoint=\"payment\"}");
    at_least_one("livepay_request_duration_seconds_bucket{le=\"+Inf\",endpoint=\"signer\"}");
    at_least_one("livepay_request_duration_seconds_bucket{le=\"+Inf\",endpoint=\"payment\"}");
    at_least_one("livepay_requests_total{endpoint=\"payment\",status=\"200\"}");
    at_least_one("livepay_runway_seconds_count");
    assert_eq!(
        sample(&body, "livepay_sessions{state=\"funding\"}"),
        Some(1.0),
        "{context}"
    );
    assert_eq!(
        sample(&body, "livepay_sessions{state=\"released\"}"),
        Some(0.0),
        "{context}"
    );

    // The metrics go to stderr and their own port: `--json` output stays one object per line.
    assert_eq!(status.code(), Some(0), "{context}");
    for line in printed.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
    }
}

#[test]
fn an_address_in_use_is_bad_input_before_anything_is_reserved() {
    let served = Served::clean();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = served
        .fund(&["--metrics-addr", &addr, "--duration", "5s"])
        .output()
        .expect("the livepay binary runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr_one_line(&out);
    assert!(
        err.contains("bad input") && err.contains("--metrics-addr") && err.contains(&addr),
        "{err}"
    );
    assert_eq!(
        served.model.with_world(|w| w.orchestrator().stats().challenges),
        0,
        "nothing was reserved"
    );
    drop(taken);
}

#[test]
fn a_malformed_address_is_bad_input() {
    for bad in ["256.0.0.1:1", "localhost", "127.0.0.1", "127.0.0.1:99999"] {
        let out = run_exiting(
            2,
            &[
                "fund",
                "--runner-url",
                "http://127.0.0.1:1/apps/r/session",
                "--metrics-addr",
                bad,
            ],
        );
        let err = stderr_one_line(&out);
        assert!(
            err.contains("--metrics-addr") && err.contains(bad),
            "{bad}: {err}"
        );
    }
}
