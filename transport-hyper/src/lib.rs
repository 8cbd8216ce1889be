//! # livepay-hyper
//!
//! Real HTTP for livepay: hyper 1.x with pooled keep-alive connections on tokio, rustls with
//! certificate verification on by default, per-request timeouts and body caps, secrets redacted
//! from `Debug` and logs, logs through `tracing`.
//!
//! The adapters here only carry out the core's actions and feed back what came back: every
//! decision (when to pay, what a status means, when a session is at risk) is
//! [`livepay_core`]'s.
//!
//! ## A funded session: [`LiveSession`]
//!
//! Reserve (the 402 flow), keep the session funded from one tokio task, watch it, close it:
//!
//! ```no_run
//! use futures::StreamExt;
//! use livepay_core::client::ReserveOptions;
//! use livepay_core::{Event, PaymentType};
//! use livepay_hyper::{LiveOptions, LiveSession};
//!
//! # async fn demo() -> Result<(), livepay_hyper::LiveError> {
//! let reserve = ReserveOptions::new(
//!     "https://orch.example:8935/apps/live-runner/session",
//!     Some("https://signer.example".into()),
//!     PaymentType::Live,
//! )
//! .with_signer_header("Authorization", "Bearer …"); // redacted from every Debug and log
//! let session = LiveSession::reserve(LiveOptions::new(reserve)).await?; // funding starts
//! println!("session {} serves at {}", session.session_id(), session.app_url());
//!
//! let mut events = session.events();
//! tokio::spawn(async move {
//!     while let Some(event) = events.next().await {
//!         if let Event::AtRisk { .. } | Event::Lapsed { .. } = event {
//!             eprintln!("livepay: {event}");
//!         }
//!     }
//! });
//!
//! tokio::select! {
//!     // The orchestrator released it (404 on a payment), or funding was rejected.
//!     reason = session.wait_released() => println!("released: {reason}"),
//!     // … or the stream ended: stop funding, then stop the session.
//!     _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {
//!         let reason = session.close().await?;
//!         println!("closed: {reason}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Unpriced and fixed-price sessions have nothing to fund: no task runs, and
//! [`LiveSession::close`] sends the stop directly. Dropping a session stops funding without
//! any request; the orchestrator releases it when its credit runs out.
//!
//! [`discover`] lists an orchestrator's runners and prices (`GET /discovery`); each
//! [`DiscoveredRunner`] gives the reservation URL, the payment type and a padded `maxPrice`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod discovery;
mod funder;
pub mod http;
mod session;
mod tls;
mod transport;

pub use clock::TokioClock;
pub use discovery::{DiscoveredPrice, DiscoveredRunner, DiscoveryError, discover};
pub use funder::{Funder, FunderClosed, FunderConfig, FunderHandle, FunderStats, SessionKey};
pub use http::{HttpClient, HttpConfig, HttpError, HttpResponse, Peer};
pub use session::{DEFAULT_EVENT_CAPACITY, LiveError, LiveOptions, LiveSession};
pub use transport::{HyperTransport, WireProblem, reserve};

/// `url` without its user-info and query, safe to log or show in an error.
pub(crate) fn redact_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => without_query.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("https://user:secret@signer.example:8935/path?token=abc"),
            "https://signer.example:8935/path"
        );
        assert_eq!(redact_url("http://127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(redact_url("not a url?x"), "not a url");
    }
}
