//! # livepay-core
//!
//! The pure, `#![no_std]`, allocation-free state machine that keeps a Livepeer live-runner
//! session funded after its reservation. After the reservation's 402, the orchestrator holds the
//! session as a prepaid balance, debits it every server tick (5 s) and silently releases it on the
//! first debit it cannot cover. A [`Session`] decides when to pay, what every answer means (one
//! [`StatusTable`]), when to refresh, how to retry inside the runway, when the session is at risk,
//! and reports a release with its reason.
//!
//! The machine never reads a clock and never performs I/O (the model is quinn-proto's
//! `Connection` and str0m's `Rtc`): every input carries `now`, and every output is data.
//!
//! ## The run loop
//!
//! Feed inputs, then drain the outputs in order: actions, the next timeout, events.
//!
//! ```
//! use livepay_core::{Action, Config, Duration, Endpoint, Instant, Reply, Session, StatusTable, Step};
//!
//! let table = StatusTable::new();
//! let mut now = Instant::from_secs(0); // the reservation was paid now
//! let mut session = Session::new(&Config::default(), now)?;
//! session.start(now);
//! while now < Instant::from_secs(60) {
//!     while let Some(action) = session.poll_action() {
//!         // A real adapter performs HTTP requests here; this one answers every request with
//!         // success after 20 ms.
//!         now += Duration::from_millis(20);
//!         let (first, then) = match action {
//!             Action::Pay { .. } => (Endpoint::Signer, Some(Endpoint::Payment)),
//!             Action::Refresh => (Endpoint::Refresh, None),
//!             Action::Stop => (Endpoint::Stop, None),
//!         };
//!         let mut step = table.classify(first, Reply::Status(200));
//!         if let (Step::Continue, Some(next)) = (step, then) {
//!             step = table.classify(next, Reply::Status(200));
//!         }
//!         if let Step::Done(outcome) = step {
//!             session.handle_outcome(now, outcome)?;
//!         }
//!     }
//!     while let Some(event) = session.poll_event() {
//!         let _ = event; // log it, count it, react to it
//!     }
//!     now = session.poll_timeout().expect("a funding session always has a timer");
//!     session.handle_timeout(now);
//! }
//! assert!(session.stats().payments_accepted >= 19);
//! assert!(session.runway(now) > Duration::from_secs(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`run`] is the same loop as an `async fn` over a [`Transport`] and a [`Clock`], for any
//! executor.
//!
//! ## Modules
//!
//! - [`config`]: [`Config`] and its documented defaults;
//! - [`classify`]: the status table of protocol.md §2;
//! - [`event`]: [`State`], [`Event`], [`ReleaseReason`];
//! - [`session`]: the machine;
//! - [`driver`]: [`Transport`], [`Clock`], [`run`];
//! - [`wire`]: the JSON bodies, parsed and written without allocation.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod classify;
#[cfg(feature = "alloc")]
pub mod client;
pub mod config;
pub mod driver;
pub mod event;
pub mod rng;
pub mod session;
mod time;
pub mod wire;

pub use embassy_time::{Duration, Instant};

pub use classify::{Endpoint, Next, Outcome, Reply, StatusTable, Step, Verdict};
pub use config::{Backoff, Budget, Config, ConfigError, FirstPayment, PaymentType};
pub use driver::{Clock, Command, Exit, FnClock, Transport, run};
pub use event::{Event, NotFunded, ReleaseReason, State};
pub use session::{Action, OutcomeError, Session, Stats};

/// `size_of::<Session>()` is part of the contract: it fits in a small static on a microcontroller.
const _: () = assert!(core::mem::size_of::<Session>() <= 256);
