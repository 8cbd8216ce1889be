//! [`Snapshot::check`]: every field of a snapshot against what a real session can reach. A
//! snapshot crosses a trust boundary (a store another process wrote, a handoff body an API
//! caller sent), so an impossible value is refused with the field named, before any of it reaches
//! arithmetic or a request.

use super::{PaymentSnapshot, SNAPSHOT_VERSION, Snapshot};
use crate::engine::checks::check_url;
use crate::engine::protocol::is_decimal;
use crate::session::{MAX_SPAN_MS, Range};

/// The longest id a snapshot may carry (session id, manifest id, sender), bytes.
pub const MAX_ID_LEN: usize = 256;
/// The longest URL, bytes.
pub const MAX_URL_LEN: usize = 2_048;
/// The longest opaque value (payment params, the signer's state, a minted payment), bytes.
pub const MAX_OPAQUE_LEN: usize = 65_536;
/// The most tickets one mint can carry.
pub const MAX_TICKETS: u32 = 1_000;

type Checked = Result<(), (&'static str, Range)>;

fn id(field: &'static str, value: &str) -> Checked {
    if value.is_empty() {
        return Err((field, Range::Empty));
    }
    if value.len() > MAX_ID_LEN {
        return Err((field, Range::TooLong));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err((field, Range::BadCharacter));
    }
    Ok(())
}

fn opaque(field: &'static str, value: &str) -> Checked {
    if value.len() > MAX_OPAQUE_LEN {
        return Err((field, Range::TooLong));
    }
    if value.chars().any(char::is_control) {
        return Err((field, Range::BadCharacter));
    }
    Ok(())
}

/// The origin of `value`, a URL that can be sent.
fn url(field: &'static str, value: &str) -> Result<alloc::string::String, (&'static str, Range)> {
    if value.len() > MAX_URL_LEN {
        return Err((field, Range::TooLong));
    }
    check_url(value).map_err(|_| (field, Range::BadUrl))
}

impl PaymentSnapshot {
    fn check(&self, orchestrator: &str) -> Checked {
        url("payment.signer_url", &self.signer_url)?;
        if url("payment.payment_url", &self.payment_url)? != orchestrator {
            return Err(("payment.payment_url", Range::CrossOrigin));
        }
        id("payment.manifest_id", &self.manifest_id)?;
        if self.payment_params.is_empty() {
            return Err(("payment.payment_params", Range::Empty));
        }
        opaque("payment.payment_params", &self.payment_params)?;
        if !self.sender.is_empty() {
            id("payment.sender", &self.sender)?;
        }
        if let Some(app) = &self.app {
            id("payment.app", app)?;
        }
        if let Some(max) = &self.max_price
            && (max.price.len() > MAX_ID_LEN || !is_decimal(&max.price))
        {
            return Err(("payment.max_price.price", Range::Malformed));
        }
        if let Some(state) = &self.signer_state {
            opaque("payment.signer_state", state)?;
        }
        if let Some((payment, seg_creds)) = &self.minted {
            opaque("payment.minted", payment)?;
            opaque("payment.minted", seg_creds)?;
        }
        if let Some((per_unit, units)) = self.session_price
            && (per_unit == 0 || units == 0)
        {
            return Err(("payment.session_price", Range::TooSmall));
        }
        if let Some((tickets, each_ms)) = self.last_mint_value {
            if tickets > MAX_TICKETS {
                return Err(("payment.last_mint_value", Range::TooLarge));
            }
            if each_ms > u64::from(MAX_SPAN_MS) {
                return Err(("payment.last_mint_value", Range::TooLarge));
            }
        }
        Ok(())
    }
}

impl Snapshot {
    /// Checks the snapshot against what a real session can be, field by field: the version,
    /// the ids (non-empty, printable ASCII, at most [`MAX_ID_LEN`] bytes), the URLs (sendable
    /// `http(s)`, the payment URL on the control URL's origin), the opaque values' sizes, and
    /// every number of [`ResumePoint::check`](crate::session::ResumePoint::check). [`Engine::resume`](super::Engine::resume) calls
    /// it; a process that receives a snapshot calls it first to answer with the field.
    ///
    /// # Errors
    ///
    /// The first field out of range (its path in the snapshot's JSON) and why.
    pub fn check(&self) -> Result<(), (&'static str, Range)> {
        if self.version == 0 {
            return Err(("version", Range::TooSmall));
        }
        if self.version > SNAPSHOT_VERSION {
            return Err(("version", Range::TooLarge));
        }
        id("session_id", &self.session_id)?;
        let orchestrator = url("control_url", &self.control_url)?;
        if !self.app_url.is_empty() {
            url("app_url", &self.app_url)?;
        }
        if let Some(payment) = &self.payment {
            payment.check(&orchestrator)?;
        }
        if self.generation > u64::from(crate::session::MAX_COUNT) {
            return Err(("generation", Range::TooLarge));
        }
        self.funding.check()
    }
}
