//! Discovery (`docs/protocol.md` §2.4) over HTTP: the core's [`DiscoveryQuery`] builds the
//! request and reads the answer; [`discover`] only sends it.

use livepay_core::engine::{DiscoveredRunner, DiscoveryError, DiscoveryQuery};

use crate::http::HttpClient;

/// Lists the runners `orchestrator_url` offers (the core's discovery request), with the
/// orchestrator TLS policy. With `app`, only that app's runners are returned (see
/// [`DiscoveryQuery::new`]).
///
/// # Errors
///
/// [`DiscoveryError::Unreachable`] when no usable answer came back (including a bad URL), with
/// the [`Failure`](livepay_core::Failure) and the [`HttpError`](crate::HttpError)'s words (never
/// a secret); [`DiscoveryError::Status`] for an answer other than 2xx;
/// [`DiscoveryError::Malformed`] when the body is not a JSON array.
pub async fn discover(
    http: &HttpClient,
    orchestrator_url: &str,
    app: Option<&str>,
) -> Result<Vec<DiscoveredRunner>, DiscoveryError> {
    let query = DiscoveryQuery::new(orchestrator_url, app);
    match http.execute_owned(query.request()).await {
        Ok(response) => {
            let headers = response.header_pairs();
            query.parse(&response.as_response(&headers))
        }
        Err(error) => {
            tracing::debug!(%error, "livepay: discovery got no answer");
            Err(DiscoveryError::Unreachable {
                failure: error.failure(),
                detail: error.to_string(),
            })
        }
    }
}
