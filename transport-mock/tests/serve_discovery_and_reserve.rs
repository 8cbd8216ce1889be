//! The served model over real HTTP on loopback: discovery, a full paid reservation, then a payment.

mod serve_common;

use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::json;
use serve_common::{Conn, mint, reserve};

#[tokio::test]
async fn discovery_lists_the_runner_at_the_bound_url() {
    let served = ServedModel::start(ServeConfig::default()).await.unwrap();
    let orch_url = served.orchestrator_url();
    assert!(orch_url.starts_with("http://127.0.0.1:"), "{orch_url}");
    assert_ne!(orch_url, served.signer_url(), "two listeners");

    let mut orch = Conn::open(&orch_url).await.unwrap();
    // Clients may append a query; the orchestrator ignores it.
    let discovery = orch.get("/discovery?app=live-app").await;
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.header("content-type"), Some("application/json"));
    let discovery = discovery.json();
    assert_eq!(discovery[0]["address"], json!(orch_url));
    let runner = &discovery[0]["runners"][0];
    assert_eq!(runner["url"], json!(served.runner_url("live-runner")));
    assert_eq!(
        runner["url"],
        json!(format!("{orch_url}/apps/live-runner/session"))
    );
    assert_eq!(runner["price_info"]["unit"], json!("seconds"));
    served.shutdown().await;
}

#[tokio::test]
async fn a_paid_reservation_then_a_payment_over_http() {
    let served = ServedModel::start(ServeConfig::default()).await.unwrap();
    let funded = reserve(&served, "live-runner").await;
    assert!(served.with_world(|w| {
        w.orchestrator()
            .session(&funded.session_id)
            .is_some_and(|s| s.is_active())
    }));

    // The next mint bills the elapsed (sub-second, rounded up to one second) time: one ticket.
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let minted = mint(
        &mut signer,
        &funded.payment_params,
        &funded.session_id,
        Some(&funded.state),
    )
    .await;
    assert_eq!(minted.status, 200, "{:?}", minted.body);
    let minted = minted.json();
    let mut orch = Conn::open(&served.orchestrator_url()).await.unwrap();
    let headers = [
        ("Livepeer-Payment", minted["payment"].as_str().unwrap()),
        ("Livepeer-Segment", minted["segCreds"].as_str().unwrap()),
    ];
    let paid = orch
        .send("POST", &funded.payment_path, &headers, "")
        .await
        .unwrap();
    assert_eq!(paid.status, 200, "{:?}", paid.body);

    let (accepted, payments, payer) = served.with_world(|w| {
        let session = w.orchestrator().session(&funded.session_id).unwrap();
        (
            w.orchestrator().stats().payments_accepted,
            session.payments(),
            session.sender().map(str::to_owned),
        )
    });
    assert_eq!(accepted, 2, "the paid reservation and the payment");
    assert_eq!(payments, 2);
    assert_eq!(payer.as_deref(), Some(funded.payer.as_str()));
    assert!(served.now() > embassy_time::Instant::from_ticks(0));

    // Stop releases the session: the next payment is a 404.
    let stop_path = format!("{}/stop", funded.control_path);
    assert_eq!(orch.send("POST", &stop_path, &[], "").await.unwrap().status, 204);
    let after = orch
        .send("POST", &funded.payment_path, &headers, "")
        .await
        .unwrap();
    assert_eq!(after.status, 404);
    served.shutdown().await;
}
