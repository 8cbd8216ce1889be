//! A restart: every stored record back in the registry, open sessions funded again, the
//! shortest runway first; a record no engine accepts is closed, not retried at every start.

use livepay_core::engine::Snapshot;
use livepay_core::{Duration, ReleaseReason, State};

use super::{Entry, Service, ServiceError, unix_ms};
use crate::spec::SessionSpec;
use crate::store::{SessionRecord, Write};

impl Service {
    pub(super) fn resume_all(&self, records: Vec<SessionRecord>) -> usize {
        let now_ms = unix_ms();
        let mut open = Vec::with_capacity(records.len());
        for record in records {
            let spec: Result<SessionSpec, _> = serde_json::from_str(&record.spec);
            let snapshot: Result<Snapshot, _> = serde_json::from_str(&record.snapshot);
            let (Ok(spec), Ok(snapshot)) = (spec, snapshot) else {
                tracing::warn!(id = %record.id, "livepay daemon: an unreadable record is left alone");
                continue;
            };
            if let Some(reason) = record.closed {
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
                self.shared.registry().by_id.insert(record.id.clone(), entry);
                continue;
            }
            let elapsed_ms = now_ms.saturating_sub(record.updated_ms);
            let left_ms = u64::from(snapshot.funding.runway_ms).saturating_sub(elapsed_ms);
            open.push((
                left_ms,
                record.id,
                spec,
                snapshot,
                Duration::from_millis(elapsed_ms),
            ));
        }
        // The shortest runway first: the funder's lanes serve requests in the order they come,
        // so a restart never leaves the same sessions at the back of the queue every time (a
        // daemon restarted again and again would starve them).
        open.sort_by_key(|(left_ms, ..)| *left_ms);
        let mut resumed = 0;
        for (_, id, spec, snapshot, elapsed) in open {
            match self.add(&id, spec, &snapshot, elapsed, None) {
                Ok(()) => resumed += 1,
                Err(ServiceError::Resume(why)) => {
                    // A record no engine accepts (an older build stored it, or another process
                    // wrote the file): closed with the reason, so it is neither funded nor warned
                    // about at every start.
                    tracing::warn!(%id, %why, "livepay daemon: an unusable session record is closed");
                    self.shared.writer.submit(Write::Close {
                        id,
                        reason: format!("unusable record: {why}"),
                        at_ms: unix_ms(),
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
