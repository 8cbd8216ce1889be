//! An in-memory [`Store`] for tests, with injectable commit failures.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{SessionRecord, Store, StoreError, Write};

/// An in-memory [`Store`]: same semantics as [`SqliteStore`](super::SqliteStore), nothing on
/// disk.
///
/// Clones share one state, so a test can hand a clone to the writer and keep another to
/// inspect the records, count commits, or make the next commits fail.
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Mutex<MemoryState>>,
}

#[derive(Default)]
struct MemoryState {
    /// A `BTreeMap` keyed by id yields records in id order, as [`Store::load`] promises.
    records: BTreeMap<String, SessionRecord>,
    fail_next: usize,
    commits: u64,
    failed_commits: u64,
}

impl fmt::Debug for MemoryStore {
    /// Shows counts only, never record contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MemoryStore")
            .field("records", &state.records.len())
            .field("fail_next", &state.fail_next)
            .field("commits", &state.commits)
            .field("failed_commits", &state.failed_commits)
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Makes the next `count` calls to [`commit`](Store::commit) fail with
    /// [`StoreError::Commit`], changing nothing (replaces any earlier count).
    pub fn fail_next_commits(&self, count: usize) {
        self.state().fail_next = count;
    }

    /// How many commits succeeded.
    pub fn commits(&self) -> u64 {
        self.state().commits
    }

    /// How many commits failed (the injected failures).
    pub fn failed_commits(&self) -> u64 {
        self.state().failed_commits
    }

    /// Every record, in id order, without needing `&mut` (unlike [`Store::load`]).
    pub fn records(&self) -> Vec<SessionRecord> {
        self.state().records.values().cloned().collect()
    }

    /// The record of `id`, if any.
    pub fn record(&self, id: &str) -> Option<SessionRecord> {
        self.state().records.get(id).cloned()
    }

    fn state(&self) -> MutexGuard<'_, MemoryState> {
        // Every mutation below completes before the guard drops, so a panic elsewhere while
        // holding the lock cannot leave a half-applied batch: the state is safe to reuse.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(self.records())
    }

    fn commit(&mut self, batch: &[Write]) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.fail_next > 0 {
            state.fail_next -= 1;
            state.failed_commits += 1;
            return Err(StoreError::Commit {
                detail: "injected failure (MemoryStore)".into(),
            });
        }
        for write in batch {
            apply(&mut state.records, write);
        }
        state.commits += 1;
        Ok(())
    }
}

/// Applies one write with the semantics of the SQLite statements (see `sqlite.rs`).
fn apply(records: &mut BTreeMap<String, SessionRecord>, write: &Write) {
    match write {
        Write::Put {
            id,
            spec,
            snapshot,
            at_ms,
        } => {
            records.insert(
                id.clone(),
                SessionRecord {
                    id: id.clone(),
                    spec: spec.clone(),
                    snapshot: snapshot.clone(),
                    closed: None,
                    updated_ms: *at_ms,
                },
            );
        }
        Write::Snapshot { id, snapshot, at_ms } => {
            if let Some(record) = records.get_mut(id) {
                record.snapshot.clone_from(snapshot);
                record.updated_ms = *at_ms;
            }
        }
        Write::Close { id, reason, at_ms } => {
            if let Some(record) = records.get_mut(id) {
                record.closed = Some(reason.clone());
                record.updated_ms = *at_ms;
            }
        }
    }
}
