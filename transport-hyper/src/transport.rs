//! The core's [`Transport`] over real HTTP: carries out actions, feeds back replies, decides
//! nothing.

use std::sync::Mutex;

use livepay_core::client::ReserveError;
use livepay_core::client::{
    Answer, HttpRequest, PaymentSession, ReserveFlow, ReserveOptions, Reserved, origin,
};
use livepay_core::{Endpoint, Reply, Transport};

use crate::http::{HttpClient, HttpError, Peer};

/// The last thing that went wrong on the wire, for logs and error reports (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireProblem {
    /// No usable HTTP answer.
    Http {
        /// The request.
        endpoint: Endpoint,
        /// What failed.
        error: HttpError,
    },
    /// An HTTP answer the protocol client flagged (bad body, error status with its message).
    Protocol {
        /// The request.
        endpoint: Endpoint,
        /// The client's description.
        message: String,
    },
}

/// Carries out a funded session's requests with an [`HttpClient`]; the protocol state (signer
/// state, minted payment, payment params) lives in the [`PaymentSession`].
#[derive(Debug)]
pub struct HyperTransport {
    http: HttpClient,
    session: Mutex<PaymentSession>,
    last_problem: Mutex<Option<WireProblem>>,
}

impl HyperTransport {
    /// A transport for `session` over `http`.
    pub fn new(http: HttpClient, session: PaymentSession) -> Self {
        Self {
            http,
            session: Mutex::new(session),
            last_problem: Mutex::new(None),
        }
    }

    /// The session id (the manifest id).
    pub fn session_id(&self) -> String {
        self.lock().manifest_id().to_owned()
    }

    /// The most recent problem seen on the wire, if any.
    pub fn last_problem(&self) -> Option<WireProblem> {
        self.last_problem.lock().map_or(None, |p| p.clone())
    }

    /// A copy of the protocol state (secrets stay redacted in its `Debug`).
    pub fn session(&self) -> PaymentSession {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PaymentSession> {
        // A panic while holding the lock cannot leave the protocol state half-written: every
        // update is a single assignment. Recover the guard rather than propagate the poison.
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn note(&self, problem: Option<WireProblem>) {
        if let Some(p) = &problem {
            tracing::debug!(problem = ?p, "livepay: wire problem");
        }
        if let Ok(mut last) = self.last_problem.lock()
            && problem.is_some()
        {
            *last = problem;
        }
    }

    /// Sends `request` to `peer`; on an answer, lets `apply` update the protocol state.
    async fn exchange(
        &self,
        endpoint: Endpoint,
        peer: Peer,
        request: HttpRequest,
        apply: impl FnOnce(&mut PaymentSession, u16, &[u8]) -> Answer,
    ) -> Reply {
        match self.http.execute(peer, &request).await {
            Ok(response) => {
                let answer = apply(&mut self.lock(), response.status, &response.body);
                tracing::debug!(endpoint = endpoint.as_str(), status = response.status, reply = %answer.reply, "livepay: answer");
                self.note(answer.error.map(|e| WireProblem::Protocol {
                    endpoint,
                    message: e.to_string(),
                }));
                answer.reply
            }
            Err(error) => {
                let reply = error.reply();
                tracing::debug!(endpoint = endpoint.as_str(), %error, "livepay: no answer");
                self.note(Some(WireProblem::Http { endpoint, error }));
                reply
            }
        }
    }
}

impl Transport for HyperTransport {
    async fn request_payment(&self, _cycle: u32) -> Reply {
        let request = self.lock().signer_request();
        self.exchange(
            Endpoint::Signer,
            Peer::Signer,
            request,
            PaymentSession::on_signer_response,
        )
        .await
    }

    async fn send_payment(&self) -> Reply {
        let Some(request) = self.lock().payment_request() else {
            // Nothing minted: the driver only sends after a signer 200, so this is a bug upstream;
            // report it as no answer rather than panic.
            return Reply::Network;
        };
        self.exchange(
            Endpoint::Payment,
            Peer::Orchestrator,
            request,
            PaymentSession::on_payment_response,
        )
        .await
    }

    async fn refresh(&self) -> Reply {
        let request = self.lock().refresh_request();
        self.exchange(
            Endpoint::Refresh,
            Peer::Orchestrator,
            request,
            PaymentSession::on_refresh_response,
        )
        .await
    }

    async fn stop(&self) -> Reply {
        let request = self.lock().stop_request();
        self.exchange(
            Endpoint::Stop,
            Peer::Orchestrator,
            request,
            PaymentSession::on_stop_response,
        )
        .await
    }
}

/// Runs the 402 reservation flow of `options` over `http`: requests to the signer's origin use
/// the signer's TLS policy, the rest the orchestrator's.
pub async fn reserve(http: &HttpClient, options: ReserveOptions) -> Result<Reserved, ReserveError> {
    let signer_origin = options.signer_url.as_deref().and_then(origin);
    let mut flow = ReserveFlow::new(options)?;
    while let Some(request) = flow.poll_request() {
        let peer = if signer_origin.is_some() && origin(&request.url) == signer_origin {
            Peer::Signer
        } else {
            Peer::Orchestrator
        };
        match http.execute(peer, &request).await {
            Ok(response) => flow.handle_response(response.status, &response.body),
            Err(error) => {
                tracing::debug!(%error, "livepay: reservation request failed");
                flow.handle_failure(error.reply());
            }
        }
    }
    flow.result()
}
