//! Issue 17, items 4 and 5: a reservation the daemon cannot fund is stopped, never orphaned,
//! and never overwrites another session's record: a colliding id (two orchestrators on one seed)
//! is a 409 with the first session untouched; a store that cannot make it durable is a 500
//! naming the id, with the reservation stopped and its record closed behind it.

mod common;

use std::sync::Arc;

use common::{Running, SIGNER_SECRET, create, get, post, releases_of};
use livepay_daemon::metrics::Metrics;
use livepay_daemon::service::{Service, ServiceConfig, ServiceError};
use livepay_daemon::spec::CreateRequest;
use livepay_daemon::store::{MemoryStore, WriterConfig, spawn_writer};
use livepay_hyper::{HttpClient, HttpConfig};
use livepay_mock::model::ReleaseCause;
use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colliding_id_is_409_stops_the_new_reservation_and_leaves_the_first_untouched() {
    // Two orchestrators on the same seed hand out the same session ids.
    let first = ServedModel::start(ServeConfig::default()).await.expect("model");
    let second = ServedModel::start(ServeConfig::default()).await.expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("s.db")).await;
    let id = create(&daemon, &first).await;
    let body = json!({
        "runner_url": second.runner_url("live-runner"),
        "signer_url": second.signer_url(),
        "signer_headers": { "Authorization": SIGNER_SECRET },
    });
    let reply = post(daemon.addr, &daemon.token, "/v1/sessions", &body).await;
    assert_eq!(
        reply.error(409, "duplicate")["field"],
        "session_id",
        "{}",
        reply.body
    );
    // The second orchestrator's session (same id) was stopped, not left paid.
    assert_eq!(releases_of(&second, &id), [ReleaseCause::Stopped]);
    // The first session's record is its own: its URL, and it is still funded.
    let view = get(daemon.addr, &daemon.token, &format!("/v1/sessions/{id}"))
        .await
        .json();
    assert_eq!(
        view["runner_url"],
        first.runner_url("live-runner").as_str(),
        "{view}"
    );
    assert!(releases_of(&first, &id).is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_that_cannot_be_stored_is_stopped_and_its_id_returned() {
    let model = ServedModel::start(ServeConfig::default()).await.expect("model");
    let store = MemoryStore::new();
    let writer = spawn_writer(Box::new(store.clone()), WriterConfig::default());
    let http = HttpClient::new(HttpConfig::default()).expect("client");
    let service = Service::start(
        http,
        writer,
        Arc::new(Metrics::new()),
        &ServiceConfig::default(),
        Vec::new(),
        "local",
    )
    .expect("service");
    store.fail_next_commits(1_000);
    let request: CreateRequest = serde_json::from_value(json!({
        "runner_url": model.runner_url("live-runner"),
        "signer_url": model.signer_url(),
    }))
    .expect("a body");
    let Err(ServiceError::NotStored { id, error }) = service.create(&request).await else {
        panic!("a store that fails cannot hold a new session");
    };
    assert!(matches!(*error, ServiceError::Store(_)), "{error:?}");
    assert_eq!(
        releases_of(&model, &id),
        [ReleaseCause::Stopped],
        "stopped, not orphaned"
    );
    assert!(service.is_empty(), "nothing is funded");
}
