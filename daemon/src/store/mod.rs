//! Crash-safe session state: one record per funded session, enough to resume every session
//! after the daemon is killed (`kill -9` included).
//!
//! - [`Store`]: the storage trait: [`load`](Store::load) every record at start-up,
//!   [`commit`](Store::commit) a batch of [`Write`]s atomically, and the leases of a fleet
//!   ([`claim`](Store::claim), [`renew`](Store::renew)): one owner per session at a time, with
//!   an epoch (a fencing token) that every write must carry;
//! - [`SqliteStore`]: the durable store, one SQLite file in WAL mode;
//! - [`PgStore`]: the fleet's store, one PostgreSQL database shared by many daemons;
//! - [`MemoryStore`]: an in-memory store for tests, with injectable commit failures;
//! - [`conformance`]: the one suite every store passes;
//! - [`spawn_writer`]: the batching writer that owns a store on its own thread, so the async
//!   daemon never blocks on disk: [`WriterHandle::submit`] queues a write and returns a
//!   [`Ticket`], [`WriterHandle::durable`] resolves once that ticket is committed.
//!
//! # Secrets
//!
//! Records are opaque text to the store, but they hold secrets (signer state, payment tickets).
//! Nothing here logs a record's contents or puts them in an error: the [`Debug`] output of
//! [`Write`] and [`SessionRecord`] shows ids and lengths only, and a [`StoreError`] carries the
//! failing operation and SQLite's own message, never a value that was bound to a statement.

use std::error::Error;
use std::fmt;
use std::path::PathBuf;

pub mod conformance;
mod lock;
mod memory;
mod postgres;
mod sqlite;
mod writer;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod tests;

pub use lock::StateLock;
pub use memory::MemoryStore;
pub use postgres::{PgOptions, PgStore};
pub use sqlite::{Durability, SqliteStore};
pub use writer::{
    OnFenced, Ticket, WriterConfig, WriterHandle, WriterStats, spawn_writer, try_spawn_fenced_writer,
    try_spawn_writer,
};

/// The schema version this build writes, and the highest it reads (SQLite and PostgreSQL).
///
/// Stored in the `meta` table under `schema_version`. A database with a higher version is
/// refused with [`StoreError::NewerSchema`] rather than misread. Version 2 added the leases
/// (owner, epoch, lease expiry), the close requests, the app's lease and the daemons' heartbeats.
pub const SCHEMA_VERSION: i64 = 2;

/// One session as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The daemon's session id.
    pub id: String,
    /// JSON text: how the session was created (opaque to the store).
    pub spec: String,
    /// JSON text: the engine snapshot to resume from (opaque to the store).
    pub snapshot: String,
    /// The release reason once the session is closed; closed sessions are never resumed.
    pub closed: Option<String>,
    /// Unix milliseconds of the last write to this record.
    pub updated_ms: u64,
    /// The daemon that holds the session's lease (its owner id), if any ever did.
    pub owner: Option<String>,
    /// The fencing token: grows by one at every change of owner. A write carrying another
    /// epoch than the record's is refused ([`Committed::fenced`]).
    pub epoch: u64,
    /// Unix milliseconds until which the owner's lease holds (0: never leased).
    pub lease_until_ms: u64,
    /// A `DELETE` asked on any daemon: the owner (or whoever claims the session next) stops the
    /// session with this reason rather than funding it.
    pub close_requested: Option<String>,
    /// Unix milliseconds until which the app's lease holds (`None`: no app lease).
    pub app_lease_until_ms: Option<u64>,
}

impl SessionRecord {
    /// A record as a [`Write::Put`] under `owner` leaves it, before any lease is granted:
    /// for tests and the conformance suite.
    pub fn new(id: &str, spec: &str, snapshot: &str, updated_ms: u64) -> SessionRecord {
        SessionRecord {
            id: id.to_owned(),
            spec: spec.to_owned(),
            snapshot: snapshot.to_owned(),
            closed: None,
            updated_ms,
            owner: None,
            epoch: 0,
            lease_until_ms: 0,
            close_requested: None,
            app_lease_until_ms: None,
        }
    }
}

impl fmt::Debug for SessionRecord {
    /// Shows the id, the lengths of the texts, the timestamps and the lease, never the texts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("spec_len", &self.spec.len())
            .field("snapshot_len", &self.snapshot.len())
            .field("closed_len", &self.closed.as_ref().map(String::len))
            .field("updated_ms", &self.updated_ms)
            .field("owner", &self.owner)
            .field("epoch", &self.epoch)
            .field("lease_until_ms", &self.lease_until_ms)
            .field("close_requested", &self.close_requested.is_some())
            .field("app_lease_until_ms", &self.app_lease_until_ms)
            .finish()
    }
}

/// One change to the store, made by the writer's owner ([`Store::commit`]'s `owner`) under
/// the epoch it holds for the session. A write whose condition fails changes nothing and is
/// reported in [`Committed::fenced`]: the writer has lost the session.
#[derive(Clone, PartialEq, Eq)]
pub enum Write {
    /// Creates a session's record, or replaces it (a new or adopted session), taking its lease.
    ///
    /// Applies when the id is unknown, when the record is closed and its epoch is lower than
    /// `epoch` (a session handed off, adopted back), or when the writer already owns it under
    /// `epoch`. Replacing a record reopens it: its `closed` reason and close request are cleared,
    /// because the put describes a live session.
    Put {
        /// The session id.
        id: String,
        /// JSON text: how the session was created.
        spec: String,
        /// JSON text: the engine snapshot to resume from.
        snapshot: String,
        /// Unix milliseconds of the change.
        at_ms: u64,
        /// The epoch the writer takes: 1 for a new id, the record's epoch plus one otherwise.
        epoch: u64,
        /// Unix milliseconds until which the writer's lease holds.
        lease_until_ms: u64,
        /// Unix milliseconds until which the app's lease holds (`None`: no app lease).
        app_lease_until_ms: Option<u64>,
    },
    /// Replaces the snapshot only: the hot path (a new signer state, made durable before the
    /// payment carrying it is posted). Applies only while the writer owns the open record under
    /// `epoch`.
    Snapshot {
        /// The session id.
        id: String,
        /// JSON text: the engine snapshot to resume from.
        snapshot: String,
        /// Unix milliseconds of the change.
        at_ms: u64,
        /// The writer's epoch for the session.
        epoch: u64,
    },
    /// Marks the session closed with its release reason. Applies only while the writer owns the
    /// open record under `epoch`: a session is closed at most once.
    Close {
        /// The session id.
        id: String,
        /// Why the session was released.
        reason: String,
        /// Unix milliseconds of the change.
        at_ms: u64,
        /// The writer's epoch for the session.
        epoch: u64,
    },
}

impl Write {
    /// The id of the session this write changes.
    pub fn id(&self) -> &str {
        match self {
            Write::Put { id, .. } | Write::Snapshot { id, .. } | Write::Close { id, .. } => id,
        }
    }

    /// Unix milliseconds of the change.
    pub fn at_ms(&self) -> u64 {
        match self {
            Write::Put { at_ms, .. } | Write::Snapshot { at_ms, .. } | Write::Close { at_ms, .. } => *at_ms,
        }
    }

    /// The epoch the write is conditional on.
    pub fn epoch(&self) -> u64 {
        match self {
            Write::Put { epoch, .. } | Write::Snapshot { epoch, .. } | Write::Close { epoch, .. } => *epoch,
        }
    }
}

impl fmt::Debug for Write {
    /// Shows the id, the lengths of the texts, the timestamp and the epoch, never the texts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::Put {
                id,
                spec,
                snapshot,
                at_ms,
                epoch,
                lease_until_ms,
                app_lease_until_ms,
            } => f
                .debug_struct("Put")
                .field("id", id)
                .field("spec_len", &spec.len())
                .field("snapshot_len", &snapshot.len())
                .field("at_ms", at_ms)
                .field("epoch", epoch)
                .field("lease_until_ms", lease_until_ms)
                .field("app_lease_until_ms", app_lease_until_ms)
                .finish(),
            Write::Snapshot {
                id,
                snapshot,
                at_ms,
                epoch,
            } => f
                .debug_struct("Snapshot")
                .field("id", id)
                .field("snapshot_len", &snapshot.len())
                .field("at_ms", at_ms)
                .field("epoch", epoch)
                .finish(),
            Write::Close {
                id,
                reason,
                at_ms,
                epoch,
            } => f
                .debug_struct("Close")
                .field("id", id)
                .field("reason_len", &reason.len())
                .field("at_ms", at_ms)
                .field("epoch", epoch)
                .finish(),
        }
    }
}

/// What a [`Store::commit`] applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// The positions (in the batch) of the writes whose condition failed: the writer does not
    /// own those sessions under the epoch it gave. Nothing else of the batch is affected.
    pub fenced: Vec<usize>,
}

/// One session whose lease a [`Store::renew`] extended or refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Renewal {
    /// Sessions the owner no longer holds under the epoch it gave (claimed by another daemon,
    /// or closed): stop funding them at once.
    pub lost: Vec<String>,
    /// Held sessions whose stop was asked on some daemon: `(id, reason)`.
    pub close_requested: Vec<(String, String)>,
    /// Held sessions with an app lease: `(id, until_ms)`.
    pub app_leases: Vec<(String, u64)>,
    /// Daemons whose heartbeat holds at `now_ms`, this one included.
    pub daemons_alive: usize,
    /// Open (not closed) sessions in the store.
    pub open_sessions: usize,
}

/// What a lease request asks: who, when, for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTerms<'a> {
    /// The daemon's owner id.
    pub owner: &'a str,
    /// Unix milliseconds now, as the caller reads it ([`PgStore`] may use the server's clock).
    pub now_ms: u64,
    /// How long a granted or renewed lease holds.
    pub lease_ms: u64,
}

/// Where session records live.
///
/// Implementations are blocking; the daemon drives one from the writer thread
/// ([`spawn_writer`]) and calls [`load`](Store::load) once at start-up, before the writer
/// takes the store. [`conformance`] is the contract's test suite.
pub trait Store: Send + 'static {
    /// Every record (closed ones included), in id order (byte order of the UTF-8 ids).
    ///
    /// # Errors
    ///
    /// [`StoreError::Load`] if the records cannot be read.
    fn load(&mut self) -> Result<Vec<SessionRecord>, StoreError>;

    /// The record of `id`, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Load`] if it cannot be read.
    fn get(&mut self, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Applies `batch` atomically (one transaction), in order, each write as `owner` under its
    /// epoch: after an error nothing of the batch is applied. A write whose condition fails is
    /// skipped and reported, not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::Commit`] if the transaction fails; the store is unchanged.
    fn commit(&mut self, owner: &str, batch: &[Write]) -> Result<Committed, StoreError>;

    /// Takes the lease of at most `max` open sessions whose lease has expired at
    /// `terms.now_ms` (or that never had one), the longest-expired first, raising each one's
    /// epoch by one. With `all`, every open session not held by `terms.owner` is taken whatever
    /// its lease (a store only one process can open: its file lock proves the owners gone).
    /// Concurrent claimers never take the same session (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Commit`]; nothing is claimed.
    fn claim(
        &mut self,
        terms: LeaseTerms<'_>,
        max: usize,
        all: bool,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Extends the leases of `held` (`(id, epoch)`) that `terms.owner` still holds under those
    /// epochs, records the daemon's heartbeat (alive until `now_ms + lease_ms`), and reports the
    /// rest ([`Renewal`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Commit`]; no lease is extended.
    fn renew(&mut self, terms: LeaseTerms<'_>, held: &[(String, u64)]) -> Result<Renewal, StoreError>;

    /// Gives up `owner`'s leases and heartbeat (a graceful stop): another daemon may claim its
    /// sessions at once. The epochs stay: a late write of the old owner is still fenced.
    ///
    /// # Errors
    ///
    /// [`StoreError::Commit`].
    fn release(&mut self, owner: &str) -> Result<(), StoreError>;

    /// Asks for the stop of open session `id` (a `DELETE` on any daemon). The record after the
    /// request; `None` for an unknown id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Commit`].
    fn request_close(&mut self, id: &str, reason: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Sets the app's lease of open session `id` to `until_ms`. False for an unknown or closed id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Commit`].
    fn renew_app(&mut self, id: &str, until_ms: u64) -> Result<bool, StoreError>;
}

/// What failed in the store.
///
/// Each variant names the operation; `detail` is SQLite's (or the operating system's) own
/// message. No variant ever holds record contents. `Clone`, so that every waiter of a failed
/// batch can be handed the same error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be created, opened or configured: no permission, a directory
    /// that does not exist, a file that is not a SQLite database, a PostgreSQL server that
    /// cannot be reached.
    Open {
        /// The file that was being opened (for PostgreSQL: the URL without its password).
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The schema could not be created or checked, or the file is a SQLite database that is
    /// not a livepay session store.
    Schema {
        /// What went wrong.
        detail: String,
    },
    /// The database was written by a newer livepay: its schema version is higher than this
    /// build understands, so it is left untouched.
    NewerSchema {
        /// The schema version found in the database.
        found: i64,
        /// The highest schema version this build reads.
        supported: i64,
    },
    /// Reading the records failed.
    Load {
        /// What went wrong.
        detail: String,
    },
    /// A batch could not be committed; its transaction was rolled back.
    Commit {
        /// What went wrong.
        detail: String,
    },
    /// The writer thread has stopped (shut down, never started, or died), so the write was
    /// not committed by it.
    WriterStopped,
    /// The write's condition failed: another daemon owns the session (a higher epoch), or it
    /// is closed. Nothing was written; the writer has lost the session.
    Fenced {
        /// The session.
        id: String,
    },
    /// Another process holds the state file's lock ([`StateLock`]): two daemons on one file
    /// would fund the same sessions from two copies of the signer state.
    Locked {
        /// The state file.
        path: PathBuf,
        /// The holder, as its lock file names it (`pid 1234`), when it does.
        holder: Option<String>,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open { path, detail } => {
                write!(f, "cannot open the session store {}: {detail}", path.display())
            }
            StoreError::Schema { detail } => write!(f, "session store schema: {detail}"),
            StoreError::NewerSchema { found, supported } => write!(
                f,
                "the session store has schema version {found}, newer than the {supported} this \
                 build supports; upgrade livepay or use another file"
            ),
            StoreError::Load { detail } => write!(f, "cannot load the session store: {detail}"),
            StoreError::Commit { detail } => write!(f, "session store commit failed: {detail}"),
            StoreError::WriterStopped => f.write_str("the session store writer has stopped"),
            StoreError::Fenced { id } => write!(
                f,
                "session {id} is owned by another daemon or closed: this daemon's write was refused"
            ),
            StoreError::Locked { path, holder } => write!(
                f,
                "the session store {} is in use by another livepay daemon ({}); stop it first, or \
                 give this one another --state",
                path.display(),
                holder.as_deref().unwrap_or("holder unknown"),
            ),
        }
    }
}

impl Error for StoreError {}
