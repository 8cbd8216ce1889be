//! The simulation driven through the [`Engine`], as a real client drives it, against the one
//! driven through the [`Sequencer`](livepay_core::Sequencer) for speed: the same worlds, the
//! same seeds, byte-identical reports.
//!
//! The engine-driven world speaks the wire: it reads each [`Request`] (its endpoint, and whether a
//! signer request carries a state), and answers with the bodies the real servers send: a signer
//! 200 is JSON with a base64 `net.Payment` whose tickets are the fast model's mint (so the engine
//! reads their value itself, where the sequencer-driven loop hands it over), a refresh 200 is a
//! challenge, a failure is a [`Failure`]. The engine decides everything else, as in production.

use embassy_time::Instant;
use livepay_core::engine::{Engine, Output, Request, ReserveFlow, ReserveOptions, Reserved, Response};
use livepay_core::{Endpoint, Failure, PaymentType, Reply, StatusTable};

use super::super::report::{Accumulator, PolicyReport, RunwayHistogram, SessionResult};
use super::super::{ORIGIN, PolicyKind, SimConfig, SimError, us};
use super::{InFlight, SessionWorld, next_wake};
use crate::model::token::b64_encode;

const RUNNER: &str = "http://orch.sim/apps/live-runner/session";
const SIGNER: &str = "http://signer.sim";
const CHALLENGE: &[u8] = br#"{"payment_params":"cGFyYW1z","manifest_id":"m1","payment_url":"http://orch.sim/apps/live-runner/session/m1/payment"}"#;
const CREATED: &[u8] = br#"{"session_id":"m1","app_url":"http://orch.sim/a","control_url":"http://orch.sim/apps/live-runner/session/m1"}"#;

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
    varint(number << 3 | 2, out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A `net.Payment` of `tickets` tickets that always win, each of face value `ev_wei`, expecting
/// `price_wei` per second: what a real signer mints, as a `Livepeer-Payment` header value.
fn payment_header(tickets: u64, ev_wei: u64, price_wei: u64) -> String {
    let mut params = Vec::new();
    field(1, &[0xaa; 20], &mut params);
    field(2, &ev_wei.to_be_bytes(), &mut params);
    field(3, &[0xff; 32], &mut params);
    field(4, &[0xbb; 32], &mut params);
    let mut msg = Vec::new();
    field(1, &params, &mut msg);
    field(2, &[0x11; 20], &mut msg);
    for nonce in 0..tickets {
        let mut sender = vec![0x08];
        varint(nonce + 1, &mut sender);
        field(2, &[0x5a; 65], &mut sender);
        field(4, &sender, &mut msg);
    }
    let mut price = vec![0x08];
    varint(price_wei, &mut price);
    price.extend([0x10, 0x01]);
    field(5, &price, &mut msg);
    b64_encode(&msg)
}

/// A signer 200: the payment (`None`: one the client cannot read), segment credentials, a state.
fn minted_body(payment: Option<String>) -> Vec<u8> {
    let payment = payment.unwrap_or_else(|| "b3BhcXVl".into());
    format!(r#"{{"payment":"{payment}","segCreds":"c2Vn","state":{{"State":"c3Q=","Sig":"c2c="}}}}"#)
        .into_bytes()
}

impl SessionWorld<'_> {
    /// The signer 200's body for the mint the world holds, readable when the config says the
    /// client reads tickets.
    fn minted_body(&self) -> Vec<u8> {
        let model = &self.config.model;
        let payment = self
            .held
            .filter(|_| self.config.read_tickets)
            .map(|m| payment_header(u64::from(m.tickets), model.ticket_ev_wei, model.price_wei));
        minted_body(payment)
    }

    /// The reservation, as the engine's reservation flow makes it against these servers at
    /// `start`: the 402 challenge, the signer's mint (the fast model's reservation tickets), the
    /// paid retry.
    fn reserved(&self, start: Instant) -> Reserved {
        let model = &self.config.model;
        let tickets = self.model.minted / model.ticket_ev_wei.max(1);
        let payment = (self.config.read_tickets && tickets > 0)
            .then(|| payment_header(tickets, model.ticket_ev_wei, model.price_wei));
        let answers = [
            (402, CHALLENGE.to_vec()),
            (200, minted_body(payment)),
            (200, CREATED.to_vec()),
        ];
        let options =
            ReserveOptions::new(RUNNER, Some(SIGNER.into()), PaymentType::Live).with_payer_address("0x01");
        let mut flow = ReserveFlow::new(options).expect("valid options");
        let mut answers = answers.into_iter();
        while let Some(output) = flow.poll_output(start) {
            match output {
                Output::Transmit(req) => {
                    let (status, body) = answers.next().expect("three requests reserve");
                    flow.handle_response(start, req.id, &Response::new(status, &body));
                }
                Output::Done(result) => return result.expect("reserved"),
                _ => {}
            }
        }
        panic!("the reservation never ended")
    }

    /// Sends `req` at `now`, reading what a server reads from it.
    fn transmit(&mut self, req: &Request, now: Instant) -> InFlight {
        let fresh = req.endpoint == Endpoint::Signer && !req.body.windows(7).any(|w| w == b"\"state\"");
        self.send(req.id, req.endpoint, fresh, now)
    }

    /// Hands the answer of `f` to `engine` as the wire carries it.
    fn answer(&self, engine: &mut Engine, (f, endpoint): (InFlight, Endpoint), now: Instant) {
        let failure = match f.reply {
            Reply::Status(status) => {
                let body = match (endpoint, status) {
                    (Endpoint::Signer, 200) => self.minted_body(),
                    (Endpoint::Refresh, 200) => CHALLENGE.to_vec(),
                    _ => Vec::new(),
                };
                let answered = engine.handle_response(now, f.id, &Response::new(status, &body));
                debug_assert!(answered.is_ok(), "{answered:?}");
                return;
            }
            Reply::Malformed => {
                let answered = engine.handle_response(now, f.id, &Response::new(200, b"not the protocol"));
                debug_assert!(answered.is_ok(), "{answered:?}");
                return;
            }
            Reply::Refused => Failure::Refused,
            Reply::Network => Failure::Network,
            Reply::Timeout => Failure::Timeout,
            Reply::BadUrl => Failure::BadUrl,
            Reply::Tls => Failure::Tls,
            Reply::TooLarge => Failure::TooLarge,
        };
        let answered = engine.handle_failure(now, f.id, failure);
        debug_assert!(answered.is_ok(), "{answered:?}");
    }
}

/// [`run_session`](super::run_session) for livepay's policy, through the [`Engine`].
fn run_session(
    config: &SimConfig,
    index: u32,
    histogram: &mut RunwayHistogram,
) -> Result<SessionResult, SimError> {
    let (mut world, start, policy_seed) = SessionWorld::reserve(config, index, histogram);
    let end = ORIGIN + config.duration;
    let mut client = config.client;
    client.seed = policy_seed;
    let mut engine =
        Engine::new(&client, world.reserved(start), StatusTable::new()).map_err(SimError::Client)?;
    engine.start(start);
    if config.planned_end {
        engine.plan_end(start, end);
    }
    let mut now = start;
    let mut in_flight: Option<(InFlight, Endpoint)> = None;
    'run: loop {
        let mut timer = None;
        while let Some(output) = engine.poll_output(now) {
            match output {
                Output::Transmit(req) => {
                    assert!(in_flight.is_none(), "the engine makes one request at a time");
                    engine.handle_sent(now, req.id);
                    in_flight = Some((world.transmit(&req, now), req.endpoint));
                }
                Output::Event(event) => world.observe(&event, now),
                // The last output of a drain.
                Output::Timeout(at) => {
                    timer = Some(at);
                    break;
                }
                Output::Done(_) => {
                    world.result.client_end_at = Some(us(now));
                    break 'run;
                }
                // Without a store or a credential source, nothing else is asked.
                other => panic!("unexpected output {other:?}"),
            }
        }
        let Some((wake, answer)) = next_wake(config, now, in_flight.map(|(f, _)| f), timer) else {
            break;
        };
        now = wake;
        match in_flight.take() {
            Some(f) if answer => world.answer(&mut engine, f, now),
            other => {
                in_flight = other;
                engine.handle_timeout(now);
            }
        }
    }
    Ok(world.finish(&engine.stats()))
}

/// [`simulate`](super::super::simulate) for livepay's policy, through the [`Engine`].
pub(in crate::sim) fn simulate(config: &SimConfig) -> Result<PolicyReport, SimError> {
    config.validate()?;
    let config = &*super::super::resolved(config);
    let mut acc = Accumulator::new(PolicyKind::Livepay, config);
    for index in 0..config.sessions {
        let result = run_session(config, index, &mut acc.histogram)?;
        acc.add(&result);
    }
    Ok(acc.finish())
}

/// The simulation may drive the sequencer directly only because the engine, driving the same
/// policy, gives the same report to the byte: every fault profile, tickets worth from one second
/// to three minutes, read and unread, with and without a planned end.
#[test]
fn the_engine_driven_simulation_reports_byte_for_byte_what_the_sequencer_driven_one_does() {
    use crate::faults::{FaultPlan, PROFILES};
    use embassy_time::Duration;
    let mut cells = 0;
    // Payments accepted, skipped (482) and failed, refreshes (480), fresh ledgers, replays, lost
    // answers and drops: every path of the cycle is compared somewhere.
    let mut covered = [0_u64; 8];
    // Every profile, and the flaky one with answers lost on every endpoint.
    let mut plans: Vec<FaultPlan> = PROFILES
        .iter()
        .map(|p| FaultPlan::profile(p).expect("a profile"))
        .collect();
    let mut lossy = FaultPlan::profile("flaky").expect("a profile");
    for e in [
        &mut lossy.signer,
        &mut lossy.payment,
        &mut lossy.refresh,
        &mut lossy.stop,
    ] {
        e.lost_answer = 0.05;
    }
    lossy.name = "lossy".into();
    plans.push(lossy);
    for (i, plan) in plans.iter().enumerate() {
        let profile = &plan.name;
        for (j, ev_s) in [1.0, 2.5, 10.0, 60.0, 180.0].into_iter().enumerate() {
            let config = SimConfig {
                sessions: 6,
                duration: Duration::from_secs(1_800),
                seed: 11 + i as u64,
                plan: plan.clone(),
                read_tickets: (i + j) % 3 != 0,
                planned_end: (i + j) % 4 == 1,
                ..SimConfig::default()
            }
            .with_ev_seconds(ev_s);
            let sequenced = super::super::simulate(&config, PolicyKind::Livepay).expect("simulates");
            let engined = simulate(&config).expect("simulates");
            let (a, b) = (
                serde_json::to_string(&sequenced).expect("json"),
                serde_json::to_string(&engined).expect("json"),
            );
            assert_eq!(a, b, "{profile} at {ev_s} s a ticket");
            for (total, seen) in covered.iter_mut().zip([
                sequenced.payments_accepted,
                sequenced.payments_skipped,
                sequenced.payments_failed,
                sequenced.refreshes,
                sequenced.resyncs,
                sequenced.replays,
                sequenced.lost_answers,
                u64::from(sequenced.drops),
            ]) {
                *total += seen;
            }
            cells += 1;
        }
    }
    assert_eq!(cells, plans.len() * 5);
    assert!(covered.iter().all(|&n| n > 0), "{covered:?}");
}
