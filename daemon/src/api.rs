//! The daemon's HTTP/JSON API (axum): sessions, their events as Server-Sent Events, metrics and
//! liveness. Every route but `/healthz` and `/v1/openapi.json` needs `Authorization: Bearer TOKEN`.
//!
//! | method | path | does |
//! |---|---|---|
//! | `POST` | `/v1/sessions` | reserve and fund (`runner_url`, `signer_url`, …); or adopt (`adopt` or `snapshot`) |
//! | `GET` | `/v1/sessions` | every session |
//! | `GET` | `/v1/sessions/{id}` | state, runway, counters, spend |
//! | `DELETE` | `/v1/sessions/{id}` | stop funding, then stop; the release reason |
//! | `POST` | `/v1/sessions/{id}/handoff` | stop funding here; the snapshot another daemon adopts |
//! | `POST` | `/v1/sessions/{id}/renew` | the app is alive: its lease's new end |
//! | `GET` | `/v1/sessions/{id}/events` | Server-Sent Events, one JSON object each; the last says the end (`released`, or `{"type":"ended","reason"}` after a handoff or for a stream opened after the end), then the stream closes |
//! | `GET` | `/metrics` | Prometheus text |
//! | `GET` | `/healthz` | liveness: 200 `ok`, or 503 `unhealthy` once a funding task failed (the daemon then exits non-zero) |
//! | `GET` | `/v1/openapi.json` | the OpenAPI document of all this ([`crate::openapi`]), without the token |
//!
//! Errors are `{"error": {"code", "message", "field"?}}` with a 4xx or 5xx status. Bodies are
//! capped at [`MAX_BODY_BYTES`]. Each handler's `#[utoipa::path]` lists every status it answers.

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::openapi::{Handoff, SessionEvent, SessionRequest};
use crate::service::{Service, ServiceError, Subscription};
use crate::spec::{
    AdoptRequest, BadBody, CreateRequest, ErrorBody, ErrorDetail, Released, Renewed, SessionList, SessionView,
};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub(crate) struct Api {
    service: Service,
    token: Arc<str>,
}

/// The API router over `service`, guarded by `token`.
pub fn router(service: Service, token: &str) -> Router {
    let api = Api {
        service,
        token: Arc::from(token),
    };
    let guarded = Router::new()
        .route("/v1/sessions", post(create).get(list))
        .route("/v1/sessions/{id}", get(one).delete(close))
        .route("/v1/sessions/{id}/handoff", post(handoff))
        .route("/v1/sessions/{id}/renew", post(renew))
        .route("/v1/sessions/{id}/events", get(events))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/openapi.json", get(openapi_json))
        .merge(guarded)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route", None) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

/// `GET /healthz`: 200 `ok` while every funding task is alive, else 503 with why.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    security(()),
    responses(
        (status = 200, description = "Every funding task is alive: `ok`.", content_type = "text/plain", body = String),
        (status = 503, description = "A funding task failed (`unhealthy`); the daemon is exiting non-zero.", body = ErrorBody),
    ),
)]
pub(crate) async fn healthz(State(api): State<Api>) -> Response {
    match api.service.health().failed() {
        None => "ok\n".into_response(),
        Some(why) => error(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", why, None),
    }
}

/// `a == b` in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

async fn authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), api.token.as_bytes()) => next.run(request).await,
        _ => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an `Authorization: Bearer TOKEN` header with the daemon's API token is required",
                None,
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The document, encoded once.
static OPENAPI: LazyLock<String> = LazyLock::new(crate::openapi::document);

/// `GET /v1/openapi.json`: the API's OpenAPI document, without the token.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    security(()),
    responses((status = 200, description = "This document.", body = Object)),
)]
pub(crate) async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI.as_str()).into_response()
}

fn error(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> Response {
    error_body(status, code, message.to_owned(), field.map(str::to_owned), None)
}

fn error_body(
    status: StatusCode,
    code: &str,
    message: String,
    field: Option<String>,
    id: Option<String>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
            field,
            id,
        },
    };
    (status, axum::Json(body)).into_response()
}

fn bad_body(bad: &BadBody) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        &bad.message,
        bad.field.as_deref(),
    )
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        match self {
            Self::BadBody(bad) => bad_body(&bad),
            Self::NotFound => error(StatusCode::NOT_FOUND, "not_found", "no such session", None),
            Self::Duplicate => error(
                StatusCode::CONFLICT,
                "duplicate",
                "a session with this id is funded here already",
                Some("session_id"),
            ),
            Self::Reserve(e) => {
                let caller = matches!(&e, livepay_hyper::LiveError::Reserve(r) if r.is_caller_input())
                    || matches!(&e, livepay_hyper::LiveError::Config(_));
                let status = if caller {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::BAD_GATEWAY
                };
                error(status, "reservation_failed", &e.to_string(), None)
            }
            Self::Store(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", &e, None),
            Self::NotStored { id, error: cause } => {
                let message = match *cause {
                    Self::Store(e) => e,
                    other => format!("{other:?}"),
                };
                error_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "not_stored",
                    format!("the reservation could not be stored, so it was stopped: {message}"),
                    None,
                    Some(id),
                )
            }
            Self::Resume(e) => error(StatusCode::BAD_REQUEST, "unusable_session", &e, None),
            Self::Stale { held, given } => error(
                StatusCode::CONFLICT,
                "stale_snapshot",
                &format!(
                    "snapshot generation {given} is not newer than the {held} held here (a handoff replayed): \
                     two owners would fund one signer state"
                ),
                Some("snapshot.generation"),
            ),
            Self::CloseTimeout => error(
                StatusCode::GATEWAY_TIMEOUT,
                "close_timeout",
                "the stop did not finish in time; funding has stopped",
                None,
            ),
            Self::Credential => error(
                StatusCode::BAD_GATEWAY,
                "credential",
                "the signer token command gave no credential (see the daemon's log)",
                None,
            ),
            Self::Stopping => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "stopping",
                "the daemon is stopping",
                None,
            ),
            Self::OwnedElsewhere => error(
                StatusCode::CONFLICT,
                "owned_elsewhere",
                "another daemon of the fleet funds this session (its record has a higher epoch)",
                Some("session_id"),
            ),
        }
    }
}

/// The JSON object of a body, or the response refusing it.
fn object(body: Result<Bytes, BytesRejection>) -> Result<Value, Box<Response>> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        Box::new(if status == StatusCode::PAYLOAD_TOO_LARGE {
            error(
                status,
                "too_large",
                &format!("the body is over {MAX_BODY_BYTES} bytes"),
                None,
            )
        } else {
            error(status, "bad_request", "the body could not be read", None)
        })
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            &format!("the body is not JSON: {e}"),
            None,
        ))
    })?;
    if !value.is_object() {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "the body must be a JSON object",
            None,
        )));
    }
    Ok(value)
}

/// The session id of a path, or the 400 refusing it (not UTF-8 once percent-decoded).
fn session_id(path: Result<Path<String>, PathRejection>) -> Result<String, Box<Response>> {
    path.map(|Path(id)| id).map_err(|rejection| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("id: {}", rejection.body_text()),
            Some("id"),
        ))
    })
}

/// `POST /v1/sessions`: reserves and funds a session, or adopts one (`adopt` or `snapshot`).
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    operation_id = "create_session",
    request_body(content = SessionRequest, description = "A new reservation, or an adopt (`adopt` or `snapshot`)."),
    responses(
        (status = 201, description = "Reserved (or adopted) and funded.", body = SessionView),
        (status = 400, description = "The body is not a JSON object (`bad_json`), a field is unusable (`bad_request`; \
            `field` names it), a URL or header cannot be used (`reservation_failed`), or the snapshot cannot be \
            resumed (`unusable_session`).", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 409, description = "The session is funded here already (`duplicate`), the snapshot is not newer \
            than the one held (`stale_snapshot`), or another daemon of the fleet owns it (`owned_elsewhere`).", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB (`too_large`).", body = ErrorBody),
        (status = 500, description = "The store could not make the session durable (`store`, or `not_stored` with \
            the stopped reservation's `id`).", body = ErrorBody),
        (status = 502, description = "The orchestrator or the signer refused, failed or could not be reached \
            (`reservation_failed`: the message says which and why), or the signer token command gave no \
            credential (`credential`).", body = ErrorBody),
        (status = 503, description = "The daemon is stopping (`stopping`).", body = ErrorBody),
    ),
)]
pub(crate) async fn create(State(api): State<Api>, body: Result<Bytes, BytesRejection>) -> Response {
    let value = match object(body) {
        Ok(value) => value,
        Err(response) => return *response,
    };
    let adopting = value.get("adopt").is_some() || value.get("snapshot").is_some();
    let result = if adopting {
        match BadBody::parse::<AdoptRequest>(value) {
            Ok(request) => api.service.adopt(&request).await,
            Err(bad) => return bad_body(&bad),
        }
    } else {
        match BadBody::parse::<CreateRequest>(value) {
            Ok(request) => api.service.create(&request).await,
            Err(bad) => return bad_body(&bad),
        }
    };
    match result {
        Ok(view) => (StatusCode::CREATED, axum::Json(view)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/sessions`: every session.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    tag = "sessions",
    operation_id = "list_sessions",
    responses(
        (status = 200, description = "Every session known here, in id order.", body = SessionList),
        (status = 401, description = "No or a wrong bearer token.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    ),
)]
pub(crate) async fn list(State(api): State<Api>) -> Response {
    axum::Json(SessionList {
        sessions: api.service.list().await,
    })
    .into_response()
}

/// `GET /v1/sessions/{id}`: the session now.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}",
    tag = "sessions",
    operation_id = "get_session",
    params(("id" = String, Path, description = "The session id.")),
    responses(
        (status = 200, description = "The session: state, runway, counters, spend.", body = SessionView),
        (status = 400, description = "The id is not UTF-8 once percent-decoded.", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such session (`not_found`).", body = ErrorBody),
    ),
)]
pub(crate) async fn one(State(api): State<Api>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match session_id(id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    match api.service.view(&id).await {
        Some(view) => axum::Json(view).into_response(),
        None => ServiceError::NotFound.into_response(),
    }
}

/// `DELETE /v1/sessions/{id}`: stops funding, then stops the session; why it ended.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}",
    tag = "sessions",
    operation_id = "close_session",
    params(("id" = String, Path, description = "The session id.")),
    responses(
        (status = 200, description = "Released (at once, or earlier: the reason says).", body = Released),
        (status = 400, description = "The id is not UTF-8 once percent-decoded.", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such session (`not_found`).", body = ErrorBody),
        (status = 500, description = "The store could not be read or written (`store`).", body = ErrorBody),
        (status = 503, description = "The daemon is stopping (`stopping`).", body = ErrorBody),
        (status = 504, description = "The stop did not finish in time; funding has stopped (`close_timeout`).", body = ErrorBody),
    ),
)]
pub(crate) async fn close(State(api): State<Api>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match session_id(id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    match api.service.close(&id).await {
        Ok(reason) => axum::Json(Released {
            id,
            state: "released",
            reason,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/sessions/{id}/handoff`: stops funding here; the body another daemon adopts.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/handoff",
    tag = "sessions",
    operation_id = "hand_off_session",
    params(("id" = String, Path, description = "The session id.")),
    responses(
        (status = 200, description = "Funding stopped here (no stop was sent): adopt it elsewhere.", body = Handoff),
        (status = 400, description = "The id is not UTF-8 once percent-decoded.", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such session funded here (`not_found`; also once released).", body = ErrorBody),
        (status = 503, description = "The daemon is stopping (`stopping`).", body = ErrorBody),
    ),
)]
pub(crate) async fn handoff(State(api): State<Api>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match session_id(id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    match api.service.handoff(&id).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/sessions/{id}/renew`: the app's lease renewed; its new end.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/renew",
    tag = "sessions",
    operation_id = "renew_app_lease",
    params(("id" = String, Path, description = "The session id.")),
    responses(
        (status = 200, description = "The app's lease is renewed until then.", body = Renewed),
        (status = 400, description = "The session has no app lease (`field`: `app_lease_s`), or the id is not \
            UTF-8 once percent-decoded.", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such session, or it ended (`not_found`).", body = ErrorBody),
        (status = 500, description = "The store could not be read or written (`store`).", body = ErrorBody),
    ),
)]
pub(crate) async fn renew(State(api): State<Api>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match session_id(id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    match api.service.renew_app(&id).await {
        Ok(app_lease_until_ms) => axum::Json(Renewed { app_lease_until_ms }).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /metrics`: the Prometheus (OpenMetrics) text.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Sessions, payments, latencies, runway, releases and spend.",
            content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "No or a wrong bearer token.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    ),
)]
pub(crate) async fn metrics(State(api): State<Api>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.service.metrics().encode(),
    )
        .into_response()
}

/// `GET /v1/sessions/{id}/events`: the session's events as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/events",
    tag = "sessions",
    operation_id = "session_events",
    params(("id" = String, Path, description = "The session id.")),
    responses(
        (status = 200, description = "Server-Sent Events, one JSON object each (`type`: `payment_accepted`, …, \
            `lagged` with `missed` for a slow reader); the last says the end (`released`, or `ended` with its \
            `reason`), then the stream closes. A session that had ended gets that one line.",
            content_type = "text/event-stream", body = SessionEvent),
        (status = 400, description = "The id is not UTF-8 once percent-decoded.", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such session here (`not_found`).", body = ErrorBody),
    ),
)]
pub(crate) async fn events(State(api): State<Api>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match session_id(id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    match api.service.subscribe(&id) {
        None => ServiceError::NotFound.into_response(),
        Some(Subscription::Live(receiver)) => Sse::new(event_stream(receiver))
            .keep_alive(KeepAlive::default())
            .into_response(),
        Some(Subscription::Ended(line)) => {
            let last =
                futures::stream::once(async move { Ok::<_, Infallible>(SseEvent::default().data(line)) });
            Sse::new(last).into_response()
        }
    }
}

/// The session's event lines as SSE events, until its release (the channel closes) or the
/// client goes away. A client too slow to keep up is told how many lines it missed.
fn event_stream(receiver: broadcast::Receiver<String>) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        let line = match receiver.recv().await {
            Ok(line) => line,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                json!({ "type": "lagged", "missed": missed }).to_string()
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(SseEvent::default().data(line)), receiver))
    })
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
