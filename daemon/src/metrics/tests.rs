use std::sync::Arc;
use std::time::Duration;

use livepay_core::{Endpoint, ReleaseReason, Reply, State, Stats};
use livepay_hyper::Observer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::labels::{EndpointLabel, Outcome, Release, Replay, SessionState};
use super::{Metrics, OPENMETRICS_CONTENT_TYPE, SessionCounts, serve_metrics};

/// The value of the sample named exactly `series` (name and labels), if it is in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

#[track_caller]
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample `{series}` in:\n{text}"))
}

/// One of every counter the core keeps, each grown by one.
fn one_of_each() -> Stats {
    Stats {
        payments_accepted: 1,
        cycles_skipped: 1,
        failures: 1,
        lost_mints: 1,
        refreshes: 1,
        at_risk: 1,
        lapses: 1,
        reposts: 1,
        ..Stats::default()
    }
}

#[test]
fn metrics_are_send_sync_and_the_exposition_ends_with_eof() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Metrics>();
    shareable::<Arc<Metrics>>();
    let text = Metrics::new().encode();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
}

#[test]
fn closed_label_sets_start_at_zero() {
    let text = Metrics::new().encode();
    for state in SessionState::ALL {
        let series = format!("livepay_sessions{{state=\"{}\"}}", state.as_str());
        assert_eq!(value(&text, &series), 0.0);
    }
    for outcome in Outcome::ALL {
        let series = format!("livepay_payments_total{{outcome=\"{}\"}}", outcome.as_str());
        assert_eq!(value(&text, &series), 0.0);
    }
    for replay in Replay::ALL {
        let series = format!("livepay_replays_total{{result=\"{}\"}}", replay.as_str());
        assert_eq!(value(&text, &series), 0.0);
    }
    for name in [
        "livepay_lost_mints_total",
        "livepay_at_risk_total",
        "livepay_lapsed_total",
        "livepay_refreshes_total",
        "livepay_spend_wei_total",
        "livepay_spend_usd_total",
        "livepay_runway_seconds_count",
    ] {
        assert_eq!(value(&text, name), 0.0, "{name}");
    }
    // Open label sets have no sample until something is observed.
    assert!(!text.contains("livepay_requests_total{"), "{text}");
    assert!(
        !text.contains("livepay_request_duration_seconds_count{"),
        "{text}"
    );
}

#[test]
fn every_series_appears_after_its_event_or_call() {
    let metrics = Metrics::new();
    metrics.observe_stats_growth(&Stats::default(), &one_of_each());
    metrics.observe_release(ReleaseReason::Gone);
    metrics.set_sessions(SessionCounts {
        reserved: 1,
        funding: 2,
        skipped: 3,
        released: 4,
    });
    metrics.observe_runway(42.0);
    metrics.add_spend_wei(1_500);
    metrics.add_spend_usd(0.25);
    metrics.on_exchange(Endpoint::Signer, Duration::from_millis(3), Some(200));
    let text = metrics.encode();
    for (series, expected) in [
        ("livepay_payments_total{outcome=\"accepted\"}", 1.0),
        ("livepay_payments_total{outcome=\"skipped\"}", 1.0),
        ("livepay_payments_total{outcome=\"failed\"}", 1.0),
        ("livepay_lost_mints_total", 1.0),
        ("livepay_at_risk_total", 1.0),
        ("livepay_lapsed_total", 1.0),
        ("livepay_refreshes_total", 1.0),
        ("livepay_releases_total{reason=\"gone\"}", 1.0),
        ("livepay_releases_total{reason=\"closed_by_client\"}", 0.0),
        ("livepay_sessions{state=\"reserved\"}", 1.0),
        ("livepay_sessions{state=\"funding\"}", 2.0),
        ("livepay_sessions{state=\"skipped\"}", 3.0),
        ("livepay_sessions{state=\"released\"}", 4.0),
        ("livepay_runway_seconds_count", 1.0),
        ("livepay_runway_seconds_sum", 42.0),
        ("livepay_runway_seconds_bucket{le=\"30.0\"}", 0.0),
        ("livepay_runway_seconds_bucket{le=\"45.0\"}", 1.0),
        ("livepay_spend_wei_total", 1_500.0),
        ("livepay_spend_usd_total", 0.25),
        ("livepay_replays_total{result=\"sent\"}", 1.0),
        ("livepay_requests_total{endpoint=\"signer\",status=\"200\"}", 1.0),
        ("livepay_request_duration_seconds_count{endpoint=\"signer\"}", 1.0),
    ] {
        assert_eq!(value(&text, series), expected, "{series}");
    }
    for header in [
        "# TYPE livepay_sessions gauge",
        "# TYPE livepay_payments counter",
        "# TYPE livepay_request_duration_seconds histogram",
        "# UNIT livepay_request_duration_seconds seconds",
        "# TYPE livepay_runway_seconds histogram",
        "# TYPE livepay_spend_usd counter",
    ] {
        assert!(text.contains(header), "{header} in:\n{text}");
    }
}

#[test]
fn the_runway_histogram_has_the_documented_buckets() {
    let metrics = Metrics::new();
    for seconds in [0.0, -3.0, 0.5, 7.0, 400.0, f64::NAN] {
        metrics.observe_runway(seconds);
    }
    let text = metrics.encode();
    let bounds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("livepay_runway_seconds_bucket{le=\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert_eq!(
        bounds,
        [
            "0.0", "1.0", "2.0", "5.0", "10.0", "15.0", "20.0", "30.0", "45.0", "60.0", "90.0", "120.0",
            "300.0", "+Inf"
        ]
    );
    // NaN is dropped, a negative runway is 0: 0, 0, 0.5, 7, 400.
    assert_eq!(value(&text, "livepay_runway_seconds_count"), 5.0);
    assert_eq!(value(&text, "livepay_runway_seconds_bucket{le=\"0.0\"}"), 2.0);
    assert_eq!(value(&text, "livepay_runway_seconds_bucket{le=\"1.0\"}"), 3.0);
    assert_eq!(value(&text, "livepay_runway_seconds_bucket{le=\"10.0\"}"), 4.0);
    assert_eq!(value(&text, "livepay_runway_seconds_bucket{le=\"300.0\"}"), 4.0);
    assert_eq!(value(&text, "livepay_runway_seconds_bucket{le=\"+Inf\"}"), 5.0);
}

#[test]
fn every_release_reason_has_its_snake_case_label() {
    let reasons = [
        (ReleaseReason::ClosedByClient, "closed_by_client"),
        (ReleaseReason::Gone, "gone"),
        (
            ReleaseReason::Rejected {
                endpoint: Endpoint::Signer,
                reply: Reply::Status(400),
            },
            "rejected",
        ),
        (ReleaseReason::BudgetExhausted, "budget_exhausted"),
        (ReleaseReason::Lapsed, "lapsed"),
        (ReleaseReason::GaveUp, "gave_up"),
        (ReleaseReason::PriceChanged, "price_changed"),
        (ReleaseReason::SignerCreditExhausted, "signer_credit_exhausted"),
        (ReleaseReason::ReleasedByServer, "released_by_server"),
    ];
    assert_eq!(reasons.len(), Release::ALL.len());
    let metrics = Metrics::new();
    for (n, (reason, label)) in reasons.iter().enumerate() {
        assert_eq!(Release::of(*reason).as_str(), *label);
        // The n-th reason is released n + 1 times, so that each count is told apart.
        for _ in 0..=n {
            metrics.observe_release(*reason);
        }
    }
    let text = metrics.encode();
    for (n, (_, label)) in reasons.iter().enumerate() {
        let series = format!("livepay_releases_total{{reason=\"{label}\"}}");
        assert_eq!(value(&text, &series), (n + 1) as f64, "{series}");
    }
    // A release is not a payment outcome.
    assert_eq!(
        value(&metrics.encode(), "livepay_payments_total{outcome=\"accepted\"}"),
        0.0
    );
}

#[test]
fn stats_growth_adds_differences_and_never_underflows() {
    let metrics = Metrics::new();
    let at = |reposts, credited, refused| Stats {
        reposts,
        reposts_credited: credited,
        replays_refused: refused,
        // Counters of other series, the same in every sample: they add nothing.
        payments_accepted: 10,
        lost_mints: 7,
        ..Stats::default()
    };
    metrics.observe_stats_growth(&at(0, 0, 0), &at(3, 1, 2));
    metrics.observe_stats_growth(&at(3, 1, 2), &at(5, 1, 2));
    // Went down (another session's stats, a reset): adds nothing, never wraps.
    metrics.observe_stats_growth(&at(5, 1, 2), &at(0, 0, 0));
    metrics.observe_stats_growth(&at(u32::MAX, u32::MAX, u32::MAX), &at(0, 0, 0));
    let text = metrics.encode();
    assert_eq!(value(&text, "livepay_replays_total{result=\"sent\"}"), 5.0);
    assert_eq!(value(&text, "livepay_replays_total{result=\"credited\"}"), 1.0);
    assert_eq!(value(&text, "livepay_replays_total{result=\"refused\"}"), 2.0);
    assert_eq!(value(&text, "livepay_lost_mints_total"), 0.0);
    assert_eq!(value(&text, "livepay_payments_total{outcome=\"accepted\"}"), 0.0);
}

#[test]
fn the_observer_records_status_and_latency_per_endpoint() {
    let metrics = Metrics::new();
    metrics.on_exchange(Endpoint::Signer, Duration::from_micros(1_500), Some(200));
    metrics.on_exchange(Endpoint::Signer, Duration::from_millis(30), Some(200));
    metrics.on_exchange(Endpoint::Signer, Duration::from_millis(7), Some(482));
    metrics.on_exchange(Endpoint::Payment, Duration::from_secs(20), None);
    let text = metrics.encode();
    let signer = "livepay_request_duration_seconds";
    for (series, expected) in [
        ("livepay_requests_total{endpoint=\"signer\",status=\"200\"}", 2.0),
        ("livepay_requests_total{endpoint=\"signer\",status=\"482\"}", 1.0),
        (
            "livepay_requests_total{endpoint=\"payment\",status=\"none\"}",
            1.0,
        ),
        (&format!("{signer}_count{{endpoint=\"signer\"}}"), 3.0),
        (
            &format!("{signer}_bucket{{le=\"0.001\",endpoint=\"signer\"}}"),
            0.0,
        ),
        (
            &format!("{signer}_bucket{{le=\"0.0025\",endpoint=\"signer\"}}"),
            1.0,
        ),
        (
            &format!("{signer}_bucket{{le=\"0.01\",endpoint=\"signer\"}}"),
            2.0,
        ),
        (
            &format!("{signer}_bucket{{le=\"0.05\",endpoint=\"signer\"}}"),
            3.0,
        ),
        // Past the last bound (10 s): only in +Inf.
        (
            &format!("{signer}_bucket{{le=\"10.0\",endpoint=\"payment\"}}"),
            0.0,
        ),
        (
            &format!("{signer}_bucket{{le=\"+Inf\",endpoint=\"payment\"}}"),
            1.0,
        ),
        (&format!("{signer}_sum{{endpoint=\"payment\"}}"), 20.0),
    ] {
        assert_eq!(value(&text, series), expected, "{series}");
    }
    let sum = value(&text, &format!("{signer}_sum{{endpoint=\"signer\"}}"));
    assert!((sum - 0.0385).abs() < 1e-9, "{sum}");
}

#[test]
fn every_request_kind_of_the_core_has_its_own_endpoint_label() {
    // The core's enum, label for label: nothing is parsed back from text.
    assert_eq!(Endpoint::ALL.len(), EndpointLabel::ALL.len());
    for endpoint in Endpoint::ALL {
        assert_eq!(
            EndpointLabel::of(endpoint).as_str(),
            endpoint.as_str(),
            "{endpoint:?}"
        );
    }
}

/// Every label of `text` as `(key, value)` pairs.
fn labels(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((inside, _)) = rest.rsplit_once('}') else {
            panic!("unclosed labels: {line}");
        };
        for pair in inside.split(',') {
            let (key, quoted) = pair.split_once('=').expect("key=value");
            let value = quoted.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            pairs.push((key.to_owned(), value.expect("quoted").to_owned()));
        }
    }
    pairs
}

#[test]
fn the_label_set_is_fixed_and_carries_no_caller_text() {
    let metrics = Metrics::new();
    metrics.observe_stats_growth(&Stats::default(), &one_of_each());
    for endpoint in Endpoint::ALL {
        metrics.on_exchange(endpoint, Duration::from_millis(1), Some(401));
    }
    metrics.on_exchange(Endpoint::Payment, Duration::from_millis(1), None);
    metrics.observe_runway(3.0);
    let text = metrics.encode();
    assert!(!text.contains("s3cret") && !text.contains("t0ken"), "{text}");
    let allowed = |key: &str, value: &str| -> bool {
        let of = |all: &[&str]| all.contains(&value);
        match key {
            "state" => of(&SessionState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            "outcome" => of(&Outcome::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            "result" => of(&Replay::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            "reason" => of(&Release::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            "endpoint" => of(&EndpointLabel::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            "status" => value == "none" || value.parse::<u16>().is_ok(),
            "le" => value == "+Inf" || value.parse::<f64>().is_ok(),
            _ => false,
        }
    };
    let pairs = labels(&text);
    assert!(
        pairs.iter().any(|(k, v)| k == "endpoint" && v == "events"),
        "{text}"
    );
    for (key, value) in pairs {
        assert!(
            allowed(&key, &value),
            "label {key}={value:?} is outside the fixed set"
        );
    }
    // Every sample is a `livepay_` series.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("livepay_"), "{line}");
    }
}

#[test]
fn spend_saturates_and_ignores_nonsense() {
    let metrics = Metrics::new();
    metrics.add_spend_wei(u128::MAX);
    metrics.add_spend_wei(5);
    for bad in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        metrics.add_spend_usd(bad);
    }
    metrics.add_spend_usd(1.5);
    metrics.add_spend_usd(f64::MAX);
    metrics.add_spend_usd(f64::MAX);
    let text = metrics.encode();
    let wei = text
        .lines()
        .find_map(|l| l.strip_prefix("livepay_spend_wei_total "))
        .expect("the wei counter");
    assert_eq!(wei, u64::MAX.to_string());
    let usd = value(&text, "livepay_spend_usd_total");
    assert!(usd.is_finite() && usd >= 1.5, "{usd}");
    let fresh = Metrics::new();
    fresh.add_spend_wei(7);
    fresh.add_spend_wei(8);
    assert_eq!(value(&fresh.encode(), "livepay_spend_wei_total"), 15.0);
}

#[test]
fn session_counts_tally_states() {
    let counts = SessionCounts::of([
        State::Reserved,
        State::Funding,
        State::Funding,
        State::Skipped,
        State::Released {
            reason: ReleaseReason::Gone,
        },
    ]);
    assert_eq!(
        counts,
        SessionCounts {
            reserved: 1,
            funding: 2,
            skipped: 1,
            released: 1
        }
    );
    let metrics = Metrics::new();
    metrics.set_sessions(counts);
    metrics.set_sessions(SessionCounts {
        funding: 1,
        ..SessionCounts::default()
    });
    let text = metrics.encode();
    assert_eq!(value(&text, "livepay_sessions{state=\"funding\"}"), 1.0);
    assert_eq!(value(&text, "livepay_sessions{state=\"released\"}"), 0.0);
}

/// Sends `request` to `addr` and reads the whole answer (the server closes after it).
async fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

#[tokio::test]
async fn the_server_answers_get_metrics_and_only_that() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let metrics = Arc::new(Metrics::new());
    metrics.observe_stats_growth(
        &Stats::default(),
        &Stats {
            payments_accepted: 1,
            ..Stats::default()
        },
    );
    let server = tokio::spawn(serve_metrics(listener, Arc::clone(&metrics)));
    let get = |path: &str, method: &str| {
        format!("{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
    };
    let ok = exchange(addr, &get("/metrics", "GET")).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let head = ok.to_ascii_lowercase();
    assert!(
        head.contains(&format!("content-type: {OPENMETRICS_CONTENT_TYPE}")),
        "{ok}"
    );
    assert!(
        ok.contains("livepay_payments_total{outcome=\"accepted\"} 1"),
        "{ok}"
    );
    assert!(ok.ends_with("# EOF\n"), "{ok}");
    let missing = exchange(addr, &get("/other", "GET")).await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let wrong = exchange(addr, &get("/metrics", "POST")).await;
    assert!(wrong.starts_with("HTTP/1.1 405"), "{wrong}");
    server.abort();
}
