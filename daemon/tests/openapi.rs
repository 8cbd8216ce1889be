//! Issue 19, item 6: the OpenAPI document at `GET /v1/openapi.json`, made from the handlers'
//! types. It is served without the token, names every route with its methods, and each status
//! the daemon answers here (driven end to end on a served model) is one the document lists for
//! that operation, with the content type it states. The document is checked in as
//! `daemon/openapi.json`: a change to the API shows in review.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::{Reply, Running, create_body, post, request, request_authorized};
use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::{Value, json};

/// Every route of the API and its methods (lowercase, as the document spells them).
const ROUTES: &[(&str, &[&str])] = &[
    ("/v1/sessions", &["get", "post"]),
    ("/v1/sessions/{id}", &["delete", "get"]),
    ("/v1/sessions/{id}/handoff", &["post"]),
    ("/v1/sessions/{id}/renew", &["post"]),
    ("/v1/sessions/{id}/events", &["get"]),
    ("/metrics", &["get"]),
    ("/healthz", &["get"]),
    ("/v1/openapi.json", &["get"]),
];

/// The routes anyone may call, without the token.
const OPEN: &[&str] = &["/healthz", "/v1/openapi.json"];

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn the_checked_in_document_is_the_generated_one() {
    let generated = livepay_daemon::openapi::document();
    let path = checked_in_path();
    if std::env::var_os("LIVEPAY_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write daemon/openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let first_difference = checked_in
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map_or_else(
                || "one is a prefix of the other".to_owned(),
                |(n, (a, b))| format!("line {}: checked in {a:?}, generated {b:?}", n + 1),
            );
        panic!(
            "daemon/openapi.json differs from the document the daemon serves ({first_difference}): \
             the API changed. Regenerate it with \
             `LIVEPAY_BLESS=1 cargo test -p livepay-daemon --test openapi` and commit it."
        );
    }
}

/// The operation `method path` of `doc`.
#[track_caller]
fn operation<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in the document");
    op
}

/// Checks that `reply` to `method path` is a response the document lists for that operation,
/// with the content type it gives; records it.
#[track_caller]
fn documented(
    doc: &Value,
    seen: &mut BTreeSet<(String, String, u16)>,
    method: &str,
    path: &str,
    reply: &Reply,
) {
    let op = operation(doc, path, method);
    let status = reply.status.to_string();
    let response = &op["responses"][&status];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which its documented responses ({:?}) lack: {}",
        op["responses"].as_object().map(|r| r.keys().collect::<Vec<_>>()),
        reply.body
    );
    let content_type = reply.header("content-type").unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let content = response["content"].as_object().expect("a documented content");
    assert!(
        content.contains_key(media),
        "{method} {path} {status} is {content_type}, documented as {:?}",
        content.keys().collect::<Vec<_>>()
    );
    if media == "application/json" {
        let body = reply.json();
        if reply.status >= 400 {
            assert!(
                body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                "{}",
                reply.body
            );
        }
    }
    seen.insert((method.to_owned(), path.to_owned(), reply.status));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_lists_every_route_and_every_status_the_daemon_answers() {
    let model = ServedModel::start(ServeConfig::default()).await.expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Running::start(&dir.path().join("s.db")).await;
    let (addr, token) = (daemon.addr, daemon.token.clone());

    // Without the token: a client generator fetches it before it has one.
    let served = request(addr, "GET", "/v1/openapi.json", None, None).await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert!(
        served
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        served.headers
    );
    let doc = served.json();
    assert_eq!(served.body, livepay_daemon::openapi::document());
    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3."), "{version}");

    // Every route with exactly its methods; the token everywhere but the open routes.
    let paths = doc["paths"].as_object().expect("paths");
    let expected: BTreeMap<&str, BTreeSet<&str>> = ROUTES
        .iter()
        .map(|(path, methods)| (*path, methods.iter().copied().collect()))
        .collect();
    let documented_routes: BTreeMap<&str, BTreeSet<&str>> = paths
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item")
                .keys()
                .map(String::as_str)
                .filter(|k| ["get", "put", "post", "delete", "patch", "head", "options"].contains(k))
                .collect();
            (path.as_str(), methods)
        })
        .collect();
    assert_eq!(documented_routes, expected);
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (path, methods) in ROUTES {
        for method in *methods {
            let op = operation(&doc, path, method);
            assert!(op["operationId"].is_string(), "{method} {path}");
            let open = op["security"] == json!([{}]);
            assert_eq!(open, OPEN.contains(path), "{method} {path}: {}", op["security"]);
        }
    }

    let mut seen = BTreeSet::new();
    let mut check =
        |method: &str, path: &str, reply: &Reply| documented(&doc, &mut seen, method, path, reply);
    let unknown = "no-such-session";
    let concrete = |path: &str, id: &str| path.replace("{id}", id);

    // 401 without the token, on every guarded operation.
    for (path, methods) in ROUTES.iter().filter(|(p, _)| !OPEN.contains(p)) {
        for method in *methods {
            let reply = request(addr, &method.to_uppercase(), &concrete(path, unknown), None, None).await;
            assert_eq!(reply.status, 401, "{method} {path}");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
            check(method, path, &reply);
        }
    }
    let wrong = request_authorized(addr, "GET", "/v1/sessions", Some("Bearer not-the-token"), None).await;
    check("get", "/v1/sessions", &wrong);

    // 404 of an unknown id, 400 of an id that is not UTF-8, on every operation of a session.
    for (path, methods) in ROUTES.iter().filter(|(p, _)| p.contains("{id}")) {
        for method in *methods {
            let reply = request(
                addr,
                &method.to_uppercase(),
                &concrete(path, unknown),
                Some(&token),
                None,
            )
            .await;
            assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
            check(method, path, &reply);
            let reply = request(
                addr,
                &method.to_uppercase(),
                &concrete(path, "%FF%FE"),
                Some(&token),
                None,
            )
            .await;
            assert_eq!(reply.status, 400, "{method} {path}: {}", reply.body);
            assert_eq!(reply.json()["error"]["field"], "id", "{}", reply.body);
            check(method, path, &reply);
        }
    }

    // The open routes and the lists.
    for path in ["/healthz", "/v1/openapi.json", "/metrics", "/v1/sessions"] {
        let reply = request(addr, "GET", path, Some(&token), None).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        check("get", path, &reply);
    }

    // POST /v1/sessions: bad bodies (400), too large (413), an unreachable orchestrator (502).
    let create = "/v1/sessions";
    for body in [&b"not json"[..], b"[1]", b"{}", b"{\"runner_url\": 1}"] {
        let reply = request(addr, "POST", create, Some(&token), Some(body)).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        check("post", create, &reply);
    }
    let too_large = vec![b' '; livepay_daemon::api::MAX_BODY_BYTES + 1];
    let reply = request(addr, "POST", create, Some(&token), Some(&too_large)).await;
    check("post", create, &reply);
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let nobody = closed_port.local_addr().expect("its address");
    drop(closed_port);
    let unreachable = json!({
        "runner_url": format!("http://{nobody}/apps/live-runner/session"),
        "signer_url": format!("http://{nobody}"),
    });
    let reply = post(addr, &token, create, &unreachable).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    check("post", create, &reply);

    // A real session: 201, 200 of each of its operations, 400 of a renew without an app lease,
    // the handoff adopted back here (409: not newer than what this daemon holds).
    let reply = post(addr, &token, create, &create_body(&model)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    check("post", create, &reply);
    let id = reply.json()["id"].as_str().expect("an id").to_owned();
    let one = format!("/v1/sessions/{id}");
    let reply = request(addr, "GET", &one, Some(&token), None).await;
    check("get", "/v1/sessions/{id}", &reply);
    let reply = request(addr, "GET", "/v1/sessions", Some(&token), None).await;
    check("get", "/v1/sessions", &reply);
    let reply = request(addr, "POST", &format!("{one}/renew"), Some(&token), None).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    check("post", "/v1/sessions/{id}/renew", &reply);
    let reply = request(addr, "POST", &format!("{one}/handoff"), Some(&token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    check("post", "/v1/sessions/{id}/handoff", &reply);
    let mut adopt = reply.json();
    adopt["signer_url"] = model.signer_url().into();
    let reply = post(addr, &token, create, &adopt).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    check("post", create, &reply);
    // Ended: its stream is the one last line, its close the reason it ended.
    let reply = request(addr, "GET", &format!("{one}/events"), Some(&token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    check("get", "/v1/sessions/{id}/events", &reply);
    let reply = request(addr, "DELETE", &one, Some(&token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    check("delete", "/v1/sessions/{id}", &reply);
    // A session with an app lease: renewed (200), then closed while funded.
    let mut leased = create_body(&model);
    leased["app_lease_s"] = json!(60.0);
    let reply = post(addr, &token, create, &leased).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let leased = format!("/v1/sessions/{}", reply.json()["id"].as_str().expect("an id"));
    let reply = request(addr, "POST", &format!("{leased}/renew"), Some(&token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.json()["app_lease_until_ms"].is_u64(), "{}", reply.body);
    check("post", "/v1/sessions/{id}/renew", &reply);
    let reply = request(addr, "DELETE", &leased, Some(&token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    check("delete", "/v1/sessions/{id}", &reply);

    // Every operation was answered at least once with a success.
    for (path, methods) in ROUTES {
        for method in *methods {
            assert!(
                seen.iter()
                    .any(|(m, p, s)| m == method && p == path && (200..300).contains(s)),
                "{method} {path} was never answered with a success: {seen:?}"
            );
        }
    }
    daemon.stop().await;
}
