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

/// `size_of::<Session>()` is part of the contract: it fits in a small static on a microcontroller.
/// The bound was 256 bytes until rejections carried a [`Reply`] (a malformed or oversized answer,
/// not only a status) and the runway model kept delivered credit, a 482's floor, a held payment
/// for reposts and a planned end (336 bytes now).
const _: () = assert!(core::mem::size_of::<Session>() <= 384);
