//! Setup shared by the end-to-end tests over the in-memory transport
//! (`tests/tests/e2e_memory_*.rs`): reserve a session on a [`MemoryNet`], then fund it with
//! [`livepay_core::run`] on the net's [`VirtualClock`].
//!
//! Unlike [`drive`](crate::drive), nothing here is scripted: the faithful model answers every
//! request, and [`run`] moves virtual time itself (see [`VirtualClock`]).
//!
//! ```
//! use livepay_core::{Duration, Exit, ReleaseReason};
//! use livepay_mock::memory::MemoryNet;
//! use livepay_mock::model::{self, World};
//! use livepay_tests::memory::{fund_then_close, reserve_live};
//!
//! let net = MemoryNet::new(World::new(model::Config::default(), 7));
//! let (transport, _id) = reserve_live(&net);
//! let (exit, session, _close_at) = fund_then_close(&transport, Duration::from_secs(60), |_, _| {});
//! assert_eq!(exit, Exit::Released(ReleaseReason::ClosedByClient));
//! assert!(session.stats().payments_accepted >= 19);
//! ```

use futures::executor::block_on;
use futures::{Stream, StreamExt as _, stream};
use livepay_core::client::ReserveOptions;
use livepay_core::{Command, Config, Duration, Event, Exit, Instant, PaymentType, Session, StatusTable, run};
use livepay_mock::memory::{MemoryNet, MemoryTransport, VirtualClock, reserve};

/// The runner [`reserve_live`] reserves.
pub const RUNNER: &str = "live-runner";

/// Reserves a session on `net` with `options`: a transport over its payment session, and the
/// session's id.
///
/// # Panics
///
/// When the reservation fails, or the runner is unpriced (nothing to fund).
pub fn reserve_with(net: &MemoryNet, options: ReserveOptions) -> (MemoryTransport, String) {
    let reserved = reserve(net, options).expect("reserved");
    let transport = MemoryTransport::new(net.clone(), reserved.payment.expect("a priced runner"));
    (transport, reserved.session_id)
}

/// [`reserve_with`] the default options for a live session of [`RUNNER`].
///
/// # Panics
///
/// As [`reserve_with`].
pub fn reserve_live(net: &MemoryNet) -> (MemoryTransport, String) {
    reserve_with(net, net.reserve_options(RUNNER, PaymentType::Live))
}

/// `command` once `clock` reaches `at`, then nothing, ever: a command stream for [`run`].
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

/// Starts funding `session` and drives it with [`run`] over `transport` on its net's clock, under
/// `futures::executor::block_on`, with the default [`StatusTable`], until it is released or
/// stopped. `on_event` gets every event with the virtual instant it was reported at.
pub fn resume(
    session: &mut Session,
    transport: &MemoryTransport,
    commands: impl Stream<Item = Command> + Unpin,
    mut on_event: impl FnMut(Instant, Event),
) -> Exit {
    let clock = transport.net().clock();
    session.start(clock.now());
    block_on(run(
        session,
        transport,
        clock,
        &StatusTable::new(),
        commands,
        |event| on_event(clock.now(), event),
    ))
}

/// Creates a session with `config` at the clock's current instant and funds it: [`resume`].
/// Returns how [`run`] ended and the session.
///
/// # Panics
///
/// When `config` is invalid.
pub fn fund(
    transport: &MemoryTransport,
    config: &Config,
    commands: impl Stream<Item = Command> + Unpin,
    on_event: impl FnMut(Instant, Event),
) -> (Exit, Session) {
    let mut session = Session::new(config, transport.net().now()).expect("valid config");
    let exit = resume(&mut session, transport, commands, on_event);
    (exit, session)
}

/// [`fund`]s a live session from now and sends [`Command::Close`] `after` that: how [`run`]
/// ended, the session, and the instant of the close.
pub fn fund_then_close(
    transport: &MemoryTransport,
    after: Duration,
    on_event: impl FnMut(Instant, Event),
) -> (Exit, Session, Instant) {
    let clock = transport.net().clock();
    let close_at = clock.now() + after;
    let commands = command_at(clock, close_at, Command::Close);
    let (exit, session) = fund(transport, &Config::new(PaymentType::Live), commands, on_event);
    (exit, session, close_at)
}
