//! Issue 17, items 2, 3 and 11: an adopt body crosses a trust boundary. A forged snapshot (a
//! `billed_ms` of `u64::MAX`, a runway of 49 days, version 0, an id of spaces or escapes, a
//! signer URL other than the one named, an unsendable or cross-origin URL) is a 400 naming the
//! field; nothing is stored; every other session goes on being paid; `/healthz` stays honest.

mod common;

use std::time::Duration;

use common::{Events, Running, create, get, post, releases_of, request};
use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::{Value, json};

const EVENT_LIMIT: Duration = Duration::from_secs(20);
/// A URL nobody named: where a forged snapshot would send the caller's credentials.
const ELSEWHERE: &str = "http://127.0.0.1:9/evil";

/// A way to forge an adopt body.
type Forge = fn(&mut Value);

/// The handoff body of `id` from `daemon`, with `signer_url` added: an adopt body.
async fn hand_off(daemon: &Running, model: &ServedModel, id: &str) -> Value {
    let path = format!("/v1/sessions/{id}/handoff");
    let reply = request(daemon.addr, "POST", &path, Some(&daemon.token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut body = reply.json();
    body["signer_url"] = model.signer_url().into();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_snapshots_are_400_by_field_and_stop_no_other_session() {
    let model = ServedModel::start(ServeConfig::default()).await.expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let here = Running::start(&dir.path().join("here.db")).await;
    let there_state = dir.path().join("there.db");
    let there = Running::start(&there_state).await;
    let moving = create(&here, &model).await;
    let staying = create(&there, &model).await;
    let adopt = hand_off(&here, &model, &moving).await;

    let forgeries: Vec<(&str, Forge)> = vec![
        (
            "snapshot.funding.stats.billed_ms",
            (|b| b["snapshot"]["funding"]["stats"]["billed_ms"] = json!(u64::MAX)),
        ),
        (
            "snapshot.funding.runway_ms",
            (|b| b["snapshot"]["funding"]["runway_ms"] = json!(u32::MAX)),
        ),
        (
            "snapshot.funding.stats.payments_sent",
            (|b| b["snapshot"]["funding"]["stats"]["payments_sent"] = json!(u32::MAX)),
        ),
        ("snapshot.version", (|b| b["snapshot"]["version"] = json!(0))),
        (
            "snapshot.session_id",
            (|b| b["snapshot"]["session_id"] = json!("    ")),
        ),
        (
            "snapshot.session_id",
            (|b| b["snapshot"]["session_id"] = json!("a\u{1b}[2Jb")),
        ),
        (
            "snapshot.session_id",
            (|b| b["snapshot"]["session_id"] = json!("x".repeat(50_000))),
        ),
        ("taken_at_ms", (|b| b["taken_at_ms"] = json!(0))),
        (
            "snapshot.payment.signer_url",
            (|b| b["snapshot"]["payment"]["signer_url"] = json!(ELSEWHERE)),
        ),
        (
            "snapshot.payment.signer_url",
            (|b| b["snapshot"]["payment"]["signer_url"] = json!("gopher://127.0.0.1:1")),
        ),
        (
            "snapshot.control_url",
            (|b| b["snapshot"]["control_url"] = json!("http://u:p@127.0.0.1:1/x")),
        ),
        (
            "snapshot.control_url",
            (|b| b["snapshot"]["control_url"] = json!("http://127.0.0.1:1/x\r\nX: y")),
        ),
        (
            "snapshot.payment.payment_url",
            (|b| b["snapshot"]["payment"]["payment_url"] = json!(ELSEWHERE)),
        ),
    ];
    for (field, forge) in &forgeries {
        let mut body = adopt.clone();
        forge(&mut body);
        let reply = post(there.addr, &there.token, "/v1/sessions", &body).await;
        let error = reply.error(400, "bad_request");
        assert_eq!(error["field"], *field, "{}", reply.body);
        assert!(!reply.body.contains('\u{1b}'), "no escape echoed: {}", reply.body);
    }
    // The signer named in a snapshot only never heard from this daemon (nothing listens there,
    // and the session was not funded), and the daemon is healthy and funding the other session.
    let health = request(there.addr, "GET", "/healthz", None, None).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let mut events = Events::open(
        there.addr,
        &there.token,
        &format!("/v1/sessions/{staying}/events"),
    )
    .await;
    events.until("payment_accepted", EVENT_LIMIT).await;
    drop(events);
    let list = get(there.addr, &there.token, "/v1/sessions").await.json();
    assert_eq!(
        list["sessions"].as_array().map(Vec::len),
        Some(1),
        "nothing forged is listed: {list}"
    );

    // The real one is adopted, and funded.
    let adopted = post(there.addr, &there.token, "/v1/sessions", &adopt).await;
    assert_eq!(adopted.status, 201, "{}", adopted.body);
    let mut events = Events::open(there.addr, &there.token, &format!("/v1/sessions/{moving}/events")).await;
    events.until("payment_accepted", EVENT_LIMIT).await;
    drop(events);
    assert!(releases_of(&model, &moving).is_empty());
    assert!(releases_of(&model, &staying).is_empty());
    here.stop().await;
    there.stop().await;
}

/// Issue 17, item 7: a handoff replayed into the daemon that made it is refused (409
/// `stale_snapshot`), after a restart of that daemon too; a newer handoff comes back.
#[test]
fn a_handoff_replayed_into_its_maker_is_refused_and_a_newer_one_comes_back() {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    };
    let model_runtime = runtime();
    let model = model_runtime
        .block_on(ServedModel::start(ServeConfig::default()))
        .expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let (a_state, b_state) = (dir.path().join("a.db"), dir.path().join("b.db"));

    let first = runtime();
    let (id, adopt) = first.block_on(async {
        let a = Running::start(&a_state).await;
        let id = create(&a, &model).await;
        let adopt = hand_off(&a, &model, &id).await;
        assert_eq!(adopt["snapshot"]["generation"], 1, "{adopt}");
        let replay = post(a.addr, &a.token, "/v1/sessions", &adopt).await;
        assert_eq!(
            replay.error(409, "stale_snapshot")["field"],
            "snapshot.generation"
        );
        a.stop().await;
        (id, adopt)
    });
    drop(first);

    let second = runtime();
    second.block_on(async {
        // Restarted, A still refuses it; B takes it, and hands it back one generation newer.
        let a = Running::start(&a_state).await;
        let replay = post(a.addr, &a.token, "/v1/sessions", &adopt).await;
        assert_eq!(
            replay.error(409, "stale_snapshot")["field"],
            "snapshot.generation"
        );
        let b = Running::start(&b_state).await;
        let taken = post(b.addr, &b.token, "/v1/sessions", &adopt).await;
        assert_eq!(taken.status, 201, "{}", taken.body);
        let back = hand_off(&b, &model, &id).await;
        assert_eq!(back["snapshot"]["generation"], 2, "{back}");
        let returned = post(a.addr, &a.token, "/v1/sessions", &back).await;
        assert_eq!(returned.status, 201, "{}", returned.body);
        let mut events = Events::open(a.addr, &a.token, &format!("/v1/sessions/{id}/events")).await;
        events.until("payment_accepted", EVENT_LIMIT).await;
        assert!(
            releases_of(&model, &id).is_empty(),
            "one owner at a time: never released"
        );
        a.stop().await;
        b.stop().await;
    });
}

/// Issue 17, item 9: a handoff ends the session's open streams with a final `ended` line, and a
/// stream opened after the end gets that line at once, then ends (a client never hangs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_of_an_ended_session_end_with_the_reason() {
    let model = ServedModel::start(ServeConfig::default()).await.expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("s.db")).await;
    let id = create(&daemon, &model).await;
    let path = format!("/v1/sessions/{id}/events");
    let mut open = Events::open(daemon.addr, &daemon.token, &path).await;
    let _ = hand_off(&daemon, &model, &id).await;
    let (ended, _) = open.until("ended", EVENT_LIMIT).await;
    assert_eq!(ended["reason"], "handed off", "{ended}");
    open.until_end(EVENT_LIMIT).await;

    let mut late = Events::open(daemon.addr, &daemon.token, &path).await;
    let (ended, _) = late.until("ended", EVENT_LIMIT).await;
    assert_eq!(ended["reason"], "handed off", "{ended}");
    late.until_end(EVENT_LIMIT).await;
    daemon.stop().await;
}

/// Issue 17, item 10: a `DELETE` racing a handoff is answered at once (with the handoff, or
/// with its own close), never after the 15 s close timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_a_handoff_is_answered_at_once() {
    let model = ServedModel::start(ServeConfig::default()).await.expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("s.db")).await;
    for _ in 0..4 {
        let id = create(&daemon, &model).await;
        let path = format!("/v1/sessions/{id}");
        let handoff_path = format!("{path}/handoff");
        let handoff = request(daemon.addr, "POST", &handoff_path, Some(&daemon.token), None);
        let delete = common::delete(daemon.addr, &daemon.token, &path);
        let (_, closed) =
            tokio::time::timeout(Duration::from_secs(5), futures::future::join(handoff, delete))
                .await
                .expect("both answer well before the close timeout");
        assert_eq!(closed.status, 200, "{}", closed.body);
        let reason = closed.json()["reason"].as_str().map(str::to_owned);
        assert!(
            matches!(reason.as_deref(), Some("handed off" | "closed by the client")),
            "{reason:?}"
        );
    }
    daemon.stop().await;
}
