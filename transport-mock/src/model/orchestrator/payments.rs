//! Payments: session payments, the generic `/payment`, refresh-payment, stop, and the ticket,
//! nonce, auth and segment-credential checks behind them.
//!
//! Tickets are processed as go-livepeer's `ProcessPayment` does (`core/orchestrator.go` L175-233):
//! one by one, in order. A ticket whose sender nonce was already seen under the same ticket params
//! fails with "invalid ticket senderNonce: already seen" (`pm/recipient.go` L369-398) without being
//! recorded; any other ticket has its nonce recorded, then fails with "TicketParams expired" if the
//! params' expiry has passed (`pm/recipient.go` `ReceiveTicket`). Both errors are non-fatal and
//! sticky: the tickets before the first failure are credited, the failing ticket and every later
//! one are not (their nonces are still recorded), and the POST answers 400 with the last error as
//! plain text (`server/ai_http.go` L577-580). So a payment is never credited twice.

use std::collections::BTreeMap;

use embassy_time::Instant;

use super::{BalanceRecord, Orchestrator, ReleaseCause, live_record, us};
use crate::model::config::{PriceKind, Pricing};
use crate::model::token::{self, AuthToken, OpenError, ParamsRecord, PaymentRecord, SegCredsRecord, domain};
use crate::model::wire::{Challenge, RefreshRequest};
use crate::model::{Request, Response, headers};

/// Half-open intervals of used ticket nonces, merged.
#[derive(Debug, Clone, Default)]
pub(super) struct NonceSet {
    pub(super) ranges: BTreeMap<u64, u64>,
}

impl NonceSet {
    pub(super) fn contains(&self, nonce: u64) -> bool {
        self.overlaps(nonce, nonce.saturating_add(1))
    }

    pub(super) fn overlaps(&self, start: u64, end: u64) -> bool {
        self.ranges
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > start)
    }

    pub(super) fn insert(&mut self, mut start: u64, mut end: u64) {
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
            self.ranges.remove(&s);
        }
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            end = end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(start, end);
    }
}

/// go-livepeer's `ErrTicketParamsExpired` (`pm/recipient.go` L18).
const TICKET_PARAMS_EXPIRED: &str = "TicketParams expired";

/// go-livepeer's duplicate-nonce error (`pm/recipient.go` L378).
fn already_seen(sender: &str, nonce: u64) -> String {
    format!("invalid ticket senderNonce: already seen sender={sender} nonce={nonce}")
}

/// A payment that passed every check and can be committed.
#[derive(Debug)]
pub(super) struct VerifiedPayment {
    pub(super) record: PaymentRecord,
    pub(super) params: ParamsRecord,
}

impl Orchestrator {
    pub(super) fn open_seg_creds(&self, header: Option<&str>) -> Result<SegCredsRecord, Response> {
        let Some(text) = header else {
            return Err(Response::error(403, "missing segment credentials"));
        };
        token::open::<SegCredsRecord>(self.signer_key, domain::SEG_CREDS, text)
            .map_err(|_| Response::error(403, "invalid segment credentials"))
    }

    /// Verify the auth token inside `seg` and that both name `manifest_id`.
    pub(super) fn check_auth(
        &self,
        now: Instant,
        seg: &SegCredsRecord,
        manifest_id: &str,
    ) -> Result<(), Response> {
        let auth: AuthToken = token::open(self.key, domain::AUTH, &seg.auth_token)
            .map_err(|_| Response::error(403, "invalid auth token"))?;
        if seg.manifest_id != manifest_id || auth.session_id != manifest_id {
            return Err(Response::error(403, "segment credentials: manifest id mismatch"));
        }
        if us(now) >= auth.expires_at_us {
            return Err(Response::error(403, "auth token expired"));
        }
        Ok(())
    }

    /// Decode and verify a `Livepeer-Payment` header for `manifest_id`: 402 on encoding, 400 on a
    /// forged batch or foreign params. Nonces and expiry are checked per ticket when the payment is
    /// processed ([`Orchestrator::commit_payment`]).
    pub(super) fn check_payment(
        &self,
        header: Option<&str>,
        manifest_id: &str,
    ) -> Result<VerifiedPayment, Response> {
        let Some(text) = header else {
            return Err(Response::text(402, "missing payment header"));
        };
        let record: PaymentRecord = match token::open(self.signer_key, domain::PAYMENT, text) {
            Ok(r) => r,
            Err(OpenError::Encoding) => {
                return Err(Response::text(402, "could not decode payment header"));
            }
            Err(OpenError::Forged) => {
                return Err(Response::error(400, "invalid ticket signature"));
            }
        };
        let params: ParamsRecord = token::open(self.key, domain::PARAMS, &record.params)
            .map_err(|_| Response::error(400, "invalid ticket params"))?;
        if record.manifest_id != manifest_id || params.manifest_id != manifest_id {
            return Err(Response::error(
                400,
                "tickets were minted for another manifest id",
            ));
        }
        if record.count == 0 || record.ev != params.ticket_ev {
            return Err(Response::error(400, "invalid ticket batch"));
        }
        Ok(VerifiedPayment { record, params })
    }

    /// Whether the tickets of `params` have expired at `now` (the recipient's check, one block
    /// after the signer stops minting under them).
    fn params_expired(&self, now: Instant, params: &ParamsRecord) -> bool {
        let grace = self.ticket_expiry_grace.as_micros();
        us(now) >= params.expires_at_us.saturating_add(grace)
    }

    /// The error processing `verified` would end with, without recording anything: for a paid
    /// reservation, which the model refuses whole (go-livepeer reserves, processes, then releases
    /// the session on an error, `server/ai_http.go` L316-319; the status is the same).
    pub(super) fn ticket_error(&self, now: Instant, verified: &VerifiedPayment) -> Option<Response> {
        let VerifiedPayment { record, params } = verified;
        let end = record.first_nonce.saturating_add(u64::from(record.count));
        let seen = self
            .used_nonces
            .get(&(record.sender.clone(), params.id))
            .is_some_and(|set| set.overlaps(record.first_nonce, end));
        if seen {
            return Some(Response::text(400, &already_seen(&record.sender, end - 1)));
        }
        self.params_expired(now, params)
            .then(|| Response::text(400, TICKET_PARAMS_EXPIRED))
    }

    /// Process the tickets of `verified` in order, as `ProcessPayment` does: record their nonces,
    /// credit those before the first failure, and answer the last failure as a 400.
    pub(super) fn commit_payment(&mut self, now: Instant, verified: VerifiedPayment) -> Result<(), Response> {
        let VerifiedPayment { record, params } = verified;
        let expired = self.params_expired(now, &params);
        let nonces = self
            .used_nonces
            .entry((record.sender.clone(), params.id))
            .or_default();
        let mut failure: Option<String> = None;
        let mut credited_tickets = 0u32;
        let (mut seen, mut stale) = (0u64, 0u64);
        for nonce in record.first_nonce..record.first_nonce.saturating_add(u64::from(record.count)) {
            if nonces.contains(nonce) {
                seen += 1;
                failure = Some(already_seen(&record.sender, nonce));
            } else {
                nonces.insert(nonce, nonce + 1);
                if expired {
                    stale += 1;
                    failure = Some(TICKET_PARAMS_EXPIRED.to_owned());
                }
            }
            if failure.is_none() {
                credited_tickets += 1;
            }
        }
        self.stats.tickets_already_seen += seen;
        self.stats.tickets_expired += stale;
        let credit = record.ev * u128::from(credited_tickets);
        if credited_tickets > 0 {
            self.credit(now, &record, &params, credit);
        }
        self.stats.tickets_accepted += u64::from(credited_tickets);
        self.stats.total_credited += credit;
        match failure {
            None => {
                if let Some(session) = self.live_session_of(&record) {
                    session.payments += 1;
                }
                self.stats.payments_accepted += 1;
                Ok(())
            }
            Some(message) => {
                if seen > 0 {
                    self.stats.payments_already_seen += 1;
                } else {
                    self.stats.payments_expired += 1;
                }
                Err(Response::text(400, &message))
            }
        }
    }

    /// The live session `record` pays for, if its sender is the session's.
    fn live_session_of(&mut self, record: &PaymentRecord) -> Option<&mut super::HostedSession> {
        self.sessions
            .get_mut(&record.manifest_id)
            .filter(|s| s.is_active() && s.sender.as_deref() == Some(record.sender.as_str()))
    }

    /// Credit `credit` wei to the balance record of `record` (and to its live session).
    fn credit(&mut self, now: Instant, record: &PaymentRecord, params: &ParamsRecord, credit: u128) {
        let key = (record.sender.clone(), record.manifest_id.clone());
        let idle = self.idle_expiry;
        let pinned = Pricing::from_kind(params.kind, params.price_wei);
        if let Some(r) = live_record(&mut self.records, &key, now, idle) {
            r.balance += credit;
            r.last_access = now;
            r.pinned.get_or_insert(pinned);
        } else {
            self.records.insert(
                key,
                BalanceRecord {
                    runner_id: params.runner_id.clone(),
                    pinned: Some(pinned),
                    balance: credit,
                    last_access: now,
                },
            );
        }
        if let Some(session) = self.live_session_of(record) {
            session.credited += credit;
        }
    }

    pub(super) fn session_payment(
        &mut self,
        now: Instant,
        runner_id: &str,
        session_id: &str,
        req: &Request,
    ) -> Response {
        let result = self
            .check_session_payment(now, runner_id, session_id, req)
            .and_then(|verified| self.commit_payment(now, verified));
        self.answer_payment(result)
    }

    /// 200 for a processed payment; the error otherwise, counted as rejected.
    fn answer_payment(&mut self, result: Result<(), Response>) -> Response {
        match result {
            Ok(()) => Response::empty(200),
            Err(resp) => {
                self.stats.payments_rejected += 1;
                resp
            }
        }
    }

    fn check_session_payment(
        &self,
        now: Instant,
        runner_id: &str,
        session_id: &str,
        req: &Request,
    ) -> Result<VerifiedPayment, Response> {
        if !self.runners.contains_key(runner_id) {
            return Err(Response::error(404, "runner not found"));
        }
        let Some(session) = self
            .sessions
            .get(session_id)
            .filter(|s| s.runner_id == runner_id && s.is_active())
        else {
            return Err(Response::error(404, "session not found"));
        };
        if !matches!(session.pricing.kind(), Some(PriceKind::Live | PriceKind::Lv2v)) {
            return Err(Response::error(409, "session does not take payments"));
        }
        let seg = self.open_seg_creds(req.header(headers::SEGMENT))?;
        self.check_auth(now, &seg, session_id)?;
        let verified = self.check_payment(req.header(headers::PAYMENT), session_id)?;
        if session.sender.as_deref() != Some(verified.record.sender.as_str()) {
            return Err(Response::error(400, "payment sender does not match the session"));
        }
        let price = Pricing::from_kind(verified.params.kind, verified.params.price_wei);
        if price != session.pricing {
            return Err(Response::error(400, "price mismatch"));
        }
        Ok(verified)
    }

    pub(super) fn generic_payment(&mut self, now: Instant, req: &Request) -> Response {
        let checked = (|| {
            let seg = self.open_seg_creds(req.header(headers::SEGMENT))?;
            let manifest_id = seg.manifest_id.clone();
            self.check_auth(now, &seg, &manifest_id)?;
            let verified = self.check_payment(req.header(headers::PAYMENT), &manifest_id)?;
            let key = (verified.record.sender.clone(), manifest_id);
            if let Some(pinned) = self.records.get(&key).and_then(|r| r.pinned)
                && Pricing::from_kind(verified.params.kind, verified.params.price_wei) != pinned
            {
                return Err(Response::error(400, "price mismatch"));
            }
            Ok(verified)
        })();
        let result = checked.and_then(|verified| self.commit_payment(now, verified));
        self.answer_payment(result)
    }

    pub(super) fn refresh(&mut self, now: Instant, req: &Request) -> Response {
        let body: RefreshRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(_) => return Response::error(400, "invalid refresh-payment body"),
        };
        if body.sender.is_empty() || body.manifest_id.is_empty() {
            return Response::error(400, "missing sender or manifest_id");
        }
        let key = (body.sender, body.manifest_id);
        let idle = self.idle_expiry;
        let Some(record) = live_record(&mut self.records, &key, now, idle) else {
            return Response::error(409, "no price pinned for this sender and manifest");
        };
        let Some(pinned) = record.pinned else {
            return Response::error(409, "no price pinned for this sender and manifest");
        };
        record.last_access = now;
        let runner_id = record.runner_id.clone();
        let Some(kind) = pinned.kind() else {
            return Response::error(409, "no price pinned for this sender and manifest");
        };
        let payment_params = self.issue_params(now, &runner_id, &key.1, kind, pinned.wei());
        self.stats.refreshes += 1;
        Response::json(
            200,
            &Challenge {
                payment_params,
                orchestrator: self.service_url.clone(),
                manifest_id: key.1,
                payment_url: format!("{}/payment", self.service_url),
            },
        )
    }

    pub(super) fn stop(&mut self, now: Instant, runner_id: &str, session_id: &str) -> Response {
        if !self.runners.contains_key(runner_id) {
            return Response::error(404, "runner not found");
        }
        if self
            .sessions
            .get(session_id)
            .is_some_and(|s| s.runner_id == runner_id)
        {
            self.release(now, session_id, ReleaseCause::Stopped);
        }
        Response::empty(204)
    }
}
