//! Reservation: discovery, the 402 challenge, the paid retry and session creation.

use embassy_time::{Duration, Instant};

use super::payments::VerifiedPayment;
use super::ticker::Meter;
use super::{HostedSession, Orchestrator, PendingChallenge};
use crate::model::config::{ManifestIds, PriceKind, Pricing};
use crate::model::wire::{Challenge, DiscoveryEntry, DiscoveryRunner, PriceInfo, SessionCreated};
use crate::model::{Request, Response, headers};

fn valid_address(addr: &str) -> bool {
    addr.strip_prefix("0x")
        .or_else(|| addr.strip_prefix("0X"))
        .is_some_and(|hex| hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Orchestrator {
    pub(super) fn discovery(&self) -> Response {
        let runners = self
            .runners
            .values()
            .map(|r| {
                let (price, unit) = match r.config.pricing.kind() {
                    None => (serde_json::Number::from(0u64), "seconds"),
                    Some(PriceKind::Lv2v) => {
                        // Wei per pixel: a decimal number.
                        #[allow(clippy::cast_precision_loss)]
                        let per_pixel =
                            r.config.pricing.wei() as f64 / PriceKind::Lv2v.units_per_price_unit() as f64;
                        (
                            serde_json::Number::from_f64(per_pixel)
                                .unwrap_or_else(|| serde_json::Number::from(0u64)),
                            PriceKind::Lv2v.discovery_unit(),
                        )
                    }
                    Some(kind) => (
                        serde_json::Number::from(u64::try_from(r.config.pricing.wei()).unwrap_or(u64::MAX)),
                        kind.discovery_unit(),
                    ),
                };
                DiscoveryRunner {
                    url: self.runner_url(&r.config.id),
                    app: r.config.app.clone(),
                    mode: String::from("live"),
                    capacity: r.config.capacity,
                    capacity_available: r.config.capacity.saturating_sub(r.active),
                    price_info: PriceInfo {
                        price,
                        currency: String::from("wei"),
                        unit: String::from(unit),
                    },
                }
            })
            .collect();
        Response::json(
            200,
            &[DiscoveryEntry {
                address: self.service_url.clone(),
                runners,
            }],
        )
    }

    fn fresh_manifest_id(&mut self) -> String {
        loop {
            let id = match self.manifest_ids {
                ManifestIds::Hex8 => format!("{:08x}", self.rng.next_u64() >> 32),
                ManifestIds::Session10 => {
                    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                    let mut id = String::from("session_");
                    for _ in 0..10 {
                        let i = usize::try_from(self.rng.next_u64() % ALPHABET.len() as u64).unwrap_or(0);
                        id.push(char::from(ALPHABET[i]));
                    }
                    id
                }
            };
            if !self.challenges.contains_key(&id) && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    fn create_session(
        &mut self,
        now: Instant,
        id: String,
        runner_id: &str,
        sender: Option<String>,
        pricing: Pricing,
    ) -> SessionCreated {
        let serial = self.next_serial;
        self.next_serial += 1;
        let metered = pricing.kind().is_some_and(|k| k.units_per_second() > 0);
        let meter = metered.then(|| {
            let jitter = self
                .tick_jitter
                .map_or(Duration::from_ticks(0), |f| f(1, self.rng.next_u64()));
            Meter {
                last_billed: now,
                unit_carry: 0,
                fee_carry: 0,
                next_tick: now + self.tick + jitter,
                tick_index: 1,
            }
        });
        if let Some(meter) = &meter {
            self.ticks.insert((meter.next_tick, serial));
            self.serials.insert(serial, id.clone());
        }
        if let Some(runner) = self.runners.get_mut(runner_id) {
            runner.active += 1;
        }
        let control_url = format!("{}/apps/{}/session/{}", self.service_url, runner_id, id);
        let created = SessionCreated {
            session_id: id.clone(),
            app_url: format!("{control_url}/app"),
            control_url,
        };
        self.sessions.insert(
            id.clone(),
            HostedSession {
                id,
                runner_id: runner_id.to_owned(),
                sender,
                pricing,
                created_at: now,
                released: None,
                meter,
                serial,
                credited: 0,
                debited: 0,
                payments: 0,
                ticks: 0,
            },
        );
        self.stats.sessions_created += 1;
        created
    }

    pub(super) fn reserve(&mut self, now: Instant, runner_id: &str, req: &Request) -> Response {
        let Some(runner) = self.runners.get(runner_id) else {
            return Response::error(404, "runner not found");
        };
        if runner.active >= runner.config.capacity {
            return Response::error(503, "no capacity available");
        }
        let pricing = runner.config.pricing;
        let Some(kind) = pricing.kind() else {
            let id = self.fresh_manifest_id();
            let created = self.create_session(now, id, runner_id, None, pricing);
            return Response::json(200, &created);
        };
        let payer = match req.header(headers::PAYER_ADDRESS).map(str::trim) {
            Some(addr) if valid_address(addr) => addr.to_owned(),
            _ => return Response::error(402, "invalid or missing payer address"),
        };
        let payment_header = req.header(headers::PAYMENT);
        let seg_header = req.header(headers::SEGMENT);
        if payment_header.is_none() && seg_header.is_none() {
            let manifest_id = self.fresh_manifest_id();
            let payment_params = self.issue_params(now, runner_id, &manifest_id, kind, pricing.wei());
            self.challenges.insert(
                manifest_id.clone(),
                PendingChallenge {
                    runner_id: runner_id.to_owned(),
                },
            );
            self.stats.challenges += 1;
            let payment_url = format!(
                "{}/apps/{}/session/{}/payment",
                self.service_url, runner_id, manifest_id
            );
            return Response::json(
                402,
                &Challenge {
                    payment_params,
                    orchestrator: self.service_url.clone(),
                    manifest_id,
                    payment_url,
                },
            );
        }
        // Paid retry.
        let result = self.check_paid_reservation(now, runner_id, &payer, payment_header, seg_header);
        let verified = match result {
            Ok(v) => v,
            Err(resp) => {
                self.stats.payments_rejected += 1;
                return resp;
            }
        };
        if let Some(resp) = self.ticket_error(now, &verified) {
            self.stats.payments_rejected += 1;
            return resp;
        }
        let manifest_id = verified.record.manifest_id.clone();
        self.challenges.remove(&manifest_id);
        let session_pricing = Pricing::from_kind(verified.params.kind, verified.params.price_wei);
        let created = self.create_session(now, manifest_id, runner_id, Some(payer), session_pricing);
        if let Err(resp) = self.commit_payment(now, verified) {
            // Unreachable: `ticket_error` found nothing, and nothing changed since.
            self.stats.payments_rejected += 1;
            return resp;
        }
        Response::json(200, &created)
    }

    fn check_paid_reservation(
        &self,
        now: Instant,
        runner_id: &str,
        payer: &str,
        payment_header: Option<&str>,
        seg_header: Option<&str>,
    ) -> Result<VerifiedPayment, Response> {
        let seg = self.open_seg_creds(seg_header)?;
        if self.sessions.contains_key(&seg.manifest_id) {
            return Err(Response::error(409, "session already exists"));
        }
        if self
            .challenges
            .get(&seg.manifest_id)
            .is_none_or(|c| c.runner_id != runner_id)
        {
            return Err(Response::error(403, "segment credentials: unknown manifest id"));
        }
        self.check_auth(now, &seg, &seg.manifest_id)?;
        let verified = self.check_payment(payment_header, &seg.manifest_id)?;
        if verified.record.sender != payer {
            return Err(Response::error(
                400,
                "payment sender does not match the payer address",
            ));
        }
        if verified.params.runner_id != runner_id {
            return Err(Response::error(
                400,
                "ticket params were issued for another runner",
            ));
        }
        Ok(verified)
    }
}
