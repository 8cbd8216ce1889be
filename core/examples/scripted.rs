//! Funds one session for two virtual minutes against a scripted in-memory transport and prints
//! every event: a 503, a signer 482, a 480 refresh, a demand-driven payment, then a close.
//!
//! `cargo run -p livepay-core --example scripted`

// Printing the events is the point of this example.
#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::collections::VecDeque;

use futures::stream::{self, StreamExt};
use livepay_core::{
    Command, Config, Duration, Event, Instant, Reply, Session, StatusTable, Transport, VirtualClock, run,
};

/// Answers from a script, 200/204 when the script is empty; every request takes 15 ms.
struct Scripted<'c> {
    clock: &'c VirtualClock,
    signer: RefCell<VecDeque<u16>>,
    payment: RefCell<VecDeque<u16>>,
}

impl Scripted<'_> {
    fn answer(&self, script: &RefCell<VecDeque<u16>>, default: u16) -> Reply {
        self.clock.advance(Duration::from_millis(15));
        Reply::Status(script.borrow_mut().pop_front().unwrap_or(default))
    }
}

impl Transport for Scripted<'_> {
    async fn request_payment(&self, _cycle: u32, _fresh_state: bool) -> Reply {
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
    let clock = VirtualClock::new(Instant::from_millis(0));
    let transport = Scripted {
        clock: &clock,
        // Cycle 4 is skipped (482), cycle 7 needs a refresh (480).
        signer: RefCell::new([200, 200, 200, 482, 200, 200, 480].into()),
        // The second POST fails with a 503 and is retried.
        payment: RefCell::new([200, 503].into()),
    };
    let mut session = Session::new(&Config::default(), clock.now())?;
    // A demand-driven payment at 30.5 s, and a close at 120 s: each waits for its instant on the
    // virtual clock, which stops a sleep there.
    let commands = stream::iter([
        (Instant::from_millis(30_500), Command::PaymentDue),
        (Instant::from_secs(120), Command::Close),
    ])
    .then(|(at, command)| {
        let clock = &clock;
        async move {
            clock.reached(at).await;
            command
        }
    })
    .boxed_local();
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
