//! Spend in `livepay fund` and `livepay demo`: the wei a session cost and its US dollars at
//! `--eth-usd`, in `fund`'s summary (JSON and text) and metrics and in the demo's summary, and a
//! bad `--eth-usd` is bad input (exit 2) with one clear line.
//!
//! The served model's payments are not protobuf, so the engine cannot read their price
//! (`LiveSession::spend_wei` is `None`, `transport-hyper/tests/live_spend.rs`): what these tests
//! see is the documented fallback, the runner's discovered (or, in the demo, configured) price of
//! 1e9 wei per second times the time bought (the prepay plus what was billed since).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::{Served, fund_json, livepay, run_exiting, stderr_one_line, wait_within};

/// The model's default price, wei per second.
const PRICE_WEI_PER_S: u128 = 1_000_000_000;

/// `a` and `b` agree to a relative `1e-9`.
fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Seconds in a JSON field, as whole microseconds.
fn micros(value: &serde_json::Value) -> u128 {
    let s = value.as_f64().unwrap_or_else(|| panic!("seconds: {value}"));
    assert!(s >= 0.0, "{s}");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let us = (s * 1e6).round() as u128;
    us
}

#[test]
fn fund_json_summary_prices_the_time_bought() {
    let served = Served::clean();
    let (code, lines, stderr) = fund_json(&served, &["--duration", "4s", "--eth-usd", "2000"]);
    assert_eq!(code, Some(0), "{lines:?}\n{stderr}");
    let exit = lines.last().expect("a summary line");
    assert_eq!(exit["event"], "exit", "{exit}");
    assert_eq!(exit["release"]["reason"], "closed_by_client", "{exit}");
    // Every other line is still an event.
    assert!(
        lines[..lines.len() - 1].iter().all(|l| l["event"] != "exit"),
        "{lines:?}"
    );

    let wei: u128 = exit["spend_wei"]
        .as_str()
        .unwrap_or_else(|| panic!("spend_wei is a decimal string: {exit}"))
        .parse()
        .unwrap_or_else(|e| panic!("spend_wei: {e}: {exit}"));
    assert!(wei > 0, "{exit}");
    // The model's payments cannot be read: the discovered price prices the time bought.
    assert_eq!(exit["spend_source"], "discovery", "{exit}");
    let bought_us = micros(&exit["prepay_s"]) + micros(&exit["billed_s"]);
    assert_eq!(micros(&exit["prepay_s"]), 10_000_000, "the 10 s prepay: {exit}");
    // 1e9 wei per second is 1000 wei per microsecond (the seconds are rounded to the µs).
    assert!(
        wei.abs_diff(bought_us * PRICE_WEI_PER_S / 1_000_000) <= 1_000,
        "{wei} wei for {bought_us} µs: {exit}"
    );
    // Never more than the orchestrator credited for the session.
    let id = exit["session"].as_str().expect("the session id");
    let credited = served
        .model
        .with_world(|w| w.orchestrator().session(id).map(|s| s.credited()))
        .expect("the model knows the session");
    assert!(wei <= credited, "spent {wei}, credited {credited}");

    let usd = exit["spend_usd"]
        .as_f64()
        .unwrap_or_else(|| panic!("spend_usd is a number: {exit}"));
    #[allow(clippy::cast_precision_loss)]
    let expected = wei as f64 / 1e18 * 2000.0;
    assert!(close_to(usd, expected), "{usd} USD, expected {expected}: {exit}");
}

#[test]
fn fund_without_a_rate_has_no_usd_and_says_so_in_text() {
    let served = Served::clean();
    let (code, lines, stderr) = fund_json(&served, &["--duration", "1s"]);
    assert_eq!(code, Some(0), "{lines:?}\n{stderr}");
    let exit = lines.last().expect("a summary line");
    assert_eq!(
        exit["spend_wei"], "10000000000",
        "the 10 s prepay at 1e9 wei/s: {exit}"
    );
    assert!(exit["spend_usd"].is_null(), "{exit}");

    let out = served
        .fund(&["--duration", "1s"])
        .output()
        .expect("the livepay binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines().any(|l| l
            == "spend 10000000000 wei (0.00000001 ETH) · pass --eth-usd for US dollars · 10.0s of service bought"),
        "{text}"
    );
}

#[test]
fn demo_prints_a_spend_line() {
    let out = run_exiting(
        0,
        &["demo", "--duration", "5s", "--sessions", "1", "--eth-usd", "2000"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("spend "))
        .unwrap_or_else(|| panic!("a spend line: {text}"));
    // `spend W wei (E ETH) · $U · Ss of service bought`
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(words.get(2), Some(&"wei"), "{line}");
    let wei: u128 = words[1].parse().unwrap_or_else(|e| panic!("{e}: {line}"));
    let usd: f64 = words
        .iter()
        .find_map(|w| w.strip_prefix('$'))
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("US dollars: {line}"));
    let bought_s: f64 = words
        .iter()
        .find_map(|w| {
            w.strip_suffix('s')
                .filter(|_| line.ends_with("s of service bought"))
        })
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("the time bought: {line}"));
    // At least the 10 s prepay, at the model's 1e9 wei per second.
    assert!(wei >= 10 * PRICE_WEI_PER_S, "{line}");
    #[allow(clippy::cast_precision_loss)]
    let (wei_f, price) = (wei as f64, PRICE_WEI_PER_S as f64);
    assert!((wei_f / price - bought_s).abs() <= 0.05, "{line}");
    // Two significant digits of wei / 1e18 × 2000.
    let expected = wei_f / 1e18 * 2000.0;
    assert!(
        (usd - expected).abs() <= 0.05 * expected,
        "{usd} vs {expected}: {line}"
    );
}

#[test]
fn bad_rates_are_bad_input() {
    let runner = "http://127.0.0.1:9/apps/r/session";
    for bad in ["0", "-1", "nan", "abc"] {
        for args in [
            vec!["fund", "--runner-url", runner, "--eth-usd", bad],
            vec!["demo", "--duration", "1s", "--eth-usd", bad],
        ] {
            let out = run_exiting(2, &args);
            let err = stderr_one_line(&out);
            assert!(
                err.contains("bad input") && err.contains("--eth-usd") && err.contains("US dollars per ETH"),
                "{args:?}: {err}"
            );
            assert!(out.stdout.is_empty(), "{args:?}: nothing started");
        }
    }
    // From the environment, too.
    let out = livepay(&["fund", "--runner-url", runner])
        .env("LIVEPAY_ETH_USD", "-5")
        .output()
        .expect("the livepay binary runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr_one_line(&out).contains("--eth-usd"), "{out:?}");
}

/// `GET /metrics` on `addr`: the body; `None` while nothing answers.
fn scrape(addr: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: livepay\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// The value of the sample named exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn fund_metrics_count_the_spend() {
    let served = Served::clean();
    // 5 s: within the reservation's 10 s prepay, so nothing more is bought and the spend is the
    // prepay's from the reservation to the close.
    let mut child = served
        .fund(&[
            "--duration",
            "5s",
            "--metrics-addr",
            "127.0.0.1:0",
            "--json",
            "--eth-usd",
            "2000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("stderr is UTF-8");
    let addr = first
        .trim_end()
        .strip_prefix("livepay: metrics http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the metrics address on stderr: {first:?}"))
        .to_owned();
    let stdout = child.stdout.take().expect("stdout");
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stdout).read_to_string(&mut text);
        text
    });
    // Poll until the reservation's spend is counted: bounded (a failure guard), never an
    // assertion on how long it took.
    let mut body = String::new();
    for _ in 0..100 {
        if let Some(scraped) = scrape(&addr) {
            body = scraped;
            if sample(&body, "livepay_spend_wei_total").is_some_and(|w| w > 0.0) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = wait_within(child, Duration::from_secs(30));
    let printed = stdout.join().expect("stdout reader");
    assert_eq!(status.code(), Some(0), "{printed}");
    assert_eq!(sample(&body, "livepay_spend_wei_total"), Some(1e10), "{body}");
    let usd = sample(&body, "livepay_spend_usd_total").unwrap_or_else(|| panic!("{body}"));
    assert!(close_to(usd, 1e10 / 1e18 * 2000.0), "{usd}: {body}");
    let exit: serde_json::Value = printed
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("a JSON summary: {printed}"));
    assert_eq!(exit["spend_wei"], "10000000000", "{exit}");
}
