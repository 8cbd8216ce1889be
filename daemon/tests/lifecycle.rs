//! Issue 16: every session's end reaches the daemon exactly once, however many end at once and
//! however slow the event reader. The funder's event channel holds one event here; an
//! orchestrator restart releases 1,000 sessions at once. The daemon must report all 1,000
//! released, answer each `DELETE` at once, and resume none of them after a restart.

mod common;

use std::time::Duration;

use common::{Running, create_body, delete, get, options, post};
use futures::future::join_all;
use livepay_mock::serve::{ServeConfig, ServedModel};

const SESSIONS: usize = 1_000;
/// A guard on how long the releases take to be seen, never a measurement: the client learns of
/// a release at its next payment, within a few seconds.
const RELEASE_LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_releases_at_once_each_reach_the_daemon_with_an_event_channel_of_one() {
    let model = ServedModel::start(ServeConfig::default())
        .await
        .expect("the served model");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = dir.path().join("state.db");
    let mut opts = options(&state);
    opts.service.event_capacity = 1;
    // A DELETE that waited for an end that never came would hit the request guard first.
    opts.service.close_timeout = Duration::from_secs(120);
    let daemon = Running::start_with(opts).await;

    let body = create_body(&model);
    let mut ids = Vec::with_capacity(SESSIONS);
    for chunk in 0..SESSIONS / 50 {
        let created =
            join_all((0..50).map(|_| post(daemon.addr, &daemon.token, "/v1/sessions", &body))).await;
        for reply in created {
            assert_eq!(reply.status, 201, "chunk {chunk}: {}", reply.body);
            ids.push(reply.json()["id"].as_str().expect("an id").to_owned());
        }
    }
    // Every session funded once, so each is in the middle of its life.
    let funded = |list: &str| list.matches(r#""payments_accepted":0,"#).count() == 0;
    wait(RELEASE_LIMIT, "every session paid once", || async {
        funded(&get(daemon.addr, &daemon.token, "/v1/sessions").await.body)
    })
    .await;

    let released = model.with_world(|w| {
        let now = w.now();
        w.orchestrator_mut().restart(now)
    });
    assert_eq!(
        released, SESSIONS,
        "the orchestrator dropped every session at once"
    );

    wait(
        RELEASE_LIMIT,
        "all 1,000 released in the daemon's view",
        || async {
            let list = get(daemon.addr, &daemon.token, "/v1/sessions").await.body;
            list.matches(r#""state":"released""#).count() == SESSIONS
        },
    )
    .await;
    let list = get(daemon.addr, &daemon.token, "/v1/sessions").await.json();
    for view in list["sessions"].as_array().expect("a list") {
        assert_eq!(view["state"], "released", "{view}");
        assert_eq!(
            view["release_reason"], "gone: the orchestrator released the session (404)",
            "{view}"
        );
    }
    // Each DELETE answers at once with the reason: the end is known, nothing is waited for.
    for chunk in ids.chunks(100) {
        let paths: Vec<String> = chunk.iter().map(|id| format!("/v1/sessions/{id}")).collect();
        let replies = join_all(paths.iter().map(|path| delete(daemon.addr, &daemon.token, path))).await;
        for reply in replies {
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    }
    let metrics = get(daemon.addr, &daemon.token, "/metrics").await.body;
    assert!(
        metrics.contains(&format!("livepay_releases_total{{reason=\"gone\"}} {SESSIONS}")),
        "every release counted once:\n{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("livepay_releases"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    daemon.stop().await;

    let again = Running::start_with(options(&state)).await;
    assert_eq!(again.resumed, 0, "a released session is never resumed");
    again.stop().await;
    model.shutdown().await;
}

/// Polls `condition` every 100 ms until it holds; panics after `limit`.
async fn wait<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waited = tokio::time::timeout(limit, async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for: {what}");
}
