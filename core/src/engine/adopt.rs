//! A session reserved by another client (the official Python SDK, gateway-web, a gateway of
//! one's own), funded here from what its challenge and its signer's state say: an
//! [`Adoption`], turned into a [`Reserved`] by the same [`ReserveFlow`] as a reservation, so
//! that the payer address a refresh needs is asked for (and cached) the same way.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use core::fmt;

use embassy_time::Instant;

use super::checks::check_url;
use super::payers::PayerCache;
use super::protocol::{OwnedState, ProtocolState, SessionParts};
use super::reserve::{ReserveError, ReserveFlow, ReserveOptions, Reserved, Stage};
use crate::wire::{self, Challenge};
use crate::{redact, time};

/// What another client's reservation left: the 402 challenge it paid, the session's URLs, the
/// signer's state after the reservation's mint, and when that mint was made. `Debug` redacts
/// the signer state.
#[derive(Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The session id (the challenge's manifest id when the answer named none).
    pub session_id: String,
    /// Where the app is served (may be empty).
    pub app_url: String,
    /// The control URL: `POST {control_url}/stop` releases the session.
    pub control_url: String,
    /// The challenge's payment params (the last refresh's, if any).
    pub payment_params: String,
    /// The challenge's manifest id.
    pub manifest_id: String,
    /// The session-scoped payment URL.
    pub payment_url: String,
    /// The signer's state after the last mint, the JSON object as the signer sent it; `None`
    /// starts a fresh signer ledger (the signer bills its prepay again: safe, not free).
    pub signer_state: Option<String>,
    /// When the reservation's mint was made, on the clock of the flow's `now`; `None` when
    /// nobody knows, which assumes the worst that can still be paid without an alarm: only the
    /// check level of runway is left at the adoption's `now` (see [`ReserveFlow::adopt`]), and
    /// the session pays at once.
    pub minted_at: Option<Instant>,
}

impl fmt::Debug for Adoption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adoption")
            .field("session_id", &self.session_id)
            .field("app_url", &redact::url(&self.app_url))
            .field("control_url", &redact::url(&self.control_url))
            .field("manifest_id", &self.manifest_id)
            .field("payment_url", &redact::url(&self.payment_url))
            .field(
                "signer_state",
                &self.signer_state.as_ref().map(|s| redact::Redacted(s.len())),
            )
            .field("minted_at", &self.minted_at)
            .finish_non_exhaustive()
    }
}

impl Adoption {
    /// Every field against what a reservation can leave, before any request.
    fn check(&self, allow_cross_origin: bool) -> Result<(), ReserveError> {
        let bad = |field, problem| Err(ReserveError::BadAdoption { field, problem });
        for (value, field) in [
            (&self.manifest_id, "manifest_id"),
            (&self.payment_params, "payment_params"),
            (&self.session_id, "session_id"),
        ] {
            if value.trim().is_empty() {
                return bad(field, "is empty");
            }
        }
        const NOT_A_URL: &str = "is not an http(s) URL with a host";
        let Ok(control) = check_url(&self.control_url) else {
            return bad("control_url", NOT_A_URL);
        };
        let Ok(payment) = check_url(&self.payment_url) else {
            return bad("payment_url", NOT_A_URL);
        };
        if payment != control && !allow_cross_origin {
            // Tickets would go to a host the control URL does not name.
            return bad("payment_url", "is on another origin than control_url");
        }
        if !self.app_url.is_empty() && check_url(&self.app_url).is_err() {
            return bad("app_url", NOT_A_URL);
        }
        if let Some(state) = &self.signer_state
            && wire::RawObject::new(state).is_err()
        {
            return bad("signer_state", "is not a JSON object");
        }
        Ok(())
    }
}

impl ReserveFlow {
    /// A flow that funds `adoption` instead of reserving: its only request is the payer
    /// address (`sign-orchestrator-info`, which a 480's refresh needs), skipped when `options`
    /// or `cache` know it; its result is the [`Reserved`] to fund. `options.runner_url` is not
    /// used: it is replaced by the control URL. `options.signer_url` is required. `now` is the
    /// instant of the adoption: an unknown [`Adoption::minted_at`] leaves only
    /// [`Config::check_runway`](crate::Config::check_runway) of runway at `now` (on a clock
    /// younger than that, its zero).
    ///
    /// # Errors
    ///
    /// [`ReserveError::BadAdoption`] naming the first unusable field; as
    /// [`new`](Self::new) for the signer URL, headers and max price.
    pub fn adopt(
        mut options: ReserveOptions,
        mut adoption: Adoption,
        cache: &PayerCache,
        now: Instant,
    ) -> Result<Self, ReserveError> {
        if options.signer_url.is_none() {
            return Err(ReserveError::BadAdoption {
                field: "signer_url",
                problem: "is required: an adopted session is paid for",
            });
        }
        adoption.check(options.allow_cross_origin_payment_url)?;
        if adoption.minted_at.is_none() {
            // As little runway as a session may have and still be paid at once without an
            // alarm: the check level (above one server tick, so no `AtRisk`, no `Lapsed`). A
            // session really older than that gets its answer from the orchestrator (a 404).
            let config = crate::Config::new(options.payment_type);
            let spent = time::minus(config.prepay, config.check_runway);
            adoption.minted_at = Some(now.checked_sub(spent).unwrap_or(Instant::from_ticks(0)));
        }
        options.runner_url = adoption.control_url.clone();
        let mut flow = Self::with_cache(options, cache)?;
        if flow.payer_address().is_some() {
            let reserved = flow.adopted(adoption);
            flow.stage = Stage::Done(Ok(reserved));
        } else {
            flow.adopting = Some(Box::new(adoption));
        }
        Ok(flow)
    }

    /// The session of `adoption`, its payer address known.
    pub(super) fn adopted(&mut self, adoption: Adoption) -> Reserved {
        let parts = SessionParts {
            signer_url: self.options.signer_url.clone().unwrap_or_default(),
            signer_headers: self.options.signer_headers.clone(),
            payment_type: self.options.payment_type,
            app: self.options.app.clone(),
            max_price: self.options.max_price.clone(),
            sender: self.payer.clone().unwrap_or_default(),
        };
        let challenge = Challenge {
            payment_params: &adoption.payment_params,
            manifest_id: &adoption.manifest_id,
            payment_url: &adoption.payment_url,
            orchestrator: None,
        };
        let mut payment = ProtocolState::from_challenge(parts, &challenge);
        payment.set_control_url(&adoption.control_url);
        payment.state = adoption.signer_state.map(OwnedState);
        self.succeeded = Some(true);
        Reserved {
            session_id: adoption.session_id,
            app_url: adoption.app_url,
            control_url: adoption.control_url,
            minted_at: adoption.minted_at.unwrap_or(Instant::from_ticks(0)),
            payer_address: self.payer.as_ref().map(ToString::to_string),
            payment: Some(payment),
        }
    }
}
