//! The funder's write-ahead in the daemon: each new signer state durable under this daemon's
//! epoch, while its lease holds, before the POST carrying it.

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use livepay_core::engine::Snapshot;
use livepay_hyper::{Persisted, SessionKey, WriteAhead};

use super::{Shared, unix_ms};
use crate::store::Write;

/// How often a write-ahead on a fleet's store looks again at a batch the store failed.
pub(super) const WRITE_AHEAD_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The funder's write-ahead: each new signer state, durable before its POST.
pub(super) struct Persist(pub(super) Arc<Shared>);

impl WriteAhead for Persist {
    /// Durable under this daemon's epoch while its lease holds: the POST goes. A fenced write, a
    /// lease that may have lapsed, a session lost: refused, the POST never goes. A store that
    /// fails: on a single-process store (SQLite), given up after `write_ahead_timeout` (the
    /// POST goes: availability over crash safety); on a fleet's store, retried until durable or
    /// lost, because another daemon may claim the session meanwhile.
    fn persist(&self, key: SessionKey, snapshot: Snapshot) -> BoxFuture<'static, Persisted> {
        let shared = Arc::clone(&self.0);
        let taken_ms = unix_ms();
        async move {
            let Some((id, epoch)) = shared.held(key) else {
                return Persisted::Refused;
            };
            if !shared.until_leased(key, epoch).await {
                return Persisted::Refused;
            }
            let Ok(text) = serde_json::to_string(&snapshot) else {
                return Persisted::Failed;
            };
            let ticket = shared.writer.submit(Write::Snapshot {
                id: id.clone(),
                snapshot: text,
                at_ms: taken_ms,
                epoch,
            });
            let single = shared.config.fleet.single_process;
            let started = tokio::time::Instant::now();
            let outcome = loop {
                let left = shared
                    .config
                    .write_ahead_timeout
                    .saturating_sub(started.elapsed())
                    .max(std::time::Duration::from_millis(1));
                match tokio::time::timeout(left, shared.writer.durable(ticket)).await {
                    Ok(Ok(())) => break Persisted::Durable,
                    Ok(Err(
                        crate::store::StoreError::Fenced { .. } | crate::store::StoreError::WriterStopped,
                    )) => {
                        break Persisted::Refused;
                    }
                    _ if single && started.elapsed() >= shared.config.write_ahead_timeout => {
                        break Persisted::Failed;
                    }
                    // The writer retries the batch; look again soon, unless the session is gone.
                    _ => {
                        if shared.held(key).is_none_or(|(_, held)| held != epoch) {
                            break Persisted::Refused;
                        }
                        tokio::time::sleep(WRITE_AHEAD_POLL).await;
                    }
                }
            };
            shared.note(&id, &snapshot, taken_ms, false);
            // Durable, but the lease must still hold, and the session still be this daemon's,
            // when the POST goes out.
            let outcome = match outcome {
                Persisted::Durable | Persisted::Failed if !shared.until_leased(key, epoch).await => {
                    Persisted::Refused
                }
                other => other,
            };
            if outcome == Persisted::Durable
                && let Some(n) = shared.config.abort_after_write_ahead
            {
                let done = shared
                    .written_ahead
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                if done >= n {
                    tracing::warn!("livepay daemon: aborting after {done} states written ahead (test hook)");
                    std::process::abort();
                }
            }
            outcome
        }
        .boxed()
    }

    fn checkpoint(&self, key: SessionKey, snapshot: Snapshot) {
        let Some((id, epoch)) = self.0.held(key) else {
            return;
        };
        let taken_ms = unix_ms();
        if let Ok(text) = serde_json::to_string(&snapshot) {
            self.0.writer.submit(Write::Snapshot {
                id: id.clone(),
                snapshot: text,
                at_ms: taken_ms,
                epoch,
            });
        }
        self.0.note(&id, &snapshot, taken_ms, true);
    }
}
