//! The client policies a simulation compares: livepay's [`Session`] and a reproduction of the
//! livepeer-gateway 1.0.0 payment loop ([`Sdk10`]). Both speak the core's sans-IO interface, so
//! the simulation drives them identically.

use std::collections::VecDeque;

use embassy_time::{Duration, Instant};
use livepay_core::{Action, Config, Event, Outcome, ReleaseReason, Session, State};

/// Which policy to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum PolicyKind {
    /// livepay-core's [`Session`].
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

/// The sans-IO surface the simulation drives.
pub(crate) trait Policy {
    fn start(&mut self, now: Instant);
    fn handle_timeout(&mut self, now: Instant);
    fn handle_outcome(&mut self, now: Instant, outcome: Outcome);
    fn poll_action(&mut self) -> Option<Action>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn poll_event(&mut self) -> Option<Event>;
    fn state(&self) -> State;
}

impl Policy for Session {
    fn start(&mut self, now: Instant) {
        Session::start(self, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Session::handle_timeout(self, now);
    }
    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) {
        // The simulation answers exactly the action it took.
        let answered = Session::handle_outcome(self, now, outcome);
        debug_assert!(answered.is_ok(), "{answered:?}");
    }
    fn poll_action(&mut self) -> Option<Action> {
        Session::poll_action(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Session::poll_timeout(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Session::poll_event(self)
    }
    fn state(&self) -> State {
        Session::state(self)
    }
}

/// livepeer-gateway 1.0.0's loop: the first payment after one interval; after each cycle, sleep
/// the interval (so the period is the interval plus the cycle's own duration); a 482 is healthy;
/// a 480 refreshes (at most 3 times) and pays again; a transient failure waits for the next cycle;
/// a 4xx other than 408/429 stops the loop; only a 404 marks the session released.
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
}

impl Sdk10 {
    /// The loop with its 3 s interval.
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
        }
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

impl Policy for Sdk10 {
    fn start(&mut self, now: Instant) {
        if self.state == State::Reserved {
            self.set_state(State::Funding);
            self.next = Some(now + self.interval);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state.is_funding() && self.action.is_none() && self.next.is_some_and(|at| at <= now) {
            self.cycle += 1;
            self.next = None;
            self.action = Some(Action::Pay { cycle: self.cycle });
        }
    }

    fn handle_outcome(&mut self, now: Instant, outcome: Outcome) {
        let Some(action) = self.action.take() else {
            return;
        };
        self.in_flight = false;
        match (action, outcome) {
            (Action::Stop, _) => self.set_state(State::Released {
                reason: ReleaseReason::ClosedByClient,
            }),
            (_, Outcome::Gone { .. }) => self.set_state(State::Released {
                reason: ReleaseReason::Gone,
            }),
            (_, Outcome::Rejected { endpoint, status }) => self.set_state(State::Released {
                reason: ReleaseReason::Rejected { endpoint, status },
            }),
            (Action::Pay { cycle }, Outcome::RefreshRequired) if self.refreshes < 3 => {
                self.refreshes += 1;
                self.cycle = cycle;
                self.action = Some(Action::Refresh);
            }
            (Action::Refresh, Outcome::Refreshed) => self.action = Some(Action::Pay { cycle: self.cycle }),
            (_, Outcome::Paid) => {
                self.events.push_back(Event::PaymentAccepted {
                    cycle: self.cycle,
                    latency: Duration::from_ticks(0),
                });
                self.after_cycle(now);
            }
            _ => self.after_cycle(now),
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        if self.in_flight {
            return None;
        }
        self.in_flight = self.action.is_some();
        self.action
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.action.is_some() || !self.state.is_funding() {
            return None;
        }
        self.next
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn state(&self) -> State {
        self.state
    }
}

/// A fresh policy of `kind`, reserved at `now`.
pub(crate) fn livepay(config: &Config, now: Instant) -> Session {
    Session::new(config, now).unwrap_or_else(|_| {
        Session::new(&Config::default(), now).unwrap_or_else(|_| unreachable!("the default config is valid"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_pays_after_one_interval_then_sleeps_after_each_cycle() {
        let t = Instant::from_millis;
        let mut p = Sdk10::new(Duration::from_secs(3));
        p.start(t(0));
        assert_eq!(p.poll_action(), None);
        assert_eq!(p.poll_timeout(), Some(t(3_000)));
        p.handle_timeout(t(3_000));
        assert_eq!(p.poll_action(), Some(Action::Pay { cycle: 1 }));
        p.handle_outcome(t(3_007), Outcome::Paid);
        assert_eq!(p.poll_timeout(), Some(t(6_007)));
        // A transient failure waits for the next cycle, no backoff.
        p.handle_timeout(t(6_007));
        p.poll_action();
        p.handle_outcome(
            t(11_007),
            Outcome::Transient {
                endpoint: livepay_core::Endpoint::Signer,
                reply: livepay_core::Reply::Timeout,
            },
        );
        assert_eq!(p.poll_timeout(), Some(t(14_007)));
        // Only a 404 is a release.
        p.handle_timeout(t(14_007));
        p.poll_action();
        p.handle_outcome(
            t(14_010),
            Outcome::Gone {
                endpoint: livepay_core::Endpoint::Payment,
            },
        );
        assert_eq!(
            p.state(),
            State::Released {
                reason: ReleaseReason::Gone
            }
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
            p.handle_outcome(t(3_001), Outcome::RefreshRequired);
            assert_eq!(p.poll_action(), Some(Action::Refresh));
            p.handle_outcome(t(3_002), Outcome::Refreshed);
        }
        p.poll_action();
        p.handle_outcome(t(3_003), Outcome::RefreshRequired);
        assert_eq!(p.poll_action(), None);
        assert_eq!(p.poll_timeout(), Some(t(6_003)));
    }
}
