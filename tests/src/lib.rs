#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use core::fmt;
use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;
use std::string::String;
use std::vec::Vec;

use livepay_core::{
    Command, Config, Duration, Event, Exit, FirstPayment, Instant, PaymentType, ReleaseReason, Session,
    State, Stats, StatusTable, run,
};

mod commands;
pub mod memory;
pub mod sim;
mod transport;

pub use commands::{CommandStream, Commands};
pub use livepay_core::VirtualClock;
pub use livepay_core::virtual_clock::MAX_STEPS;
pub use transport::{CallRecord, DEFAULT_LATENCY, Script, ScriptedAnswer, ScriptedTransport, TransportCall};

/// Where every [`drive`] starts: the reservation is paid and funding starts at this instant.
/// Far from zero so that saturating arithmetic near `Instant::MIN` cannot hide a bug.
pub const START: Instant = Instant::from_secs(1_000);

/// The `live` defaults with the first payment at the start instant: the scripts of these tests
/// begin with the first request. (The default, [`FirstPayment::OnSchedule`], waits about one
/// interval; `first_payment_immediately.rs` covers it.)
pub fn live_config() -> Config {
    Config {
        first_payment: FirstPayment::Immediately,
        ..Config::new(PaymentType::Live)
    }
}

/// `START + ms` milliseconds.
pub fn at_ms(ms: u64) -> Instant {
    START + Duration::from_millis(ms)
}

/// `START + s` seconds.
pub fn secs(s: u64) -> Instant {
    START + Duration::from_secs(s)
}

/// An instant shown relative to [`START`], e.g. `+2.050s`, for assertion messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rel(Instant);

/// `at` shown relative to [`START`].
pub fn rel(at: Instant) -> Rel {
    Rel(at)
}

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, micros) = if self.0 >= START {
            ('+', (self.0 - START).as_micros())
        } else {
            ('-', (START - self.0).as_micros())
        };
        write!(f, "{sign}{}.{:06}s", micros / 1_000_000, micros % 1_000_000)
    }
}

impl fmt::Debug for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How many polls [`simulate`] allows before it decides the future is looping and panics.
pub const MAX_ROUNDS: u64 = 1_000_000;

/// Polls `future` to completion on `clock` under `futures::executor::block_on`, moving virtual
/// time whenever everything waits (see the crate docs), and never past `until`.
///
/// Returns `None` when `future` is still pending once nothing is due at or before `until`; the
/// clock then reads `until`. Never hangs:
///
/// # Panics
///
/// - when the future waits but nothing is registered on the clock (it would wait forever);
/// - after [`MAX_ROUNDS`] polls, or [`MAX_STEPS`] clock steps (a runaway loop).
pub fn simulate<F: Future>(clock: &VirtualClock, until: Instant, future: F) -> Option<F::Output> {
    clock.set_horizon(Some(until));
    let mut future = pin!(future);
    let mut rounds: u64 = 0;
    let output = futures::executor::block_on(poll_fn(|cx| {
        rounds += 1;
        assert!(
            rounds <= MAX_ROUNDS,
            "livepay-tests: runaway loop: {MAX_ROUNDS} polls by virtual time {}",
            rel(clock.now()),
        );
        clock.clear_wakes();
        let before = clock.now();
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let now = clock.now();
        if now == before {
            // Nothing was due at `now`: move to the earliest instant something waits for.
            match clock.next_wake() {
                Some(next) if next <= until => clock.advance_to(next),
                Some(_) if now < until => clock.advance_to(until),
                Some(_) => return Poll::Ready(None),
                None => panic!(
                    "livepay-tests: deadlock at virtual time {}: the future waits, but no timer, \
                     request or command is scheduled",
                    rel(now),
                ),
            }
        }
        // Otherwise time moved during the poll: poll again at the new instant before moving on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }));
    clock.set_horizon(None);
    output
}

/// A predicate over events, as [`Report::assert_events_in_order`] takes them.
pub type EventFilter<'a> = &'a dyn Fn(&Event) -> bool;

/// What one [`drive`] saw.
#[derive(Debug, Clone)]
pub struct Report {
    /// What [`run`] returned; `None` when it was still running at `until`.
    pub exit: Option<Exit>,
    /// Every event, with the virtual instant it was reported at.
    pub events: Vec<(Instant, Event)>,
    /// Every transport call, with the instant it was made.
    pub calls: Vec<(Instant, TransportCall)>,
    /// Every transport call with its scripted reply and when that reply was due.
    pub log: Vec<CallRecord>,
    /// Every command delivered, with the instant it was delivered.
    pub commands: Vec<(Instant, Command)>,
    /// The virtual instant the drive ended at.
    pub end: Instant,
    /// The session's state at the end.
    pub state: State,
    /// The session's counters at the end.
    pub stats: Stats,
}

/// [`drive_with`] the default [`StatusTable`].
pub fn drive(config: Config, script: Script, commands: Commands, until: Instant) -> Report {
    drive_with(&StatusTable::new(), config, script, commands, until)
}

/// Runs a session reserved at [`START`] with [`run`] on virtual time: the transport answers
/// from `script`, `commands` arrive at their instants, and the run is cut off after `until`.
///
/// # Panics
///
/// When `config` is invalid, and as [`simulate`] does.
pub fn drive_with(
    table: &StatusTable,
    config: Config,
    script: Script,
    commands: Commands,
    until: Instant,
) -> Report {
    let clock = VirtualClock::new(START);
    let transport = ScriptedTransport::new(&clock, script);
    let mut stream = commands.stream(&clock);
    let mut session =
        Session::new(&config, START).unwrap_or_else(|e| panic!("livepay-tests: invalid config: {e}"));
    session.start(START);
    let mut events = Vec::new();
    let exit = simulate(
        &clock,
        until,
        run(&mut session, &transport, &clock, table, &mut stream, |event| {
            events.push((clock.now(), event));
        }),
    );
    let log = transport.log();
    Report {
        exit,
        events,
        calls: log.iter().map(|r| (r.at, r.call)).collect(),
        log,
        commands: stream.delivered().to_vec(),
        end: clock.now(),
        state: session.state(),
        stats: session.stats(),
    }
}

impl Report {
    /// The instants of the calls `matches` accepts.
    pub fn calls_where(&self, matches: impl Fn(TransportCall) -> bool) -> Vec<Instant> {
        self.calls
            .iter()
            .filter(|&&(_, c)| matches(c))
            .map(|&(t, _)| t)
            .collect()
    }

    /// Every [`TransportCall::RequestPayment`]: its instant and cycle.
    pub fn pay_requests(&self) -> Vec<(Instant, u32)> {
        self.calls
            .iter()
            .filter_map(|&(t, c)| match c {
                TransportCall::RequestPayment { cycle } | TransportCall::RequestFreshPayment { cycle } => {
                    Some((t, cycle))
                }
                _ => None,
            })
            .collect()
    }

    /// The instants of every call equal to `call`.
    pub fn times_of(&self, call: TransportCall) -> Vec<Instant> {
        self.calls_where(|c| c == call)
    }

    /// The events `matches` accepts, with their instants.
    pub fn events_where(&self, matches: impl Fn(&Event) -> bool) -> Vec<(Instant, Event)> {
        self.events.iter().filter(|(_, e)| matches(e)).copied().collect()
    }

    /// The first event `matches` accepts.
    pub fn first_event(&self, matches: impl Fn(&Event) -> bool) -> Option<(Instant, Event)> {
        self.events.iter().find(|(_, e)| matches(e)).copied()
    }

    /// When the session was released, and why.
    pub fn released(&self) -> Option<(Instant, ReleaseReason)> {
        self.events.iter().find_map(|&(t, e)| match e {
            Event::StateChanged {
                to: State::Released { reason },
                ..
            } => Some((t, reason)),
            _ => None,
        })
    }

    /// Calls, replies, commands and events in time order, one per line, relative to [`START`]:
    /// for assertion messages.
    pub fn timeline(&self) -> String {
        use fmt::Write as _;
        let mut lines: Vec<(Instant, u8, String)> = Vec::new();
        for r in &self.log {
            lines.push((r.at, 3, format!("call   {:?}", r.call)));
            lines.push((r.answered_at, 0, format!("reply  {:?} -> {}", r.call, r.reply)));
        }
        for &(t, c) in &self.commands {
            lines.push((t, 1, format!("cmd    {c:?}")));
        }
        for &(t, e) in &self.events {
            lines.push((t, 2, format!("event  {e:?}")));
        }
        lines.sort_by_key(|&(t, order, _)| (t, order));
        let mut out = String::new();
        for (t, _, line) in lines.iter().filter(|(t, ..)| *t <= self.end) {
            let _ = writeln!(out, "{:>12} {line}", rel(*t).to_string());
        }
        let _ = writeln!(out, "{:>12} end: {:?}", rel(self.end).to_string(), self.exit);
        out
    }

    /// Asserts how [`run`] ended (`None`: still running at `until`).
    #[track_caller]
    /// `expected`: `None` when the run never ended, `Some(None)` when it ended stopped,
    /// `Some(Some(reason))` when released with `reason`.
    pub fn assert_exit(&self, expected: Option<Option<livepay_core::ReleaseReason>>) {
        assert_eq!(
            self.exit.map(|e| e.reason()),
            expected,
            "unexpected exit; timeline:\n{}",
            self.timeline()
        );
    }

    /// Asserts that no event `matches` accepts was reported; `what` names it in the message.
    #[track_caller]
    pub fn assert_no_event(&self, what: &str, matches: impl Fn(&Event) -> bool) {
        if let Some((t, e)) = self.first_event(matches) {
            panic!(
                "unexpected {what} at {}: {e:?}; timeline:\n{}",
                rel(t),
                self.timeline()
            );
        }
    }

    /// Asserts that no call was made after `at`.
    #[track_caller]
    pub fn assert_no_call_after(&self, at: Instant) {
        if let Some(&(t, c)) = self.calls.iter().find(|&&(t, _)| t > at) {
            panic!(
                "unexpected {c:?} at {}, after {}; timeline:\n{}",
                rel(t),
                rel(at),
                self.timeline()
            );
        }
    }

    /// Asserts that the calls `matches` accepts are at least `min` apart.
    #[track_caller]
    pub fn assert_calls_spaced(&self, min: Duration, matches: impl Fn(TransportCall) -> bool) {
        let times = self.calls_where(matches);
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= min,
                "calls at {} and {} are {} ms apart, under {} ms; timeline:\n{}",
                rel(pair[0]),
                rel(pair[1]),
                (pair[1] - pair[0]).as_millis(),
                min.as_millis(),
                self.timeline()
            );
        }
    }

    /// Asserts that the events `order` accepts (by index) first occur in that order: the first
    /// event matching `order[0]` comes before the first matching `order[1]`, and so on. Each must
    /// occur.
    #[track_caller]
    pub fn assert_events_in_order(&self, order: &[(&str, EventFilter<'_>)]) -> Vec<Instant> {
        let mut found = Vec::new();
        let mut from = 0;
        for (what, matches) in order {
            let Some(i) = self.events[from..].iter().position(|(_, e)| matches(e)) else {
                panic!(
                    "no {what} after the events before it ({:?}); timeline:\n{}",
                    found.iter().map(|&t| rel(t)).collect::<Vec<_>>(),
                    self.timeline()
                );
            };
            found.push(self.events[from + i].0);
            from += i + 1;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use livepay_core::Clock as _;

    use super::*;

    #[test]
    fn sleep_jumps_to_its_deadline_but_stops_at_a_registered_wake() {
        let clock = VirtualClock::new(START);
        futures::executor::block_on(clock.sleep_until(secs(5)));
        assert_eq!(clock.now(), secs(5));
        // Time never goes backwards.
        futures::executor::block_on(clock.sleep_until(secs(1)));
        clock.advance_to(secs(2));
        assert_eq!(clock.now(), secs(5));
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), secs(6));

        // Polled once, the sleep stops at the registered instant and stays pending…
        clock.wake_no_later_than(secs(7));
        assert_eq!(
            futures::FutureExt::now_or_never(clock.sleep_until(secs(10))),
            None
        );
        assert_eq!(clock.now(), secs(7));
        // …and the next sleep goes on to its deadline.
        assert_eq!(
            futures::FutureExt::now_or_never(clock.sleep_until(secs(10))),
            Some(())
        );
        assert_eq!(clock.now(), secs(10));
    }

    #[test]
    fn simulate_moves_time_to_the_earliest_waiter_and_stops_at_the_horizon() {
        let clock = VirtualClock::new(START);
        let transport = ScriptedTransport::new(
            &clock,
            Script::new().then_after(
                livepay_core::Endpoint::Stop,
                Duration::from_secs(3),
                livepay_core::Reply::Status(204),
            ),
        );
        let out = simulate(&clock, secs(60), async {
            use livepay_core::Transport as _;
            let reply = transport.stop().await;
            (clock.now(), reply)
        });
        assert_eq!(out, Some((secs(3), livepay_core::Reply::Status(204))));

        let out = simulate(&clock, secs(10), clock.sleep_until(secs(20)));
        assert_eq!(out, None);
        assert_eq!(clock.now(), secs(10));
    }

    #[test]
    #[should_panic(expected = "deadlock")]
    fn simulate_panics_instead_of_hanging_on_a_future_that_waits_for_nothing() {
        let clock = VirtualClock::new(START);
        let _ = simulate(&clock, secs(10), futures::future::pending::<()>());
    }

    #[test]
    #[should_panic(expected = "runaway loop")]
    fn a_loop_that_sleeps_without_time_passing_is_caught() {
        let clock = VirtualClock::new(START);
        clock.set_max_steps(1_000);
        let _ = simulate(&clock, secs(10), async {
            loop {
                clock.sleep_until(START).await;
            }
        });
    }

    #[test]
    fn commands_arrive_on_time_and_in_order() {
        use futures::StreamExt as _;
        let clock = VirtualClock::new(START);
        let commands = Commands::new()
            .at(secs(2), Command::Close)
            .at(secs(1), Command::PaymentDue)
            .at(secs(2), Command::Stop);
        let mut stream = commands.stream(&clock);
        let got = simulate(&clock, secs(10), async {
            let mut got = Vec::new();
            for _ in 0..3 {
                let command = stream.next().await;
                got.push((clock.now(), command));
            }
            got
        });
        assert_eq!(
            got,
            Some(vec![
                (secs(1), Some(Command::PaymentDue)),
                (secs(2), Some(Command::Close)),
                (secs(2), Some(Command::Stop)),
            ])
        );
    }
}
