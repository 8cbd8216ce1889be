//! The daemon's HTTP/JSON API end to end, in process: a [`ServedModel`] on loopback, a daemon on
//! it (state in a temporary directory), and a tiny HTTP/1.1 client (`common`).
//!
//! The model runs in real time (5 s ticks, 10 s prepay, the daemon's 3 s interval): every wait
//! here is a bounded read of what the daemon sends (a guard, never a measurement).

mod common;

use std::time::Duration;

use common::{
    Events, REQUEST_LIMIT, Reply, Running, SIGNER_SECRET, create, create_body, delete, get, post,
    releases_of, request, request_authorized,
};
use livepay_mock::model::ReleaseCause;
use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::{Value, json};

/// How long a test waits for a payment, an event or a state (a failure guard).
const EVENT_LIMIT: Duration = Duration::from_secs(20);

async fn serve_model() -> ServedModel {
    ServedModel::start(ServeConfig::default())
        .await
        .expect("the served model")
}

/// Unix milliseconds now (the test is the adapter here: it writes a body a client would).
#[allow(clippy::disallowed_methods)]
fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Checks that none of `replies` shows the signer credential or the API token.
#[track_caller]
fn no_secret_in(replies: &[&Reply], token: &str) {
    for reply in replies {
        for secret in [SIGNER_SECRET, "SIGNER-SECRET-1", token] {
            assert!(!reply.body.contains(secret), "a secret in {}", reply.body);
            assert!(
                reply.headers.iter().all(|(_, v)| !v.contains(secret)),
                "a secret in {:?}",
                reply.headers
            );
        }
    }
}

/// Polls `GET /v1/sessions/{id}` until `done` holds (a bounded loop: a guard, not a measurement).
async fn view_until(daemon: &Running, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/sessions/{id}");
    let poll = async {
        loop {
            let reply = get(daemon.addr, &daemon.token, &path).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let view = reply.json();
            if done(&view) {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(EVENT_LIMIT, poll)
        .await
        .expect("the session reaches the state within the guard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_healthz_needs_the_token_and_bad_bodies_name_their_field() {
    let model = serve_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("livepay.db")).await;
    let (addr, token) = (daemon.addr, daemon.token.clone());

    let health = request(addr, "GET", "/healthz", None, None).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    // One funded session, so that the guarded routes of a real id are refused too.
    let id = create(&daemon, &model).await;
    let session = format!("/v1/sessions/{id}");
    let guarded = [
        ("POST", "/v1/sessions".to_owned()),
        ("GET", "/v1/sessions".to_owned()),
        ("GET", session.clone()),
        ("DELETE", session.clone()),
        ("POST", format!("{session}/handoff")),
        ("GET", format!("{session}/events")),
        ("GET", "/metrics".to_owned()),
    ];
    let wrong = "0".repeat(token.len());
    for (method, path) in &guarded {
        for presented in [None, Some(wrong.as_str()), Some("")] {
            let body = (*method == "POST").then(|| create_body(&model).to_string().into_bytes());
            let reply = request(addr, method, path, presented, body.as_deref()).await;
            reply.error(401, "unauthorized");
            assert_eq!(
                reply.header("www-authenticate"),
                Some("Bearer"),
                "{method} {path}"
            );
            no_secret_in(&[&reply], &token);
        }
    }
    // The right token under another scheme, or without one, is refused too.
    for authorization in [format!("Basic {token}"), token.clone()] {
        let reply = request_authorized(addr, "GET", "/metrics", Some(&authorization), None).await;
        reply.error(401, "unauthorized");
    }
    // Nothing above reached the service: the session is still funded, the model never released it.
    assert_eq!(get(addr, &token, &session).await.status, 200);
    assert!(releases_of(&model, &id).is_empty());

    let create_path = "/v1/sessions";
    let raw = |bytes: &'static [u8]| request(addr, "POST", create_path, Some(&token), Some(bytes));
    raw(b"{\"runner_url\": ").await.error(400, "bad_json");
    raw(b"[1, 2]").await.error(400, "bad_json");
    raw(b"\"a string\"").await.error(400, "bad_json");
    let too_large = vec![b' '; livepay_daemon::api::MAX_BODY_BYTES + 1];
    let reply = request(addr, "POST", create_path, Some(&token), Some(&too_large)).await;
    reply.error(413, "too_large");

    let mut unknown = create_body(&model);
    unknown["max_spend"] = json!(5);
    let mut missing = create_body(&model);
    missing.as_object_mut().expect("object").remove("runner_url");
    let mut bad_url = create_body(&model);
    bad_url["runner_url"] = json!("not a url");
    let mut bad_signer = create_body(&model);
    bad_signer["signer_url"] = json!("ftp://signer.example");
    let mut bad_name = create_body(&model);
    bad_name["signer_headers"] = json!({ "Bad Header": "x" });
    let mut bad_value = create_body(&model);
    bad_value["signer_headers"] = json!({ "Authorization": format!("{SIGNER_SECRET}\r\nX-Injected: 1") });
    let mut framing = create_body(&model);
    framing["signer_headers"] = json!({ "Content-Length": "1" });
    let mut tiny_interval = create_body(&model);
    tiny_interval["interval"] = json!(0.01);
    let mut long_interval = create_body(&model);
    long_interval["interval"] = json!(9.5); // not below the 10 s prepay less its margin
    let mut zero_budget = create_body(&model);
    zero_budget["budget"] = json!({ "max_payments": 0 });
    let empty_session_id = json!({
        "signer_url": model.signer_url(),
        "adopt": {
            "session_id": "", "control_url": "http://127.0.0.1:1/x", "payment_params": "p",
            "payment_url": "http://127.0.0.1:1/x/payment", "sender": "0x1", "signer_state": {},
            "reserved_at_ms": 0,
        },
    });
    for (body, field) in [
        (&unknown, "max_spend"),
        (&missing, "runner_url"),
        (&bad_url, "runner_url"),
        (&bad_signer, "signer_url"),
        (&bad_name, "signer_headers"),
        (&bad_value, "signer_headers"),
        (&framing, "signer_headers"),
        (&tiny_interval, "interval"),
        (&long_interval, "interval"),
        (&zero_budget, "budget"),
        (&empty_session_id, "adopt.session_id"),
    ] {
        let reply = post(addr, &token, create_path, body).await;
        let error = reply.error(400, "bad_request");
        assert_eq!(error["field"], field, "{body}: {}", reply.body);
        no_secret_in(&[&reply], &token);
    }

    for (method, path) in [
        ("GET", "/v1/sessions/no-such-id".to_owned()),
        ("DELETE", "/v1/sessions/no-such-id".to_owned()),
        ("POST", "/v1/sessions/no-such-id/handoff".to_owned()),
        ("GET", "/v1/sessions/no-such-id/events".to_owned()),
    ] {
        request(addr, method, &path, Some(&token), None)
            .await
            .error(404, "not_found");
    }
    for presented in [None, Some(token.as_str())] {
        request(addr, "GET", "/v2/nothing", presented, None)
            .await
            .error(404, "not_found");
    }

    // An adopt naming a session funded here already is a conflict, before anything is stored.
    let duplicate = json!({
        "signer_url": model.signer_url(),
        "adopt": {
            "session_id": id, "control_url": format!("{}/apps/live-runner/session/{id}", model.orchestrator_url()),
            "payment_params": "p", "payment_url": format!("{}/apps/live-runner/session/{id}/payment", model.orchestrator_url()),
            "sender": "0x1", "signer_state": {}, "reserved_at_ms": now_ms(),
        },
    });
    let reply = post(addr, &token, create_path, &duplicate).await;
    assert_eq!(reply.error(409, "duplicate")["field"], "session_id");
    assert!(
        releases_of(&model, &id).is_empty(),
        "the funded session is untouched"
    );

    assert_eq!(delete(addr, &token, &session).await.status, 200);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_created_funded_watched_and_closed() {
    let model = serve_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("livepay.db")).await;
    let (addr, token) = (daemon.addr, daemon.token.clone());
    assert!(daemon.token_created);

    let created = post(addr, &token, "/v1/sessions", &create_body(&model)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let view = created.json();
    let id = view["id"].as_str().expect("an id").to_owned();
    // "funding", or "reserved" when the funder's first state change is not in yet (see the
    // ignored `a_created_session_is_shown_funding`).
    assert!(
        matches!(view["state"].as_str(), Some("funding" | "reserved")),
        "{view}"
    );
    assert!(view["runway_s"].as_f64().is_some_and(|r| r > 0.0), "{view}");
    assert_eq!(view["runner_url"], model.runner_url("live-runner"));
    let session = format!("/v1/sessions/{id}");

    let mut events = Events::open(addr, &token, &format!("{session}/events")).await;
    assert_eq!(events.status, 200);
    assert!(
        events
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        events.headers
    );
    let (accepted, lines) = events.until("payment_accepted", EVENT_LIMIT).await;
    assert!(accepted["text"].is_string(), "{accepted}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("data: {") && l.contains(r#""type":"payment_accepted""#)),
        "{lines:?}"
    );

    let one = get(addr, &token, &session).await;
    assert_eq!(one.status, 200);
    let view = one.json();
    assert_eq!(view["state"], "funding", "{view}");
    assert!(view["runway_s"].as_f64().is_some_and(|r| r > 0.0), "{view}");
    assert!(
        view["payments_accepted"].as_u64().is_some_and(|n| n >= 1),
        "{view}"
    );
    // The model's payments are sealed: spend is at the price discovery stated.
    let wei: u128 = view["spend"]["wei"]
        .as_str()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("spend.wei: {view}"));
    assert!(wei > 0, "{view}");
    assert!(view.get("signer_headers").is_none() && view.get("signer_state").is_none());

    let list = get(addr, &token, "/v1/sessions").await;
    assert_eq!(list.status, 200);
    let sessions = list.json()["sessions"].as_array().cloned().expect("sessions");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], id.as_str());

    // The model ignores headers it was not configured to check: the credential went along with
    // every signer call and none was refused.
    let signer = model.with_world(|w| w.signer().stats().clone());
    assert!(signer.mints >= 1 && signer.unauthorized_401 == 0, "{signer:?}");

    let metrics = get(addr, &token, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        metrics.headers
    );
    assert!(metrics.body.contains("livepay_sessions{"), "{}", metrics.body);
    let accepted_line = metrics
        .body
        .lines()
        .find(|l| l.starts_with(r#"livepay_payments_total{outcome="accepted"}"#))
        .unwrap_or_else(|| panic!("no accepted payments series: {}", metrics.body));
    let counted: f64 = accepted_line
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(counted >= 1.0, "{accepted_line}");

    let closed = delete(addr, &token, &session).await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.json()["reason"], "closed by the client");
    // The stream says so last, then ends with the release.
    let rest = events.until_end(EVENT_LIMIT).await;
    let last_data = rest
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no event before the end: {rest:?}"));
    let last: Value = serde_json::from_str(last_data).expect("JSON");
    assert_eq!(
        (last["state"].as_str(), last["reason"].as_str()),
        (Some("released"), Some("closed by the client"))
    );
    assert_eq!(releases_of(&model, &id), [ReleaseCause::Stopped]);

    let again = delete(addr, &token, &session).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["reason"], "closed by the client");
    let released = get(addr, &token, &session).await;
    let view = released.json();
    assert_eq!(view["state"], "released", "{view}");
    assert_eq!(view["release_reason"], "closed by the client");
    assert_eq!(view["runway_s"], 0.0);
    assert_eq!(releases_of(&model, &id).len(), 1, "one stop only");

    no_secret_in(
        &[&created, &one, &list, &metrics, &closed, &again, &released],
        &token,
    );
    assert!(lines.iter().chain(&rest).all(|l| !l.contains("SIGNER-SECRET")));
    drop(events);
    daemon.stop().await;
}

/// The handoff body of `id` from `daemon`, with `signer_url` added: an adopt body.
async fn hand_off(daemon: &Running, model: &ServedModel, id: &str) -> Value {
    let reply = request(
        daemon.addr,
        "POST",
        &format!("/v1/sessions/{id}/handoff"),
        Some(&daemon.token),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut body = reply.json();
    assert_eq!(body["snapshot"]["session_id"], id, "{body}");
    assert!(body["taken_at_ms"].as_u64().is_some_and(|t| t > 0), "{body}");
    body["signer_url"] = model.signer_url().into();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_off_session_is_adopted_by_another_daemon() {
    let model = serve_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let here = Running::start(&dir.path().join("here.db")).await;
    let there = Running::start(&dir.path().join("there.db")).await;
    assert_ne!(here.token, there.token);
    let id = create(&here, &model).await;
    let session = format!("/v1/sessions/{id}");
    let mut events = Events::open(here.addr, &here.token, &format!("{session}/events")).await;
    events.until("payment_accepted", EVENT_LIMIT).await;
    drop(events);

    let adopt = hand_off(&here, &model, &id).await;
    // Closed here, without a stop: the orchestrator still holds it.
    let view = get(here.addr, &here.token, &session).await.json();
    assert_eq!(view["release_reason"], "handed off", "{view}");
    let again = request(
        here.addr,
        "POST",
        &format!("{session}/handoff"),
        Some(&here.token),
        None,
    )
    .await;
    again.error(404, "not_found");
    let closed = delete(here.addr, &here.token, &session).await;
    assert_eq!(
        (closed.status, closed.json()["reason"].as_str()),
        (200, Some("handed off"))
    );
    assert!(releases_of(&model, &id).is_empty());

    let mut without_time = adopt.clone();
    without_time
        .as_object_mut()
        .expect("object")
        .remove("taken_at_ms");
    let reply = post(there.addr, &there.token, "/v1/sessions", &without_time).await;
    assert_eq!(reply.error(400, "bad_request")["field"], "taken_at_ms");

    let adopted = post(there.addr, &there.token, "/v1/sessions", &adopt).await;
    assert_eq!(adopted.status, 201, "{}", adopted.body);
    assert_eq!(adopted.json()["id"], id.as_str());
    let twice = post(there.addr, &there.token, "/v1/sessions", &adopt).await;
    assert_eq!(twice.error(409, "duplicate")["field"], "session_id");

    // Funded there: it pays on the same session, which the model never released.
    let mut events = Events::open(there.addr, &there.token, &format!("{session}/events")).await;
    events.until("payment_accepted", EVENT_LIMIT).await;
    let view = view_until(&there, &id, |v| v["payments_accepted"].as_u64() >= Some(1)).await;
    assert_eq!(view["state"], "funding", "{view}");
    assert!(releases_of(&model, &id).is_empty());
    let closed = delete(there.addr, &there.token, &session).await;
    assert_eq!(closed.json()["reason"], "closed by the client");
    assert_eq!(releases_of(&model, &id), [ReleaseCause::Stopped]);
    no_secret_in(&[&adopted, &twice, &closed], &there.token);
    events.until_end(EVENT_LIMIT).await;
    here.stop().await;
    there.stop().await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Each daemon runs on its own runtime, dropped after its shutdown as a process exit would end
/// it (`serve` returning stops its funding and frees the state file already).
#[test]
fn a_restart_resumes_the_open_sessions_and_reuses_the_token() {
    let model_runtime = runtime();
    let model = model_runtime.block_on(serve_model());
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("livepay.db");

    let first = runtime();
    let (kept, closed, token, token_path) = first.block_on(async {
        let daemon = Running::start(&state).await;
        assert!(daemon.token_created);
        assert_eq!(daemon.resumed, 0);
        let kept = create(&daemon, &model).await;
        let closed = create(&daemon, &model).await;
        let reply = delete(daemon.addr, &daemon.token, &format!("/v1/sessions/{closed}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        view_until(&daemon, &kept, |v| v["payments_accepted"].as_u64() >= Some(1)).await;
        let (token, token_path) = (daemon.token.clone(), daemon.token_path.clone());
        daemon.stop().await;
        (kept, closed, token, token_path)
    });
    drop(first);
    assert_eq!(releases_of(&model, &closed), [ReleaseCause::Stopped]);

    let second = runtime();
    second.block_on(async {
        let daemon = Running::start(&state).await;
        assert!(!daemon.token_created);
        assert_eq!(daemon.token_path, token_path);
        assert_eq!(daemon.token, token);
        assert_eq!(daemon.resumed, 1);
        let (addr, token) = (daemon.addr, daemon.token.clone());

        let list = get(addr, &token, "/v1/sessions").await.json();
        let ids: Vec<&str> = list["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect();
        assert_eq!(ids.len(), 2, "{list}");
        let gone = get(addr, &token, &format!("/v1/sessions/{closed}")).await.json();
        assert_eq!(gone["state"], "released", "{gone}");
        assert_eq!(gone["release_reason"], "closed by the client");

        // The kept session is funded again: its next payment is accepted, on the same session.
        let before = get(addr, &token, &format!("/v1/sessions/{kept}")).await.json();
        assert!(before["runway_s"].as_f64().is_some_and(|r| r > 0.0), "{before}");
        let mut events = Events::open(addr, &token, &format!("/v1/sessions/{kept}/events")).await;
        events.until("payment_accepted", EVENT_LIMIT).await;
        assert!(
            releases_of(&model, &kept).is_empty(),
            "no release of the resumed session"
        );

        let reply = delete(addr, &token, &format!("/v1/sessions/{kept}")).await;
        assert_eq!(reply.json()["reason"], "closed by the client");
        events.until_end(EVENT_LIMIT).await;
        daemon.stop().await;
    });
    assert_eq!(releases_of(&model, &kept), [ReleaseCause::Stopped]);
    drop(second);
    drop(model_runtime);
}

// ---- Bugs: each test states what the daemon should do and fails until it does. ----

/// Issue 17 (item 7) reverses what this test used to say: the same handoff adopted back into
/// the daemon that made it is a replay (whoever adopted it meanwhile funds from the same
/// state), so it is refused; a newer handoff comes back (`adopt_boundaries.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_adopted_back_into_its_maker_is_a_stale_snapshot() {
    let model = serve_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("livepay.db")).await;
    let id = create(&daemon, &model).await;
    let adopt = hand_off(&daemon, &model, &id).await;

    let back = post(daemon.addr, &daemon.token, "/v1/sessions", &adopt).await;
    assert_eq!(back.error(409, "stale_snapshot")["field"], "snapshot.generation");
    let view = get(daemon.addr, &daemon.token, &format!("/v1/sessions/{id}"))
        .await
        .json();
    assert_eq!(view["release_reason"], "handed off", "{view}");
    assert!(releases_of(&model, &id).is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_created_session_is_shown_funding() {
    let model = serve_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("livepay.db")).await;
    for _ in 0..12 {
        let reply = post(daemon.addr, &daemon.token, "/v1/sessions", &create_body(&model)).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.json()["state"], "funding", "{}", reply.body);
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_shutdown_ends_the_open_event_streams() {
    let model = serve_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("livepay.db")).await;
    let id = create(&daemon, &model).await;
    let mut events = Events::open(daemon.addr, &daemon.token, &format!("/v1/sessions/{id}/events")).await;
    // `stop` fails if `serve` has not returned within its guard.
    let stopped = tokio::spawn(daemon.stop());
    events.until_end(REQUEST_LIMIT).await;
    stopped.await.expect("serve returned after the shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_field_of_the_wrong_type_is_named() {
    let model = serve_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("livepay.db")).await;
    for (field, value) in [
        ("interval", json!("3s")),
        ("runner_url", json!(5)),
        ("signer_headers", json!([])),
    ] {
        let mut body = create_body(&model);
        body[field] = value;
        let reply = post(daemon.addr, &daemon.token, "/v1/sessions", &body).await;
        assert_eq!(reply.error(400, "bad_request")["field"], field, "{}", reply.body);
    }
    daemon.stop().await;
}
