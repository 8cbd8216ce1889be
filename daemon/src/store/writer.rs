//! The batching writer: owns a [`Store`] on a dedicated thread and turns a stream of
//! [`Write`]s into few transactions, so the async daemon never blocks on disk.
//!
//! # Protocol
//!
//! 1. [`WriterHandle::submit`] queues a write on an unbounded channel and returns its
//!    [`Ticket`] (tickets count up from 1, in submission order).
//! 2. The thread takes the first queued write, then waits up to
//!    [`max_delay`](WriterConfig::max_delay) for companions, up to
//!    [`max_batch`](WriterConfig::max_batch) writes (a [`flush`](WriterHandle::flush) cuts the
//!    wait short).
//! 3. It coalesces the batch: of consecutive [`Write::Snapshot`]s of one id (with no `Put` or
//!    `Close` of that id between them) only the last is written, since the transaction makes
//!    the earlier ones invisible anyway.
//! 4. It commits the batch as **one** transaction, then publishes the highest committed ticket:
//!    [`WriterHandle::durable`] of every ticket up to it resolves `Ok`.
//! 5. If the commit fails, every ticket of the batch is reported failed
//!    ([`durable`](WriterHandle::durable) resolves `Err` at once) but nothing is dropped: the
//!    batch is kept and retried, together with whatever arrived meanwhile, after a backoff
//!    ([`min_backoff`](WriterConfig::min_backoff) doubling up to
//!    [`max_backoff`](WriterConfig::max_backoff)). A later successful commit makes those
//!    tickets durable after all. While retrying, new writes join the kept batch regardless of
//!    `max_batch`, so nothing queues behind a failed batch; coalescing keeps such a batch near
//!    one write per session.
//! 6. Every write is conditional on the writer's ownership of its session under the write's
//!    epoch ([`Store::commit`]). A write whose condition fails (another daemon took the session)
//!    is committed as nothing: [`durable`](WriterHandle::durable) of its ticket resolves
//!    [`StoreError::Fenced`], and the [`OnFenced`] callback hears of the session before any
//!    ticket of the batch resolves, so the daemon stops funding it first.
//! 7. Other store operations (claims, renewals, reads) run on the same thread between batches
//!    ([`WriterHandle::with_store`]): one connection, one owner of the store.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::{Store, StoreError, Write};

/// Told the ids of the sessions whose writes were fenced, once per committed batch, before any
/// of its tickets resolves.
pub type OnFenced = Box<dyn Fn(&[String]) + Send>;

/// An operation run on the store by the writer's thread ([`WriterHandle::with_store`]).
type StoreOp = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// Fenced tickets older than this many tickets behind the newest are forgotten (nobody waits
/// that long for a write-ahead).
const FENCED_MEMORY: u64 = 1 << 20;

/// How many times a stopping writer tries to commit what is left before giving up.
const SHUTDOWN_ATTEMPTS: u32 = 3;

/// How the writer batches and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// The most writes gathered into one transaction (before coalescing). Default 4096; 0 is
    /// treated as 1.
    pub max_batch: usize,
    /// How long the first write of a batch may wait for companions before the batch is
    /// committed. Default 2 ms: far below a payment round trip, long enough to gather the
    /// snapshots of many sessions into one transaction. Zero commits whatever is queued at once.
    pub max_delay: Duration,
    /// The wait before the first retry of a failed commit. Default 10 ms; 0 is treated as 1 ms.
    pub min_backoff: Duration,
    /// The longest wait between retries; each failure doubles the wait up to this. Default 1 s.
    pub max_backoff: Duration,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig {
            max_batch: 4096,
            max_delay: Duration::from_millis(2),
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// The position of a write in its writer's queue: a number that grows by one per
/// [`submit`](WriterHandle::submit), starting at 1. Only meaningful to the writer that issued
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// The ticket's number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Counters of a writer since it was spawned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Transactions that failed (each failed batch is retried).
    pub failed_commits: u64,
    /// Writes submitted (the last ticket issued).
    pub writes_submitted: u64,
    /// Writes handed to the store in committed transactions, after coalescing.
    pub rows_written: u64,
    /// Writes dropped because a later snapshot of the same session in the same committed
    /// batch superseded them. `rows_written + coalesced` counts every committed write.
    pub coalesced: u64,
    /// The highest durable ticket: every ticket up to it is committed.
    pub durable_ticket: u64,
    /// How long the last commit attempt (successful or not) took.
    pub last_commit: Duration,
}

/// A handle to the writer thread; clones share the thread.
///
/// The thread stops after [`close`](WriterHandle::close), or once every handle is dropped
/// (after committing what is queued, in both cases).
#[derive(Clone)]
pub struct WriterHandle {
    shared: Arc<Shared>,
    progress: watch::Receiver<Progress>,
}

struct Shared {
    /// Tickets are issued and sent under one lock, so the channel holds them in ticket order:
    /// a committed ticket then proves every lower ticket was committed too.
    submit: Mutex<SubmitSide>,
    counters: Arc<Mutex<Counters>>,
    /// Tickets committed as nothing (their condition failed), with their session.
    fenced: Arc<Mutex<BTreeMap<u64, String>>>,
}

struct SubmitSide {
    last_ticket: u64,
    /// `None` once the thread is known to be gone or asked to stop.
    commands: Option<mpsc::Sender<Command>>,
}

/// The writer thread's counters (the rest of [`WriterStats`] is known to the handle).
#[derive(Default)]
struct Counters {
    commits: u64,
    failed_commits: u64,
    rows_written: u64,
    coalesced: u64,
    last_commit: Duration,
}

enum Command {
    Write { ticket: u64, write: Write },
    Run(StoreOp),
    Flush,
    Shutdown,
}

/// What the thread publishes after every commit attempt.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Every ticket up to this one is committed.
    durable: u64,
    /// The latest failed attempt, while its batch is still uncommitted.
    failure: Option<Failure>,
    /// Failed attempts so far: the sequence number of the latest failure.
    failures: u64,
    /// The thread has exited; nothing more will be committed.
    stopped: bool,
}

#[derive(Clone, Debug)]
struct Failure {
    /// The failed batch holds every uncommitted ticket up to this one.
    through: u64,
    /// Its position among failed attempts ([`Progress::failures`] when it happened).
    seq: u64,
    error: StoreError,
}

/// Spawns the writer thread, which owns `store` from now on.
///
/// If the operating system cannot start a thread, the failure is logged and the handle is
/// born stopped: every [`durable`](WriterHandle::durable) resolves
/// [`StoreError::WriterStopped`]. Use [`try_spawn_writer`] to get the error instead.
pub fn spawn_writer(store: Box<dyn Store>, config: WriterConfig) -> WriterHandle {
    try_spawn_writer(store, config).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot start the session store writer thread");
        let (_, progress) = watch::channel(Progress {
            stopped: true,
            ..Progress::default()
        });
        WriterHandle {
            shared: Arc::new(Shared {
                submit: Mutex::new(SubmitSide {
                    last_ticket: 0,
                    commands: None,
                }),
                counters: Arc::default(),
                fenced: Arc::default(),
            }),
            progress,
        }
    })
}

/// Spawns the writer thread, which owns `store` from now on.
///
/// # Errors
///
/// The operating system's error if it cannot start a thread (`store` is dropped).
pub fn try_spawn_writer(store: Box<dyn Store>, config: WriterConfig) -> std::io::Result<WriterHandle> {
    try_spawn_fenced_writer(store, config, "local", None)
}

/// Spawns the writer thread, which owns `store` from now on and commits as `owner`; `on_fenced`
/// hears of every session whose write was fenced.
///
/// # Errors
///
/// The operating system's error if it cannot start a thread (`store` is dropped).
pub fn try_spawn_fenced_writer(
    store: Box<dyn Store>,
    config: WriterConfig,
    owner: &str,
    on_fenced: Option<OnFenced>,
) -> std::io::Result<WriterHandle> {
    let (commands_tx, commands) = mpsc::channel();
    let (progress_tx, progress) = watch::channel(Progress::default());
    let counters = Arc::new(Mutex::new(Counters::default()));
    let fenced = Arc::new(Mutex::new(BTreeMap::new()));
    let writer = Writer {
        store,
        owner: owner.to_owned(),
        on_fenced,
        fenced: Arc::clone(&fenced),
        config,
        commands,
        progress: progress_tx,
        counters: Arc::clone(&counters),
        batch: Batch::default(),
        backoff: Backoff::new(&config),
        flush_requested: false,
        stopping: false,
    };
    std::thread::Builder::new()
        .name("livepay-store-writer".into())
        .spawn(move || writer.run())?;
    Ok(WriterHandle {
        shared: Arc::new(Shared {
            submit: Mutex::new(SubmitSide {
                last_ticket: 0,
                commands: Some(commands_tx),
            }),
            counters,
            fenced,
        }),
        progress,
    })
}

impl fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterHandle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl WriterHandle {
    /// Queues a write and returns its ticket. Never waits for the disk or the thread: the queue
    /// is unbounded (memory grows while the store cannot commit).
    ///
    /// If the writer has stopped, the write is discarded and the ticket never becomes durable:
    /// [`durable`](WriterHandle::durable) of it resolves [`StoreError::WriterStopped`].
    pub fn submit(&self, write: Write) -> Ticket {
        let mut side = lock(&self.shared.submit);
        side.last_ticket += 1;
        let ticket = side.last_ticket;
        let sent = side.commands.as_ref().is_some_and(|commands| {
            // A failed send hands the write back inside the error, dropped here unread.
            commands.send(Command::Write { ticket, write }).is_ok()
        });
        if !sent {
            side.commands = None;
        }
        Ticket(ticket)
    }

    /// Resolves once the batch holding `ticket` is committed.
    ///
    /// Cancel-safe: dropping the future changes nothing.
    ///
    /// # Errors
    ///
    /// - [`StoreError::Commit`] (or whatever the store returned) as soon as an attempt to commit
    ///   the ticket's batch has failed, including one that failed before this call. The write
    ///   is **not** lost: the writer retries it, and once a retry succeeds `durable` of the
    ///   same ticket resolves `Ok`. What to do meanwhile (hold the payment, retry later) is the
    ///   caller's decision;
    /// - [`StoreError::WriterStopped`] if the writer has stopped before committing the ticket
    ///   (never a hang).
    ///
    /// [`StoreError::Fenced`] if the batch was committed without this write, because its
    /// condition failed (the session is another daemon's, or closed).
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.wait(ticket.0, None).await?;
        match lock(&self.shared.fenced).remove(&ticket.0) {
            Some(id) => Err(StoreError::Fenced { id }),
            None => Ok(()),
        }
    }

    /// Runs `op` on the store, on the writer's thread between two batches (a claim, a renewal,
    /// a read), and returns its result.
    ///
    /// # Errors
    ///
    /// [`StoreError::WriterStopped`] if the writer has stopped (the operation never ran, or
    /// the thread died running it); otherwise `op`'s own error.
    pub async fn with_store<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Run(Box::new(move |store: &mut dyn Store| {
            // The caller may have gone: nothing to answer then.
            let _ = reply.send(op(store));
        }));
        let sent = {
            let mut side = lock(&self.shared.submit);
            let sent = side
                .commands
                .as_ref()
                .is_some_and(|commands| commands.send(command).is_ok());
            if !sent {
                side.commands = None;
            }
            sent
        };
        if !sent {
            return Err(StoreError::WriterStopped);
        }
        answer.await.unwrap_or(Err(StoreError::WriterStopped))
    }

    /// Submits nothing; asks the writer to commit at once (without waiting for companions or for
    /// the retry backoff) and resolves once everything submitted before the call is committed.
    ///
    /// # Errors
    ///
    /// - the store's error if an attempt to commit those writes fails after this call (failures
    ///   before the call do not count: the flush waits for the retry it triggers);
    /// - [`StoreError::WriterStopped`] if the writer stops before committing them.
    pub async fn flush(&self) -> Result<(), StoreError> {
        // Read before the flush is sent, so no failure of the attempt it triggers is missed.
        let failures_before = self.progress.borrow().failures;
        let ticket = {
            let mut side = lock(&self.shared.submit);
            let sent = side
                .commands
                .as_ref()
                .is_some_and(|commands| commands.send(Command::Flush).is_ok());
            if !sent {
                side.commands = None;
            }
            side.last_ticket
        };
        self.wait(ticket, Some(failures_before)).await
    }

    /// Stops the writer thread after it commits everything submitted before the call (up to a
    /// few attempts, with the retry backoff between them), then closes the store. Resolves once
    /// the thread has released the store (a SQLite file can be reopened at once).
    ///
    /// Other clones of the handle stay usable but their writes are no longer committed.
    ///
    /// # Errors
    ///
    /// The last commit error if the final attempts failed (those writes are lost), or
    /// [`StoreError::WriterStopped`] if the thread had already stopped with writes uncommitted.
    pub async fn close(self) -> Result<(), StoreError> {
        let ticket = {
            let mut side = lock(&self.shared.submit);
            if let Some(commands) = side.commands.take() {
                // A failed send means the thread is already gone: handled below.
                let _ = commands.send(Command::Shutdown);
            }
            side.last_ticket
        };
        let mut progress = self.progress;
        loop {
            if progress.borrow_and_update().stopped {
                break;
            }
            if progress.changed().await.is_err() {
                break;
            }
        }
        let state = progress.borrow();
        if ticket <= state.durable {
            Ok(())
        } else {
            Err(state
                .failure
                .as_ref()
                .map_or(StoreError::WriterStopped, |failure| failure.error.clone()))
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        let writes_submitted = lock(&self.shared.submit).last_ticket;
        let durable_ticket = self.progress.borrow().durable;
        let counters = lock(&self.shared.counters);
        WriterStats {
            commits: counters.commits,
            failed_commits: counters.failed_commits,
            writes_submitted,
            rows_written: counters.rows_written,
            coalesced: counters.coalesced,
            durable_ticket,
            last_commit: counters.last_commit,
        }
    }

    /// Waits until `ticket` is committed. A failure covering the ticket ends the wait with its
    /// error, unless `failures_before` is given and the failure is not newer than that.
    async fn wait(&self, ticket: u64, failures_before: Option<u64>) -> Result<(), StoreError> {
        let mut progress = self.progress.clone();
        loop {
            {
                let state = progress.borrow_and_update();
                if ticket <= state.durable {
                    return Ok(());
                }
                if let Some(failure) = &state.failure {
                    let counts = failures_before.is_none_or(|before| failure.seq > before);
                    if ticket <= failure.through && counts {
                        return Err(failure.error.clone());
                    }
                }
                if state.stopped {
                    return Err(StoreError::WriterStopped);
                }
            }
            if progress.changed().await.is_err() {
                // The thread is gone without saying so (a panicking store): decide on what it
                // managed to publish.
                return if ticket <= progress.borrow().durable {
                    Ok(())
                } else {
                    Err(StoreError::WriterStopped)
                };
            }
        }
    }
}

/// The writer thread's state.
struct Writer {
    store: Box<dyn Store>,
    /// Every write is made as this owner.
    owner: String,
    on_fenced: Option<OnFenced>,
    fenced: Arc<Mutex<BTreeMap<u64, String>>>,
    config: WriterConfig,
    commands: mpsc::Receiver<Command>,
    progress: watch::Sender<Progress>,
    counters: Arc<Mutex<Counters>>,
    /// Writes taken but not yet committed (including a failed batch being retried).
    batch: Batch,
    backoff: Backoff,
    /// A flush arrived: commit now.
    flush_requested: bool,
    /// Shutdown arrived or every handle is gone: commit what is taken, then exit.
    stopping: bool,
}

impl Writer {
    fn run(mut self) {
        loop {
            if self.batch.writes.is_empty() {
                // Nothing to commit: a pending flush is already satisfied.
                self.flush_requested = false;
                if self.stopping {
                    break;
                }
                match self.commands.recv() {
                    Ok(command) => self.take(command),
                    Err(_) => self.stopping = true,
                }
                continue;
            }
            if self.stopping {
                self.commit_before_exit();
                break;
            }
            if !self.flush_requested {
                self.gather();
            }
            if !self.stopping {
                self.flush_requested = false;
                self.attempt();
            }
        }
        let Writer {
            store,
            commands,
            progress,
            ..
        } = self;
        // Close the store first: once `stopped` is published, the file may be reopened.
        drop(store);
        drop(commands);
        progress.send_modify(|state| state.stopped = true);
    }

    /// Takes more commands until the batch is full, a flush or shutdown arrives, or the
    /// deadline passes: `max_delay` after the batch's first write, or the retry time.
    fn gather(&mut self) {
        let retrying = self.backoff.retrying;
        let deadline = if retrying {
            self.backoff.retry_at
        } else {
            now().checked_add(self.config.max_delay)
        };
        let max_batch = self.config.max_batch.max(1);
        while !self.flush_requested && !self.stopping && (retrying || self.batch.writes.len() < max_batch) {
            let command = match self.commands.try_recv() {
                Ok(command) => command,
                Err(TryRecvError::Disconnected) => {
                    self.stopping = true;
                    return;
                }
                Err(TryRecvError::Empty) => match self.wait_for_command(deadline) {
                    Some(command) => command,
                    None => return,
                },
            };
            self.take(command);
        }
    }

    /// The next command, or `None` at the deadline (`None` deadline: the far future) or when
    /// every handle is gone (then `stopping` is set).
    fn wait_for_command(&mut self, deadline: Option<Instant>) -> Option<Command> {
        let result = match deadline {
            Some(deadline) => {
                let remaining = deadline.saturating_duration_since(now());
                if remaining.is_zero() {
                    return None;
                }
                self.commands.recv_timeout(remaining)
            }
            None => self.commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match result {
            Ok(command) => Some(command),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.stopping = true;
                None
            }
        }
    }

    fn take(&mut self, command: Command) {
        match command {
            Command::Write { ticket, write } => {
                self.batch.writes.push(write);
                self.batch.tickets.push(vec![ticket]);
                self.batch.last_ticket = ticket;
            }
            Command::Run(op) => op(self.store.as_mut()),
            Command::Flush => self.flush_requested = true,
            Command::Shutdown => self.stopping = true,
        }
    }

    /// Records the fenced writes' tickets and tells the callback, before the batch's tickets
    /// resolve.
    fn report_fenced(&mut self, fenced: &[usize]) {
        if fenced.is_empty() {
            return;
        }
        let mut ids: Vec<String> = Vec::with_capacity(fenced.len());
        {
            let mut tickets = lock(&self.fenced);
            for &index in fenced {
                let (Some(write), Some(covered)) =
                    (self.batch.writes.get(index), self.batch.tickets.get(index))
                else {
                    continue;
                };
                for &ticket in covered {
                    tickets.insert(ticket, write.id().to_owned());
                }
                ids.push(write.id().to_owned());
            }
            let horizon = self.batch.last_ticket.saturating_sub(FENCED_MEMORY);
            *tickets = tickets.split_off(&horizon);
        }
        ids.sort_unstable();
        ids.dedup();
        tracing::warn!(
            sessions = ids.len(),
            "session store: writes fenced (sessions owned by another daemon, or closed)"
        );
        if let Some(on_fenced) = &self.on_fenced {
            on_fenced(&ids);
        }
    }

    /// Commits what is left, retrying a few times: nothing else will.
    fn commit_before_exit(&mut self) {
        for attempt in 1..=SHUTDOWN_ATTEMPTS {
            if self.attempt() {
                return;
            }
            if attempt < SHUTDOWN_ATTEMPTS {
                std::thread::sleep(self.backoff.current);
            }
        }
        tracing::error!(
            writes = self.batch.writes.len(),
            "session store writer stopped with uncommitted writes"
        );
    }

    /// One commit attempt of the whole batch; publishes the outcome. True on success.
    fn attempt(&mut self) -> bool {
        self.batch.coalesce();
        let started = now();
        let result = self.store.commit(&self.owner, &self.batch.writes);
        let took = now().saturating_duration_since(started);
        let mut counters = lock(&self.counters);
        counters.last_commit = took;
        match result {
            Ok(committed) => {
                counters.commits += 1;
                counters.rows_written += self.batch.writes.len() as u64;
                counters.coalesced += self.batch.coalesced;
                drop(counters);
                self.report_fenced(&committed.fenced);
                let through = self.batch.last_ticket;
                self.batch.clear();
                self.backoff.reset();
                self.progress.send_modify(|state| {
                    state.durable = through;
                    // Every failed batch so far was part of this one.
                    state.failure = None;
                });
                true
            }
            Err(error) => {
                counters.failed_commits += 1;
                drop(counters);
                tracing::warn!(%error, writes = self.batch.writes.len(), "session store commit failed; retrying");
                self.backoff.failed(now());
                let through = self.batch.last_ticket;
                self.progress.send_modify(|state| {
                    state.failures += 1;
                    state.failure = Some(Failure {
                        through,
                        seq: state.failures,
                        error,
                    });
                });
                false
            }
        }
    }
}

/// Writes taken from the queue and not yet committed.
#[derive(Default)]
struct Batch {
    writes: Vec<Write>,
    /// The tickets each write of `writes` stands for: its own, and those of the snapshots it
    /// superseded when the batch was coalesced.
    tickets: Vec<Vec<u64>>,
    /// The ticket of the last write taken.
    last_ticket: u64,
    /// Writes already dropped from `writes` by coalescing.
    coalesced: u64,
}

impl Batch {
    /// Drops every snapshot followed, in the batch, by another snapshot of the same id and
    /// epoch with no put or close of that id between them. Applying the batch in one
    /// transaction gives the same result either way (the survivor is fenced exactly when the
    /// dropped one would have been, and stands for its ticket).
    fn coalesce(&mut self) {
        let mut keep = vec![true; self.writes.len()];
        let mut open_snapshot: HashMap<&str, (usize, u64)> = HashMap::new();
        let mut moves: Vec<(usize, usize)> = Vec::new();
        for (index, write) in self.writes.iter().enumerate() {
            match write {
                Write::Snapshot { id, epoch, .. } => {
                    if let Some((superseded, held)) = open_snapshot.insert(id, (index, *epoch))
                        && held == *epoch
                    {
                        keep[superseded] = false;
                        moves.push((superseded, index));
                    }
                }
                Write::Put { id, .. } | Write::Close { id, .. } => {
                    open_snapshot.remove(id.as_str());
                }
            }
        }
        if moves.is_empty() {
            return;
        }
        for (from, to) in moves {
            let tickets = std::mem::take(&mut self.tickets[from]);
            self.tickets[to].extend(tickets);
        }
        let dropped = keep.iter().filter(|kept| !**kept).count();
        // `retain` visits the elements in order, once each.
        let mut kept = keep.iter().copied();
        self.writes.retain(|_| kept.next().unwrap_or(true));
        let mut kept = keep.into_iter();
        self.tickets.retain(|_| kept.next().unwrap_or(true));
        self.coalesced += dropped as u64;
    }

    fn clear(&mut self) {
        self.writes.clear();
        self.tickets.clear();
        self.coalesced = 0;
    }
}

/// The retry schedule of a failed batch.
struct Backoff {
    min: Duration,
    max: Duration,
    /// A failed batch is waiting for its retry.
    retrying: bool,
    /// The current wait.
    current: Duration,
    /// When to retry; `None` if that is past the clock's range (never, in practice).
    retry_at: Option<Instant>,
}

impl Backoff {
    fn new(config: &WriterConfig) -> Backoff {
        let min = config.min_backoff.max(Duration::from_millis(1));
        Backoff {
            min,
            max: config.max_backoff.max(min),
            retrying: false,
            current: min,
            retry_at: None,
        }
    }

    fn failed(&mut self, now: Instant) {
        self.current = if self.retrying {
            self.current.saturating_mul(2).min(self.max)
        } else {
            self.min
        };
        self.retrying = true;
        self.retry_at = now.checked_add(self.current);
    }

    fn reset(&mut self) {
        self.retrying = false;
        self.current = self.min;
        self.retry_at = None;
    }
}

/// The writer is a driver: it reads the clock for batching delays, retry backoff and commit
/// timings (the clippy configuration reserves clocks for such code).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is plain counters and a sender: consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
