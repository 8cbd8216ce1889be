//! [`VirtualClock`]: virtual time for a [`Clock`], the one shared by the scenario tests, the
//! in-memory transport, the simulation's examples and the embedded examples. Nothing ever
//! sleeps for real, so hours of funding run in milliseconds, deterministically.
//!
//! ```
//! use livepay_core::{Clock, Duration, Instant, VirtualClock};
//!
//! let clock = VirtualClock::new(Instant::from_secs(0));
//! // A sleep jumps to its deadline and completes at once.
//! futures::executor::block_on(clock.sleep_until(Instant::from_secs(90)));
//! assert_eq!(clock.now(), Instant::from_secs(90));
//! clock.advance(Duration::from_millis(5));
//! assert_eq!(clock.now(), Instant::from_millis(90_005));
//! ```

use core::cell::Cell;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_time::{Duration, Instant};

use crate::driver::Clock;

/// How many clock steps (sleeps started, [`reached`](VirtualClock::reached) polls without time
/// moving) a clock allows by default before it decides the code under test loops, and panics.
pub const MAX_STEPS: u64 = 1_000_000;

/// Virtual time. Time only moves forward, in three ways:
///
/// - explicitly, with [`advance`](Self::advance) and [`advance_to`](Self::advance_to);
/// - by [`sleep_until`](Clock::sleep_until), which jumps to its deadline and completes at once,
///   unless something is due earlier: it stops at the earliest instant registered with
///   [`wake_no_later_than`](Self::wake_no_later_than) (a scripted reply, a scheduled command)
///   and at the [horizon](Self::set_horizon), and stays pending there;
/// - by whoever drives the futures (a test harness), moving time to
///   [`next_wake`](Self::next_wake) when everything waits.
///
/// While an answer is being handed over ([`yield_now`](Self::yield_now)), sleeps hold time
/// still, so that whatever else is due at that instant runs first. Futures that wait on this
/// clock wake their task at once when they return `Pending` (there is no reactor), so a plain
/// `block_on` keeps polling instead of parking.
#[derive(Debug)]
pub struct VirtualClock {
    now: Cell<Instant>,
    wake_by: Cell<Option<Instant>>,
    horizon: Cell<Option<Instant>>,
    held: Cell<u32>,
    steps: Cell<u64>,
    max_steps: Cell<u64>,
    /// `(instant, polls)`: consecutive pending [`reached`](Self::reached) polls at one instant.
    stalled: Cell<(Instant, u64)>,
}

impl VirtualClock {
    /// A clock reading `start`.
    pub const fn new(start: Instant) -> Self {
        Self {
            now: Cell::new(start),
            wake_by: Cell::new(None),
            horizon: Cell::new(None),
            held: Cell::new(0),
            steps: Cell::new(0),
            max_steps: Cell::new(MAX_STEPS),
            stalled: Cell::new((start, 0)),
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.advance_to(crate::time::add(self.now(), by));
    }

    /// Moves time forward to `at`; an earlier `at` is ignored (time never goes backwards).
    pub fn advance_to(&self, at: Instant) {
        if at > self.now() {
            self.now.set(at);
        }
    }

    /// Asks that time stop at `at` on its way forward, because something becomes due then. The
    /// earliest registration still in the future wins; waiters register again when polled.
    pub fn wake_no_later_than(&self, at: Instant) {
        let now = self.now();
        let earliest = match self.wake_by.get() {
            Some(current) if current > now => current.min(at),
            _ => at,
        };
        self.wake_by.set(Some(earliest));
    }

    /// The earliest registered instant still in the future.
    pub fn next_wake(&self) -> Option<Instant> {
        self.wake_by.get().filter(|&at| at > self.now())
    }

    /// Forgets every registration (a harness does this before each poll, since every live
    /// waiter registers again when polled).
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

    /// Counts one step of the code under test (a sleep or a request started).
    ///
    /// # Panics
    ///
    /// Past the step limit ([`set_max_steps`](Self::set_max_steps)), naming `what` and the
    /// virtual time: the code under test keeps sleeping or requesting without time passing.
    pub fn step(&self, what: &str) {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        assert!(
            steps <= self.max_steps.get(),
            "virtual clock: runaway loop: {steps} steps (last: {what}) by virtual time {}",
            self.now(),
        );
    }

    /// Completes once virtual time reaches `at`, without moving time itself: it registers `at`
    /// so that a sleep stops there. Use it to schedule commands:
    /// `stream::once(async { clock.reached(t).await; Command::Close })`.
    ///
    /// # Panics
    ///
    /// When polled pending more than the step limit in a row at one instant: nothing moves
    /// time (no sleep, no request), so it would wait forever.
    pub fn reached(&self, at: Instant) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            let now = self.now();
            if now >= at {
                return Poll::Ready(());
            }
            let (since, polls) = self.stalled.get();
            let polls = if since == now { polls + 1 } else { 1 };
            assert!(
                polls <= self.max_steps.get(),
                "virtual clock: stuck at {now}: something waits for {at}, but nothing moves time"
            );
            self.stalled.set((now, polls));
            self.wake_no_later_than(at);
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    /// Returns `Pending` once (waking its task) with time held still, then completes: whatever
    /// else the task polls meanwhile (a command due now) runs at this very instant, and no sleep
    /// moves time until this completes. An in-memory adapter yields after every answer, so that
    /// requests answered at once do not starve a driver's commands.
    pub const fn yield_now(&self) -> YieldNow<'_> {
        YieldNow {
            clock: self,
            yielded: false,
            done: false,
        }
    }
}

/// The future of [`VirtualClock::yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldNow<'c> {
    clock: &'c VirtualClock,
    yielded: bool,
    done: bool,
}

impl Future for YieldNow<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        if this.yielded {
            this.done = true;
            this.clock.held.set(this.clock.held.get() - 1);
            return Poll::Ready(());
        }
        this.yielded = true;
        this.clock.held.set(this.clock.held.get() + 1);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for YieldNow<'_> {
    fn drop(&mut self) {
        if self.yielded && !self.done {
            self.clock.held.set(self.clock.held.get() - 1);
        }
    }
}

impl Clock for VirtualClock {
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
            if self.held.get() > 0 {
                // An answer is being handed over at `now`: let it land before time moves.
                cx.waker().wake_by_ref();
                return Poll::Pending;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        futures::executor::block_on(future)
    }

    #[test]
    fn sleeps_jump_but_stop_at_registered_wakes_and_the_horizon() {
        let clock = VirtualClock::new(Instant::from_secs(0));
        block_on(clock.sleep_until(Instant::from_secs(10)));
        assert_eq!(clock.now(), Instant::from_secs(10));
        clock.wake_no_later_than(Instant::from_secs(12));
        clock.set_horizon(Some(Instant::from_secs(11)));
        // One poll: the sleep stops at the horizon and stays pending.
        let mut sleep = core::pin::pin!(clock.sleep_until(Instant::from_secs(20)));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(clock.now(), Instant::from_secs(11));
        clock.set_horizon(None);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            clock.now(),
            Instant::from_secs(12),
            "stops at the registered wake"
        );
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
        assert_eq!(clock.now(), Instant::from_secs(20));
    }

    #[test]
    fn time_never_goes_backwards_and_reached_does_not_move_it() {
        let clock = VirtualClock::new(Instant::from_secs(5));
        clock.advance_to(Instant::from_secs(1));
        assert_eq!(clock.now(), Instant::from_secs(5));
        let mut reached = core::pin::pin!(clock.reached(Instant::from_secs(6)));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(reached.as_mut().poll(&mut cx).is_pending());
        assert_eq!(clock.next_wake(), Some(Instant::from_secs(6)));
        clock.advance(Duration::from_secs(1));
        assert!(reached.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    #[should_panic(expected = "runaway loop")]
    fn a_runaway_loop_is_caught() {
        let clock = VirtualClock::new(Instant::from_secs(0));
        clock.set_max_steps(3);
        for _ in 0..4 {
            block_on(clock.sleep_until(Instant::from_secs(0)));
        }
    }
}
