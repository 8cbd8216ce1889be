//! The API's OpenAPI document, generated from the handlers' annotations and the body types of
//! [`crate::spec`]: served at `GET /v1/openapi.json` without the token (a client generator fetches
//! it), and checked in as `daemon/openapi.json` (the test `openapi` fails when they differ;
//! `LIVEPAY_BLESS=1 cargo test -p livepay-daemon --test openapi` writes it anew).
//!
//! A few types here exist for the document only: they name what the API's types hold as plain
//! strings or free-form JSON ([`PaymentType`], [`SessionState`], [`SessionRequest`],
//! [`Handoff`], [`SessionEvent`]).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::spec::{
    AdoptRequest, BudgetSpec, CreateRequest, ErrorBody, ErrorDetail, Released, Renewed, Reservation,
    SessionList, SessionView, SpendView,
};

/// The name of the bearer security scheme in the document (`security(("bearer" = []))` below
/// spells it out: the macro takes no constant).
pub const BEARER: &str = "bearer";

/// The API's OpenAPI document: `ApiDoc::openapi()`, or [`document`] as JSON.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "livepay daemon API",
        description = "A crash-safe funding service for Livepeer live sessions: reserve or adopt a session, \
                       and the daemon pays for it until it is closed, handed off or released. Every route \
                       but `/healthz` and `/v1/openapi.json` needs `Authorization: Bearer TOKEN` (the token \
                       file the daemon prints at start). Errors are `{\"error\": {\"code\", \"message\", \
                       \"field\"?}}` with a 4xx or 5xx status; bodies are capped at 64 KiB.",
    ),
    paths(
        crate::api::create,
        crate::api::list,
        crate::api::one,
        crate::api::close,
        crate::api::handoff,
        crate::api::renew,
        crate::api::events,
        crate::api::metrics,
        crate::api::healthz,
        crate::api::openapi_json,
    ),
    components(schemas(
        SessionRequest,
        CreateRequest,
        AdoptRequest,
        Reservation,
        BudgetSpec,
        PaymentType,
        SessionView,
        SessionState,
        SpendView,
        SessionList,
        Released,
        Handoff,
        Renewed,
        SessionEvent,
        ErrorBody,
        ErrorDetail,
    )),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    tags(
        (name = "sessions", description = "Funded sessions: create, adopt, show, close, hand off, renew, follow."),
        (name = "operations", description = "Metrics, liveness and this document."),
    ),
)]
pub struct ApiDoc;

/// Adds the `bearer` HTTP security scheme the operations name.
#[derive(Debug)]
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description =
            Some("The daemon's API token (`--api-token-file`, or the file it made beside its state).".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(http));
    }
}

/// The document as pretty JSON with a final newline (what `GET /v1/openapi.json` answers and
/// `daemon/openapi.json` holds).
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"the OpenAPI document could not be encoded: {e}\"}}"));
    text.push('\n');
    text
}

/// How the signer prices a session (the signer's `type`).
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum PaymentType {
    /// Billed per second of elapsed time.
    Live,
    /// Billed per 720p pixel-second.
    Lv2v,
    /// Billed once per request.
    Fixed,
}

/// A session's state.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SessionState {
    /// Reserved, not funded yet (or handed off).
    Reserved,
    /// Funded.
    Funding,
    /// The signer skipped the last cycle.
    Skipped,
    /// Ended: see `release_reason`.
    Released,
}

/// The body of `POST /v1/sessions`: a new reservation (`CreateRequest`), or, with `adopt` or
/// `snapshot`, a session reserved elsewhere (`AdoptRequest`).
#[derive(Debug, ToSchema)]
#[serde(untagged)]
pub enum SessionRequest {
    /// Reserve and fund a new session.
    Create(CreateRequest),
    /// Fund a session reserved, or funded, elsewhere.
    Adopt(Box<AdoptRequest>),
}

/// `POST /v1/sessions/{id}/handoff`: what another daemon adopts (post it there as is, with its
/// `signer_url`, to `POST /v1/sessions`).
#[derive(Debug, ToSchema)]
pub struct Handoff {
    /// The livepay snapshot of the session (opaque to the caller).
    #[schema(value_type = Object)]
    pub snapshot: serde_json::Value,
    /// When it was taken, unix ms.
    pub taken_at_ms: u64,
}

/// One Server-Sent Event of `GET /v1/sessions/{id}/events` (a `text/event-stream` schema describes
/// each event: OpenAPI 3.2's `itemSchema`, which 3.1 readers take `schema` for).
#[derive(Debug, ToSchema)]
pub struct SessionEvent {
    /// One JSON object: its `type` (`payment_accepted`, `state_changed`, `budget_exhausted`,
    /// `lagged` with `missed`, `ended` with `reason`, …), a `text` for people, and the type's
    /// fields.
    #[schema(content_media_type = "application/json")]
    pub data: String,
    /// The SSE event name: none is sent, so readers see `message`.
    pub event: Option<String>,
}
