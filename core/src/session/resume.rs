//! Resuming a session in another process, or after a crash: what the machine must carry over
//! ([`ResumePoint`]), and what it may no longer assume.
//!
//! A point is taken at an instant on one clock and resumed at an instant on another, with the
//! time elapsed between them given by the caller (from a wall clock: the machine never reads
//! one). What each part assumes across the gap:
//!
//! - **The runway** is carried as a span: [`Session::funded_until`] minus the instant the point
//!   was taken, less the elapsed time at resumption. It stays a lower bound on the truth as long
//!   as the elapsed time is not understated.
//! - **The billing anchor** (the last mint's send and answer) cannot be carried across clocks.
//!   It restarts at the instant of resumption: the machine then assumes less time has been
//!   billed by the signer than really has, and a 482 proves less than it really does. Both
//!   errors are on the cautious side (the estimate falls, never rises).
//! - **The ticket value learnt from 482s** ([`Config::max_ticket_value`]-bounded) is a fact of
//!   the orchestrator, not of the clock: carried.
//! - **Whether the ledgers agree** is carried, and so is a mint whose POST had not been answered
//!   (the crash may have come between a signer answer and its POST): it is held, and reposted
//!   before anything else is minted. A repost the orchestrator already credited is refused as
//!   "already seen", which starts a fresh signer ledger on fresh params, as a lost mint does.
//!
//! [`Config::max_ticket_value`]: crate::Config::max_ticket_value

use embassy_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use super::{Action, Held, NEVER, Session, Stats, UNVALUED, millis, ms};
use crate::config::{Config, ConfigError};
use crate::time;

/// A minted payment whose delivery is unknown at the point: the machine reposts it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMint {
    /// What the signer billed for it (estimated, never above the truth), ms.
    pub billed_ms: u32,
    /// It was minted on a fresh signer ledger ([`Action::Resync`]).
    pub fresh: bool,
    /// What its tickets buy, ms, when known.
    pub value_ms: Option<u32>,
}

/// The counters of [`Stats`], in milliseconds where they are spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct StatsPoint {
    pub payments_sent: u32,
    pub payments_accepted: u32,
    pub cycles_skipped: u32,
    pub failures: u32,
    pub lost_mints: u32,
    pub reposts: u32,
    pub reposts_credited: u32,
    pub replays_refused: u32,
    pub resyncs: u32,
    pub refreshes: u32,
    pub at_risk: u32,
    pub lapses: u32,
    pub billed_ms: u64,
    pub surplus_ms: u64,
}

impl From<Stats> for StatsPoint {
    fn from(s: Stats) -> Self {
        Self {
            payments_sent: s.payments_sent,
            payments_accepted: s.payments_accepted,
            cycles_skipped: s.cycles_skipped,
            failures: s.failures,
            lost_mints: s.lost_mints,
            reposts: s.reposts,
            reposts_credited: s.reposts_credited,
            replays_refused: s.replays_refused,
            resyncs: s.resyncs,
            refreshes: s.refreshes,
            at_risk: s.at_risk,
            lapses: s.lapses,
            billed_ms: s.billed.as_millis(),
            surplus_ms: s.surplus.as_millis(),
        }
    }
}

impl From<StatsPoint> for Stats {
    fn from(p: StatsPoint) -> Self {
        Self {
            payments_sent: p.payments_sent,
            payments_accepted: p.payments_accepted,
            cycles_skipped: p.cycles_skipped,
            failures: p.failures,
            lost_mints: p.lost_mints,
            reposts: p.reposts,
            reposts_credited: p.reposts_credited,
            replays_refused: p.replays_refused,
            resyncs: p.resyncs,
            refreshes: p.refreshes,
            at_risk: p.at_risk,
            lapses: p.lapses,
            events_dropped: 0,
            // Clamped: a point from outside (a store, a handoff) is checked by `Snapshot::check`,
            // but a `Session` resumed from a bare point must not overflow either.
            billed: Duration::from_millis(p.billed_ms.min(super::MAX_BILLED_MS)),
            surplus: Duration::from_millis(p.surplus_ms.min(super::MAX_BILLED_MS)),
        }
    }
}

/// What a [`Session`] carries into another process ([`Session::resume_point`],
/// [`Session::resume`]). See the `session::resume` module docs for what each part assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The estimated runway when the point was taken, ms (a held mint's credit excluded).
    pub runway_ms: u32,
    /// A lower bound on one ticket's value learnt from 482s, ms (0: none).
    pub ev_floor_ms: u32,
    /// What one ticket buys, ms, as last read (0: never read).
    pub ticket_ms: u32,
    /// What the signer billed for the last delivered mint, ms.
    pub last_fee_ms: u32,
    /// Whether every mint the signer's ledger counts was delivered (or is `held`).
    pub in_sync: bool,
    /// A minted payment whose delivery is unknown.
    pub held: Option<HeldMint>,
    /// The last cycle.
    pub cycle: u32,
    /// The counters.
    pub stats: StatsPoint,
}

impl ResumePoint {
    /// The point of a session just reserved elsewhere: its prepay (`config.prepay`) of runway
    /// from its reservation's mint, ledgers in agreement, nothing held. Resume it with the time
    /// elapsed since that mint.
    pub fn reserved(config: &Config) -> Self {
        Self {
            runway_ms: millis(config.prepay),
            ev_floor_ms: 0,
            ticket_ms: 0,
            last_fee_ms: millis(config.prepay),
            in_sync: true,
            held: None,
            cycle: 0,
            stats: StatsPoint::default(),
        }
    }
}

impl Session {
    /// What to carry over to resume this session elsewhere, at `now`. A payment minted and not
    /// yet known credited (its POST in flight or failed) is carried as [`ResumePoint::held`].
    pub fn resume_point(&self, now: Instant) -> ResumePoint {
        let in_flight_mint = match self.action {
            Some(action @ (Action::Pay { .. } | Action::Resync { .. }))
                if self.in_flight && self.mint_answered != NEVER =>
            {
                let fresh = action.fresh_state();
                Some(HeldMint {
                    billed_ms: millis(self.mint_bill(fresh)),
                    fresh,
                    value_ms: (self.pending_value_ms != UNVALUED).then_some(self.pending_value_ms),
                })
            }
            _ => None,
        };
        let held = self
            .held
            .map(|h| HeldMint {
                billed_ms: h.billed_ms,
                fresh: h.fresh,
                value_ms: (h.value_ms != UNVALUED).then_some(h.value_ms),
            })
            .or(in_flight_mint);
        ResumePoint {
            runway_ms: millis(self.runway(now)),
            ev_floor_ms: self.ev_floor_ms,
            ticket_ms: self.ticket_ms,
            last_fee_ms: self.last_fee_ms,
            in_sync: self.in_sync,
            held,
            cycle: self.cycle,
            stats: self.stats.into(),
        }
    }

    /// A session resumed at `now` from `point`, taken `elapsed` ago (on whatever clock). It is
    /// [`State::Reserved`](crate::State::Reserved): call [`start`](Self::start) to fund it.
    ///
    /// # Errors
    ///
    /// `config` is invalid ([`Config::validate`]).
    pub fn resume(
        config: &Config,
        now: Instant,
        point: &ResumePoint,
        elapsed: Duration,
    ) -> Result<Self, ConfigError> {
        let mut session = Self::new(config, now)?;
        let left = time::minus(ms(point.runway_ms), elapsed);
        session.credit_until = time::add(now, left);
        session.ev_floor_ms = point.ev_floor_ms;
        session.ticket_ms = point.ticket_ms;
        session.last_fee_ms = point.last_fee_ms;
        session.in_sync = point.in_sync;
        session.cycle = point.cycle;
        session.stats = point.stats.into();
        session.held = point.held.map(|h| Held {
            billed_ms: h.billed_ms,
            reposts: 0,
            fresh: h.fresh,
            value_ms: h.value_ms.unwrap_or(UNVALUED),
        });
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, State};

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn the_runway_carries_over_less_the_elapsed_time() {
        let config = Config::default();
        let session = Session::new(&config, at(0)).expect("valid");
        let point = session.resume_point(at(4_000));
        assert_eq!(point.runway_ms, 6_000, "the 10 s prepay, 4 s in");
        let resumed = Session::resume(&config, at(100), &point, Duration::from_secs(2)).expect("valid");
        assert_eq!(resumed.runway(at(100)), Duration::from_secs(4));
        assert_eq!(resumed.state(), State::Reserved);
        // Longer away than the runway: nothing left, never negative.
        let late = Session::resume(&config, at(100), &point, Duration::from_secs(60)).expect("valid");
        assert_eq!(late.runway(at(100)), Duration::from_ticks(0));
    }

    #[test]
    fn a_held_mint_is_reposted_before_anything_is_minted() {
        let config = Config::default();
        let point = ResumePoint {
            held: Some(HeldMint {
                billed_ms: 5_000,
                fresh: false,
                value_ms: None,
            }),
            ..ResumePoint::reserved(&config)
        };
        let mut session = Session::resume(&config, at(0), &point, Duration::from_ticks(0)).expect("valid");
        session.start(at(0));
        let action = loop {
            if let Some(action) = session.poll_action() {
                break action;
            }
            let now = session.poll_timeout().expect("a timer");
            session.handle_timeout(now);
        };
        assert!(matches!(action, Action::Repost { .. }), "{action:?}");
        while let Some(event) = session.poll_event() {
            assert!(!matches!(event, Event::Lapsed { .. }));
        }
    }

    #[test]
    fn a_session_resumed_with_little_runway_pays_at_once_whatever_its_phase() {
        let config = Config {
            first_payment: crate::FirstPayment::Within(Duration::from_secs(3)),
            seed: 99,
            ..Config::default()
        };
        let point = ResumePoint {
            runway_ms: 2_000,
            ..ResumePoint::reserved(&config)
        };
        let mut session = Session::resume(&config, at(50), &point, Duration::from_ticks(0)).expect("valid");
        session.start(at(50));
        assert!(
            matches!(session.poll_action(), Some(Action::Pay { .. })),
            "paid at once"
        );
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn a_point_survives_json_and_keeps_the_counters() {
        let config = Config::default();
        let mut point = ResumePoint::reserved(&config);
        point.stats.payments_accepted = 7;
        point.stats.billed_ms = 35_000;
        let json = serde_json::to_string(&point).expect("serialises");
        let back: ResumePoint = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, point);
        let session = Session::resume(&config, at(0), &back, Duration::from_ticks(0)).expect("valid");
        assert_eq!(session.stats().payments_accepted, 7);
        assert_eq!(session.stats().billed, Duration::from_secs(35));
    }
}
