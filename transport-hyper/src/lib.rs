//! # livepay-hyper
//!
//! Real HTTP for livepay: hyper 1.x with pooled keep-alive connections on tokio, rustls with
//! certificate verification on by default, per-request timeouts and body caps, secrets redacted
//! from `Debug` and logs, logs through `tracing`.
//!
//! The adapters here only carry out the core's actions and feed back what came back: every
//! decision (when to pay, what a status means, when a session is at risk) is
//! [`livepay_core`]'s.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod funder;
pub mod http;
mod tls;
mod transport;

pub use clock::TokioClock;
pub use funder::{Funder, FunderClosed, FunderConfig, FunderHandle, FunderStats, SessionKey};
pub use http::{HttpClient, HttpConfig, HttpError, HttpResponse, Peer};
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
