#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod classify;
pub mod config;
pub mod driver;
#[cfg(feature = "alloc")]
pub mod engine;
pub mod event;
pub mod redact;
pub mod rng;
pub mod sequencer;
pub mod session;
pub mod tickets;
mod time;
pub mod virtual_clock;
pub mod wire;

pub use embassy_time::{Duration, Instant};

pub use classify::{Endpoint, Failure, Next, Outcome, Peer, Reply, StatusTable, Verdict};
pub use config::{Backoff, Budget, Config, ConfigError, FirstPayment, MAX_SIGNER_GAP, PaymentType};
pub use driver::{Clock, Command, Exit, FnClock, Transport, run};
pub use event::{Event, NotFunded, ReleaseReason, State};
pub use sequencer::{Call, CallError, RequestId, Sequencer};
pub use session::{Action, Machine, OutcomeError, ResumePoint, Session, Stats};
pub use virtual_clock::VirtualClock;

/// The most bytes a [`Session`] takes.
///
/// `size_of::<Session>()` is part of the contract: it fits in a small static on a microcontroller.
/// The bound was 256 bytes until rejections carried a [`Reply`] (a malformed or oversized answer,
/// not only a status) and the runway model kept delivered credit, a 482's floor, a held payment
/// for reposts and a planned end. Checked at compile time; the README states it (a test checks).
pub const SESSION_SIZE_BOUND: usize = 384;
const _: () = assert!(core::mem::size_of::<Session>() <= SESSION_SIZE_BOUND);

#[cfg(test)]
mod readme {
    /// The README's feature table states the bound the compiler checks.
    #[test]
    fn the_readme_states_the_session_size_bound() {
        let readme = include_str!("../../README.md");
        let stated = std::format!("{}-byte session", super::SESSION_SIZE_BOUND);
        assert!(readme.contains(&stated), "README.md must say `{stated}`");
    }
}
