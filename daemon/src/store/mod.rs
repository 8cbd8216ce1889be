//! Crash-safe session state: one record per funded session, enough to resume every session
//! after the daemon is killed (`kill -9` included).
//!
//! - [`Store`]: the storage trait: [`load`](Store::load) every record at start-up,
//!   [`commit`](Store::commit) a batch of [`Write`]s atomically;
//! - [`SqliteStore`]: the durable store, one SQLite file in WAL mode;
//! - [`MemoryStore`]: an in-memory store for tests, with injectable commit failures;
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

mod lock;
mod memory;
mod sqlite;
mod writer;

#[cfg(test)]
mod tests;

pub use lock::StateLock;
pub use memory::MemoryStore;
pub use sqlite::{Durability, SCHEMA_VERSION, SqliteStore};
pub use writer::{Ticket, WriterConfig, WriterHandle, WriterStats, spawn_writer, try_spawn_writer};

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
}

impl fmt::Debug for SessionRecord {
    /// Shows the id, the lengths of the texts and the timestamp, never their contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("spec_len", &self.spec.len())
            .field("snapshot_len", &self.snapshot.len())
            .field("closed_len", &self.closed.as_ref().map(String::len))
            .field("updated_ms", &self.updated_ms)
            .finish()
    }
}

/// One change to the store.
#[derive(Clone, PartialEq, Eq)]
pub enum Write {
    /// Inserts or replaces a session's spec and snapshot (a new or adopted session).
    ///
    /// Replacing a record also reopens it: its `closed` reason is cleared, because the put
    /// describes a live session.
    Put {
        /// The session id.
        id: String,
        /// JSON text: how the session was created.
        spec: String,
        /// JSON text: the engine snapshot to resume from.
        snapshot: String,
        /// Unix milliseconds of the change.
        at_ms: u64,
    },
    /// Replaces the snapshot only: the hot path (a new signer state, made durable before the
    /// payment carrying it is posted). Ignored if the id is unknown.
    Snapshot {
        /// The session id.
        id: String,
        /// JSON text: the engine snapshot to resume from.
        snapshot: String,
        /// Unix milliseconds of the change.
        at_ms: u64,
    },
    /// Marks the session closed with its release reason. Ignored if the id is unknown.
    Close {
        /// The session id.
        id: String,
        /// Why the session was released.
        reason: String,
        /// Unix milliseconds of the change.
        at_ms: u64,
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
}

impl fmt::Debug for Write {
    /// Shows the id, the lengths of the texts and the timestamp, never their contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::Put {
                id,
                spec,
                snapshot,
                at_ms,
            } => f
                .debug_struct("Put")
                .field("id", id)
                .field("spec_len", &spec.len())
                .field("snapshot_len", &snapshot.len())
                .field("at_ms", at_ms)
                .finish(),
            Write::Snapshot { id, snapshot, at_ms } => f
                .debug_struct("Snapshot")
                .field("id", id)
                .field("snapshot_len", &snapshot.len())
                .field("at_ms", at_ms)
                .finish(),
            Write::Close { id, reason, at_ms } => f
                .debug_struct("Close")
                .field("id", id)
                .field("reason_len", &reason.len())
                .field("at_ms", at_ms)
                .finish(),
        }
    }
}

/// Where session records live.
///
/// Implementations are blocking; the daemon drives one from the writer thread
/// ([`spawn_writer`]) and calls [`load`](Store::load) once at start-up, before the writer
/// takes the store.
pub trait Store: Send + 'static {
    /// Every record (closed ones included), in id order (byte order of the UTF-8 ids).
    ///
    /// # Errors
    ///
    /// [`StoreError::Load`] if the records cannot be read.
    fn load(&mut self) -> Result<Vec<SessionRecord>, StoreError>;

    /// Applies `batch` atomically (one transaction), in order: after an error nothing of the
    /// batch is applied. A [`Write::Snapshot`] or [`Write::Close`] for an unknown id is
    /// ignored (not an error).
    ///
    /// # Errors
    ///
    /// [`StoreError::Commit`] if the transaction fails; the store is unchanged.
    fn commit(&mut self, batch: &[Write]) -> Result<(), StoreError>;
}

/// What failed in the store.
///
/// Each variant names the operation; `detail` is SQLite's (or the operating system's) own
/// message. No variant ever holds record contents. `Clone`, so that every waiter of a failed
/// batch can be handed the same error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be created, opened or configured: no permission, a
    /// directory that does not exist, or a file that is not a SQLite database.
    Open {
        /// The file that was being opened.
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
