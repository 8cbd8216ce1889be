//! Discovery (`docs/protocol.md` §2.4) against the served model, a garbage-answering orchestrator and an
//! unreachable one.

mod common;

use common::{RUNNER, canned_server, fast_model, http_response, live_pricing, quick_http, serve};
use livepay_core::engine::MaxPrice;
use livepay_core::wire::PriceUnit;
use livepay_core::{Failure, PaymentType};
use livepay_hyper::{DiscoveryError, HttpClient, discover};
use livepay_mock::faults::FaultPlan;
use livepay_mock::model::{Pricing, RunnerConfig};

fn client() -> HttpClient {
    match HttpClient::new(quick_http()) {
        Ok(client) => client,
        Err(error) => panic!("cannot build the HTTP client: {error}"),
    }
}

#[tokio::test]
async fn the_served_runner_is_listed_with_its_price() {
    let served = serve(fast_model(live_pricing()), FaultPlan::clean(), 1).await;
    let http = client();
    let runners = common::guarded("discovery", discover(&http, &served.orchestrator_url(), None))
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e}"));
    assert_eq!(runners.len(), 1, "{runners:?}");
    let runner = &runners[0];
    assert_eq!(runner.orchestrator, served.orchestrator_url());
    assert_eq!(runner.url, served.runner_url(RUNNER));
    assert_eq!(runner.runner_id, RUNNER);
    assert_eq!(runner.app.as_deref(), Some("app"));
    assert_eq!(runner.mode.as_deref(), Some("live"));
    assert_eq!(runner.capacity, Some(10_000));
    assert_eq!(runner.capacity_available, Some(10_000));
    let price = runner
        .price
        .as_ref()
        .unwrap_or_else(|| panic!("no price: {runner:?}"));
    assert_eq!(price.price, "1000000000");
    assert_eq!(price.currency, "wei");
    assert_eq!(price.unit, "seconds");
    assert_eq!(runner.payment_type(), Some(PaymentType::Live));
    assert_eq!(
        runner.max_price(1.2),
        Some(MaxPrice::new("1012000000", PriceUnit::Seconds))
    );
    assert_eq!(
        runner.max_price(0.0),
        Some(MaxPrice::new("1000000000", PriceUnit::Seconds))
    );
    served.shutdown().await;
}

#[tokio::test]
async fn the_app_filter_is_applied_client_side() {
    let mut model = fast_model(live_pricing());
    // 0.1 wei per pixel: a fractional JSON number.
    model.runners.push(RunnerConfig::new(
        "video-runner",
        "video app",
        Pricing::Lv2v {
            wei_per_second: 2_764_800,
        },
    ));
    let served = serve(model, FaultPlan::clean(), 1).await;
    let http = client();
    let orch = served.orchestrator_url();

    let all = discover(&http, &orch, None)
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e}"));
    let mut ids: Vec<&str> = all.iter().map(|r| r.runner_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [RUNNER, "video-runner"]);

    // The app name needs percent-encoding in the query; the orchestrator ignores the query.
    let video = discover(&http, &orch, Some("video app"))
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e}"));
    assert_eq!(video.len(), 1, "{video:?}");
    assert_eq!(video[0].runner_id, "video-runner");
    assert_eq!(video[0].url, served.runner_url("video-runner"));
    assert_eq!(video[0].payment_type(), Some(PaymentType::Lv2v));
    assert_eq!(video[0].price.as_ref().map(|p| p.price.as_str()), Some("0.1"));
    assert_eq!(
        video[0].max_price(1.2),
        Some(MaxPrice::new("0.1012", PriceUnit::PixelSeconds720p))
    );

    let live = discover(&http, &orch, Some("app"))
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e}"));
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].runner_id, RUNNER);

    let none = discover(&http, &orch, Some("no such app&x=1"))
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e}"));
    assert!(none.is_empty(), "{none:?}");
    served.shutdown().await;
}

#[tokio::test]
async fn garbage_answers_are_malformed_or_status_errors() {
    let http = client();
    for body in [
        &b"not json at all"[..],
        br#"{"address": "x", "runners": []}"#,
        b"[1e99999]",
        b"\xff\xfe\x00",
        b"",
    ] {
        let orch = canned_server(http_response(200, "application/json", body)).await;
        match discover(&http, &orch, None).await {
            Err(DiscoveryError::Malformed(why)) => assert!(!why.is_empty()),
            other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(body)),
        }
    }

    let orch = canned_server(http_response(500, "text/plain", b"boom\nagain")).await;
    match discover(&http, &orch, None).await {
        Err(DiscoveryError::Status(500, message)) => assert_eq!(message, "boom again"),
        other => panic!("a 500 gave {other:?}"),
    }

    // Entries and runners that make no sense are skipped; the rest is kept.
    let body = br#"[{"address": "http://o.example", "runners": [
        {"app": "no url"},
        {"url": 7},
        {"url": "http://o.example/apps/r1/session", "price_info": {"price": "12.5", "unit": "fixed"}, "new": [1]}
    ]}, "nonsense"]"#;
    let orch = canned_server(http_response(200, "application/json", body)).await;
    let runners = discover(&http, &orch, None)
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e}"));
    assert_eq!(runners.len(), 1, "{runners:?}");
    assert_eq!(runners[0].runner_id, "r1");
    assert_eq!(runners[0].payment_type(), Some(PaymentType::Fixed));
    assert_eq!(
        runners[0].max_price(1.2),
        Some(MaxPrice::new("12.65", PriceUnit::Fixed))
    );
}

#[tokio::test]
async fn an_unreachable_orchestrator_is_an_http_error() {
    // A port that was just free: nothing listens there.
    let addr = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr,
        Err(error) => panic!("cannot bind: {error}"),
    };
    let http = client();
    let result = common::guarded("discovery", discover(&http, &format!("http://{addr}"), None)).await;
    match result {
        Err(DiscoveryError::Unreachable {
            failure: Failure::Refused | Failure::Timeout,
            detail,
        }) => assert!(!detail.is_empty()),
        other => panic!("an unreachable orchestrator gave {other:?}"),
    }
    match discover(&http, "not a url", None).await {
        Err(
            error @ DiscoveryError::Unreachable {
                failure: Failure::BadUrl,
                ..
            },
        ) => {
            assert!(error.to_string().starts_with("discovery: bad URL"), "{error}");
        }
        other => panic!("a bad URL gave {other:?}"),
    }
}
