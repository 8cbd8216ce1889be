//! A restart or a takeover: closed records back in the registry (their generation refuses a
//! replayed handoff), and every session this daemon claims funded again from its last durable
//! snapshot, the shortest runway first; a record no engine accepts is closed, not retried.

use livepay_core::engine::Snapshot;
use livepay_core::{Duration, ReleaseReason, State};

use super::{Entry, Service, ServiceError, unix_ms};
use crate::spec::SessionSpec;
use crate::store::{SessionRecord, Write};

impl Service {
    /// Puts every closed record of `records` in the registry (open ones wait for a claim).
    pub(super) fn remember_closed(&self, records: Vec<SessionRecord>) {
        for record in records {
            let Some(reason) = record.closed else {
                continue;
            };
            let spec: Result<SessionSpec, _> = serde_json::from_str(&record.spec);
            let snapshot: Result<Snapshot, _> = serde_json::from_str(&record.snapshot);
            let (Ok(spec), Ok(snapshot)) = (spec, snapshot) else {
                tracing::warn!(id = %record.id, "livepay daemon: an unreadable record is left alone");
                continue;
            };
            let mut entry = Entry::new(
                spec,
                None,
                State::Released {
                    reason: ReleaseReason::ClosedByClient,
                },
                Some(reason),
            );
            // A handed-off session's record holds the handoff's snapshot: its generation
            // refuses that snapshot replayed here.
            entry.generation = snapshot.generation;
            entry.epoch = record.epoch;
            self.shared.registry().by_id.insert(record.id, entry);
        }
    }

    /// Funds every record just claimed (each under its new epoch); the number funded. A session
    /// whose stop was asked meanwhile (a `DELETE` on another daemon, an app gone) is stopped
    /// rather than funded.
    pub(super) fn resume_claimed(&self, records: Vec<SessionRecord>) -> usize {
        let now_ms = unix_ms();
        let mut open = Vec::with_capacity(records.len());
        for record in records {
            let spec: Result<SessionSpec, _> = serde_json::from_str(&record.spec);
            let snapshot: Result<Snapshot, _> = serde_json::from_str(&record.snapshot);
            let (Ok(spec), Ok(snapshot)) = (spec, snapshot) else {
                tracing::warn!(id = %record.id, "livepay daemon: an unreadable record is closed");
                self.shared.writer.submit(Write::Close {
                    id: record.id,
                    reason: "unusable record: unreadable".into(),
                    at_ms: now_ms,
                    epoch: record.epoch,
                });
                continue;
            };
            let elapsed_ms = now_ms.saturating_sub(record.updated_ms);
            let left_ms = u64::from(snapshot.funding.runway_ms).saturating_sub(elapsed_ms);
            open.push((left_ms, record, spec, snapshot, Duration::from_millis(elapsed_ms)));
        }
        // The shortest runway first: the funder's lanes serve requests in the order they come,
        // so a restart never leaves the same sessions at the back of the queue every time (a
        // daemon restarted again and again would starve them).
        open.sort_by_key(|(left_ms, ..)| *left_ms);
        let mut resumed = 0;
        for (_, record, spec, snapshot, elapsed) in open {
            let id = record.id;
            match self.add(&id, spec, &snapshot, elapsed, None, record.epoch) {
                Ok(()) => {
                    resumed += 1;
                    self.adopt_stored_leases(
                        &id,
                        record.app_lease_until_ms,
                        record.close_requested.as_deref(),
                    );
                }
                Err(ServiceError::Resume(why)) => {
                    // A record no engine accepts (an older build stored it, or another process
                    // wrote it): closed with the reason, so it is neither funded nor warned
                    // about at every start.
                    tracing::warn!(%id, %why, "livepay daemon: an unusable session record is closed");
                    self.shared.writer.submit(Write::Close {
                        id,
                        reason: format!("unusable record: {why}"),
                        at_ms: unix_ms(),
                        epoch: record.epoch,
                    });
                }
                Err(error) => {
                    tracing::warn!(%id, ?error, "livepay daemon: a session could not be resumed");
                }
            }
        }
        resumed
    }
}
