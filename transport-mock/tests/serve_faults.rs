//! The fault plan applied over real HTTP: injected 5xx, partitions, held requests.

mod serve_common;

use std::time::Duration;

use livepay_mock::faults::{FaultPlan, Partition};
use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::json;
use serve_common::{Conn, mint, reserve};

fn serve_with(plan: FaultPlan) -> ServeConfig {
    ServeConfig {
        plan,
        ..ServeConfig::default()
    }
}

#[tokio::test]
async fn an_injected_503_is_answered_without_crediting() {
    let mut plan = FaultPlan::clean();
    plan.payment.error_5xx = 1.0;
    let served = ServedModel::start(serve_with(plan)).await.unwrap();
    // Reservation, discovery and the signer carry no payment faults.
    let funded = reserve(&served, "live-runner").await;
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let minted = mint(
        &mut signer,
        &funded.payment_params,
        &funded.session_id,
        Some(&funded.state),
    )
    .await;
    assert_eq!(minted.status, 200);
    let minted = minted.json();
    let mut orch = Conn::open(&served.orchestrator_url()).await.unwrap();
    let headers = [
        ("Livepeer-Payment", minted["payment"].as_str().unwrap()),
        ("Livepeer-Segment", minted["segCreds"].as_str().unwrap()),
    ];
    for _ in 0..3 {
        let answer = orch
            .send("POST", &funded.payment_path, &headers, "")
            .await
            .unwrap();
        assert_eq!(answer.status, 503);
    }
    let (accepted, rejected, payments) = served.with_world(|w| {
        let stats = w.orchestrator().stats();
        let session = w.orchestrator().session(&funded.session_id).unwrap();
        (
            stats.payments_accepted,
            stats.payments_rejected,
            session.payments(),
        )
    });
    assert_eq!(
        (accepted, rejected, payments),
        (1, 0, 1),
        "only the reservation was credited"
    );
    assert_eq!(orch.get("/discovery").await.status, 200, "kept alive after a 503");
    served.shutdown().await;
}

#[tokio::test]
async fn a_partition_refuses_connections() {
    let mut plan = FaultPlan::clean();
    plan.partitions.push(Partition::Once {
        at_s: 0.0,
        duration_s: 3_600.0,
    });
    let served = ServedModel::start(serve_with(plan)).await.unwrap();
    for origin in [served.orchestrator_url(), served.signer_url()] {
        // The TCP handshake may complete (the kernel accepts); no HTTP answer ever comes.
        if let Ok(mut conn) = Conn::open(&origin).await {
            let answer = conn.send("GET", "/discovery", &[], "").await;
            assert!(answer.is_err(), "{origin}: {answer:?}");
        }
    }
    let calls = served.with_world(|w| (w.orchestrator().stats().challenges, w.signer().stats().calls));
    assert_eq!(calls, (0, 0));
    served.shutdown().await;
}

#[tokio::test]
async fn a_refused_request_closes_its_connection_unanswered() {
    let mut plan = FaultPlan::clean();
    plan.stop.refused = 1.0;
    let served = ServedModel::start(serve_with(plan)).await.unwrap();
    let mut orch = Conn::open(&served.orchestrator_url()).await.unwrap();
    assert_eq!(orch.get("/discovery").await.status, 200);
    let answer = orch
        .send("POST", "/apps/live-runner/session/00000000/stop", &[], "")
        .await;
    assert!(answer.is_err(), "{answer:?}");
    // The server itself is fine.
    let mut orch = Conn::open(&served.orchestrator_url()).await.unwrap();
    assert_eq!(orch.get("/discovery").await.status, 200);
    served.shutdown().await;
}

#[tokio::test]
async fn a_timeout_fault_holds_the_request_until_shutdown() {
    let mut plan = FaultPlan::clean();
    plan.signer.timeout = 1.0;
    let served = ServedModel::start(serve_with(plan)).await.unwrap();
    let mut held = Conn::open(&served.signer_url()).await.unwrap();
    let body = json!({ "orchestrator": "x", "type": "live", "ManifestID": "00000000" });
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        held.send(
            "POST",
            "/generate-live-payment",
            &[],
            serde_json::to_vec(&body).unwrap(),
        ),
    )
    .await;
    assert!(waited.is_err(), "an answer came: {waited:?}");
    assert_eq!(
        served.with_world(|w| w.signer().stats().calls),
        0,
        "the model never saw it"
    );

    // Other signer paths carry no per-endpoint faults.
    let mut other = Conn::open(&served.signer_url()).await.unwrap();
    assert_eq!(
        other
            .post_json("/sign-orchestrator-info", &[], &json!({}))
            .await
            .status,
        200
    );

    // Shutdown does not wait for the held request.
    tokio::time::timeout(Duration::from_secs(1), served.shutdown())
        .await
        .expect("shutdown completes with a request held");
    drop(held);
}

#[tokio::test]
async fn a_refresh_storm_answers_480_with_the_orchestrator_url() {
    let mut plan = FaultPlan::clean();
    plan.refresh_storms.push(livepay_mock::faults::RefreshStorm {
        at_s: 0.0,
        duration_s: 3_600.0,
        rate: 1.0,
    });
    let served = ServedModel::start(serve_with(plan)).await.unwrap();
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let body = json!({ "orchestrator": "x", "type": "live", "ManifestID": "00000000" });
    let answer = signer.post_json("/generate-live-payment", &[], &body).await;
    assert_eq!(answer.status, 480);
    let orch_url = served.orchestrator_url();
    assert_eq!(
        answer.header("livepeer-orchestrator-url"),
        Some(orch_url.as_str())
    );
    assert_eq!(served.with_world(|w| w.signer().stats().calls), 0);
    served.shutdown().await;
}

#[tokio::test]
async fn a_lost_answer_is_processed_then_held_and_a_replay_is_refused_400() {
    let mut plan = FaultPlan::clean();
    plan.payment.lost_answer = 1.0;
    let served = ServedModel::start(serve_with(plan)).await.unwrap();
    let funded = reserve(&served, "live-runner").await;
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let minted = mint(
        &mut signer,
        &funded.payment_params,
        &funded.session_id,
        Some(&funded.state),
    )
    .await
    .json();
    let headers = [
        ("Livepeer-Payment", minted["payment"].as_str().unwrap()),
        ("Livepeer-Segment", minted["segCreds"].as_str().unwrap()),
    ];
    let mut held = Conn::open(&served.orchestrator_url()).await.unwrap();
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        held.send("POST", &funded.payment_path, &headers, ""),
    )
    .await;
    assert!(waited.is_err(), "an answer came: {waited:?}");
    // The model credited it all the same.
    let credited = |served: &ServedModel| {
        served.with_world(|w| {
            let session = w.orchestrator().session(&funded.session_id).unwrap();
            (session.payments(), w.orchestrator().stats().payments_already_seen)
        })
    };
    assert_eq!(credited(&served), (2, 0));
    // The replay is processed too (and refused as already seen); its answer is lost as well.
    let mut again = Conn::open(&served.orchestrator_url()).await.unwrap();
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        again.send("POST", &funded.payment_path, &headers, ""),
    )
    .await;
    assert!(waited.is_err(), "an answer came: {waited:?}");
    assert_eq!(credited(&served), (2, 1));
    tokio::time::timeout(Duration::from_secs(1), served.shutdown())
        .await
        .expect("shutdown completes with requests held");
    drop((held, again));
}

#[tokio::test]
async fn windows_fail_payments_and_refuse_the_signer_from_the_model_start() {
    use livepay_mock::faults::{Window, WindowEndpoint, WindowKind, WindowStart};
    let mut plan = FaultPlan::clean();
    plan.windows.push(Window {
        endpoints: vec![WindowEndpoint::Payment],
        start: WindowStart::Seconds(0.0),
        duration_s: 3_600.0,
        kind: WindowKind::Error5xx,
        rate: 1.0,
    });
    let served = ServedModel::start(serve_with(plan.clone())).await.unwrap();
    let funded = reserve(&served, "live-runner").await;
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let minted = mint(
        &mut signer,
        &funded.payment_params,
        &funded.session_id,
        Some(&funded.state),
    )
    .await
    .json();
    let headers = [
        ("Livepeer-Payment", minted["payment"].as_str().unwrap()),
        ("Livepeer-Segment", minted["segCreds"].as_str().unwrap()),
    ];
    let mut orch = Conn::open(&served.orchestrator_url()).await.unwrap();
    let answer = orch
        .send("POST", &funded.payment_path, &headers, "")
        .await
        .unwrap();
    assert_eq!(answer.status, 503);
    let payments = served.with_world(|w| w.orchestrator().session(&funded.session_id).unwrap().payments());
    assert_eq!(payments, 1, "only the reservation");
    served.shutdown().await;

    // The signer refusing: the generate call is closed unanswered; other signer paths are fine.
    plan.windows[0].endpoints = vec![WindowEndpoint::Signer];
    plan.windows[0].kind = WindowKind::Refuse;
    let served = ServedModel::start(serve_with(plan.clone())).await.unwrap();
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let body = json!({ "orchestrator": "x", "type": "live", "ManifestID": "00000000" });
    let bytes = serde_json::to_vec(&body).unwrap();
    let json_type = [("Content-Type", "application/json")];
    let answer = signer
        .send("POST", "/generate-live-payment", &json_type, bytes.clone())
        .await;
    assert!(answer.is_err(), "{answer:?}");
    let mut other = Conn::open(&served.signer_url()).await.unwrap();
    let info = other.post_json("/sign-orchestrator-info", &[], &json!({})).await;
    assert_eq!(info.status, 200);
    served.shutdown().await;

    // A "mid" window applies once resolved against the run's length, from the model's start.
    plan.windows[0].start = WindowStart::Mid;
    let served = ServedModel::start(serve_with(plan.clone())).await.unwrap();
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let answer = signer.post_json("/generate-live-payment", &[], &body).await;
    assert_eq!(answer.status, 400, "unresolved: no window");
    served.shutdown().await;
    let resolved = plan.resolved(embassy_time::Duration::from_secs(0));
    let served = ServedModel::start(serve_with(resolved)).await.unwrap();
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let answer = signer
        .send("POST", "/generate-live-payment", &json_type, bytes)
        .await;
    assert!(answer.is_err(), "{answer:?}");
    served.shutdown().await;
}
