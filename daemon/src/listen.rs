//! The API's accept loop, with the limits `axum::serve` lacks: a header-read timeout (a
//! half-sent request head is closed), a connection cap (idle sockets cannot exhaust the
//! descriptors the funding client needs), and a shutdown deadline (a slow client cannot keep a
//! stopping daemon alive). Each limit logs when it acts.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// The API's connection limits ([`DaemonOptions::api_limits`](crate::run::DaemonOptions::api_limits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// The longest a connection may take to send a request head (the first, and each next on a
    /// kept-alive connection); then it is closed.
    pub header_timeout: Duration,
    /// The most API connections open at once; more wait in the listen backlog. `None`: a
    /// quarter of the process's descriptor limit (between 16 and 1,024), the rest kept for the
    /// funding client's connections and the store.
    pub max_connections: Option<usize>,
    /// How long a stopping daemon waits for open API connections to finish, then closes them.
    pub shutdown_deadline: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            max_connections: None,
            shutdown_deadline: Duration::from_secs(5),
        }
    }
}

impl ApiLimits {
    /// The connection cap in force ([`max_connections`](Self::max_connections), or derived from
    /// the descriptor limit), and that limit when known.
    pub fn connection_cap(&self) -> (usize, Option<u64>) {
        let descriptors = descriptor_limit();
        let derived = descriptors.map_or(256, |n| usize::try_from(n / 4).unwrap_or(1_024).clamp(16, 1_024));
        (
            self.max_connections
                .unwrap_or(derived)
                .clamp(1, Semaphore::MAX_PERMITS),
            descriptors,
        )
    }
}

/// The process's soft limit on open descriptors, from `/proc/self/limits` (Linux); `None`
/// elsewhere or when unlimited.
fn descriptor_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `stop` changes, within `limits`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ApiLimits,
    mut stop: watch::Receiver<()>,
) {
    let (cap, descriptors) = limits.connection_cap();
    tracing::info!(
        cap,
        descriptors = ?descriptors,
        header_timeout = ?limits.header_timeout,
        "livepay daemon: API connection limits"
    );
    let slots = Arc::new(Semaphore::new(cap));
    let mut slot: Option<OwnedSemaphorePermit> = None;
    let mut conns = JoinSet::new();
    let mut at_cap = false;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            acquired = Arc::clone(&slots).acquire_owned(), if slot.is_none() => match acquired {
                Ok(permit) => {
                    if at_cap {
                        at_cap = false;
                        tracing::info!(cap, "livepay daemon: API connections below the cap again");
                    }
                    slot = Some(permit);
                }
                Err(_) => break,
            },
            accepted = listener.accept(), if slot.is_some() => match accepted {
                Ok((stream, _)) => {
                    let Some(permit) = slot.take() else { continue };
                    if slots.available_permits() == 0 && !at_cap {
                        at_cap = true;
                        tracing::warn!(cap, "livepay daemon: API connection cap reached; new connections wait");
                    }
                    conns.spawn(connection(stream, router.clone(), limits.header_timeout, stop.clone(), permit));
                }
                Err(error) => {
                    // Out of descriptors, say: back off rather than spin.
                    tracing::warn!(%error, "livepay daemon: API accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let open = conns.len();
    let drained = tokio::time::timeout(limits.shutdown_deadline, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            of = open,
            deadline = ?limits.shutdown_deadline,
            "livepay daemon: API connections still open at the shutdown deadline are closed"
        );
        conns.shutdown().await;
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    router: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<()>,
    permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let service = TowerToHyperService::new(router);
    let conn = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(error) = result {
        if error.is_timeout() {
            tracing::info!(
                ?header_timeout,
                "livepay daemon: closed an API connection that sent no request head in time"
            );
        } else {
            tracing::debug!(%error, "livepay daemon: API connection closed");
        }
    }
    drop(permit);
}
