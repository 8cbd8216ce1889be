//! `GET /metrics` over HTTP/1.1 with axum.

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use super::Metrics;

/// The content type of a scrape: OpenMetrics 1.0 text, what [`Metrics::encode`] writes.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router answering `GET /metrics` (and `HEAD`) with [`Metrics::encode`]; another method on
/// `/metrics` gets 405, any other path 404. Merge it into a larger API, or serve it alone with
/// [`serve_metrics`].
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        metrics.encode(),
    )
}

/// Serves [`metrics_router`] on `listener` until the task is dropped or aborted. Taking a bound
/// listener lets the caller bind port 0 and report the real address, and report a bind failure
/// as its own error.
///
/// The scrape carries no secret, but it does describe the traffic: bind it to loopback or a
/// private network.
///
/// # Errors
///
/// None in practice: [`axum::serve()`] retries a failed accept (a full file table, say) after
/// a pause rather than ending; the `Result` is its signature's.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) -> io::Result<()> {
    axum::serve(listener, metrics_router(metrics)).await
}
