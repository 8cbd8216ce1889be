//! Setup shared by the end-to-end tests over the in-memory network
//! (`tests/tests/e2e_memory_*.rs`): reserve a session on a [`MemoryNet`], then fund it with the
//! core's [`Engine::run`] over [`MemoryHttp`] on the net's [`VirtualClock`].
//!
//! Unlike [`drive`](crate::drive), nothing here is scripted: the faithful model answers every
//! request, the engine builds and reads every byte, and [`Engine::run`] moves virtual time
//! itself (its sleeps jump the clock).
//!
//! ```
//! use livepay_core::{Duration, Exit, ReleaseReason};
//! use livepay_mock::memory::MemoryNet;
//! use livepay_mock::model::{self, World};
//! use livepay_tests::memory::{fund_then_close, reserve_live};
//!
//! let net = MemoryNet::new(World::new(model::ModelConfig::default(), 7));
//! let reserved = reserve_live(&net);
//! let (exit, engine, _close_at) = fund_then_close(&net, reserved, Duration::from_secs(60), |_, _| {});
//! assert_eq!(exit.reason(), Some(ReleaseReason::ClosedByClient));
//! assert!(engine.stats().payments_accepted >= 19);
//! ```

use futures::executor::block_on;
use futures::{Stream, StreamExt as _, stream};
use livepay_core::engine::{Engine, Output, ReserveOptions, Reserved};
use livepay_core::{Command, Config, Duration, Event, Exit, Instant, PaymentType, StatusTable, VirtualClock};
use livepay_mock::memory::{MemoryHttp, MemoryNet, reserve};

/// The runner [`reserve_live`] reserves.
pub const RUNNER: &str = "live-runner";

/// Reserves a session on `net` with `options`.
///
/// # Panics
///
/// When the reservation fails, or the runner is unpriced (nothing to fund).
pub fn reserve_with(net: &MemoryNet, options: ReserveOptions) -> Reserved {
    let reserved = reserve(net, options).expect("reserved");
    assert!(reserved.payment.is_some(), "a priced runner");
    reserved
}

/// [`reserve_with`] the default options for a live session of [`RUNNER`].
///
/// # Panics
///
/// As [`reserve_with`].
pub fn reserve_live(net: &MemoryNet) -> Reserved {
    reserve_with(net, net.reserve_options(RUNNER, PaymentType::Live))
}

/// An engine funding `reserved` with `config` and the default [`StatusTable`]; its runway starts
/// at the reservation's mint ([`Reserved::minted_at`]).
///
/// # Panics
///
/// When `config` is invalid.
pub fn engine(reserved: Reserved, config: &Config) -> Engine {
    Engine::new(config, reserved, StatusTable::new()).expect("valid config")
}

/// `command` once `clock` reaches `at`, then nothing, ever: a command stream for
/// [`Engine::run`].
pub fn command_at(
    clock: &VirtualClock,
    at: Instant,
    command: Command,
) -> impl Stream<Item = Command> + Unpin + '_ {
    Box::pin(
        stream::once(async move {
            clock.reached(at).await;
            command
        })
        .chain(stream::pending()),
    )
}

/// Starts funding with `engine` and drives it with [`Engine::run`] over [`MemoryHttp`] on the
/// net's clock, under `futures::executor::block_on`, until it is released or stopped.
/// `on_event` gets every event with the virtual instant it was reported at.
pub fn resume(
    net: &MemoryNet,
    engine: &mut Engine,
    commands: impl Stream<Item = Command> + Unpin,
    mut on_event: impl FnMut(Instant, Event),
) -> Exit {
    let clock = net.clock();
    let http = MemoryHttp::new(net.clone());
    engine.start(clock.now());
    block_on(engine.run(&http, clock, commands, |_, output| {
        if let Output::Event(event) = output {
            on_event(clock.now(), *event);
        }
    }))
}

/// Creates an engine for `reserved` with `config` and funds it: [`resume`]. Returns how
/// [`Engine::run`] ended and the engine.
///
/// # Panics
///
/// When `config` is invalid.
pub fn fund(
    net: &MemoryNet,
    reserved: Reserved,
    config: &Config,
    commands: impl Stream<Item = Command> + Unpin,
    on_event: impl FnMut(Instant, Event),
) -> (Exit, Engine) {
    let mut engine = engine(reserved, config);
    let exit = resume(net, &mut engine, commands, on_event);
    (exit, engine)
}

/// [`fund`]s a live session from now and sends [`Command::Close`] `after` that: how
/// [`Engine::run`] ended, the engine, and the instant of the close.
pub fn fund_then_close(
    net: &MemoryNet,
    reserved: Reserved,
    after: Duration,
    on_event: impl FnMut(Instant, Event),
) -> (Exit, Engine, Instant) {
    let clock = net.clock();
    let close_at = clock.now() + after;
    let commands = command_at(clock, close_at, Command::Close);
    let (exit, engine) = fund(net, reserved, &Config::new(PaymentType::Live), commands, on_event);
    (exit, engine, close_at)
}
