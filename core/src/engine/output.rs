//! [`Output`]: the one thing an [`Engine`](super::Engine) (and a
//! [`ReserveFlow`](super::ReserveFlow)) asks of its driver at a time.

use alloc::boxed::Box;

use embassy_time::Instant;

use super::request::Request;
use super::snapshot::Snapshot;
use crate::driver::Exit;
use crate::event::Event;
use crate::sequencer::RequestId;

/// What the engine wants done next, from [`Engine::poll_output`](super::Engine::poll_output).
/// A driver is a pump: it drains outputs after every input, carries each out, and hands the
/// answers back. It reads no status, compares no request name and decides nothing; every
/// decision (what a 2xx meant, when a state must be durable, when to give up) was made before
/// the output was produced.
///
/// `D` is what [`Done`](Self::Done) carries: an [`Exit`] for an engine, the reservation's result
/// for a [`ReserveFlow`](super::ReserveFlow).
#[derive(Debug)]
pub enum Output<D = Exit> {
    /// Send this request to [`Request::peer`], then answer it by its id with
    /// [`handle_response`](super::Engine::handle_response) or
    /// [`handle_failure`](super::Engine::handle_failure). Say when its bytes actually left with
    /// [`handle_sent`](super::Engine::handle_sent) if that is later than now (a queue of the
    /// driver's own).
    Transmit(Request),
    /// Make this snapshot durable, then call
    /// [`handle_persisted`](super::Engine::handle_persisted) with `id`: it holds a signer state
    /// no store has seen yet, and the payment POST that would show that state's tickets to the
    /// orchestrator is held until then (write-ahead). Only with
    /// [`Engine::with_write_ahead`](super::Engine::with_write_ahead).
    Persist {
        /// Names the hold in [`handle_persisted`](super::Engine::handle_persisted).
        id: RequestId,
        /// The session as data.
        snapshot: Box<Snapshot>,
    },
    /// Store this snapshot when convenient, holding nothing up: the orchestrator credited a
    /// payment, so no payment of unknown fate remains (a restart then reposts nothing). Only
    /// with [`Engine::with_write_ahead`](super::Engine::with_write_ahead).
    Checkpoint(Box<Snapshot>),
    /// The signer credential should be replaced before the next signer request (it expires
    /// soon, or the signer refused it): call
    /// [`handle_credential`](super::Engine::handle_credential) with a fresh one, or with `None`
    /// when there is no source. The next request waits for it.
    NeedCredential,
    /// Abandon request `id` (drop its future, close its connection, take it out of any queue):
    /// the engine no longer waits for it and has counted it as lost.
    Cancel(RequestId),
    /// Call [`handle_timeout`](super::Engine::handle_timeout) at this instant (unless an input
    /// comes first). Always the last output of a drain: stop polling, wait.
    Timeout(Instant),
    /// Something to log, count or show. Events may be dropped under back-pressure; nothing that
    /// decides state, storage or metrics should depend on them.
    Event(Event),
    /// The run is over, once and for all inputs so far: the session is released, or stopped and
    /// idle. Produced exactly once per run (a later command starts another).
    Done(D),
}
