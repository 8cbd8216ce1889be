//! [`ManualClock`]: virtual time for [`livepay_core::Clock`].

use core::cell::Cell;
use core::future::{Future, poll_fn};
use core::task::Poll;

use livepay_core::{Clock, Duration, Instant};

use crate::rel;

/// How many clock steps (sleeps started, requests started) one clock allows before it decides
/// the code under test is looping and panics.
pub const MAX_STEPS: u64 = 100_000;

/// Virtual time. Implements [`livepay_core::Clock`]; nothing ever sleeps for real.
///
/// Time only moves forward, in three ways:
///
/// - explicitly, with [`advance`](Self::advance) and [`advance_to`](Self::advance_to);
/// - by [`sleep_until`](Clock::sleep_until), which jumps to its deadline and completes at once,
///   unless something is due earlier: it stops at the earliest instant registered with
///   [`wake_no_later_than`](Self::wake_no_later_than) (a scripted reply, a scheduled command) and
///   at the [horizon](Self::set_horizon), and stays pending there;
/// - by [`simulate`](crate::simulate), which moves time to the next registered instant whenever
///   everything it polls is waiting.
///
/// Futures that wait on this clock wake their task at once when they return `Pending` (there
/// is no reactor), so a plain `block_on` keeps polling instead of parking.
#[derive(Debug)]
pub struct ManualClock {
    now: Cell<Instant>,
    wake_by: Cell<Option<Instant>>,
    horizon: Cell<Option<Instant>>,
    steps: Cell<u64>,
    max_steps: Cell<u64>,
}

impl ManualClock {
    /// A clock reading `start`, with no horizon.
    pub fn new(start: Instant) -> Self {
        Self {
            now: Cell::new(start),
            wake_by: Cell::new(None),
            horizon: Cell::new(None),
            steps: Cell::new(0),
            max_steps: Cell::new(MAX_STEPS),
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.advance_to(self.now() + by);
    }

    /// Moves time forward to `at`; an earlier `at` is ignored (time never goes backwards).
    pub fn advance_to(&self, at: Instant) {
        if at > self.now() {
            self.now.set(at);
        }
    }

    /// Asks that time stop at `at` on its way forward, because something becomes due then. The
    /// earliest registration that is still in the future wins.
    pub fn wake_no_later_than(&self, at: Instant) {
        let now = self.now();
        let earliest = match self.wake_by.get() {
            Some(current) if current > now => current.min(at),
            _ => at,
        };
        self.wake_by.set(Some(earliest));
    }

    /// The earliest instant registered with [`wake_no_later_than`](Self::wake_no_later_than)
    /// that is still in the future.
    pub fn next_wake(&self) -> Option<Instant> {
        self.wake_by.get().filter(|&at| at > self.now())
    }

    /// Forgets every registration (done by [`simulate`](crate::simulate) before each poll, since
    /// every live waiter registers again when polled).
    pub fn clear_wakes(&self) {
        self.wake_by.set(None);
    }

    /// Sets (or clears) the instant past which [`sleep_until`](Clock::sleep_until) never moves
    /// time.
    pub fn set_horizon(&self, horizon: Option<Instant>) {
        self.horizon.set(horizon);
    }

    /// The horizon, if any.
    pub fn horizon(&self) -> Option<Instant> {
        self.horizon.get()
    }

    /// Overrides [`MAX_STEPS`] for this clock.
    pub fn set_max_steps(&self, max: u64) {
        self.max_steps.set(max);
    }

    /// Steps counted so far (sleeps and requests started).
    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// Counts one step; panics past the limit, naming `what` and the virtual time.
    pub(crate) fn step(&self, what: &str) {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        assert!(
            steps <= self.max_steps.get(),
            "livepay-tests: runaway loop: {steps} clock steps (last: {what}) by virtual time {}; \
             the code under test keeps sleeping or requesting without time passing",
            rel(self.now()),
        );
    }

    /// Completes once virtual time reaches `at`, without moving time itself: it registers `at`
    /// and lets whoever drives the clock move it.
    pub fn reached(&self, at: Instant) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.now() >= at {
                return Poll::Ready(());
            }
            self.wake_no_later_than(at);
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }

    async fn sleep_until(&self, deadline: Instant) {
        self.step("sleep_until");
        poll_fn(|cx| {
            let now = self.now();
            if now >= deadline {
                return Poll::Ready(());
            }
            let mut target = deadline;
            if let Some(wake) = self.next_wake() {
                target = target.min(wake);
            }
            if let Some(horizon) = self.horizon() {
                target = target.min(horizon);
            }
            self.advance_to(target);
            if self.now() >= deadline {
                return Poll::Ready(());
            }
            self.wake_no_later_than(deadline);
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }
}
