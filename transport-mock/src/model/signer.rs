//! The remote signer (`docs/protocol.md` §2.1–2.2): signs the orchestrator info and mints live payments against
//! a credit model round-tripped by the client as an opaque signed `state`.
//!
//! Like go-livepeer's, the modelled signer is stateless: it answers from the state the client sends and
//! never rejects an older one (`server/remote_signer.go` L410-449: only the signature, orchestrator, app
//! and type are checked; `SequenceNumber` is incremented, never compared). An older state therefore
//! restarts the ticket nonces from its own `SenderNonce`, re-issuing nonces the orchestrator has already
//! seen (`pm/sender.go` L84-93, `StartSessionWithNonce`), and carries its own, stale, balance. The model
//! also remembers, per manifest, the last state it issued and what it minted, but only as data for
//! assertions ([`Signer::modelled_balance`], [`Signer::last_update`], [`Signer::minted_ev`]): none of it
//! changes an answer.

use std::collections::BTreeMap;

use embassy_time::Instant;

use super::config::{PIXELS_PER_SECOND_720P, PriceKind, SignerConfig};
use super::token::{self, Key, ParamsRecord, PaymentRecord, SegCredsRecord, StateRecord, domain};
use super::wire::{GeneratePaymentRequest, GeneratePaymentResponse, MaxPrice, OrchestratorInfoSignature};
use super::{Method, Request, Response, headers};

const MICROS_PER_SECOND: u128 = 1_000_000;

/// Counters of the signer, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignerStats {
    /// generate-live-payment calls (any answer).
    pub calls: u64,
    /// 200 answers (payments minted).
    pub mints: u64,
    /// Tickets minted.
    pub tickets: u64,
    /// Expected value minted, wei.
    pub minted_ev: u128,
    /// Fees billed by 200 answers, wei.
    pub billed: u128,
    /// 482 answers (balance current, no tickets).
    pub no_tickets_482: u64,
    /// 480 answers (refresh required).
    pub refresh_480: u64,
    /// 481 answers (price above a ceiling).
    pub price_481: u64,
    /// `live` and `lv2v` calls billed as a first call (the prepay): no state, or a state whose
    /// `LastUpdate` is not in the past.
    pub first_calls: u64,
    /// 400 answers.
    pub rejected_400: u64,
    /// 401 answers.
    pub unauthorized_401: u64,
}

/// What the signer last issued for a manifest: assertion data only, never read to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latest {
    balance: u128,
    last_update: Instant,
}

/// The modelled remote signer.
#[derive(Debug)]
pub struct Signer {
    config: SignerConfig,
    key: Key,
    latest: BTreeMap<String, Latest>,
    minted_ev: BTreeMap<String, u128>,
    stats: SignerStats,
}

fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b.max(1))
}

/// A 400 that also counts.
fn bad_request(stats: &mut SignerStats, message: &str) -> Response {
    stats.rejected_400 += 1;
    Response::error(400, message)
}

impl Signer {
    pub(crate) fn new(config: SignerConfig, key: Key) -> Self {
        Self {
            config,
            key,
            latest: BTreeMap::new(),
            minted_ev: BTreeMap::new(),
            stats: SignerStats::default(),
        }
    }

    /// The key states are signed with (tests forge states with it).
    #[cfg(test)]
    pub(crate) fn key(&self) -> Key {
        self.key
    }

    /// The payer address.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.config.address
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &SignerStats {
        &self.stats
    }

    /// Expected value minted for `manifest_id`, wei.
    #[must_use]
    pub fn minted_ev(&self, manifest_id: &str) -> u128 {
        self.minted_ev.get(manifest_id).copied().unwrap_or(0)
    }

    /// The modelled credit of `manifest_id` in the state issued last for it, wei.
    #[must_use]
    pub fn modelled_balance(&self, manifest_id: &str) -> Option<u128> {
        self.latest.get(manifest_id).map(|l| l.balance)
    }

    /// `LastUpdate` of the state issued last for `manifest_id`.
    #[must_use]
    pub fn last_update(&self, manifest_id: &str) -> Option<Instant> {
        self.latest.get(manifest_id).map(|l| l.last_update)
    }

    pub(crate) fn handle(&mut self, now: Instant, req: &Request) -> Response {
        let path = req.path().trim_matches('/');
        let known = matches!(path, "sign-orchestrator-info" | "generate-live-payment");
        if !known {
            return Response::text(404, "404 page not found");
        }
        if req.method != Method::Post {
            return Response::text(405, "method not allowed");
        }
        if let Some((name, value)) = &self.config.required_auth
            && req.header(name) != Some(value.as_str())
        {
            self.stats.unauthorized_401 += 1;
            return Response::text(401, "unauthorized");
        }
        if path == "sign-orchestrator-info" {
            self.sign_orchestrator_info()
        } else {
            self.generate(now, req)
        }
    }

    fn sign_orchestrator_info(&self) -> Response {
        // A deterministic 65-byte "signature" over the address.
        let mut sig = Vec::with_capacity(65);
        let mut i = 0u8;
        while sig.len() < 65 {
            let mut input = self.config.address.as_bytes().to_vec();
            input.push(i);
            sig.extend_from_slice(&self.key.mac(domain::ORCH_INFO, &input));
            i += 1;
        }
        sig.truncate(65);
        Response::json(
            200,
            &OrchestratorInfoSignature {
                address: self.config.address.clone(),
                signature: format!("0x{}", token::hex(&sig)),
            },
        )
    }

    /// The `maxPrice` ceiling as a float in wei per natural unit of `kind`.
    fn max_price_per_unit(max: &MaxPrice, kind: PriceKind) -> Result<f64, &'static str> {
        if max
            .currency
            .as_deref()
            .is_some_and(|c| !c.eq_ignore_ascii_case("wei"))
        {
            return Err("maxPrice: unsupported currency");
        }
        let price = max.price.to_f64().ok_or("maxPrice: invalid price")?;
        #[allow(clippy::cast_precision_loss)]
        let pixels = PIXELS_PER_SECOND_720P as f64;
        match (kind, max.unit.as_deref().unwrap_or(kind.discovery_unit())) {
            (PriceKind::Live, "seconds" | "second")
            | (PriceKind::Lv2v, "720p")
            | (PriceKind::Fixed, "fixed") => Ok(price),
            (PriceKind::Live, "hour" | "hours") => Ok(price / 3600.0),
            (PriceKind::Lv2v, "720p-pixel-seconds") => Ok(price * pixels),
            _ => Err("maxPrice: unit does not match the payment type"),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn generate(&mut self, now: Instant, req: &Request) -> Response {
        self.stats.calls += 1;
        let body: GeneratePaymentRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(_) => return bad_request(&mut self.stats, "invalid request body"),
        };
        if body.manifest_id.is_empty() {
            return bad_request(&mut self.stats, "missing ManifestID");
        }
        let Some(kind) = PriceKind::parse(&body.kind) else {
            return bad_request(&mut self.stats, "invalid type");
        };
        if body.orchestrator.is_empty() {
            return bad_request(&mut self.stats, "missing orchestrator");
        }
        // The signer cannot verify the orchestrator's seal; it reads the params as they come.
        let Ok(params) = token::peek::<ParamsRecord>(&body.orchestrator) else {
            return bad_request(&mut self.stats, "invalid orchestrator info");
        };
        if params.kind != kind {
            return bad_request(&mut self.stats, "type does not match the orchestrator's pricing");
        }
        if params.ticket_ev == 0 {
            return bad_request(&mut self.stats, "invalid ticket params");
        }
        let prior = match &body.state {
            None => None,
            Some(wire_state) => {
                let Ok(state) = token::decode_state(self.key, wire_state) else {
                    return bad_request(&mut self.stats, "invalid state signature");
                };
                if state.manifest_id != body.manifest_id {
                    return bad_request(&mut self.stats, "state is for another ManifestID");
                }
                if state.kind != kind {
                    return bad_request(&mut self.stats, "type does not match the state");
                }
                if body.app.is_some() && state.app.is_some() && body.app != state.app {
                    return bad_request(&mut self.stats, "app does not match the state");
                }
                // No staleness check: go-livepeer's signer accepts any state it signed.
                Some(state)
            }
        };
        // 480: params too old, the auth token in the last share of its life, or (#4028) the
        // nonces spent.
        let now_us = now.as_micros();
        let auth_life = params.auth_expires_at_us.saturating_sub(params.auth_issued_at_us);
        let refresh_from = params
            .auth_expires_at_us
            .saturating_sub(auth_life / 100 * u64::from(self.config.auth_refresh_percent.min(100)));
        // #4028: the sender nonce under these params has reached the limit.
        let nonce_spent = prior.as_ref().is_some_and(|s| {
            s.pm_session == params.id && self.config.refresh_at_nonce.is_some_and(|limit| s.nonce >= limit)
        });
        if now_us >= params.expires_at_us || now_us >= refresh_from || nonce_spent {
            self.stats.refresh_480 += 1;
            return Response::error(480, "refresh required")
                .with_header(headers::ORCHESTRATOR_URL, params.orchestrator);
        }
        // 481: price ceilings.
        let price = params.price_wei;
        if self.config.max_price_wei.is_some_and(|max| price > max) {
            self.stats.price_481 += 1;
            return Response::error(481, "orchestrator price above the signer's maximum");
        }
        if let Some(max) = &body.max_price {
            let ceiling = match Self::max_price_per_unit(max, kind) {
                Ok(c) => c,
                Err(message) => return bad_request(&mut self.stats, message),
            };
            #[allow(clippy::cast_precision_loss)]
            let price_f = price as f64;
            if price_f > ceiling * (1.0 + 1e-12) {
                self.stats.price_481 += 1;
                return Response::error(481, "orchestrator price above maxPrice");
            }
        }
        if let Some(state) = &prior
            && price > state.initial_price_wei
        {
            self.stats.price_481 += 1;
            return Response::error(481, "orchestrator price above the session's initial price");
        }
        // Bill the time since the state's LastUpdate (`server/remote_signer.go` L536-569). Without a
        // state LastUpdate counts as now; a LastUpdate that is not in the past (the same instant, or
        // clock skew) gives billableSecs <= 0, billed like a first call: the prepay.
        let initial_price = prior.as_ref().map_or(price, |s| s.initial_price_wei);
        let elapsed = prior
            .as_ref()
            .map_or(0, |s| now_us.saturating_sub(s.last_update_us));
        if elapsed == 0 && kind != PriceKind::Fixed {
            self.stats.first_calls += 1;
        }
        let fee = match kind {
            PriceKind::Fixed => initial_price,
            PriceKind::Live if elapsed == 0 => {
                ceil_div(u128::from(self.config.prepay_live.as_micros()), MICROS_PER_SECOND) * initial_price
            }
            PriceKind::Lv2v if elapsed == 0 => lv2v_fee(self.config.prepay_lv2v.as_micros(), initial_price),
            PriceKind::Live => ceil_div(u128::from(elapsed), MICROS_PER_SECOND) * initial_price,
            PriceKind::Lv2v => lv2v_fee(elapsed, initial_price),
        };
        let ev = params.ticket_ev;
        let balance = prior.as_ref().map_or(0, |s| s.balance);
        let need = fee.max(ev);
        if balance >= need {
            self.stats.no_tickets_482 += 1;
            return Response::error(482, "no tickets needed");
        }
        let tickets = ceil_div(need - balance, ev);
        let Ok(count) = u32::try_from(tickets) else {
            return bad_request(&mut self.stats, "too many tickets needed");
        };
        if count > self.config.max_tickets {
            return bad_request(&mut self.stats, "too many tickets needed");
        }
        let minted = tickets * ev;
        let new_balance = balance + minted - fee;
        // Nonces continue from the state's SenderNonce under the same params; other params (or no
        // state) start from 0 (`server/remote_signer.go` L499-504; `pm/sender.go` L135-173 issues
        // nonce+1 ..= nonce+n). An older state therefore re-issues nonces already used.
        let last_nonce = prior
            .as_ref()
            .filter(|s| s.pm_session == params.id)
            .map_or(0, |s| s.nonce);
        let first_nonce = last_nonce + 1;
        let payment = token::seal(
            self.key,
            domain::PAYMENT,
            &PaymentRecord {
                sender: self.config.address.clone(),
                manifest_id: body.manifest_id.clone(),
                params: body.orchestrator.clone(),
                first_nonce,
                count,
                ev,
            },
        );
        let seg_creds = token::seal(
            self.key,
            domain::SEG_CREDS,
            &SegCredsRecord {
                manifest_id: body.manifest_id.clone(),
                auth_token: params.auth_token,
            },
        );
        let seq = prior.as_ref().map_or(0, |s| s.seq + 1);
        let state = StateRecord {
            sender: self.config.address.clone(),
            manifest_id: body.manifest_id.clone(),
            kind,
            app: prior.as_ref().map_or(body.app.clone(), |s| s.app.clone()),
            seq,
            last_update_us: now_us,
            balance: new_balance,
            initial_price_wei: initial_price,
            nonce: last_nonce + u64::from(count),
            pm_session: params.id,
        };
        self.latest.insert(
            body.manifest_id.clone(),
            Latest {
                balance: new_balance,
                last_update: now,
            },
        );
        *self.minted_ev.entry(body.manifest_id).or_insert(0) += minted;
        self.stats.mints += 1;
        self.stats.tickets += u64::from(count);
        self.stats.minted_ev += minted;
        self.stats.billed += fee;
        Response::json(
            200,
            &GeneratePaymentResponse {
                payment,
                seg_creds,
                state: token::encode_state(self.key, &state),
            },
        )
    }
}

/// The `lv2v` fee of `elapsed_us` of session time: 27,648,000 pixels per second (whole pixels), at
/// `wei_per_second` per 27,648,000 pixels, rounded up to a whole wei.
fn lv2v_fee(elapsed_us: u64, wei_per_second: u128) -> u128 {
    let pixels = u128::from(elapsed_us) * PIXELS_PER_SECOND_720P / MICROS_PER_SECOND;
    ceil_div(pixels * wei_per_second, PIXELS_PER_SECOND_720P)
}

#[cfg(test)]
mod tests;
