//! The core's [`Http`] implemented over an [`HttpClient`] ([`HyperHttp`]), and the reservation's
//! pump ([`reserve`]): each sends what the core builds and hands back what came back, deciding
//! nothing.

use bytes::Bytes;
use livepay_core::Clock as _;
use livepay_core::engine::{
    Adoption, Credential, Delivery, Http, Output, Request, ReserveError, ReserveFlow, ReserveOptions,
    Reserved,
};
use livepay_core::redact;

use crate::clock::TokioClock;
use crate::http::{HttpClient, HttpError};
use crate::session::{CredentialSource, LiveError};

/// The core's [`Http`] adapter over an [`HttpClient`]: what [`Engine::run`] sends through. It
/// stamps each request's send time on `clock` right before the request is handed to hyper
/// (after anything that waited before it), so that the core's billing estimate and latency
/// count from when the bytes left.
///
/// Cheap to clone (the client's pools are shared).
///
/// [`Engine::run`]: livepay_core::engine::Engine::run
#[derive(Debug, Clone)]
pub struct HyperHttp {
    client: HttpClient,
    clock: TokioClock,
    credentials: Option<CredentialSource>,
}

impl HyperHttp {
    /// An adapter sending through `client`, stamping send times on `clock` (the clock the
    /// engine runs on).
    pub const fn new(client: HttpClient, clock: TokioClock) -> Self {
        Self {
            client,
            clock,
            credentials: None,
        }
    }

    /// The same adapter, with `credentials` as the source of fresh signer credentials
    /// ([`Http::refresh_credential`]).
    #[must_use]
    pub fn with_credentials(mut self, credentials: Option<CredentialSource>) -> Self {
        self.credentials = credentials;
        self
    }

    /// The client.
    pub const fn client(&self) -> &HttpClient {
        &self.client
    }

    /// The clock send times are stamped on.
    pub const fn clock(&self) -> &TokioClock {
        &self.clock
    }

    /// Sends `request` and keeps the error's detail (which [`Http::send`] reduces to a
    /// [`Failure`](livepay_core::Failure)): `sent_at` is when it was handed to hyper, `None`
    /// when it could not be sent at all (a bad URL).
    pub async fn exchange(&self, request: Request) -> Delivery<Bytes, HttpError> {
        let (endpoint, deadline) = (request.endpoint, request.deadline);
        let prepared = match self.client.prepare_owned(request) {
            Ok(prepared) => prepared,
            Err(error) => {
                tracing::debug!(%endpoint, %error, "livepay: not sent");
                return Delivery {
                    sent_at: None,
                    result: Err(error),
                };
            }
        };
        let sent_at = Some(self.clock.now());
        let started = tokio::time::Instant::now();
        let exchange = self.client.exchange(endpoint.peer(), prepared);
        // The engine's deadline for this request (the stop's), when shorter than the client's
        // own timeout.
        let result = match deadline {
            Some(limit) => {
                let limit = std::time::Duration::from_micros(limit.as_micros());
                tokio::time::timeout(limit, exchange)
                    .await
                    .unwrap_or(Err(HttpError::Timeout))
            }
            None => exchange.await,
        };
        self.client.observe(endpoint, started, &result);
        match &result {
            Ok(response) => tracing::debug!(%endpoint, status = response.status, "livepay: answer"),
            Err(error) => tracing::debug!(%endpoint, %error, "livepay: no answer"),
        }
        Delivery { sent_at, result }
    }
}

impl Http for HyperHttp {
    type Body = Bytes;

    async fn send(&self, request: Request) -> Delivery<Bytes> {
        self.exchange(request).await.map_err(|e| e.failure())
    }

    async fn refresh_credential(&self) -> Option<Credential> {
        match &self.credentials {
            Some(source) => source.fetch().await,
            None => None,
        }
    }
}

/// Runs the reservation (the 402 flow, `docs/protocol.md` §2.1, §2.3) of `options` over `http`:
/// the core's [`ReserveFlow`] builds every request and reads every answer; this only sends them,
/// each with its peer's TLS policy.
///
/// The payer address is cached per signer in `http` (shared by its clones): a known one is not
/// asked for again, a successful reservation caches the one it used, and a failed one
/// that used the cached address drops it ([`ReserveFlow::update_cache`]).
///
/// [`Reserved::minted_at`] is on `clock`: fund the session on the same clock (a
/// [`LiveSession`](crate::LiveSession) does; for a [`Funder`](crate::Funder), pass
/// [`Funder::clock`](crate::Funder::clock)).
///
/// # Errors
///
/// [`LiveError::Reserve`] when the options are invalid or the reservation was refused or its
/// answers unusable; [`LiveError::Unreachable`] when a request got no usable HTTP answer, with the
/// [`HttpError`]. No other variant.
pub async fn reserve(
    http: &HttpClient,
    clock: &TokioClock,
    options: ReserveOptions,
) -> Result<Reserved, LiveError> {
    reserve_until(http, clock, options, std::future::pending()).await
}

/// [`reserve`], cancelled when `cancel` resolves, if the flow says nothing was paid yet
/// ([`ReserveFlow::payment_left`]): then it ends at once with [`LiveError::Cancelled`]. Once the
/// paid reservation has left, `cancel` is ignored and the reservation finishes, so that the
/// caller can stop the session it paid for rather than leave it to run on its prepay.
///
/// # Errors
///
/// As [`reserve`], and [`LiveError::Cancelled`].
pub async fn reserve_until(
    http: &HttpClient,
    clock: &TokioClock,
    options: ReserveOptions,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<Reserved, LiveError> {
    let flow = ReserveFlow::with_cache(options, &http.payers())?;
    run_flow(http, clock, flow, cancel).await
}

/// A session reserved by another client, ready to fund ([`ReserveFlow::adopt`]): at most one
/// request, the payer address when this client has not learnt it yet (cached per signer, as
/// for reservations). An unknown [`Adoption::minted_at`] assumes the prepay spent at `clock`'s
/// now.
///
/// # Errors
///
/// [`LiveError::Reserve`] with [`ReserveError::BadAdoption`] for an unusable field; as
/// [`reserve`] for the signer's answer.
pub async fn adopt(
    http: &HttpClient,
    clock: &TokioClock,
    options: ReserveOptions,
    adoption: Adoption,
) -> Result<Reserved, LiveError> {
    let flow = ReserveFlow::adopt(options, adoption, &http.payers(), clock.now())?;
    run_flow(http, clock, flow, std::future::pending()).await
}

/// Pumps `flow` to its end (see [`reserve_until`] for `cancel`).
async fn run_flow(
    http: &HttpClient,
    clock: &TokioClock,
    mut flow: ReserveFlow,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<Reserved, LiveError> {
    let adapter = HyperHttp::new(http.clone(), *clock);
    let cancel = futures::FutureExt::fuse(cancel);
    futures::pin_mut!(cancel);
    let mut cancelled = false;
    // The core only sees a `Failure`; keep the detail of the request that got no answer.
    let mut unanswered = None;
    let result = loop {
        if cancelled && !flow.payment_left() {
            break Err(ReserveError::Unfinished);
        }
        match flow.poll_output(clock.now()) {
            Some(Output::Transmit(request)) => {
                let id = request.id;
                let paid = flow.payment_left();
                let exchange = adapter.exchange(request);
                let exchange = if paid || cancelled {
                    exchange.await
                } else {
                    futures::pin_mut!(exchange);
                    tokio::select! {
                        biased;
                        () = &mut cancel => {
                            // Nothing paid has left: the request is abandoned.
                            cancelled = true;
                            continue;
                        }
                        exchange = &mut exchange => exchange,
                    }
                };
                if let Some(at) = exchange.sent_at {
                    flow.handle_sent(at, id);
                }
                match exchange.result {
                    Ok(response) => {
                        let headers = response.header_pairs();
                        flow.handle_response(clock.now(), id, &response.as_response(&headers));
                    }
                    Err(error) => {
                        flow.handle_failure(clock.now(), id, error.failure());
                        unanswered = Some(error);
                    }
                }
            }
            Some(Output::Timeout(at)) => {
                if flow.payment_left() || cancelled {
                    clock.sleep_until(at).await;
                } else {
                    tokio::select! {
                        biased;
                        () = &mut cancel => cancelled = true,
                        () = clock.sleep_until(at) => {}
                    }
                }
            }
            Some(Output::Done(result)) => break result,
            // A reservation persists nothing, asks for no credential and cancels nothing.
            Some(_) => {}
            None => break Err(ReserveError::Unfinished),
        }
    };
    if cancelled && !flow.payment_left() {
        tracing::debug!("livepay: reservation cancelled before its payment left");
        return Err(LiveError::Cancelled);
    }
    flow.update_cache(&mut http.payers());
    match result {
        Ok(reserved) => {
            tracing::debug!(session = %reserved.session_id, app = %redact::url(&reserved.app_url), "livepay: reserved");
            Ok(reserved)
        }
        Err(ReserveError::Unreachable { endpoint, reply }) => Err(match unanswered {
            Some(error) => LiveError::Unreachable { endpoint, error },
            None => LiveError::Reserve(ReserveError::Unreachable { endpoint, reply }),
        }),
        Err(error) => Err(LiveError::Reserve(error)),
    }
}
