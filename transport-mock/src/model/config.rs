//! Configuration of the model: runners and their pricing, orchestrator timings, signer limits.

use embassy_time::Duration;
use serde::{Deserialize, Serialize};

/// Pixels per second of 720p video at 30 frames per second (1280 × 720 × 30): the rate at which `lv2v`
/// sessions are billed.
pub const PIXELS_PER_SECOND_720P: u128 = 27_648_000;

/// Default price: 1 gwei (1e9 wei) per unit (per second for `live`, per second of 720p video for `lv2v`).
pub const DEFAULT_PRICE_WEI: u128 = 1_000_000_000;

/// Default ticket expected value: 1e9 wei, one second of service at the default price. A first `live`
/// payment (10 s prepay) carries 10 tickets, a 4 s mint 4 tickets, the 60 s `lv2v` prepay 60 (under the
/// signer's 100-ticket cap).
pub const DEFAULT_TICKET_EV_WEI: u128 = 1_000_000_000;

/// How a session is billed: the signer `type` of `docs/protocol.md` §2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriceKind {
    /// Per second of session time.
    Live,
    /// Per 720p pixel: 27,648,000 pixels per second of session time.
    Lv2v,
    /// Per request: the reservation pays once, nothing to fund afterwards.
    Fixed,
}

impl PriceKind {
    /// The signer `type` string: `"live"`, `"lv2v"` or `"fixed"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Lv2v => "lv2v",
            Self::Fixed => "fixed",
        }
    }

    /// Parse a signer `type` string.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "live" => Some(Self::Live),
            "lv2v" => Some(Self::Lv2v),
            "fixed" => Some(Self::Fixed),
            _ => None,
        }
    }

    /// The `unit` the orchestrator advertises in discovery (`price_info.unit`).
    #[must_use]
    pub const fn discovery_unit(self) -> &'static str {
        match self {
            Self::Live => "seconds",
            Self::Lv2v => "720p-pixel-seconds",
            Self::Fixed => "fixed",
        }
    }

    /// Billing units per second of session time (0: not metered over time).
    pub(crate) const fn units_per_second(self) -> u128 {
        match self {
            Self::Live => 1,
            Self::Lv2v => PIXELS_PER_SECOND_720P,
            Self::Fixed => 0,
        }
    }

    /// Billing units per natural price unit: the price of one billing unit is `price_wei / this`.
    pub(crate) const fn units_per_price_unit(self) -> u128 {
        match self {
            Self::Live | Self::Fixed => 1,
            Self::Lv2v => PIXELS_PER_SECOND_720P,
        }
    }
}

/// How a runner is priced. Prices are in wei per *natural unit*: per second (`Live`), per second of 720p
/// video (`Lv2v`, billed per pixel at 27,648,000 pixels per second) or per request (`Fixed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pricing {
    /// Free / offchain: the reservation answers 200 at once and there is nothing to fund.
    Unpriced,
    /// Per second.
    Live {
        /// Wei per second.
        wei_per_second: u128,
    },
    /// Per 720p pixel.
    Lv2v {
        /// Wei per second of 720p video (27,648,000 pixels).
        wei_per_second: u128,
    },
    /// Per request.
    Fixed {
        /// Wei per request.
        wei: u128,
    },
}

impl Pricing {
    /// The billing kind, `None` when unpriced.
    #[must_use]
    pub const fn kind(self) -> Option<PriceKind> {
        match self {
            Self::Unpriced => None,
            Self::Live { .. } => Some(PriceKind::Live),
            Self::Lv2v { .. } => Some(PriceKind::Lv2v),
            Self::Fixed { .. } => Some(PriceKind::Fixed),
        }
    }

    /// The price in wei per natural unit (0 when unpriced).
    #[must_use]
    pub const fn wei(self) -> u128 {
        match self {
            Self::Unpriced => 0,
            Self::Live { wei_per_second } | Self::Lv2v { wei_per_second } => wei_per_second,
            Self::Fixed { wei } => wei,
        }
    }

    /// Pricing of `kind` at `wei` per natural unit.
    #[must_use]
    pub const fn from_kind(kind: PriceKind, wei: u128) -> Self {
        match kind {
            PriceKind::Live => Self::Live { wei_per_second: wei },
            PriceKind::Lv2v => Self::Lv2v { wei_per_second: wei },
            PriceKind::Fixed => Self::Fixed { wei },
        }
    }
}

/// One runner behind the orchestrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Runner id: the path segment in `/apps/{runner_id}/session`.
    pub id: String,
    /// App name advertised in discovery.
    pub app: String,
    /// Pricing.
    pub pricing: Pricing,
    /// Concurrent sessions the runner accepts (503 beyond). Default 10,000.
    pub capacity: u32,
}

impl RunnerConfig {
    /// A runner with the default capacity.
    #[must_use]
    pub fn new(id: impl Into<String>, app: impl Into<String>, pricing: Pricing) -> Self {
        Self {
            id: id.into(),
            app: app.into(),
            pricing,
            capacity: 10_000,
        }
    }
}

/// Per-tick jitter hook: given the index of the tick being scheduled (1 for the first tick of a session)
/// and a fresh random `u64` from the world's seeded generator, return extra delay added to the nominal tick
/// interval for that tick.
pub type JitterFn = fn(tick_index: u64, random: u64) -> Duration;

/// The remote signer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerConfig {
    /// The payer address answered by `/sign-orchestrator-info`.
    pub address: String,
    /// When set, every signer request must carry this header `(name, value)` (name case-insensitive),
    /// else 401.
    pub required_auth: Option<(String, String)>,
    /// Signer-side price ceiling in wei per natural unit; a higher orchestrator price answers 481.
    pub max_price_wei: Option<u128>,
    /// Most tickets in one payment; more needed answers 400. Default 100.
    pub max_tickets: u32,
    /// Prepaid on the first `live` call. Default 10 s.
    pub prepay_live: Duration,
    /// Prepaid on the first `lv2v` call. Default 60 s.
    pub prepay_lv2v: Duration,
    /// 480 when the auth token is in this last share of its life, in percent. Default 10.
    pub auth_refresh_percent: u32,
    /// 480 once the state's sender nonce under the current ticket params has reached this
    /// (go-livepeer #4028, livepeer/node: 500). Default `None`: never (go-livepeer `master`).
    pub refresh_at_nonce: Option<u64>,
}

impl Default for SignerConfig {
    fn default() -> Self {
        Self {
            address: String::from("0x5ac0ffee5ac0ffee5ac0ffee5ac0ffee5ac0ffee"),
            required_auth: None,
            max_price_wei: None,
            max_tickets: 100,
            prepay_live: Duration::from_secs(10),
            prepay_lv2v: Duration::from_secs(60),
            auth_refresh_percent: 10,
            refresh_at_nonce: None,
        }
    }
}

/// The whole world's configuration. `ModelConfig::default()` is one `live` runner `"live-runner"` at
/// 1e9 wei/s behind `http://orch.invalid`.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The orchestrator's service URL (an origin, no trailing slash); only used to build URLs.
    pub service_url: String,
    /// The runners.
    pub runners: Vec<RunnerConfig>,
    /// Expected value of one ticket, wei.
    pub ticket_ev_wei: u128,
    /// The per-session billing ticker interval (`-livePaymentInterval`). Default 5 s; at least 1 ms.
    pub tick: Duration,
    /// Optional per-tick jitter hook.
    pub tick_jitter: Option<JitterFn>,
    /// Lifetime of ticket params: the signer answers 480 once they are this old. Default 8 min.
    pub param_lifetime: Duration,
    /// How long after `param_lifetime` the orchestrator still accepts tickets minted under those
    /// params; from then on a payment carrying them is answered 400 "TicketParams expired" and not
    /// credited. Default 12 s, one L1 block: the sender refuses params within one block of their
    /// expiry block (`pm/sender.go` `validateTicketParams`, `paramsExpiryBuffer` 1), the recipient
    /// only once the expiry block is reached (`pm/recipient.go` `ReceiveTicket`).
    pub ticket_expiry_grace: Duration,
    /// Lifetime of the orchestrator's auth token. Default 30 min.
    pub auth_token_lifetime: Duration,
    /// Balance records expire after this long without access. Default 10 min.
    pub record_idle_expiry: Duration,
    /// The remote signer.
    pub signer: SignerConfig,
    /// How manifest (session) ids look. Default go-livepeer's 8 hex characters.
    pub manifest_ids: ManifestIds,
}

/// How the orchestrator spells its manifest ids: livepay accepts any printable id, and the model
/// serves both real forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestIds {
    /// go-livepeer: 8 lowercase hex characters (`core/streamdata.go` L22).
    #[default]
    Hex8,
    /// livepeer/node: `session_` and 10 random letters and digits.
    Session10,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            service_url: String::from("http://orch.invalid"),
            runners: vec![RunnerConfig::new(
                "live-runner",
                "live-app",
                Pricing::Live {
                    wei_per_second: DEFAULT_PRICE_WEI,
                },
            )],
            ticket_ev_wei: DEFAULT_TICKET_EV_WEI,
            tick: Duration::from_secs(5),
            tick_jitter: None,
            param_lifetime: Duration::from_secs(8 * 60),
            ticket_expiry_grace: Duration::from_secs(12),
            auth_token_lifetime: Duration::from_secs(30 * 60),
            record_idle_expiry: Duration::from_secs(10 * 60),
            signer: SignerConfig::default(),
            manifest_ids: ManifestIds::Hex8,
        }
    }
}

impl ModelConfig {
    /// The default configuration with one runner `runner_id` (app `"app"`) priced by `pricing`.
    #[must_use]
    pub fn single(runner_id: &str, pricing: Pricing) -> Self {
        Self {
            runners: vec![RunnerConfig::new(runner_id, "app", pricing)],
            ..Self::default()
        }
    }
}
