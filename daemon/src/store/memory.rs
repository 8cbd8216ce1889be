//! An in-memory [`Store`] for tests, with injectable commit failures.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Committed, LeaseTerms, Renewal, SessionRecord, Store, StoreError, Write};

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
    /// Each daemon's heartbeat: alive until (unix ms).
    daemons: HashMap<String, u64>,
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

impl MemoryState {
    /// The injected failure, if one is due.
    fn injected(&mut self) -> Result<(), StoreError> {
        if self.fail_next > 0 {
            self.fail_next -= 1;
            self.failed_commits += 1;
            return Err(StoreError::Commit {
                detail: "injected failure (MemoryStore)".into(),
            });
        }
        Ok(())
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(self.records())
    }

    fn get(&mut self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.record(id))
    }

    fn commit(&mut self, owner: &str, batch: &[Write]) -> Result<Committed, StoreError> {
        let mut state = self.state();
        state.injected()?;
        let mut committed = Committed::default();
        for (index, write) in batch.iter().enumerate() {
            if !apply(&mut state.records, owner, write) {
                committed.fenced.push(index);
            }
        }
        state.commits += 1;
        Ok(committed)
    }

    fn claim(
        &mut self,
        terms: LeaseTerms<'_>,
        max: usize,
        all: bool,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut state = self.state();
        state.injected()?;
        let mut expired: Vec<(u64, String)> = state
            .records
            .values()
            .filter(|r| r.closed.is_none())
            .filter(|r| {
                if all {
                    r.owner.as_deref() != Some(terms.owner)
                } else {
                    r.owner.is_none() || r.lease_until_ms < terms.now_ms
                }
            })
            .map(|r| (r.lease_until_ms, r.id.clone()))
            .collect();
        // The longest-expired first, as the SQL stores order them.
        expired.sort();
        let mut claimed = Vec::new();
        for (_, id) in expired.into_iter().take(max) {
            if let Some(record) = state.records.get_mut(&id) {
                record.owner = Some(terms.owner.to_owned());
                record.epoch = record.epoch.saturating_add(1);
                record.lease_until_ms = terms.now_ms.saturating_add(terms.lease_ms);
                claimed.push(record.clone());
            }
        }
        Ok(claimed)
    }

    fn renew(&mut self, terms: LeaseTerms<'_>, held: &[(String, u64)]) -> Result<Renewal, StoreError> {
        let mut state = self.state();
        state.injected()?;
        let until = terms.now_ms.saturating_add(terms.lease_ms);
        let mut renewal = Renewal::default();
        for (id, epoch) in held {
            match state.records.get_mut(id) {
                Some(record)
                    if record.closed.is_none()
                        && record.epoch == *epoch
                        && record.owner.as_deref() == Some(terms.owner) =>
                {
                    record.lease_until_ms = until;
                    if let Some(reason) = &record.close_requested {
                        renewal.close_requested.push((id.clone(), reason.clone()));
                    }
                    if let Some(app) = record.app_lease_until_ms {
                        renewal.app_leases.push((id.clone(), app));
                    }
                }
                _ => renewal.lost.push(id.clone()),
            }
        }
        state.daemons.insert(terms.owner.to_owned(), until);
        renewal.daemons_alive = state.daemons.values().filter(|u| **u >= terms.now_ms).count();
        renewal.open_sessions = state.records.values().filter(|r| r.closed.is_none()).count();
        Ok(renewal)
    }

    fn release(&mut self, owner: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        state.injected()?;
        for record in state.records.values_mut() {
            if record.owner.as_deref() == Some(owner) {
                record.lease_until_ms = 0;
            }
        }
        state.daemons.remove(owner);
        Ok(())
    }

    fn request_close(&mut self, id: &str, reason: &str) -> Result<Option<SessionRecord>, StoreError> {
        let mut state = self.state();
        state.injected()?;
        Ok(state.records.get_mut(id).map(|record| {
            if record.closed.is_none() && record.close_requested.is_none() {
                record.close_requested = Some(reason.to_owned());
            }
            record.clone()
        }))
    }

    fn renew_app(&mut self, id: &str, until_ms: u64) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.injected()?;
        Ok(match state.records.get_mut(id) {
            Some(record) if record.closed.is_none() => {
                record.app_lease_until_ms = Some(until_ms);
                true
            }
            _ => false,
        })
    }
}

/// Applies one write as `owner` with the semantics of the SQL statements (see `sqlite.rs`):
/// false when its condition fails and nothing changed.
fn apply(records: &mut BTreeMap<String, SessionRecord>, owner: &str, write: &Write) -> bool {
    let owns = |record: &SessionRecord, epoch: u64| {
        record.closed.is_none() && record.epoch == epoch && record.owner.as_deref() == Some(owner)
    };
    match write {
        Write::Put {
            id,
            spec,
            snapshot,
            at_ms,
            epoch,
            lease_until_ms,
            app_lease_until_ms,
        } => {
            let allowed = records.get(id).is_none_or(|record| {
                (record.closed.is_some() && record.epoch < *epoch) || owns(record, *epoch)
            });
            if allowed {
                let mut record = SessionRecord::new(id, spec, snapshot, *at_ms);
                record.owner = Some(owner.to_owned());
                record.epoch = *epoch;
                record.lease_until_ms = *lease_until_ms;
                record.app_lease_until_ms = *app_lease_until_ms;
                records.insert(id.clone(), record);
            }
            allowed
        }
        Write::Snapshot {
            id,
            snapshot,
            at_ms,
            epoch,
        } => match records.get_mut(id) {
            Some(record) if owns(record, *epoch) => {
                record.snapshot.clone_from(snapshot);
                record.updated_ms = *at_ms;
                true
            }
            _ => false,
        },
        Write::Close {
            id,
            reason,
            at_ms,
            epoch,
        } => match records.get_mut(id) {
            Some(record) if owns(record, *epoch) => {
                record.closed = Some(reason.clone());
                record.updated_ms = *at_ms;
                true
            }
            _ => false,
        },
    }
}
