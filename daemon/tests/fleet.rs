//! Issue 19: the app's lease (one daemon, SQLite), and any daemon of a fleet serving any session
//! (two daemons on PostgreSQL, when `LIVEPAY_TEST_POSTGRES` names a server).
//!
//! The model debits in real time; every wait polls an outcome under a guard.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Running, create_body, delete, get, options, post, releases_of};
use livepay_daemon::run::StateLocation;
use livepay_daemon::service::APP_GONE;
use livepay_mock::model::ReleaseCause;
use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::{Value, json};

/// A failure guard on each wait, never a synchronisation.
const GUARD: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

async fn model() -> ServedModel {
    ServedModel::start(ServeConfig::default())
        .await
        .expect("the model")
}

/// Polls `view` of session `id` on `daemon` until `done` holds it; returns it.
async fn until_view(daemon: &Running, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let reply = get(daemon.addr, &daemon.token, &format!("/v1/sessions/{id}")).await;
        if reply.status == 200 && done(&reply.json()) {
            return reply.json();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(POLL).await;
    }
}

fn with_lease(model: &ServedModel, seconds: f64) -> Value {
    let mut body = create_body(model);
    body["app_lease_s"] = json!(seconds);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_stops_renewing_gets_its_session_stopped_and_nothing_minted_after() {
    let model = model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("s.db")).await;
    // Out of range, and a renewal of what has no lease or does not exist.
    let reply = post(
        daemon.addr,
        &daemon.token,
        "/v1/sessions",
        &with_lease(&model, 0.5),
    )
    .await;
    assert_eq!(reply.error(400, "bad_request")["field"], "app_lease_s");
    let reply = post(daemon.addr, &daemon.token, "/v1/sessions/nope/renew", &json!({})).await;
    reply.error(404, "not_found");
    let plain = common::create(&daemon, &model).await;
    let reply = post(
        daemon.addr,
        &daemon.token,
        &format!("/v1/sessions/{plain}/renew"),
        &json!({}),
    )
    .await;
    assert_eq!(reply.error(400, "bad_request")["field"], "app_lease_s");

    // The plain session ends first: from here on, the leased one is the only one funded.
    let reply = delete(daemon.addr, &daemon.token, &format!("/v1/sessions/{plain}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let reply = post(
        daemon.addr,
        &daemon.token,
        "/v1/sessions",
        &with_lease(&model, 4.0),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.json()["id"].as_str().expect("an id").to_owned();
    // The app renews at every accepted payment (3 s apart at most): alive past three payments,
    // well beyond its first 4 s.
    let (mut renewed_after, mut until) = (0, 0);
    let deadline = tokio::time::Instant::now() + GUARD;
    while renewed_after < 3 {
        let view = get(daemon.addr, &daemon.token, &format!("/v1/sessions/{id}"))
            .await
            .json();
        assert!(
            matches!(view["state"].as_str(), Some("funding" | "reserved")),
            "{view}"
        );
        let paid = view["payments_accepted"].as_u64().unwrap_or(0);
        if paid > renewed_after {
            let path = format!("/v1/sessions/{id}/renew");
            let reply = post(daemon.addr, &daemon.token, &path, &json!({})).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let next = reply.json()["app_lease_until_ms"]
                .as_u64()
                .expect("the lease's end");
            assert!(
                next > until,
                "each renewal moves the lease's end: {until} then {next}"
            );
            (renewed_after, until) = (paid, next);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "three payments while renewed: {view}"
        );
        tokio::time::sleep(POLL).await;
    }
    // The app goes away.
    let view = until_view(&daemon, &id, "stopped after the lease", |v| {
        v["state"] == "released"
    })
    .await;
    assert_eq!(view["release_reason"], APP_GONE, "{view}");
    assert_eq!(
        releases_of(&model, &id),
        [ReleaseCause::Stopped],
        "stopped, not lapsed"
    );
    let metrics = get(daemon.addr, &daemon.token, "/metrics").await.body;
    assert!(metrics.contains("livepay_app_gone_total 1"), "{metrics}");
    // No engine funds anything any more: nothing is minted for it after the stop.
    assert!(
        metrics.contains("livepay_sessions{state=\"funding\"} 0"),
        "{metrics}"
    );
    daemon.stop().await;
    // Stopped within the lease plus one claim interval, by the daemon's own clock: its record's
    // close against the lease's end it stored (the stop's round trip on top).
    let (closed_ms, lease_ms): (i64, i64) = rusqlite::Connection::open(dir.path().join("s.db"))
        .expect("the state file")
        .query_row(
            "SELECT updated_ms, app_lease_until_ms FROM sessions WHERE id = ?1",
            [&id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("the session's record");
    let late = closed_ms - lease_ms;
    assert!(
        (0..=2_000).contains(&late),
        "closed {late} ms after the app's lease ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_events_stream_keeps_the_app_lease() {
    let model = model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("s.db")).await;
    let reply = post(
        daemon.addr,
        &daemon.token,
        "/v1/sessions",
        &with_lease(&model, 2.0),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.json()["id"].as_str().expect("an id").to_owned();
    let stream = common::Events::open(daemon.addr, &daemon.token, &format!("/v1/sessions/{id}/events")).await;
    // Well past the lease, held by the stream.
    let view = until_view(&daemon, &id, "three payments while streaming", |v| {
        v["payments_accepted"].as_u64() >= Some(3)
    })
    .await;
    assert_eq!(view["state"], "funding", "{view}");
    drop(stream);
    let view = until_view(&daemon, &id, "stopped once the stream closed", |v| {
        v["state"] == "released"
    })
    .await;
    assert_eq!(view["release_reason"], APP_GONE, "{view}");
    daemon.stop().await;
}

/// The test server's URL with a database of its own, if there is a server.
async fn fresh_postgres(tag: &str) -> Option<String> {
    let url = livepay_daemon::store::conformance::test_server()?;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(connection);
    let name = format!("fleet_{tag}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client.batch_execute(&sql).await.expect("a fresh database");
    }
    let base = url.split('?').next().unwrap_or(&url);
    let (server, _) = base.rsplit_once('/').expect("a database in the URL");
    Some(format!("{server}/{name}"))
}

async fn fleet_daemon(url: &str, token_file: &Path) -> Running {
    let mut options = options(token_file);
    options.state = StateLocation::parse(url);
    options.api_token_file = Some(token_file.to_owned());
    Running::start_with(options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_daemon_of_the_fleet_shows_and_stops_any_session() {
    let Some(url) = fresh_postgres("any").await else {
        return;
    };
    let model = model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "fleet-token-0123456789abcdef\n").expect("token");
    let a = fleet_daemon(&url, &token_file).await;
    let b = fleet_daemon(&url, &token_file).await;
    let id = common::create(&a, &model).await;
    until_view(&a, &id, "funded by A", |v| {
        v["payments_accepted"].as_u64() >= Some(1)
    })
    .await;
    // B shows it from the store.
    let view = until_view(&b, &id, "shown by B", |v| v["state"] == "funding").await;
    assert!(view["runway_s"].as_f64().is_some_and(|r| r > 0.0), "{view}");
    assert!(!view.to_string().contains("SIGNER-SECRET"), "{view}");
    // B stops it: A carries the stop out; both show the release.
    let reply = delete(b.addr, &b.token, &format!("/v1/sessions/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    until_view(&a, &id, "released on A", |v| v["state"] == "released").await;
    assert_eq!(releases_of(&model, &id), [ReleaseCause::Stopped]);
    let again = delete(b.addr, &b.token, &format!("/v1/sessions/{id}")).await;
    assert_eq!(
        again.status, 200,
        "a second DELETE answers the same: {}",
        again.body
    );

    // A goes away with a session; a DELETE on B completes (B claims it, then stops it).
    let orphan = common::create(&a, &model).await;
    a.stop().await;
    let reply = delete(b.addr, &b.token, &format!("/v1/sessions/{orphan}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(releases_of(&model, &orphan), [ReleaseCause::Stopped]);
    let reply = get(b.addr, &b.token, "/v1/sessions/none-such").await;
    reply.error(404, "not_found");
    b.stop().await;
}
