//! [`Snapshot`]: an [`Engine`] as data, to resume it after a crash or hand it to another
//! process (or language): the protocol state (URLs, payment params, the signer's opaque state,
//! a payment minted and not yet known credited) and the machine's [`ResumePoint`].
//!
//! The format is JSON through serde, versioned ([`SNAPSHOT_VERSION`]). It is **secret**: it
//! holds the signer's state and may hold a minted payment. Its `Debug` shows neither. The
//! signer's headers (credentials) are not part of it: the process that resumes supplies its own.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use embassy_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use super::{Engine, ProtocolState, Reserved};
use crate::classify::StatusTable;
use crate::config::{Config, ConfigError, PaymentType};
use crate::redact::{self, Len, Redacted};
use crate::session::{ResumePoint, Session};
use crate::tickets::{TicketValue, UnitPrice};
use crate::wire::{self, PriceUnit};

mod check;

pub use crate::session::{MAX_BILLED_MS, MAX_COUNT, MAX_SPAN_MS, Range};
pub use check::{MAX_ID_LEN, MAX_OPAQUE_LEN, MAX_TICKETS, MAX_URL_LEN};

/// The snapshot format this build writes, and the newest it reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A `maxPrice` ceiling, as in [`MaxPrice`](super::MaxPrice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxPriceSnapshot {
    /// Wei per unit, as a decimal.
    pub price: String,
    /// The unit.
    pub unit: PriceUnit,
}

/// The protocol state of a metered session ([`ProtocolState`]), as data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSnapshot {
    /// The signer's base URL.
    pub signer_url: String,
    /// The payment type.
    pub payment_type: PaymentType,
    /// The app, when the reservation named one.
    #[serde(default)]
    pub app: Option<String>,
    /// The signer's price ceiling.
    #[serde(default)]
    pub max_price: Option<MaxPriceSnapshot>,
    /// The manifest id.
    pub manifest_id: String,
    /// The current payment params (the challenge's, or the last refresh's).
    pub payment_params: String,
    /// The session-scoped payment URL.
    pub payment_url: String,
    /// The payer address.
    pub sender: String,
    /// The signer's opaque state: its JSON object, verbatim (secret).
    #[serde(default)]
    pub signer_state: Option<String>,
    /// A minted payment not yet known credited: `(payment, segment credentials)` (secret).
    #[serde(default)]
    pub minted: Option<(String, String)>,
    /// The session's price, `(wei, per units)`, when a payment named it.
    #[serde(default)]
    pub session_price: Option<(u64, u64)>,
    /// What the last mint's tickets buy: `(count, ms each)`.
    #[serde(default)]
    pub last_mint_value: Option<(u32, u64)>,
}

impl fmt::Debug for PaymentSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentSnapshot")
            .field("signer_url", &redact::url(&self.signer_url))
            .field("payment_type", &self.payment_type)
            .field("manifest_id", &self.manifest_id)
            .field("payment_params", &Len(self.payment_params.len()))
            .field("payment_url", &redact::url(&self.payment_url))
            .field("sender", &self.sender)
            .field(
                "signer_state",
                &self.signer_state.as_ref().map(|s| Redacted(s.len())),
            )
            .field(
                "minted",
                &self.minted.as_ref().map(|(p, s)| Redacted(p.len() + s.len())),
            )
            .finish_non_exhaustive()
    }
}

/// An [`Engine`] as data ([`Engine::snapshot`], [`Engine::resume`]). See the module
/// docs of `engine::snapshot` (this file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The format ([`SNAPSHOT_VERSION`]).
    pub version: u32,
    /// The session id.
    pub session_id: String,
    /// Where the app is served.
    #[serde(default)]
    pub app_url: String,
    /// The control URL.
    pub control_url: String,
    /// The protocol state; `None` for an unpriced session.
    pub payment: Option<PaymentSnapshot>,
    /// The funding machine.
    pub funding: ResumePoint,
    /// How many times the session changed owner ([`Engine::hand_off`]): a holder refuses a
    /// snapshot that is not newer than the one it has (a handoff replayed into the process that
    /// made it). 0 for a session never handed off, and for snapshots written before it existed.
    #[serde(default)]
    pub generation: u64,
}

impl Snapshot {
    /// What the session had cost when the snapshot was taken, in wei, as
    /// [`Engine::spend_wei`] counts it (`prepay`: [`Config::prepay`]); `None` when its payments
    /// did not state a price.
    pub fn spend_wei(&self, prepay: Duration) -> Option<u128> {
        let (per_unit, pixels_per_unit) = self.payment.as_ref()?.session_price?;
        // Saturating: `spend_wei` may be asked of a snapshot not yet checked.
        let billed = Duration::from_millis(self.funding.stats.billed_ms.min(MAX_BILLED_MS));
        Some(
            UnitPrice {
                per_unit,
                pixels_per_unit,
            }
            .wei_for(prepay.checked_add(billed).unwrap_or(Duration::MAX)),
        )
    }
}

/// Why a [`Snapshot`] cannot be resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResumeError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// A format newer than this build reads.
    Version(u32),
    /// The signer's state is not a JSON object.
    SignerState,
    /// A field is empty or unusable (named).
    Field(&'static str),
    /// A field holds what no real session reaches ([`Snapshot::check`]): its path in the
    /// snapshot's JSON, and why.
    OutOfRange {
        /// The field, as `funding.stats.billed_ms`.
        field: &'static str,
        /// Why.
        why: Range,
    },
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid configuration: {e}"),
            Self::Version(v) => write!(
                f,
                "snapshot version {v} is newer than this build reads ({SNAPSHOT_VERSION})"
            ),
            Self::SignerState => f.write_str("signer_state: not a JSON object"),
            Self::Field(name) => write!(f, "{name}: missing or unusable"),
            Self::OutOfRange { field, why } => write!(f, "{field} {why}"),
        }
    }
}

impl core::error::Error for ResumeError {}

impl ProtocolState {
    fn snapshot(&self) -> PaymentSnapshot {
        PaymentSnapshot {
            signer_url: self.signer_url.clone(),
            payment_type: self.payment_type,
            app: self.app.clone(),
            max_price: self.max_price.as_ref().map(|m| MaxPriceSnapshot {
                price: m.price.clone(),
                unit: m.unit,
            }),
            manifest_id: self.manifest_id.clone(),
            payment_params: self.payment_params.clone(),
            payment_url: self.payment_url.clone(),
            sender: self.sender.clone(),
            signer_state: self.state.as_ref().map(|s| s.0.clone()),
            minted: self
                .minted
                .as_ref()
                .map(|m| (m.payment.clone(), m.seg_creds.clone())),
            session_price: self.session_price.map(|p| (p.per_unit, p.pixels_per_unit)),
            last_mint_value: self.last_mint_value.map(|v| (v.count, v.each.as_millis())),
        }
    }

    fn from_snapshot(
        s: PaymentSnapshot,
        control_url: &str,
        signer_headers: Vec<(String, String)>,
    ) -> Result<Self, ResumeError> {
        for (value, name) in [
            (&s.signer_url, "signer_url"),
            (&s.manifest_id, "manifest_id"),
            (&s.payment_params, "payment_params"),
            (&s.payment_url, "payment_url"),
        ] {
            if value.is_empty() {
                return Err(ResumeError::Field(name));
            }
        }
        let state = match s.signer_state {
            None => None,
            Some(text) => {
                wire::RawObject::new(&text).map_err(|_| ResumeError::SignerState)?;
                Some(super::protocol::OwnedState(text))
            }
        };
        Ok(Self {
            signer_url: s.signer_url,
            signer_headers,
            payment_type: s.payment_type,
            app: s.app,
            max_price: s.max_price.map(|m| super::MaxPrice {
                price: m.price,
                unit: m.unit,
            }),
            manifest_id: s.manifest_id,
            payment_params: s.payment_params,
            payment_url: s.payment_url,
            control_url: control_url.to_string(),
            sender: s.sender,
            state,
            minted: s
                .minted
                .map(|(payment, seg_creds)| super::protocol::Minted { payment, seg_creds }),
            session_price: s
                .session_price
                .filter(|&(per_unit, units)| per_unit > 0 && units > 0)
                .map(|(per_unit, pixels_per_unit)| UnitPrice {
                    per_unit,
                    pixels_per_unit,
                }),
            last_mint_value: s.last_mint_value.map(|(count, each_ms)| TicketValue {
                count,
                each: Duration::from_millis(each_ms),
            }),
            params_renewed: 0,
        })
    }
}

impl Engine {
    /// This engine as data at `now`, to [`resume`](Self::resume) elsewhere. Take it whenever
    /// the signer's state changes (a new mint), before the payment carrying it is posted, so
    /// that a resumed engine never sends a state older than one the orchestrator has seen.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let payment = (!self.protocol.payment_params().is_empty()).then(|| self.protocol.snapshot());
        Snapshot {
            version: SNAPSHOT_VERSION,
            session_id: self.session_id.clone(),
            app_url: self.app_url.clone(),
            control_url: self.protocol.control_url().to_string(),
            payment,
            funding: self.session().resume_point(now),
            generation: self.generation,
        }
    }

    /// This engine handed to another owner at `now`: its snapshot, one
    /// [`generation`](Snapshot::generation) newer than any it made before. Drop the engine
    /// after (it must not fund again), and record the handoff's generation where it was held,
    /// so that the snapshot cannot be replayed into it.
    pub fn hand_off(&mut self, now: Instant) -> Snapshot {
        self.generation = self.generation.saturating_add(1);
        self.snapshot(now)
    }

    /// An engine resumed at `now` from `snapshot`, taken `elapsed` ago, sending
    /// `signer_headers` to the signer. It is [`State::Reserved`](crate::State::Reserved): call
    /// [`start`](Self::start) to fund it. Its first request reposts a payment minted and not
    /// known credited, if the snapshot holds one.
    ///
    /// # Errors
    ///
    /// [`ResumeError`]: an invalid configuration, a newer format, an unusable field, a field
    /// out of range ([`Snapshot::check`]).
    pub fn resume(
        config: &Config,
        snapshot: Snapshot,
        signer_headers: Vec<(String, String)>,
        now: Instant,
        elapsed: Duration,
        table: StatusTable,
    ) -> Result<Self, ResumeError> {
        if snapshot.version > SNAPSHOT_VERSION {
            return Err(ResumeError::Version(snapshot.version));
        }
        if snapshot.session_id.is_empty() {
            return Err(ResumeError::Field("session_id"));
        }
        snapshot
            .check()
            .map_err(|(field, why)| ResumeError::OutOfRange { field, why })?;
        let reserved = Reserved {
            session_id: snapshot.session_id,
            app_url: snapshot.app_url,
            control_url: snapshot.control_url.clone(),
            minted_at: now,
            payer_address: None,
            payment: snapshot
                .payment
                .map(|p| ProtocolState::from_snapshot(p, &snapshot.control_url, signer_headers))
                .transpose()?,
        };
        let mut engine = Self::new(config, reserved, table).map_err(ResumeError::Config)?;
        // The machine's configuration, as `Engine::new` derived it from the protocol state.
        let mut config = *config;
        config.payment_type = engine.protocol.payment_type();
        config.offchain = engine.protocol.payment_params().is_empty();
        let session =
            Session::resume(&config, now, &snapshot.funding, elapsed).map_err(ResumeError::Config)?;
        *engine.calls.machine_mut() = session;
        engine.generation = snapshot.generation;
        Ok(engine)
    }
}
