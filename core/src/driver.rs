//! A runtime-agnostic async driver: [`run`] carries out a [`Session`]'s actions over a
//! [`Transport`] and sleeps on a [`Clock`], on any executor (tokio, embassy, smol, a test's
//! `block_on`). It makes no decision of its own: the [`Sequencer`] says which request comes
//! next and what every reply means, and the session decides everything else.
//!
//! This is the allocation-free path for embedded users, whose transport builds the requests
//! itself (from [`crate::wire`]). With `alloc`, the `engine::Engine` builds and
//! parses every byte instead, and adapters only move them.

use core::future::Future;

use core::task::Poll;

use futures::future::{Either, FusedFuture, FutureExt};
use futures::pin_mut;
use futures::stream::{FusedStream, Stream, StreamExt};

use crate::classify::{Endpoint, Reply, StatusTable};
use crate::event::{Event, ReleaseReason, State};
use crate::sequencer::{Call, Sequencer};
use crate::session::{Action, Session, Stats};
use crate::{Duration, Instant};

/// The requests a session needs, as an adapter performs them. Each method returns what came
/// back as a [`Reply`]; the adapter keeps the protocol state (the signer's `state` blob, the
/// minted payment, the current `payment_params`) and never interprets a status.
///
/// Methods take `&self` so that the driver can hold a request future while it also waits for
/// commands; use interior mutability (a `RefCell` on a single-threaded executor, a mutex
/// elsewhere) for the state.
// `async fn` without a `Send` bound on purpose: embedded executors are single-threaded, and a
// std adapter's concrete future is still `Send` when its implementation is.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// `POST /generate-live-payment` with the latest signer state, or with none when
    /// `fresh_state` (an [`Action::Resync`]: a fresh signer ledger). On a 200 the adapter keeps
    /// the minted payment and the new state for [`send_payment`](Self::send_payment).
    async fn request_payment(&self, cycle: u32, fresh_state: bool) -> Reply;
    /// `POST {payment_url}` with the payment minted by the last successful
    /// [`request_payment`](Self::request_payment). It may be called again for the same payment
    /// (an [`Action::Repost`]): keep it until the next mint replaces it.
    async fn send_payment(&self) -> Reply;
    /// `POST /refresh-payment`; on a 200, replace `payment_params` and keep `payment_url`.
    async fn refresh(&self) -> Reply;
    /// `POST {control_url}/stop`.
    async fn stop(&self) -> Reply;
}

/// The time source an adapter provides. The session itself never reads a clock; only the
/// driver does, through this trait.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Completes at or after `deadline`.
    async fn sleep_until(&self, deadline: Instant);
}

/// What the application can tell a running [`run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// [`Session::start`].
    Start,
    /// [`Session::stop`]: `run` returns [`Exit::Stopped`] once any action in flight is answered.
    Stop,
    /// [`Session::close`]: `run` returns [`Exit::Released`] once the stop is answered.
    Close,
    /// [`Session::payment_due`].
    PaymentDue,
    /// [`Session::plan_end`]: the session will be closed at this instant.
    PlanEnd(Instant),
    /// [`Session::handle_release_signal`]: the server released the session.
    ServerReleased,
}

impl Command {
    /// Applies this command to `session` at `now`.
    pub fn apply(self, session: &mut Session, now: Instant) {
        match self {
            Self::Start => session.start(now),
            Self::Stop => session.stop(now),
            Self::Close => session.close(now),
            Self::PaymentDue => session.payment_due(now),
            Self::PlanEnd(at) => session.plan_end(now, at),
            Self::ServerReleased => session.handle_release_signal(now),
        }
    }
}

/// How a funding run ended, with the session's final counters: what [`run`] and
/// `engine::Engine::run` return, and what the engine's `Output::Done` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The session is released; no further action will ever be produced.
    Released {
        /// Why.
        reason: ReleaseReason,
        /// The counters at the end.
        stats: Stats,
    },
    /// The session is reserved and idle: stopped by [`Command::Stop`], or nothing to fund.
    /// It can be started again.
    Stopped {
        /// The counters at the end.
        stats: Stats,
    },
}

impl Exit {
    /// The exit of a machine in `state` with `stats`: released, or stopped.
    pub const fn of(state: State, stats: Stats) -> Self {
        match state {
            State::Released { reason } => Self::Released { reason, stats },
            _ => Self::Stopped { stats },
        }
    }

    /// The release reason; `None` when stopped.
    pub const fn reason(&self) -> Option<ReleaseReason> {
        match self {
            Self::Released { reason, .. } => Some(*reason),
            Self::Stopped { .. } => None,
        }
    }

    /// The counters at the end.
    pub const fn stats(&self) -> Stats {
        match self {
            Self::Released { stats, .. } | Self::Stopped { stats } => *stats,
        }
    }
}

/// Makes the request of `call`.
async fn execute<T: Transport>(transport: &T, call: Call) -> Reply {
    match (call.endpoint, call.action) {
        (Endpoint::Signer, Action::Pay { cycle } | Action::Resync { cycle }) => {
            transport.request_payment(cycle, call.action.fresh_state()).await
        }
        (Endpoint::Signer | Endpoint::Payment | Endpoint::Repost, _) => transport.send_payment().await,
        (Endpoint::Refresh, _) => transport.refresh().await,
        (Endpoint::Stop, _) => transport.stop().await,
        // The sequencer carries out funding actions only; the reservation's and discovery's
        // requests are never its calls.
        (
            Endpoint::OrchestratorInfo
            | Endpoint::Reservation
            | Endpoint::PaidReservation
            | Endpoint::Discovery
            | Endpoint::Events,
            _,
        ) => Reply::BadUrl,
    }
}

/// Drives `session` until it is released ([`Exit::Released`]) or reserved and idle
/// ([`Exit::Stopped`]), reporting every event to `on_event`.
///
/// Call [`Session::start`] first to fund (or [`Session::close`] to only stop the session): `run`
/// carries out what the session asks for and never starts funding on its own, so that closing a
/// stopped session sends no payment first. An idle reserved session returns at once.
///
/// `commands` lets the application stop, close or signal demand while `run` waits; pass
/// `futures::stream::pending()` if it never will. At most one request is in flight at a time; a
/// command arriving meanwhile is applied at once and takes effect when the request is answered.
pub async fn run<T, C, S>(
    session: &mut Session,
    transport: &T,
    clock: &C,
    table: &StatusTable,
    commands: S,
    mut on_event: impl FnMut(Event),
) -> Exit
where
    T: Transport,
    C: Clock,
    S: Stream<Item = Command> + Unpin,
{
    let mut commands = commands.fuse();
    let mut calls = Sequencer::new(session, *table);
    let in_flight = futures::future::Fuse::terminated();
    pin_mut!(in_flight);
    let mut call_in_flight = None;
    loop {
        while let Some(event) = calls.machine_mut().poll_event() {
            on_event(event);
        }
        if calls.machine().state().is_released() {
            return Exit::of(calls.machine().state(), calls.machine().stats());
        }
        if in_flight.is_terminated() {
            if let Some(call) = calls.poll_call() {
                call_in_flight = Some(call.id);
                // The bytes leave now: the billing estimate and the latency count from here.
                let _ = calls.handle_sent(clock.now(), call.id);
                in_flight.set(execute(transport, call).fuse());
            } else if calls.machine().state() == State::Reserved {
                return Exit::of(State::Reserved, calls.machine().stats());
            }
        }
        let sleep = match calls.machine().poll_timeout() {
            Some(at) => Either::Left(clock.sleep_until(at)),
            None => Either::Right(futures::future::pending::<()>()),
        }
        .fuse();
        pin_mut!(sleep);
        match next_input(in_flight.as_mut(), &mut commands, sleep).await {
            Input::Answer(reply) => {
                if let Some(id) = call_in_flight.take() {
                    let answered = calls.handle_reply(clock.now(), id, reply);
                    debug_assert!(answered.is_ok(), "driver answered a request not in flight");
                }
            }
            Input::Command(command) => command.apply(calls.machine_mut(), clock.now()),
            Input::Timer => calls.machine_mut().handle_timeout(clock.now()),
        }
    }
}

/// What a driver waits for: the answer of the request in flight, a command, or the timer.
pub(crate) enum Input<R> {
    /// The request in flight came back.
    Answer(R),
    /// The application said something.
    Command(Command),
    /// The timer is due.
    Timer,
}

/// The first of the three inputs, in that order of priority (a biased select, written out so
/// that the no-std build needs no procedural macro). A terminated request or command stream is
/// skipped.
pub(crate) async fn next_input<F, S, T>(
    mut in_flight: core::pin::Pin<&mut F>,
    commands: &mut S,
    mut timer: core::pin::Pin<&mut T>,
) -> Input<F::Output>
where
    F: FusedFuture,
    S: FusedStream<Item = Command> + Unpin,
    T: Future<Output = ()>,
{
    core::future::poll_fn(|cx| {
        if !in_flight.is_terminated()
            && let Poll::Ready(answer) = in_flight.as_mut().poll(cx)
        {
            return Poll::Ready(Input::Answer(answer));
        }
        if !commands.is_terminated()
            && let Poll::Ready(Some(command)) = commands.poll_next_unpin(cx)
        {
            return Poll::Ready(Input::Command(command));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Input::Timer);
        }
        Poll::Pending
    })
    .await
}

/// A [`Clock`] over any monotonic millisecond or tick source, for adapters that have one.
///
/// `now` reads the source; `sleep` waits for a span with the runtime's own timer.
#[derive(Debug, Clone, Copy)]
pub struct FnClock<N, S> {
    now: N,
    sleep: S,
}

impl<N, S, F> FnClock<N, S>
where
    N: Fn() -> Instant,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    /// A clock reading `now` and sleeping with `sleep`.
    pub const fn new(now: N, sleep: S) -> Self {
        Self { now, sleep }
    }
}

impl<N, S, F> Clock for FnClock<N, S>
where
    N: Fn() -> Instant,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    fn now(&self) -> Instant {
        (self.now)()
    }

    async fn sleep_until(&self, deadline: Instant) {
        loop {
            let now = (self.now)();
            if now >= deadline {
                return;
            }
            (self.sleep)(crate::time::since(deadline, now)).await;
        }
    }
}
