//! The API's request bodies ([`CreateRequest`], [`AdoptRequest`]), what the store keeps of a
//! session ([`SessionSpec`]), and what the API shows of one ([`SessionView`]).
//!
//! Bodies are strict: unknown fields are refused, and every error names the field. Signer
//! headers are credentials: they are kept in the store (a mode-0600 file) and never shown.
//!
//! Every body the API takes or answers derives [`utoipa::ToSchema`]: the OpenAPI document
//! ([`crate::openapi`]) is made of these types, so it cannot drift from them.

use std::collections::BTreeMap;
use std::fmt;

use livepay_core::engine::spend::RunnerPrice;
use livepay_core::engine::{
    PaymentSnapshot, ReserveOptions, SNAPSHOT_VERSION, Snapshot, check_signer_header, check_url,
};
use livepay_core::{Budget, Config, Duration, PaymentType, ResumePoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a request body was refused: a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBody {
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong (never a header value).
    pub message: String,
}

impl BadBody {
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            message: format!("{field}: {}", message.into()),
        }
    }

    /// A serde error at `path` (`budget.max_payments`; empty at the top): the field is the path,
    /// or the one the message quotes in backticks (an unknown or missing field). A value of the
    /// wrong type is described by what was expected, never quoted: it may be a secret (a header
    /// value given where an object was due).
    pub(crate) fn json(path: &str, error: &serde_json::Error) -> Self {
        let text = error.to_string();
        let text = text.split(" at line ").next().unwrap_or(&text);
        let quoted = text.split('`').nth(1).filter(|_| text.contains("field"));
        let field = match (path, quoted) {
            ("" | ".", Some(name)) => name.to_owned(),
            ("" | ".", None) => String::new(),
            (path, Some(name)) if text.contains("unknown field") || text.contains("missing field") => {
                // An unknown field's path ends with it; a missing one's is its parent's.
                if path == name || path.ends_with(&format!(".{name}")) {
                    path.to_owned()
                } else {
                    format!("{path}.{name}")
                }
            }
            (path, _) => path.to_owned(),
        };
        let message = if text.starts_with("invalid type") || text.starts_with("invalid value") {
            let expected = text.rsplit("expected ").next().unwrap_or("another type");
            format!("{field}: wrong type or value (expected {expected})")
        } else if field.is_empty() || text.contains(&field) {
            text.to_owned()
        } else {
            format!("{field}: {text}")
        };
        Self {
            field: (!field.is_empty()).then_some(field),
            message,
        }
    }

    /// `value` as a `T`, or the error naming the field.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Self> {
        serde_path_to_error::deserialize(value).map_err(|e| Self::json(&e.path().to_string(), e.inner()))
    }
}

impl fmt::Display for BadBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Limits on what a session may spend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Most payments (at least 1).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_payments: Option<u32>,
    /// Most funded time, seconds (1 to 4294967294, what the engine counts: 136 years).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 4_294_967_294_u64)]
    pub max_funded_s: Option<u64>,
}

/// The most funded time a budget may give, seconds: the engine counts whole seconds in a `u32`
/// below its "no limit"; more would overflow the conversion to a duration.
const MAX_FUNDED_S: u64 = u32::MAX as u64 - 1;

/// `POST /v1/sessions`: reserve and fund a new session.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The reservation URL, `{orchestrator}/apps/{runner}/session` (`http` or `https`).
    #[schema(examples("http://127.0.0.1:8935/apps/live-runner/session"))]
    pub runner_url: String,
    /// The remote signer's URL (`http` or `https`).
    #[schema(examples("http://127.0.0.1:8936"))]
    pub signer_url: String,
    /// Headers for every signer request (credentials).
    #[serde(default)]
    pub signer_headers: BTreeMap<String, String>,
    /// The payment type (default `live`).
    #[serde(rename = "type", default = "live")]
    #[schema(value_type = crate::openapi::PaymentType)]
    pub payment_type: PaymentType,
    /// The app name sent to the signer.
    #[serde(default)]
    pub app: Option<String>,
    /// Nominal spacing between payments, seconds (default: the daemon's; 0.1 to 3600, and
    /// within what the daemon's timings allow).
    #[serde(default)]
    #[schema(minimum = 0.1, maximum = 3600)]
    pub interval: Option<f64>,
    /// Spending limits.
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    /// The app's lease, seconds (2 to 86400): unless renewed (`POST /v1/sessions/{id}/renew`,
    /// or an open events stream) within it, the session is stopped ("the app went away"). Off
    /// by default.
    #[serde(default)]
    #[schema(minimum = 2, maximum = 86400)]
    pub app_lease_s: Option<f64>,
}

const fn live() -> PaymentType {
    PaymentType::Live
}

/// The reservation part of an adopt: what another process (or language) reserved.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    /// The session id.
    pub session_id: String,
    /// The session's control URL (its stop is `{control_url}/stop`).
    pub control_url: String,
    /// Where the app is served.
    #[serde(default)]
    pub app_url: String,
    /// The challenge's payment params (the last refresh's, if any).
    pub payment_params: String,
    /// The session-scoped payment URL.
    pub payment_url: String,
    /// The manifest id (default: the session id).
    #[serde(default)]
    pub manifest_id: Option<String>,
    /// The payer address.
    pub sender: String,
    /// The signer's state, the JSON object as the signer sent it.
    #[schema(value_type = Object)]
    pub signer_state: serde_json::Value,
    /// Unix milliseconds of the reservation's mint (its signer call): the runway counts from it.
    pub reserved_at_ms: u64,
}

/// `POST /v1/sessions` with `adopt` or `snapshot` (exactly one of them): fund a session
/// reserved elsewhere.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdoptRequest {
    /// The remote signer's URL.
    pub signer_url: String,
    /// Headers for every signer request (credentials).
    #[serde(default)]
    pub signer_headers: BTreeMap<String, String>,
    /// The payment type (default `live`).
    #[serde(rename = "type", default = "live")]
    #[schema(value_type = crate::openapi::PaymentType)]
    pub payment_type: PaymentType,
    /// The app name sent to the signer.
    #[serde(default)]
    pub app: Option<String>,
    /// Nominal spacing between payments, seconds (as for a new session).
    #[serde(default)]
    #[schema(minimum = 0.1, maximum = 3600)]
    pub interval: Option<f64>,
    /// Spending limits.
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    /// The app's lease, seconds (as for a new session).
    #[serde(default)]
    #[schema(minimum = 2, maximum = 86400)]
    pub app_lease_s: Option<f64>,
    /// Either a reservation…
    #[serde(default)]
    pub adopt: Option<Reservation>,
    /// …or a livepay snapshot (`POST /v1/sessions/{id}/handoff` of another daemon), with the
    /// unix milliseconds it was taken at.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub snapshot: Option<Snapshot>,
    /// With `snapshot`: when it was taken, unix ms.
    #[serde(default)]
    pub taken_at_ms: Option<u64>,
}

/// What the store keeps of a session besides its snapshot: how to fund it again.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSpec {
    /// The reservation URL (empty for an adopted session).
    #[serde(default)]
    pub runner_url: String,
    /// The signer's URL.
    pub signer_url: String,
    /// Signer headers (credentials; never shown by the API).
    #[serde(default)]
    pub signer_headers: Vec<(String, String)>,
    /// The payment type.
    pub payment_type: PaymentType,
    /// Nominal spacing, seconds.
    #[serde(default)]
    pub interval: Option<f64>,
    /// Spending limits.
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    /// Unix ms of its creation here.
    pub created_ms: u64,
    /// The runner's price per second as discovery stated it: spend when the payments do not
    /// state their own.
    #[serde(default)]
    pub runner_price: RunnerPrice,
    /// The app's lease, seconds (`None`: none).
    #[serde(default)]
    pub app_lease_s: Option<f64>,
}

impl SessionSpec {
    /// `base` with this session's interval and budget.
    pub fn config(&self, base: &Config) -> Config {
        let mut config = *base;
        config.payment_type = self.payment_type;
        if let Some(interval) = self.interval {
            config.interval = duration_s(interval);
        }
        if let Some(budget) = self.budget {
            config.budget = Budget {
                max_payments: budget.max_payments,
                // Checked at the API; a record stored before that check is clamped, not a panic.
                max_funded_time: budget
                    .max_funded_s
                    .map(|s| Duration::from_secs(s.min(MAX_FUNDED_S))),
            };
        }
        config
    }
}

fn duration_s(seconds: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Duration::from_micros((seconds * 1e6) as u64)
}

fn checked_headers(headers: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, BadBody> {
    headers
        .iter()
        .map(|(name, value)| {
            check_signer_header(name, value)
                .map(|()| (name.clone(), value.clone()))
                .map_err(|problem| BadBody::field("signer_headers", format!("{name}: {problem}")))
        })
        .collect()
}

fn checked_url(field: &str, url: &str) -> Result<String, BadBody> {
    check_url(url)
        .map(|_| url.trim_end_matches('/').to_owned())
        .map_err(|problem| BadBody::field(field, format!("the URL {problem}")))
}

fn check_common(interval: Option<f64>, budget: Option<BudgetSpec>, base: &Config) -> Result<(), BadBody> {
    if let Some(interval) = interval
        && !(0.1..=3_600.0).contains(&interval)
    {
        return Err(BadBody::field("interval", "out of range (0.1 ≤ seconds ≤ 3600)"));
    }
    let mut config = *base;
    if let Some(interval) = interval {
        config.interval = duration_s(interval);
    }
    if budget.is_some_and(|b| b.max_payments == Some(0) || b.max_funded_s == Some(0)) {
        return Err(BadBody::field("budget", "limits must be above zero"));
    }
    if budget.is_some_and(|b| b.max_funded_s.is_some_and(|s| s > MAX_FUNDED_S)) {
        return Err(BadBody::field(
            "budget.max_funded_s",
            format!("out of range (at most {MAX_FUNDED_S} seconds)"),
        ));
    }
    config
        .validate()
        .map_err(|e| BadBody::field("interval", e.to_string()))
}

/// The shortest and longest app lease: a lease shorter than a funding cycle would stop sessions
/// whose app is there; a day is longer than any app waits to say it is alive.
const APP_LEASE_RANGE_S: std::ops::RangeInclusive<f64> = 2.0..=86_400.0;

fn checked_app_lease(lease: Option<f64>) -> Result<Option<f64>, BadBody> {
    match lease {
        Some(s) if !APP_LEASE_RANGE_S.contains(&s) => Err(BadBody::field(
            "app_lease_s",
            "out of range (2 ≤ seconds ≤ 86400)",
        )),
        other => Ok(other),
    }
}

impl CreateRequest {
    /// The reservation's options and the spec to store, checked.
    ///
    /// # Errors
    ///
    /// [`BadBody`] naming the first unusable field.
    pub fn checked(&self, base: &Config, now_ms: u64) -> Result<(ReserveOptions, SessionSpec), BadBody> {
        let runner_url = checked_url("runner_url", &self.runner_url)?;
        let signer_url = checked_url("signer_url", &self.signer_url)?;
        let signer_headers = checked_headers(&self.signer_headers)?;
        check_common(self.interval, self.budget, base)?;
        let mut options =
            ReserveOptions::new(runner_url.clone(), Some(signer_url.clone()), self.payment_type);
        for (name, value) in &signer_headers {
            options = options.with_signer_header(name.clone(), value.clone());
        }
        if let Some(app) = &self.app {
            options = options.with_app(app.clone());
        }
        let spec = SessionSpec {
            runner_url,
            signer_url,
            signer_headers,
            payment_type: self.payment_type,
            interval: self.interval,
            budget: self.budget,
            created_ms: now_ms,
            runner_price: RunnerPrice::default(),
            app_lease_s: checked_app_lease(self.app_lease_s)?,
        };
        Ok((options, spec))
    }
}

/// How far ahead of this host's clock a `taken_at_ms` may be (another host's clock).
const MAX_CLOCK_SKEW_MS: u64 = 60_000;
/// The oldest snapshot worth adopting: no orchestrator holds a session a day without payment.
const MAX_SNAPSHOT_AGE_MS: u64 = 86_400_000;

impl AdoptRequest {
    /// The snapshot to resume, how long ago it was taken (ms), and the spec to store, checked.
    ///
    /// # Errors
    ///
    /// [`BadBody`] naming the first unusable field.
    pub fn checked(&self, base: &Config, now_ms: u64) -> Result<(Snapshot, u64, SessionSpec), BadBody> {
        let signer_url = checked_url("signer_url", &self.signer_url)?;
        let signer_headers = checked_headers(&self.signer_headers)?;
        check_common(self.interval, self.budget, base)?;
        let spec = SessionSpec {
            runner_url: String::new(),
            signer_url: signer_url.clone(),
            signer_headers,
            payment_type: self.payment_type,
            interval: self.interval,
            budget: self.budget,
            created_ms: now_ms,
            runner_price: RunnerPrice::default(),
            app_lease_s: checked_app_lease(self.app_lease_s)?,
        };
        let (snapshot, taken_ms) = match (&self.adopt, &self.snapshot) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(BadBody::field("adopt", "give either `adopt` or `snapshot`"));
            }
            (Some(r), None) => (self.snapshot_of(r, &signer_url, base)?, r.reserved_at_ms),
            (None, Some(s)) => {
                let taken = self
                    .taken_at_ms
                    .ok_or_else(|| BadBody::field("taken_at_ms", "required with `snapshot`"))?;
                (s.clone(), taken)
            }
        };
        let taken_field = if self.adopt.is_some() {
            "adopt.reserved_at_ms"
        } else {
            "taken_at_ms"
        };
        if taken_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(BadBody::field(taken_field, "is in the future"));
        }
        if now_ms.saturating_sub(taken_ms) > MAX_SNAPSHOT_AGE_MS {
            return Err(BadBody::field(
                taken_field,
                "is older than any session outlives (a day): the orchestrator released it long ago",
            ));
        }
        // Every number and URL against what a real session can be, named by its path.
        snapshot
            .check()
            .map_err(|(field, why)| BadBody::field(&format!("snapshot.{field}"), why.to_string()))?;
        // The signer that receives the caller's credentials is the one the caller named and the
        // API shows, never one only the snapshot names.
        if let Some(payment) = &snapshot.payment
            && payment.signer_url.trim_end_matches('/') != signer_url
        {
            return Err(BadBody::field(
                "snapshot.payment.signer_url",
                "differs from `signer_url`: the signer headers go only to the signer you name",
            ));
        }
        Ok((snapshot, now_ms.saturating_sub(taken_ms), spec))
    }

    fn snapshot_of(&self, r: &Reservation, signer_url: &str, base: &Config) -> Result<Snapshot, BadBody> {
        for (value, field) in [
            (&r.session_id, "adopt.session_id"),
            (&r.payment_params, "adopt.payment_params"),
            (&r.sender, "adopt.sender"),
        ] {
            if value.trim().is_empty() {
                return Err(BadBody::field(field, "is empty"));
            }
        }
        let control_url = checked_url("adopt.control_url", &r.control_url)?;
        let payment_url = checked_url("adopt.payment_url", &r.payment_url)?;
        if !r.signer_state.is_object() {
            return Err(BadBody::field(
                "adopt.signer_state",
                "must be the signer's JSON object",
            ));
        }
        let mut config = *base;
        config.payment_type = self.payment_type;
        Ok(Snapshot {
            version: SNAPSHOT_VERSION,
            session_id: r.session_id.clone(),
            app_url: r.app_url.clone(),
            control_url,
            payment: Some(PaymentSnapshot {
                signer_url: signer_url.to_owned(),
                payment_type: self.payment_type,
                app: self.app.clone(),
                max_price: None,
                manifest_id: r.manifest_id.clone().unwrap_or_else(|| r.session_id.clone()),
                payment_params: r.payment_params.clone(),
                payment_url,
                sender: r.sender.clone(),
                signer_state: Some(r.signer_state.to_string()),
                minted: None,
                session_price: None,
                last_mint_value: None,
            }),
            funding: ResumePoint::reserved(&config),
            generation: 0,
        })
    }
}

/// Spend so far.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SpendView {
    /// Wei (a decimal string: it may not fit a JSON number); `null` until a payment's price was
    /// read.
    #[schema(required = true, pattern = "^[0-9]+$")]
    pub wei: Option<String>,
    /// US dollars, with `--eth-usd`.
    #[schema(required = true)]
    pub usd: Option<f64>,
}

/// What the API shows of a session. Never its signer headers, state or payments.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SessionView {
    /// The session id.
    pub id: String,
    /// `reserved`, `funding`, `skipped` or `released`.
    #[schema(value_type = crate::openapi::SessionState)]
    pub state: &'static str,
    /// Why it was released, once it was.
    #[schema(required = true)]
    pub release_reason: Option<String>,
    /// The estimated runway, seconds.
    pub runway_s: f64,
    /// Payments credited.
    pub payments_accepted: u32,
    /// Cycles the signer skipped (482).
    pub cycles_skipped: u32,
    /// Transient failures.
    pub failures: u32,
    /// Refreshes.
    pub refreshes: u32,
    /// Mints given up undelivered.
    pub lost_mints: u32,
    /// Service time bought after the reservation, seconds.
    pub billed_s: f64,
    /// What it cost.
    pub spend: SpendView,
    /// The reservation URL (empty when adopted).
    pub runner_url: String,
    /// The signer URL.
    pub signer_url: String,
    /// Unix ms of its creation here.
    pub created_ms: u64,
}

/// `GET /v1/sessions`: every session, in id order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SessionList {
    /// The sessions.
    pub sessions: Vec<SessionView>,
}

/// `DELETE /v1/sessions/{id}`: the session is released; why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Released {
    /// The session id.
    pub id: String,
    /// Always `released`.
    #[schema(value_type = String, pattern = "^released$")]
    pub state: &'static str,
    /// The release reason (`closed by API`, `handed off`, or why it ended before).
    pub reason: String,
}

/// `POST /v1/sessions/{id}/renew`: the app's lease runs until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Renewed {
    /// The lease's new end, unix ms.
    pub app_lease_until_ms: u64,
}

/// Every error answer: `{"error": {"code", "message", "field"?}}` with a 4xx or 5xx status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The `error` of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code: `bad_request`, `bad_json`, `too_large`, `unauthorized`,
    /// `not_found`, `duplicate`, `stale_snapshot`, `owned_elsewhere`, `reservation_failed`,
    /// `unusable_session`, `credential`, `store`, `not_stored`, `stopping`, `close_timeout`,
    /// `unhealthy`.
    pub code: String,
    /// What is wrong, for a person (never a credential).
    pub message: String,
    /// The request field at fault (a dotted path: `budget.max_payments`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// With `not_stored`: the session id the orchestrator gave (the session was stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id: Option<String>,
}

/// `u128` wei as the API shows them.
pub(crate) fn wei_text(wei: u128) -> String {
    wei.to_string()
}

/// Shows the URLs and settings, never a header value or the signer's state.
macro_rules! debug_without_secrets {
    ($type:ty, $($field:ident),*) => {
        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut out = f.debug_struct(stringify!($type));
                $(out.field(stringify!($field), &self.$field);)*
                out.finish_non_exhaustive()
            }
        }
    };
}

debug_without_secrets!(CreateRequest, payment_type, interval, budget);
debug_without_secrets!(AdoptRequest, payment_type, interval, budget, taken_at_ms);
debug_without_secrets!(Reservation, session_id, reserved_at_ms);
debug_without_secrets!(SessionSpec, payment_type, interval, budget, created_ms);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_header_value_or_state() {
        let create: CreateRequest = serde_json::from_str(
            r#"{"runner_url":"http://o/apps/r/session?k=URL-SECRET","signer_url":"http://s","signer_headers":{"Authorization":"Bearer HDR-SECRET"}}"#,
        )
        .expect("a body");
        let spec = create.checked(&Config::default(), 1).expect("valid").1;
        let adopt: AdoptRequest = serde_json::from_str(
            r#"{"signer_url":"http://s","signer_headers":{"X":"HDR-SECRET"},"adopt":{"session_id":"s1","control_url":"http://o/c","payment_params":"PARAMS-SECRET","payment_url":"http://o/p","sender":"0x1","signer_state":{"State":"STATE-SECRET"},"reserved_at_ms":1}}"#,
        )
        .expect("a body");
        let shown = format!("{create:?} {spec:?} {adopt:?}");
        for secret in ["HDR-SECRET", "URL-SECRET", "PARAMS-SECRET", "STATE-SECRET"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn a_funded_time_beyond_what_the_engine_counts_is_refused_not_a_panic() {
        let base = Config::default();
        let body = |max_funded_s: u64| {
            serde_json::json!({"runner_url": "http://o/apps/r/session", "signer_url": "http://s",
                "budget": {"max_funded_s": max_funded_s}})
        };
        // Found by schemathesis: 2^63 seconds overflowed `Duration::from_secs` after the
        // reservation was made (a panic in the handler, the reservation left unstopped).
        for too_long in [MAX_FUNDED_S + 1, 1 << 63, u64::MAX] {
            let create = BadBody::parse::<CreateRequest>(body(too_long)).expect("a body");
            let bad = create.checked(&base, 1).expect_err("refused");
            assert_eq!(bad.field.as_deref(), Some("budget.max_funded_s"), "{bad}");
        }
        let create = BadBody::parse::<CreateRequest>(body(MAX_FUNDED_S)).expect("a body");
        let spec = create.checked(&base, 1).expect("the longest budget").1;
        assert!(spec.config(&base).budget.max_funded_time.is_some());
        // A record stored before the check resumes with the longest budget, not a panic.
        let mut stored = spec;
        stored.budget = Some(BudgetSpec {
            max_payments: None,
            max_funded_s: Some(u64::MAX),
        });
        assert_eq!(
            stored.config(&base).budget.max_funded_time,
            Some(Duration::from_secs(MAX_FUNDED_S))
        );
    }

    #[test]
    fn a_wrong_type_names_the_field_and_never_echoes_the_value() {
        let body = serde_json::json!({"runner_url": "http://o", "signer_url": "http://s", "signer_headers": "Bearer HDR-SECRET"});
        let bad = BadBody::parse::<CreateRequest>(body).expect_err("refused");
        assert_eq!(bad.field.as_deref(), Some("signer_headers"));
        assert!(!bad.message.contains("HDR-SECRET"), "{}", bad.message);
    }
}
