//! Funds one session for two virtual minutes against a scripted in-memory transport and prints
//! every event: a 503, a signer 482, a 480 refresh, a demand-driven payment, then a close.
//!
//! `cargo run -p livepay-core --example scripted`

// Printing the events is the point of this example.
#![allow(clippy::print_stdout)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use livepay_core::{
    Clock, Command, Config, Duration, Event, Instant, Reply, Session, StatusTable, Transport, run,
};

/// Virtual time: sleeping jumps the clock (but never past the next scheduled command), requests
/// advance it by their latency.
struct VirtualClock {
    now: Cell<Instant>,
    next_command: Cell<Instant>,
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }

    async fn sleep_until(&self, deadline: Instant) {
        // Waking before the deadline is fine: an early `handle_timeout` is a no-op.
        let wake = deadline.min(self.next_command.get());
        self.now.set(self.now.get().max(wake));
    }
}

/// Commands delivered when the virtual clock reaches their instant.
struct Scheduled<'c> {
    clock: &'c VirtualClock,
    commands: VecDeque<(Instant, Command)>,
}

impl Stream for Scheduled<'_> {
    type Item = Command;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Command>> {
        let Some(&(at, command)) = self.commands.front() else {
            self.clock.next_command.set(Instant::MAX);
            return Poll::Ready(None);
        };
        if self.clock.now() >= at {
            self.commands.pop_front();
            return Poll::Ready(Some(command));
        }
        // No waker needed: the driver's sleep on the virtual clock completes at once.
        self.clock.next_command.set(at);
        Poll::Pending
    }
}

/// Answers from a script, 200/204 when the script is empty; every request takes 15 ms.
struct Scripted<'c> {
    clock: &'c VirtualClock,
    signer: RefCell<VecDeque<u16>>,
    payment: RefCell<VecDeque<u16>>,
}

impl Scripted<'_> {
    fn answer(&self, script: &RefCell<VecDeque<u16>>, default: u16) -> Reply {
        self.clock.now.set(self.clock.now() + Duration::from_millis(15));
        Reply::Status(script.borrow_mut().pop_front().unwrap_or(default))
    }
}

impl Transport for Scripted<'_> {
    async fn request_payment(&self, _cycle: u32) -> Reply {
        self.answer(&self.signer, 200)
    }
    async fn send_payment(&self) -> Reply {
        self.answer(&self.payment, 200)
    }
    async fn refresh(&self) -> Reply {
        self.answer(&RefCell::default(), 200)
    }
    async fn stop(&self) -> Reply {
        self.answer(&RefCell::default(), 204)
    }
}

fn main() -> Result<(), livepay_core::ConfigError> {
    let clock = VirtualClock {
        now: Cell::new(Instant::from_millis(0)),
        next_command: Cell::new(Instant::MAX),
    };
    let transport = Scripted {
        clock: &clock,
        // Cycle 4 is skipped (482), cycle 7 needs a refresh (480).
        signer: RefCell::new([200, 200, 200, 482, 200, 200, 480].into()),
        // The second POST fails with a 503 and is retried.
        payment: RefCell::new([200, 503].into()),
    };
    let mut session = Session::new(&Config::default(), clock.now())?;
    // A demand-driven payment at 30.5 s, and a close at 120 s.
    let commands = Scheduled {
        clock: &clock,
        commands: [
            (Instant::from_millis(30_500), Command::PaymentDue),
            (Instant::from_secs(120), Command::Close),
        ]
        .into(),
    };
    session.start(clock.now());
    let exit = futures::executor::block_on(run(
        &mut session,
        &transport,
        &clock,
        &StatusTable::new(),
        commands,
        |event: Event| println!("t={:>8.3}s  {event}", clock.now().as_micros() as f64 / 1e6),
    ));
    let stats = session.stats();
    println!("exit: {exit:?}");
    println!(
        "payments accepted {}, skipped {}, failed {}, refreshes {}; billed {:.1}s for {:.1}s (surplus {:.2}s)",
        stats.payments_accepted,
        stats.cycles_skipped,
        stats.failures,
        stats.refreshes,
        stats.billed.as_millis() as f64 / 1e3,
        clock.now().as_millis() as f64 / 1e3,
        stats.surplus.as_millis() as f64 / 1e3,
    );
    Ok(())
}
