//! One simulated session: the servers and the network around a client policy, from the
//! reservation to the end of the run.

use embassy_time::{Duration, Instant};
use livepay_core::tickets::TicketValue;
use livepay_core::{
    Action, Endpoint, Event, Machine, Reply, RequestId, Sequencer, State, Stats, StatusTable,
};

use super::fast::{FastLedger, Mint, PayAnswer, SignerAnswer};
use super::report::{RunwayHistogram, RunwayPoint, SessionResult};
use super::{ORIGIN, SimConfig, SimError, us};
use crate::faults::Fate;
use livepay_core::rng::SplitMix64;

/// A per-session seed, independent of the policy, so both policies meet the same schedule of
/// phases and partitions and draw faults from the same stream.
fn session_seed(seed: u64, index: u32) -> u64 {
    SplitMix64::new(seed ^ (u64::from(index) << 32 | u64::from(index))).next_u64()
}

/// A request on its way: when its answer arrives, which request it answers, and what it is.
#[derive(Debug, Clone, Copy)]
pub(super) struct InFlight {
    arrives: Instant,
    id: RequestId,
    reply: Reply,
    /// What the tickets of a signer 200 buy, when the client reads them.
    value: Option<TicketValue>,
}

/// One session's servers and network: the fast model, the fault stream, the minted payment the
/// client holds, and what happened on the server side.
pub(super) struct SessionWorld<'c> {
    config: &'c SimConfig,
    histogram: &'c mut RunwayHistogram,
    /// When the session was reserved: the origin of the plan's windows.
    start: Instant,
    model: FastLedger,
    faults: SplitMix64,
    jitter: SplitMix64,
    /// The payment the signer minted last: the client posts it, and may post it again, until the
    /// next mint replaces it.
    held: Option<Mint>,
    result: SessionResult,
    trace: bool,
}

impl SessionWorld<'_> {
    /// Runs every orchestrator tick due up to `at`.
    fn catch_up(&mut self, at: Instant) {
        let (plan, jitter) = (&self.config.plan, &mut self.jitter);
        self.model
            .catch_up(&self.config.model, us(at), || plan.tick_jitter_us(jitter));
    }

    /// Whether the orchestrator had released the session on its own before `now`.
    fn dropped_before(&mut self, now: Instant) -> bool {
        self.catch_up(now);
        self.model.dropped_at().is_some_and(|at| at < us(now))
    }

    /// Notes a client event at `now`: the warnings of the episode still open when the
    /// orchestrator releases the session (a credited payment closes an episode).
    fn observe(&mut self, event: &Event, now: Instant) {
        if self.dropped_before(now) {
            return;
        }
        let r = &mut self.result;
        match event {
            Event::AtRisk { .. } => {
                r.at_risk_since.get_or_insert(us(now));
            }
            Event::Lapsed { .. } => {
                r.lapsed_since.get_or_insert(us(now));
            }
            Event::PaymentAccepted { .. } => {
                r.at_risk_since = None;
                r.lapsed_since = None;
            }
            _ => {}
        }
    }

    /// Sends request `id` to `endpoint` at `now` (`fresh`: a signer request without a state):
    /// draws its fate; if it reaches the server, the server answers it half its latency later.
    /// Returns when the answer (or the client's timeout) arrives and what it is.
    fn send(&mut self, id: RequestId, endpoint: Endpoint, fresh: bool, now: Instant) -> InFlight {
        match endpoint {
            Endpoint::Signer => {
                self.result.signer_calls += 1;
                self.result.resyncs += u32::from(fresh);
            }
            Endpoint::Repost => self.result.replays += 1,
            _ => {}
        }
        let config = self.config;
        let fate = config.plan.fate_at(
            endpoint,
            ORIGIN,
            self.start,
            now,
            config.client_timeout,
            &mut self.faults,
        );
        let minted_before = self.held.map(|m| m.id);
        let (arrives, reply) = match fate {
            Fate::Failed { after, reply } => (now + after, reply),
            Fate::Delivered { latency } => {
                let served = now + latency / 2;
                let reply = self.serve(endpoint, fresh, served, true);
                (now + latency, reply)
            }
            Fate::LostAnswer { latency, after } => {
                self.result.lost_answers += 1;
                let served = now + latency / 2;
                if endpoint == Endpoint::Signer {
                    // The client keeps the state it sent, and never holds this mint.
                    self.catch_up(served);
                    let _ = self.model.generate_unanswered(&config.model, us(served), fresh);
                } else {
                    let _ = self.serve(endpoint, fresh, served, false);
                }
                (now + after, Reply::Timeout)
            }
        };
        let minted_now = endpoint == Endpoint::Signer && self.held.map(|m| m.id) != minted_before;
        let value = self
            .held
            .filter(|_| minted_now && config.read_tickets)
            .and_then(|m| ticket_value(&config.model, m.tickets));
        InFlight {
            arrives,
            id,
            reply,
            value,
        }
    }

    /// The servers' answer to a request to `endpoint` that reaches them at `served` (`fresh`: a
    /// signer request without a state; `heard`: the client reads the answer): the fast model
    /// answers in types; each becomes the status the real server sends.
    fn serve(&mut self, endpoint: Endpoint, fresh: bool, served: Instant, heard: bool) -> Reply {
        let config = self.config;
        let status = match endpoint {
            Endpoint::Signer => {
                if self.faults.chance(config.plan.storm_rate(ORIGIN, served)) {
                    return Reply::Status(480);
                }
                let answer = self.model.generate(&config.model, us(served), fresh);
                if let SignerAnswer::Minted(mint) = answer {
                    self.held = Some(mint);
                    self.catch_up(served);
                    if self.model.released_at().is_some() {
                        self.result.minted_after_release += 1;
                    }
                }
                answer.status()
            }
            Endpoint::Payment | Endpoint::Repost => {
                // The sequence only posts after a mint (the engine answers a POST with nothing
                // minted as malformed; so does the simulation).
                let Some(mint) = self.held else {
                    return Reply::Malformed;
                };
                self.catch_up(served);
                let runway = self.model.runway_us(&config.model, us(served));
                let (plan, jitter) = (&config.plan, &mut self.jitter);
                let answer = self
                    .model
                    .pay(&config.model, us(served), &mint, || plan.tick_jitter_us(jitter));
                if endpoint == Endpoint::Repost {
                    match answer {
                        PayAnswer::Credited { .. } => self.result.replays_credited += 1,
                        PayAnswer::AlreadySeen | PayAnswer::Expired | PayAnswer::AuthExpired => {
                            self.result.replays_refused += 1;
                        }
                        PayAnswer::Gone => {}
                    }
                }
                if let PayAnswer::Credited { .. } = answer {
                    if heard && config.model.challenge_in_payment {
                        // The credit's answer carries a fresh challenge, which the client reads
                        // (a lost answer renews nothing).
                        self.model.renew_params(us(served));
                    }
                    let r = &mut self.result;
                    r.min_runway_us = Some(r.min_runway_us.map_or(runway, |m| m.min(runway)));
                    self.histogram.record(runway);
                    if self.trace {
                        self.result.trace.push(RunwayPoint {
                            t_s: us(served) as f64 / 1e6,
                            runway_s: self.model.runway_us(&config.model, us(served)) as f64 / 1e6,
                        });
                    }
                }
                answer.status()
            }
            Endpoint::Refresh => {
                let (plan, jitter) = (&config.plan, &mut self.jitter);
                self.model
                    .refresh(&config.model, us(served), || plan.tick_jitter_us(jitter))
            }
            Endpoint::Stop => {
                let (plan, jitter) = (&config.plan, &mut self.jitter);
                self.model
                    .stop(&config.model, us(served), || plan.tick_jitter_us(jitter))
            }
            // The session is reserved before the run starts; the sequencer asks for nothing else.
            Endpoint::OrchestratorInfo
            | Endpoint::Reservation
            | Endpoint::PaidReservation
            | Endpoint::Discovery
            | Endpoint::Events => return Reply::BadUrl,
        };
        Reply::Status(status)
    }
}

/// What `tickets` of the model's ticket value buy at its price, as the engine reads them from a
/// payment: rounded down to the microsecond.
fn ticket_value(model: &super::FastConfig, tickets: u32) -> Option<TicketValue> {
    let micros = u128::from(model.ticket_ev_wei) * 1_000_000 / u128::from(model.price_wei.max(1));
    let each = Duration::from_micros(u64::try_from(micros).ok()?);
    (tickets > 0 && micros > 0).then_some(TicketValue { count: tickets, each })
}

impl<'c> SessionWorld<'c> {
    /// Session `index`'s world, reserved at its start: returns the world, that start, and the
    /// seed of the client's policy.
    pub(super) fn reserve(
        config: &'c SimConfig,
        index: u32,
        histogram: &'c mut RunwayHistogram,
    ) -> (Self, Instant, u64) {
        let seed = session_seed(config.seed, index);
        let mut phases = SplitMix64::new(seed);
        let start =
            ORIGIN + Duration::from_micros(phases.next_u64() % config.sdk_interval.as_micros().max(1));
        let mut jitter = SplitMix64::new(phases.next_u64());
        let first_jitter = config.plan.tick_jitter_us(&mut jitter);
        let world = SessionWorld {
            config,
            histogram,
            start,
            model: FastLedger::reserve(&config.model, us(start), first_jitter),
            faults: SplitMix64::new(phases.next_u64()),
            jitter,
            held: None,
            result: SessionResult::default(),
            trace: index < config.trace_sessions,
        };
        (world, start, phases.next_u64())
    }

    /// The tickets the reservation minted, as a client that reads them values them.
    pub(super) fn reservation_tickets(&self) -> Option<TicketValue> {
        let config = self.config;
        let tickets = self.model.minted / config.model.ticket_ev_wei.max(1);
        ticket_value(&config.model, u32::try_from(tickets).unwrap_or(u32::MAX))
            .filter(|_| config.read_tickets)
    }

    /// The session's result at the end of the run, with the client's final `stats`.
    pub(super) fn finish(mut self, stats: &Stats) -> SessionResult {
        let end = us(ORIGIN + self.config.duration);
        self.catch_up(ORIGIN + self.config.duration);
        let model = self.model;
        let mut result = self.result;
        result.count(stats);
        result.released_at = model.dropped_at().filter(|&at| at < end);
        result.funded_us = result.released_at.unwrap_or(end).saturating_sub(us(self.start));
        result.debited = model.debited;
        result.minted = model.minted;
        result.credited = model.credited;
        result.reissued_nonces = model.reissued_nonces;
        result
    }
}

/// Runs one session from its reservation to the end of the run.
pub(super) fn run_session<P: Machine>(
    config: &SimConfig,
    index: u32,
    histogram: &mut RunwayHistogram,
    new_policy: impl FnOnce(Instant, u64) -> Result<P, SimError>,
) -> Result<SessionResult, SimError> {
    let (mut world, start, policy_seed) = SessionWorld::reserve(config, index, histogram);
    let end = ORIGIN + config.duration;
    let mut calls = Sequencer::new(new_policy(start, policy_seed)?, StatusTable::new());
    if let Some(value) = world.reservation_tickets() {
        calls.machine_mut().handle_reservation_value(value);
    }
    calls.machine_mut().start(start);
    if config.planned_end {
        calls.machine_mut().plan_end(start, end);
    }
    let mut now = start;
    let mut in_flight: Option<InFlight> = None;
    loop {
        while let Some(event) = calls.machine_mut().poll_event() {
            world.observe(&event, now);
        }
        if let State::Released { .. } = calls.machine().state() {
            world.result.client_end_at = Some(us(now));
            break;
        }
        if in_flight.is_none()
            && let Some(call) = calls.poll_call()
        {
            let fresh = matches!(call.action, Action::Resync { .. });
            in_flight = Some(world.send(call.id, call.endpoint, fresh, now));
        }
        let timer = calls.machine().poll_timeout();
        let Some((wake, answer)) = next_wake(config, now, in_flight, timer) else {
            break;
        };
        now = wake;
        match in_flight.take() {
            Some(f) if answer => {
                let answered = calls.handle_reply(now, f.id, f.reply);
                debug_assert!(answered.is_ok(), "{answered:?}");
                if let (Some(value), Ok(None)) = (f.value, answered) {
                    calls.machine_mut().handle_ticket_value(value);
                }
            }
            other => {
                in_flight = other;
                calls.machine_mut().handle_timeout(now);
            }
        }
    }
    Ok(world.finish(&calls.machine().stats()))
}

/// What wakes the client next, after `now`: the answer in flight, or its timer if that comes
/// first (`true`: the answer); a suspended client not before it resumes. `None` when nothing
/// does before the end of the run.
fn next_wake(
    config: &SimConfig,
    now: Instant,
    in_flight: Option<InFlight>,
    timer: Option<Instant>,
) -> Option<(Instant, bool)> {
    let (wake, answer) = match (in_flight, timer) {
        (Some(f), Some(t)) if t < f.arrives => (t, false),
        (Some(f), _) => (f.arrives, true),
        (None, Some(t)) => (t, false),
        (None, None) => return None,
    };
    let wake = config.plan.resume_at(ORIGIN, wake).max(now);
    (wake < ORIGIN + config.duration).then_some((wake, answer))
}

/// Bytes of the structures one session needs while it is simulated: the client machine and its
/// sequencer, the fast model, the fault and jitter streams, the payment held, and the result. A
/// finished session leaves only its contribution to the running totals.
pub(super) fn footprint<P>() -> usize {
    std::mem::size_of::<Sequencer<P>>()
        + std::mem::size_of::<FastLedger>()
        + std::mem::size_of::<SessionResult>()
        + 3 * std::mem::size_of::<SplitMix64>()
        + std::mem::size_of::<Option<InFlight>>()
        + std::mem::size_of::<Option<Mint>>()
}

#[cfg(test)]
mod engine_driven;
