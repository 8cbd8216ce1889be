//! The client policies a simulation compares: livepay's [`Session`](livepay_core::Session) and a reproduction of the
//! livepeer-gateway 1.0.0 payment loop ([`Sdk10`]). Both are [`Machine`]s: the core's
//! [`Sequencer`](livepay_core::Sequencer) carries out their actions as requests and reads every
//! answer through the status table, exactly as for a real client, so the simulation drives them
//! identically and writes no request sequence of its own.

use std::collections::VecDeque;

use embassy_time::{Duration, Instant};
use livepay_core::{Action, Event, Machine, Outcome, OutcomeError, ReleaseReason, State, Stats};

/// Which policy to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum PolicyKind {
    /// livepay-core's [`Session`](livepay_core::Session).
    #[serde(rename = "livepay")]
    Livepay,
    /// livepeer-gateway 1.0.0's loop.
    #[serde(rename = "sdk-1.0")]
    Sdk10,
}

impl PolicyKind {
    /// The name used on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Livepay => "livepay",
            Self::Sdk10 => "sdk-1.0",
        }
    }
}

/// livepeer-gateway 1.0.0's loop: the first payment after one interval; after each cycle, sleep
/// the interval (so the period is the interval plus the cycle's own duration); a 482 is healthy;
/// a 480 refreshes (at most 3 times) and pays again; a transient failure waits for the next cycle;
/// a 4xx other than 408/429 stops the loop; only a 404 marks the session released.
///
/// A [`Machine`]: run it with a [`Sequencer`](livepay_core::Sequencer), which makes its `Pay`
/// the signer request then, on a 200, the payment POST, as for livepay's [`Session`](livepay_core::Session). Its
/// [`Stats`] count what the baseline did, in the core's terms (it keeps no runway estimate:
/// `billed`, `surplus`, `at_risk` and `lapses` stay zero).
#[derive(Debug, Clone)]
pub struct Sdk10 {
    interval: Duration,
    state: State,
    next: Option<Instant>,
    action: Option<Action>,
    in_flight: bool,
    refreshes: u8,
    cycle: u32,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Sdk10 {
    /// The loop with its interval (the upstream SDK's is 3 s).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: State::Reserved,
            next: None,
            action: None,
            in_flight: false,
            refreshes: 0,
            cycle: 0,
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    fn pay(&mut self) {
        self.stats.payments_sent += 1;
        self.action = Some(Action::Pay { cycle: self.cycle });
    }

    fn set_state(&mut self, to: State) {
        if self.state != to {
            self.events
                .push_back(Event::StateChanged { from: self.state, to });
            self.state = to;
        }
    }

    fn after_cycle(&mut self, now: Instant) {
        self.refreshes = 0;
        self.next = Some(now + self.interval);
    }
}

/// The loop's whole interface is the one [`Machine`] trait: no inherent forwarders.
impl Machine for Sdk10 {
    /// Starts the loop: the first payment goes out one interval from `now`.
    fn start(&mut self, now: Instant) {
        if self.state == State::Reserved {
            self.set_state(State::Funding);
            self.next = Some(now + self.interval);
        }
    }

    /// Lets time pass: pays when the interval is up.
    fn handle_timeout(&mut self, now: Instant) {
        if self.state.is_funding() && self.action.is_none() && self.next.is_some_and(|at| at <= now) {
            self.cycle += 1;
            self.next = None;
            self.pay();
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    fn poll_timeout(&self) -> Option<Instant> {
        if self.action.is_some() || !self.state.is_funding() {
            return None;
        }
        self.next
    }

    /// The next event, oldest first.
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The current state.
    fn state(&self) -> State {
        self.state
    }

    /// Counters so far.
    fn stats(&self) -> Stats {
        self.stats
    }

    fn peek_action(&self) -> Option<Action> {
        self.action.filter(|_| !self.in_flight)
    }

    fn poll_action(&mut self) -> Option<Action> {
        if self.in_flight {
            return None;
        }
        self.in_flight = self.action.is_some();
        self.action
    }

    /// The baseline keeps no billing estimate: when a request left changes nothing.
    fn handle_sent(&mut self, _at: Instant) {}

    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) -> Result<(), OutcomeError> {
        let action = self
            .action
            .filter(|_| self.in_flight)
            .ok_or(OutcomeError::NothingInFlight)?;
        self.action = None;
        self.in_flight = false;
        match (action, outcome) {
            (Action::Stop, _) => self.set_state(State::Released {
                reason: ReleaseReason::ClosedByClient,
            }),
            (_, Outcome::Gone { .. }) => self.set_state(State::Released {
                reason: ReleaseReason::Gone,
            }),
            (_, Outcome::Rejected { endpoint, reply, .. }) => self.set_state(State::Released {
                reason: ReleaseReason::Rejected { endpoint, reply },
            }),
            (Action::Pay { cycle }, Outcome::RefreshRequired) if self.refreshes < 3 => {
                self.refreshes += 1;
                self.cycle = cycle;
                self.action = Some(Action::Refresh);
            }
            (Action::Refresh, Outcome::Refreshed) => {
                self.stats.refreshes += 1;
                self.pay();
            }
            (_, Outcome::Paid) => {
                self.stats.payments_accepted += 1;
                self.events.push_back(Event::PaymentAccepted {
                    cycle: self.cycle,
                    latency: Duration::from_ticks(0),
                });
                self.after_cycle(now);
            }
            (_, outcome) => {
                match outcome {
                    Outcome::Skipped => self.stats.cycles_skipped += 1,
                    Outcome::Transient { endpoint, .. } => {
                        self.stats.failures += 1;
                        if endpoint == livepay_core::Endpoint::Payment {
                            self.stats.lost_mints += 1;
                        }
                    }
                    _ => {}
                }
                self.after_cycle(now);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use livepay_core::{Endpoint, Reply, Sequencer, StatusTable};

    use super::*;

    #[test]
    fn sdk_pays_after_one_interval_then_sleeps_after_each_cycle() {
        let t = Instant::from_millis;
        let mut p = Sdk10::new(Duration::from_secs(3));
        p.start(t(0));
        assert_eq!(p.poll_action(), None);
        assert_eq!(p.poll_timeout(), Some(t(3_000)));
        p.handle_timeout(t(3_000));
        assert_eq!(p.peek_action(), Some(Action::Pay { cycle: 1 }));
        assert_eq!(p.poll_action(), Some(Action::Pay { cycle: 1 }));
        assert_eq!(p.peek_action(), None, "in flight");
        p.handle_outcome(t(3_007), Outcome::Paid).unwrap();
        assert_eq!(p.poll_timeout(), Some(t(6_007)));
        // A transient failure waits for the next cycle, no backoff.
        p.handle_timeout(t(6_007));
        p.poll_action();
        p.handle_outcome(
            t(11_007),
            Outcome::Transient {
                endpoint: Endpoint::Signer,
                reply: Reply::Timeout,
            },
        )
        .unwrap();
        assert_eq!(p.poll_timeout(), Some(t(14_007)));
        // Only a 404 is a release.
        p.handle_timeout(t(14_007));
        p.poll_action();
        p.handle_outcome(
            t(14_010),
            Outcome::Gone {
                endpoint: Endpoint::Payment,
            },
        )
        .unwrap();
        assert_eq!(
            p.state(),
            State::Released {
                reason: ReleaseReason::Gone
            }
        );
        let stats = p.stats();
        assert_eq!(
            (stats.payments_sent, stats.payments_accepted, stats.failures),
            (3, 1, 1)
        );
        assert_eq!(
            p.handle_outcome(t(14_011), Outcome::Paid),
            Err(OutcomeError::NothingInFlight)
        );
    }

    #[test]
    fn sdk_refreshes_on_480_at_most_three_times() {
        let t = Instant::from_millis;
        let mut p = Sdk10::new(Duration::from_secs(3));
        p.start(t(0));
        p.handle_timeout(t(3_000));
        for _ in 0..3 {
            assert!(matches!(p.poll_action(), Some(Action::Pay { .. })));
            p.handle_outcome(t(3_001), Outcome::RefreshRequired).unwrap();
            assert_eq!(p.poll_action(), Some(Action::Refresh));
            p.handle_outcome(t(3_002), Outcome::Refreshed).unwrap();
        }
        p.poll_action();
        p.handle_outcome(t(3_003), Outcome::RefreshRequired).unwrap();
        assert_eq!(p.poll_action(), None);
        assert_eq!(p.poll_timeout(), Some(t(6_003)));
        assert_eq!((p.stats().refreshes, p.stats().payments_sent), (3, 4));
    }

    #[test]
    fn the_sequencer_carries_out_the_baseline_like_any_machine() {
        let t = Instant::from_millis;
        let mut p = Sdk10::new(Duration::from_secs(3));
        p.start(t(0));
        p.handle_timeout(t(3_000));
        let mut calls = Sequencer::new(p, StatusTable::new());
        let signer = calls.poll_call().unwrap();
        assert_eq!(signer.endpoint, Endpoint::Signer);
        assert_eq!(
            calls.handle_reply(t(3_005), signer.id, Reply::Status(200)),
            Ok(None)
        );
        let post = calls.poll_call().unwrap();
        assert_eq!(post.endpoint, Endpoint::Payment);
        assert_eq!(
            calls.handle_reply(t(3_010), post.id, Reply::Status(200)),
            Ok(Some(Outcome::Paid))
        );
        assert_eq!(calls.machine().stats().payments_accepted, 1);
        assert_eq!(calls.machine().poll_timeout(), Some(t(6_010)));
        // A signer 400 is terminal for the baseline too: the table says so, not the loop.
        calls.machine_mut().handle_timeout(t(6_010));
        let signer = calls.poll_call().unwrap();
        calls
            .handle_reply(t(6_011), signer.id, Reply::Status(400))
            .unwrap();
        assert_eq!(
            calls.machine().state(),
            State::Released {
                reason: ReleaseReason::Rejected {
                    endpoint: Endpoint::Signer,
                    reply: Reply::Status(400)
                }
            }
        );
    }
}
