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
//! the model too. The
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
//! the connection closed. Nothing a client sends makes the server panic. Requests are logged with
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
use hyper_util::rt::TokioIo;
use livepay_core::{Endpoint, Reply};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::debug;

use crate::faults::{Fate, FaultPlan};
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
}

#[derive(Debug)]
struct ServerState {
    world: World,
    faults: SplitMix64,
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
    /// Binds both listeners and spawns the accept loops on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Binding either address fails (e.g. the port is in use).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(config: ServeConfig) -> std::io::Result<Self> {
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
            }),
            plan: config.plan,
            epoch: tokio::time::Instant::now(),
            orchestrator_url,
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
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    if shared.plan.partitioned(ORIGIN, shared.now()) {
                        debug!(?host, "connection reset (partition)");
                        reset(&stream);
                        continue;
                    }
                    conns.spawn(serve_connection(stream, host, Arc::clone(&shared)));
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
    let service = service_fn(move |req| serve_request(Arc::clone(&shared), host, req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        // No timer is configured: the model runs on tokio's (possibly paused) clock.
        .header_read_timeout(None)
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
    let body = match read_body(body).await {
        Ok(body) => body,
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
                    state.world.handle(now, host, &request)
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
