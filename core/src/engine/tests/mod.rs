//! The engine's tests; the helpers every file shares.

use embassy_time::Instant;

use super::{Engine, doc_reserved};
use crate::{Config, FirstPayment, StatusTable};

mod adopt;
mod dialects;
mod engine;
mod output;
mod protocol;
mod snapshot;
mod snapshot_bounds;

/// `ms` milliseconds after the origin.
fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A reserved engine funding with its first payment at once, started at 0.
fn funded() -> Engine {
    let config = Config {
        first_payment: FirstPayment::Immediately,
        ..Config::default()
    };
    let mut engine = Engine::new(&config, doc_reserved(at(0)), StatusTable::new()).unwrap();
    engine.start(at(0));
    engine
}
