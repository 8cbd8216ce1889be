//! JSON bodies of `docs/protocol.md` §2, as the model reads and writes them.

use serde::{Deserialize, Serialize};

/// The 402 challenge of a priced reservation, and the 200 answer of `/refresh-payment` (§2.3, §2.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Opaque ticket params (`OrchestratorInfo`).
    pub payment_params: String,
    /// The orchestrator's service URL.
    pub orchestrator: String,
    /// 8 lowercase hex chars; becomes the session id.
    pub manifest_id: String,
    /// Where to post payments.
    pub payment_url: String,
}

/// The 200 answer of a reservation (§2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreated {
    /// The session id (the challenge's manifest id).
    pub session_id: String,
    /// The runner app's URL for this session.
    pub app_url: String,
    /// `{service}/apps/{runner_id}/session/{session_id}`; `/stop` is appended to stop.
    pub control_url: String,
}

/// The 200 answer of `/sign-orchestrator-info` (§2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestratorInfoSignature {
    /// The payer address.
    pub address: String,
    /// A hex signature.
    pub signature: String,
}

/// The signer's opaque state blob (§2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerState {
    /// Base64 state record.
    #[serde(rename = "State")]
    pub state: String,
    /// Base64 signature over `State`.
    #[serde(rename = "Sig")]
    pub sig: String,
}

/// A price: a JSON number or a decimal string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PriceValue {
    /// A JSON number.
    Number(f64),
    /// A decimal string.
    Text(String),
}

impl PriceValue {
    /// The value as a float, if it parses and is finite and non-negative.
    #[must_use]
    pub fn to_f64(&self) -> Option<f64> {
        let value = match self {
            Self::Number(n) => *n,
            Self::Text(t) => t.trim().parse::<f64>().ok()?,
        };
        (value.is_finite() && value >= 0.0).then_some(value)
    }
}

/// The optional `maxPrice` of generate-live-payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxPrice {
    /// The ceiling, in wei per `unit`.
    pub price: PriceValue,
    /// `"wei"` (other currencies are rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `"seconds"`, `"hour"`, `"720p-pixel-seconds"`, `"720p"` or `"fixed"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// The body of generate-live-payment (§2.2). Every field is optional at the serde level so that the
/// signer can answer a precise 400.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GeneratePaymentRequest {
    /// The challenge's `payment_params`, verbatim.
    #[serde(default)]
    pub orchestrator: String,
    /// `"live"`, `"lv2v"` or `"fixed"`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The manifest id (capital M, capital ID on the wire).
    #[serde(rename = "ManifestID", default)]
    pub manifest_id: String,
    /// The runner's app name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// A price ceiling.
    #[serde(rename = "maxPrice", default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<MaxPrice>,
    /// The state of the previous 200 answer; absent on the first call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SignerState>,
}

/// The 200 answer of generate-live-payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratePaymentResponse {
    /// Base64 tickets: the `Livepeer-Payment` header.
    pub payment: String,
    /// Base64 segment credentials: the `Livepeer-Segment` header.
    #[serde(rename = "segCreds")]
    pub seg_creds: String,
    /// The new state, replacing the previous one.
    pub state: SignerState,
}

/// The body of `/refresh-payment` (§2.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// The payer address.
    pub sender: String,
    /// The session id.
    pub manifest_id: String,
}

/// One orchestrator in the discovery answer (§2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryEntry {
    /// The orchestrator's URL.
    pub address: String,
    /// Its runners.
    pub runners: Vec<DiscoveryRunner>,
}

/// One runner in discovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryRunner {
    /// The reservation URL.
    pub url: String,
    /// App name.
    pub app: String,
    /// Always `"live"`.
    pub mode: String,
    /// Concurrent sessions accepted.
    pub capacity: u32,
    /// Free slots now.
    pub capacity_available: u32,
    /// The price.
    pub price_info: PriceInfo,
}

/// A discovery price. `price` is an integer number of wei per unit for `seconds` and `fixed`, and a
/// decimal number of wei per pixel for `720p-pixel-seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceInfo {
    /// Wei per unit.
    pub price: serde_json::Number,
    /// Always `"wei"`.
    pub currency: String,
    /// `"seconds"`, `"720p-pixel-seconds"` or `"fixed"`.
    pub unit: String,
}

/// A go-livepeer JSON error body `{"error": {"message": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorMessage,
}

/// The inner object of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// Human-readable message.
    pub message: String,
}
