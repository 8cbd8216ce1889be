//! [`Health`]: whether every task that funds sessions is alive. A panic in one (the funder, the
//! pumps of its events and exits) stops the funding of every session while the API could go on
//! answering: the daemon must say so (`/healthz` fails) and exit non-zero, so that a supervisor
//! restarts it and the store resumes the sessions within their runway.

use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The daemon's health: healthy until a watched task panics.
#[derive(Debug, Default)]
pub struct Health {
    failed: OnceLock<String>,
    notify: Notify,
}

impl Health {
    /// A healthy daemon.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Why the daemon is not healthy (the first failure); `None` when it is.
    pub fn failed(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    /// Records a failure (the first one is kept) and wakes [`failure`](Self::failure).
    pub fn fail(&self, why: String) {
        tracing::error!(%why, "livepay daemon: a funding task failed; the daemon stops so that it can be restarted");
        let _ = self.failed.set(why);
        self.notify.notify_waiters();
    }

    /// Resolves once the daemon has failed.
    pub async fn failure(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.failed.get().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Watches `task` (named `name`): a panic fails the daemon. A task that ends otherwise ends
    /// with the funder, at shutdown. The receiver resolves once the task has ended, however.
    pub fn watch<T: Send + 'static>(
        self: &Arc<Self>,
        name: &'static str,
        task: JoinHandle<T>,
    ) -> tokio::sync::oneshot::Receiver<()> {
        let health = Arc::clone(self);
        let (ended, on_end) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Err(e) = task.await
                && e.is_panic()
            {
                health.fail(format!("the {name} task panicked"));
            }
            let _ = ended.send(());
        });
        on_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_fails_the_daemon_and_wakes_who_waits() {
        let health = Health::new();
        assert_eq!(health.failed(), None);
        let waiting = tokio::spawn({
            let health = Arc::clone(&health);
            async move { health.failure().await }
        });
        drop(health.watch("quiet", tokio::spawn(async {})));
        let ended = health.watch(
            "funder",
            tokio::spawn(async { panic!("overflow when adding durations") }),
        );
        waiting.await.expect("woken");
        ended.await.expect("the end is told");
        assert_eq!(health.failed(), Some("the funder task panicked"));
        // Later failures keep the first reason.
        health.fail("another".into());
        assert_eq!(health.failed(), Some("the funder task panicked"));
    }

    #[tokio::test]
    async fn a_task_that_ends_without_panicking_leaves_the_daemon_healthy() {
        let health = Health::new();
        let task = tokio::spawn(async { 7 });
        health.watch("pump", task).await.expect("ended");
        assert_eq!(health.failed(), None);
    }
}
