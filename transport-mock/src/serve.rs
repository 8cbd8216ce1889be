//! The orchestrator and signer [model](crate::model) served over real HTTP/1.1 on loopback, on real
//! time, with a [`FaultPlan`] applied: point the hyper transport, the CLI or any other Livepeer client
//! (e.g. the official Python SDK) at [`ServedModel::orchestrator_url`] and [`ServedModel::signer_url`].
//!
//! Two listeners share one [`World`] behind a lock: requests to the orchestrator listener go to
//! [`Host::Orchestrator`], requests to the signer listener to [`Host::Signer`]. Connections are served by
//! hyper's HTTP/1.1 server with keep-alive.
//!
//! # Time
//!
//! Model time is the time elapsed since [`ServedModel::start`] on tokio's clock, so a test that pauses
//! tokio time (tokio's `test-util`: `#[tokio::test(start_paused = true)]`, `tokio::time::advance`) moves
//! the model too (set [`ServeLimits`]' timeouts to `None` then: paused time would fire them). The
//! world's billing ticks run lazily: every request (and [`ServedModel::with_world`]) first advances the
//! world to now.
//!
//! # Faults
//!
//! Each request is mapped to an [`Endpoint`] by its listener and path:
//!
//! | listener | path | endpoint |
//! | --- | --- | --- |
//! | signer | `/generate-live-payment` | [`Endpoint::Signer`] |
//! | orchestrator | `/apps/{runner}/session/{id}/payment` | [`Endpoint::Payment`] |
//! | orchestrator | `/refresh-payment` | [`Endpoint::Refresh`] |
//! | orchestrator | `/apps/{runner}/session/{id}/stop` | [`Endpoint::Stop`] |
//!
//! and its fate drawn with [`FaultPlan::fate`] (origin: model time 0, client timeout 30 s: the server
//! cannot know the client's) from a generator seeded by [`ServeConfig::seed`]:
//!
//! - refused or partitioned: the connection is closed at once, without an answer;
//! - timeout: no answer, ever; the request is held until the client hangs up or [`ServedModel::shutdown`];
//! - a 503 / 408 / 429 (from the endpoint's rates or a 503 [window](crate::faults::Window)): answered
//!   after the fate's delay without calling the model;
//! - a window that refuses: the connection is closed at once, without an answer;
//! - delivered: the model is called half the latency after the request arrived and the answer is written
//!   after the other half. A `generate-live-payment` call in a refresh storm is answered 480 with the
//!   `Livepeer-Orchestrator-URL` header, with probability [`FaultPlan::storm_rate`] at that instant,
//!   without calling the model;
//! - a lost answer: the model is called half the latency after the request arrived (it credits, mints,
//!   refreshes as usual), then the request is held unanswered like a timeout.
//!
//! Windows are measured from model time 0, like partitions. A window that starts at `"mid"` only applies
//! once resolved against the run's length ([`FaultPlan::resolved`]; `livepay serve-sim --run-duration`
//! does it); unresolved, it never applies. A replayed payment POST is a payment POST to the server: the
//! payment endpoint's faults and windows apply to it.
//!
//! Other paths (discovery, reservation, `sign-orchestrator-info`, unknown paths) get no per-endpoint
//! faults and no latency, but partitions apply to them: during a partition every request is closed
//! unanswered and new connections are reset as soon as they are accepted.
//!
//! Client suspends ([`FaultPlan::client_suspends`]) are a client-side fault and do not apply here.
//! Tick jitter ([`FaultPlan::tick_jitter_ms`]) is not applied either: the served world ticks on its own
//! configuration ([`Config::tick`](crate::model::ModelConfig::tick), [`Config::tick_jitter`](crate::model::ModelConfig::tick_jitter)).
//!
//! # Limits
//!
//! Request bodies are capped at 1 MiB: a larger one is answered 413 (after discarding up to 4 MiB of it,
//! so that the client reads the answer rather than a reset). Malformed HTTP is answered by hyper (400) and
//! the connection closed. Slow and silent clients are bounded by [`ServeLimits`] (defaults: 5 s for a
//! request head, 10 s for its body, 1024 connections per listener): a connection that has not sent a
//! complete head in time (or sits idle that long between requests) is closed, a body that stalls is
//! answered 408 and closed, and at the cap a listener stops accepting until one of its connections
//! closes, so new clients wait in the listen backlog instead of the process running out of file
//! descriptors. Nothing a client sends makes the server panic. Requests are logged with
//! `tracing` at debug level (listener, method, path without query, status), never bodies or headers.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use livepay_mock::serve::{ServeConfig, ServedModel};
//!
//! let served = ServedModel::start(ServeConfig::default()).await?;
//! let reserve = served.runner_url("live-runner"); // http://127.0.0.1:PORT/apps/live-runner/session
//! let signer = served.signer_url();
//! // … run a client against them …
//! let payments = served.with_world(|w| w.orchestrator().stats().payments_accepted);
//! served.shutdown().await;
//! # let _ = (reserve, signer, payments);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use embassy_time::{Duration, Instant};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response as HyperResponse, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use livepay_core::{Endpoint, Reply};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::debug;

use crate::faults::{Fate, FaultPlan};
use crate::model::dialect::{self, Dialect, SignerAuth};
use crate::model::{Host, Method, ModelConfig, Request, Response, World, headers};
use livepay_core::rng::SplitMix64;

/// Requests bodies larger than this are answered 413.
const MAX_BODY: usize = 1 << 20;
/// An oversized body is read and discarded up to this size before the 413, so the client is not reset
/// while it still sends; beyond it the connection is closed after the answer.
const DRAIN_CAP: usize = 4 << 20;
/// The client timeout assumed when drawing fates: the server does not know the client's.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The origin of the fault plan's windows: model time 0, the instant of [`ServedModel::start`].
const ORIGIN: Instant = Instant::from_ticks(0);
/// Mixed into [`ServeConfig::seed`] for the fault generator, so it does not replay the world's stream.
const FAULT_STREAM: u64 = 0x6661_756c_7473_2121;

/// How to serve the model. `Default`: both listeners on `127.0.0.1:0` (an ephemeral port each), the
/// default [`ModelConfig`], a clean [`FaultPlan`], seed 1.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the orchestrator listens. Default `127.0.0.1:0`.
    pub orchestrator_addr: SocketAddr,
    /// Where the remote signer listens (a second listener). Default `127.0.0.1:0`.
    pub signer_addr: SocketAddr,
    /// The model. Its [`ModelConfig::service_url`] is replaced by the bound orchestrator URL.
    pub model: ModelConfig,
    /// The faults to apply. Default [`FaultPlan::clean`].
    pub plan: FaultPlan,
    /// Seeds the world and the fault draws. Default 1.
    pub seed: u64,
    /// Which server the model plays (`docs/protocol.md`, "Dialects"). Default go-livepeer.
    pub dialect: Dialect,
    /// A signer behind expiring tokens and a credit limit; `None` (the default): an open signer.
    pub signer_auth: Option<SignerAuth>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            orchestrator_addr: loopback,
            signer_addr: loopback,
            model: ModelConfig::default(),
            plan: FaultPlan::clean(),
            seed: 1,
            dialect: Dialect::GoLivepeer,
            signer_auth: None,
        }
    }
}

/// The default [`ServeLimits::header_timeout`]: 5 s. A client on loopback sends a request head in
/// microseconds and the livepay clients pay every few seconds, so 5 s never cuts a real request short
/// and bounds how long a silent or half-sent connection holds a file descriptor.
pub const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The default [`ServeLimits::body_timeout`]: 10 s, twice the header timeout: bodies here are a few
/// KiB of JSON (at most 1 MiB), read in well under a second on loopback, so 10 s only stops stalls.
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The default [`ServeLimits::max_connections`]: 1024 per listener, far above what a test, the demo
/// or a gateway under test keeps open at once (a pool of a few connections per client), so the cap
/// only bites on floods. Under a lower open-file limit, lower it too (see the field).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// What one client can hold of the server, so that slow or silent clients (slowloris: connections
/// that send part of a request, or nothing, and wait) cannot exhaust its file descriptors and make
/// both listeners unresponsive. `Default`: [`DEFAULT_HEADER_TIMEOUT`], [`DEFAULT_BODY_TIMEOUT`],
/// [`DEFAULT_MAX_CONNECTIONS`].
///
/// The limits apply to connections; they are not faults and draw nothing from the fault generator.
/// Requests held unanswered by a timeout or lost-answer fault stay held: their request was read in
/// full, and they end when the client hangs up.
///
/// The timeouts run on tokio's clock, like the model. Under paused tokio time, auto-advance fires them
/// as soon as the runtime idles, even while a client's bytes are in flight: a test that pauses time
/// should set both to `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// How long a connection may take to send a complete request head (request line and headers),
    /// counted from the moment the server starts reading it: from the accept for the first request,
    /// from the end of the previous answer for the next ones on a kept-alive connection. Past it the
    /// connection is closed without an answer. It therefore also closes kept-alive connections idle
    /// for that long (a client's pool reconnects). `None`: no limit.
    pub header_timeout: Option<std::time::Duration>,
    /// How long the body may take to arrive once the head has been read (including the discarded part
    /// of an oversized body). Past it the request is answered 408 with `Connection: close` and the
    /// connection closed. The whole request is read within `header_timeout + body_timeout`. `None`: no
    /// limit.
    pub body_timeout: Option<std::time::Duration>,
    /// The most connections one listener serves at once (each listener has its own cap, so a flood on
    /// the orchestrator's does not starve the signer's, and the reverse). At the cap the listener stops
    /// accepting until one of its connections closes: new connections wait in the kernel's listen
    /// backlog and are served once a slot frees (the timeouts free the slots slow clients hold), rather
    /// than being refused. To keep the process clear of its open-file limit, set it below half that
    /// limit (two listeners), e.g. 500 under `ulimit -n 1024`; the timeouts still free slots and file
    /// descriptors held by slow clients either way. 0 is taken as 1.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Some(DEFAULT_HEADER_TIMEOUT),
            body_timeout: Some(DEFAULT_BODY_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The model, served. Dropping it without [`ServedModel::shutdown`] also stops the accept loops (without
/// waiting for them).
#[derive(Debug)]
pub struct ServedModel {
    shared: Arc<ServerShared>,
    signer_url: String,
    /// Dropped to stop the accept loops.
    stop: watch::Sender<()>,
    loops: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct ServerShared {
    state: Mutex<ServerState>,
    plan: FaultPlan,
    epoch: tokio::time::Instant,
    orchestrator_url: String,
    limits: ServeLimits,
}

#[derive(Debug)]
struct ServerState {
    world: World,
    faults: SplitMix64,
    dialect: Dialect,
    signer_auth: Option<SignerAuth>,
}

impl ServerShared {
    fn lock(&self) -> MutexGuard<'_, ServerState> {
        // A panic inside `with_world` must not take the server down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Instant {
        let micros = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(micros)
    }
}

impl ServedModel {
    /// Binds both listeners and spawns the accept loops on the current tokio runtime, with the default
    /// [`ServeLimits`].
    ///
    /// # Errors
    ///
    /// Binding either address fails (e.g. the port is in use).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(config: ServeConfig) -> std::io::Result<Self> {
        Self::start_limited(config, ServeLimits::default()).await
    }

    /// [`ServedModel::start`] with `limits` instead of the default ones: shorter timeouts for a test of
    /// slow clients, a lower connection cap under a low open-file limit, or no timeouts under paused
    /// tokio time. (The limits are a separate argument rather than [`ServeConfig`] fields so that
    /// callers that spell out a whole `ServeConfig` keep compiling.)
    ///
    /// # Errors
    ///
    /// Binding either address fails (e.g. the port is in use).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start_limited(config: ServeConfig, limits: ServeLimits) -> std::io::Result<Self> {
        let orchestrator = TcpListener::bind(config.orchestrator_addr).await?;
        let signer = TcpListener::bind(config.signer_addr).await?;
        let orchestrator_url = url_of(orchestrator.local_addr()?);
        let signer_url = url_of(signer.local_addr()?);
        let mut model = config.model;
        model.service_url.clone_from(&orchestrator_url);
        let shared = Arc::new(ServerShared {
            state: Mutex::new(ServerState {
                world: World::new(model, config.seed),
                faults: SplitMix64::new(config.seed ^ FAULT_STREAM),
                dialect: config.dialect,
                signer_auth: config.signer_auth,
            }),
            plan: config.plan,
            epoch: tokio::time::Instant::now(),
            orchestrator_url,
            limits,
        });
        let (stop, stopped) = watch::channel(());
        let loops = vec![
            tokio::spawn(accept_loop(
                orchestrator,
                Host::Orchestrator,
                Arc::clone(&shared),
                stopped.clone(),
            )),
            tokio::spawn(accept_loop(signer, Host::Signer, Arc::clone(&shared), stopped)),
        ];
        Ok(Self {
            shared,
            signer_url,
            stop,
            loops,
        })
    }

    /// The orchestrator's origin, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn orchestrator_url(&self) -> String {
        self.shared.orchestrator_url.clone()
    }

    /// The signer's origin, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn signer_url(&self) -> String {
        self.signer_url.clone()
    }

    /// The reservation URL of runner `runner_id`: `{orchestrator}/apps/{runner_id}/session`.
    #[must_use]
    pub fn runner_url(&self, runner_id: &str) -> String {
        format!("{}/apps/{runner_id}/session", self.shared.orchestrator_url)
    }

    /// Model time: the time elapsed on tokio's clock since [`ServedModel::start`].
    #[must_use]
    pub fn now(&self) -> Instant {
        self.shared.now()
    }

    /// Issues a signer token as `POST {signer}/token` would (for tests that fetch credentials
    /// without HTTP): the header value and its life; `None` without a [`SignerAuth`].
    pub fn issue_signer_token(&self) -> Option<(String, embassy_time::Duration)> {
        let mut state = self.shared.lock();
        let now = self.shared.now();
        let auth = state.signer_auth.as_mut()?;
        let (token, life) = auth.issue_token(now);
        Some((format!("Bearer {token}"), life))
    }

    /// Signer tokens issued so far (0 without a [`SignerAuth`]).
    pub fn signer_tokens_issued(&self) -> u64 {
        self.shared
            .lock()
            .signer_auth
            .as_ref()
            .map_or(0, SignerAuth::tokens_issued)
    }

    /// Runs `f` on the model under its lock, after advancing it to now. Keep `f` short: requests wait
    /// for the lock.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut state = self.shared.lock();
        let now = self.shared.now();
        state.world.advance(now);
        f(&mut state.world)
    }

    /// Stops accepting and closes connections, including held (timed-out) requests.
    pub async fn shutdown(self) {
        let Self { stop, loops, .. } = self;
        drop(stop);
        for handle in loops {
            if let Err(error) = handle.await {
                debug!(%error, "accept loop ended abnormally");
            }
        }
    }
}

fn url_of(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        // Bound on every interface: name the loopback one.
        let ip = if addr.is_ipv4() {
            std::net::IpAddr::from(Ipv4Addr::LOCALHOST)
        } else {
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        };
        addr.set_ip(ip);
    }
    format!("http://{addr}")
}

async fn accept_loop(
    listener: TcpListener,
    host: Host,
    shared: Arc<ServerShared>,
    mut stop: watch::Receiver<()>,
) {
    let cap = shared.limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(cap));
    // The slot the next accepted connection takes. The listener accepts only while it holds one: at
    // the cap, new connections wait in the listen backlog (see `ServeLimits::max_connections`).
    let mut slot: Option<OwnedSemaphorePermit> = None;
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            acquired = Arc::clone(&slots).acquire_owned(), if slot.is_none() => match acquired {
                Ok(permit) => slot = Some(permit),
                Err(_) => break, // Never closed; if it were, nothing more could be served.
            },
            accepted = listener.accept(), if slot.is_some() => match accepted {
                Ok((stream, _peer)) => {
                    if shared.plan.partitioned(ORIGIN, shared.now()) {
                        debug!(?host, "connection reset (partition)");
                        reset(&stream);
                        continue;
                    }
                    if let Some(permit) = slot.take() {
                        if slots.available_permits() == 0 {
                            debug!(?host, cap, "connection cap reached: not accepting until one closes");
                        }
                        let shared = Arc::clone(&shared);
                        conns.spawn(async move {
                            serve_connection(stream, host, shared).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    debug!(?host, %error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// Closes `stream` with a reset rather than an orderly shutdown, like a refused connection.
fn reset(stream: &TcpStream) {
    if let Err(error) = stream.set_zero_linger() {
        debug!(%error, "SO_LINGER");
    }
}

async fn serve_connection(stream: TcpStream, host: Host, shared: Arc<ServerShared>) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%error, "TCP_NODELAY");
    }
    let header_timeout = shared.limits.header_timeout;
    let service = service_fn(move |req| serve_request(Arc::clone(&shared), host, req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        // On tokio's clock, like the model (see `ServeLimits` on paused time).
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = conn.await {
        debug!(?host, %error, "connection closed");
    }
}

/// The service error that makes hyper close the connection without answering.
#[derive(Debug)]
struct Hangup;

impl fmt::Display for Hangup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("closed without an answer (network fault)")
    }
}

impl std::error::Error for Hangup {}

enum BodyError {
    TooLarge,
    Broken,
    /// Not all of it within [`ServeLimits::body_timeout`].
    TimedOut,
}

async fn read_body(mut body: Incoming) -> Result<Vec<u8>, BodyError> {
    let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    if declared > DRAIN_CAP {
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue; // Trailers.
        };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_CAP {
            return Err(BodyError::TooLarge);
        }
        if seen <= MAX_BODY {
            out.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

/// The endpoint of the fault plan a request to `host` at `path` belongs to.
fn endpoint_of(host: Host, path: &str) -> Option<Endpoint> {
    let path = path.trim_matches('/');
    match host {
        Host::Signer => (path == "generate-live-payment").then_some(Endpoint::Signer),
        Host::Orchestrator => {
            let segs: Vec<&str> = path.split('/').collect();
            match segs.as_slice() {
                ["refresh-payment"] => Some(Endpoint::Refresh),
                ["apps", _, "session", _, "payment"] => Some(Endpoint::Payment),
                ["apps", _, "session", _, "stop"] => Some(Endpoint::Stop),
                _ => None,
            }
        }
    }
}

fn to_std(d: Duration) -> std::time::Duration {
    std::time::Duration::from_micros(d.as_micros())
}

async fn pause(d: Duration) {
    if d.as_ticks() > 0 {
        tokio::time::sleep(to_std(d)).await;
    }
}

async fn serve_request(
    shared: Arc<ServerShared>,
    host: Host,
    req: hyper::Request<Incoming>,
) -> Result<HyperResponse<Full<Bytes>>, Hangup> {
    let (parts, body) = req.into_parts();
    let method = Method::parse(parts.method.as_str());
    let path = parts.uri.path().to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| String::from("/"), |pq| pq.as_str().to_owned());
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let log = |status: u16| debug!(?host, method = method.as_str(), path = %path, status, "served");
    let read = read_body(body);
    let read = match shared.limits.body_timeout {
        Some(limit) => tokio::time::timeout(limit, read)
            .await
            .unwrap_or(Err(BodyError::TimedOut)),
        None => read.await,
    };
    let body = match read {
        Ok(body) => body,
        Err(BodyError::TimedOut) => {
            log(408);
            let mut answer = to_hyper(Response::text(408, "request body timed out"));
            answer
                .headers_mut()
                .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(answer);
        }
        Err(BodyError::TooLarge) => {
            log(413);
            return Ok(to_hyper(Response::text(413, "request body too large")));
        }
        Err(BodyError::Broken) => {
            debug!(?host, method = method.as_str(), path = %path, "request body broken");
            return Err(Hangup);
        }
    };
    let request = Request {
        method: method.clone(),
        path_and_query,
        headers,
        body,
    };
    let endpoint = endpoint_of(host, &path);
    let plan = &shared.plan;
    let fate = {
        let mut state = shared.lock();
        let sent = shared.now();
        match endpoint {
            Some(endpoint) => plan.fate_at(endpoint, ORIGIN, ORIGIN, sent, CLIENT_TIMEOUT, &mut state.faults),
            None if plan.partitioned(ORIGIN, sent) => Fate::Failed {
                after: Duration::from_ticks(0),
                reply: Reply::Network,
            },
            None => Fate::Delivered {
                latency: Duration::from_ticks(0),
            },
        }
    };
    match fate {
        Fate::Failed {
            reply: Reply::Timeout,
            ..
        } => {
            debug!(?host, method = method.as_str(), path = %path, "held unanswered (timeout fault)");
            std::future::pending::<()>().await;
            Err(Hangup)
        }
        Fate::Failed {
            after,
            reply: Reply::Status(status),
        } => {
            pause(after).await;
            log(status);
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("injected fault");
            Ok(to_hyper(Response::text(status, reason)))
        }
        // A refused connection, a network fault, or any other failure without an answer: all a
        // server can do is close the connection unanswered.
        Fate::Failed { .. } => {
            debug!(?host, method = method.as_str(), path = %path, "closed unanswered (network fault)");
            Err(Hangup)
        }
        Fate::Delivered { latency } | Fate::LostAnswer { latency, .. } => {
            let lost = matches!(fate, Fate::LostAnswer { .. });
            let first_half = latency / 2;
            pause(first_half).await;
            let response = {
                let mut state = shared.lock();
                let now = shared.now();
                let storm =
                    endpoint == Some(Endpoint::Signer) && state.faults.chance(plan.storm_rate(ORIGIN, now));
                if storm {
                    state.world.advance(now);
                    Response::error(480, "refresh required")
                        .with_header(headers::ORCHESTRATOR_URL, shared.orchestrator_url.as_str())
                } else {
                    let ServerState {
                        world,
                        dialect,
                        signer_auth,
                        ..
                    } = &mut *state;
                    dialect::handle(world, *dialect, signer_auth.as_mut(), now, host, &request)
                }
            };
            if lost {
                debug!(
                    ?host,
                    method = method.as_str(),
                    path = %path,
                    status = response.status,
                    "processed, answer held (lost-answer fault)"
                );
                std::future::pending::<()>().await;
                return Err(Hangup);
            }
            pause(latency - first_half).await;
            log(response.status);
            Ok(to_hyper(response))
        }
    }
}

fn to_hyper(response: Response) -> HyperResponse<Full<Bytes>> {
    let mut out = HyperResponse::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            out.headers_mut().append(name, value);
        }
    }
    out
}
