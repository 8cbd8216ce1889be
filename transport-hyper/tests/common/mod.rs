//! Shared setup of the end-to-end tests: a time-scaled served model, a matching client
//! configuration, waits guarded by timeouts, and tiny hand-written HTTP servers.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration as StdDuration;

use futures::{Stream, StreamExt};
use livepay_core::engine::{DiscoveryQuery, Method, Request, ReserveOptions};
use livepay_core::{Config, Duration, Event, PaymentType, Peer, ReleaseReason};
use livepay_hyper::{HttpConfig, LiveOptions, LiveSession};
use livepay_mock::faults::FaultPlan;
use livepay_mock::model::{ModelConfig, Pricing};
use livepay_mock::serve::{ServeConfig, ServedModel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long any single wait may take before the test fails instead of hanging.
pub const GUARD: StdDuration = StdDuration::from_secs(15);

/// The runner every served model has.
pub const RUNNER: &str = "live-runner";

/// The model on a 10× faster clock: 500 ms billing ticks, a 1 s `live` prepay.
pub fn fast_model(pricing: Pricing) -> ModelConfig {
    let mut model = ModelConfig::single(RUNNER, pricing);
    speed_up(&mut model);
    model
}

/// Puts `model` on the 10× faster clock of [`fast_model`]: 500 ms billing ticks, a 1 s `live`
/// prepay.
pub fn speed_up(model: &mut ModelConfig) {
    model.tick = Duration::from_millis(500);
    model.signer.prepay_live = Duration::from_secs(1);
}

/// 1e9 wei per second, the default price.
pub fn live_pricing() -> Pricing {
    Pricing::Live {
        wei_per_second: 1_000_000_000,
    }
}

/// The client configuration matching [`fast_model`], with jitter seed 7.
pub fn fast_config() -> Config {
    let mut config = scaled_config();
    config.seed = 7;
    config
}

/// The client configuration matching [`fast_model`] (300 ms interval, 500 ms server tick, 1 s
/// prepay), with [`Config::new`]'s seed.
pub fn scaled_config() -> Config {
    Config::new(PaymentType::Live).time_scaled(10)
}

/// Serves `model` with `plan`.
pub async fn serve(model: ModelConfig, plan: FaultPlan, seed: u64) -> ServedModel {
    let config = ServeConfig {
        model,
        plan,
        seed,
        ..ServeConfig::default()
    };
    match ServedModel::start(config).await {
        Ok(served) => served,
        Err(error) => panic!("cannot serve the model: {error}"),
    }
}

/// Serves [`fast_model`] at [`live_pricing`] with a clean fault plan.
pub async fn serve_live(seed: u64) -> ServedModel {
    serve(fast_model(live_pricing()), FaultPlan::clean(), seed).await
}

/// Options for a `live` session of [`RUNNER`] on `served`, with the fast client configuration
/// and a 2 s request timeout.
pub fn live_options(served: &ServedModel) -> LiveOptions {
    let reserve = ReserveOptions::new(
        served.runner_url(RUNNER),
        Some(served.signer_url()),
        PaymentType::Live,
    );
    LiveOptions::new(reserve)
        .with_config(fast_config())
        .with_http(quick_http())
}

/// Reserves a session with [`live_options`] (`start_payments` as given), guarded; returns it and
/// its id.
pub async fn reserve_live(served: &ServedModel, start_payments: bool) -> (LiveSession, String) {
    let options = live_options(served).with_start_payments(start_payments);
    let session = guarded("the reservation", LiveSession::reserve(options))
        .await
        .expect("reservation");
    let id = session.session_id().to_owned();
    (session, id)
}

/// Opens `session`'s event stream, then starts its payments.
pub fn start_with_events(session: &LiveSession) -> impl Stream<Item = Event> + Unpin + use<> {
    let events = session.events();
    session.start_payments().expect("start");
    events
}

/// Closes `session`, guarded; returns the reason it was released for.
pub async fn close(session: LiveSession) -> ReleaseReason {
    guarded("close", session.close()).await.expect("close")
}

/// HTTP settings for loopback tests: short timeouts.
pub fn quick_http() -> HttpConfig {
    HttpConfig {
        request_timeout: StdDuration::from_secs(2),
        connect_timeout: StdDuration::from_secs(1),
        ..HttpConfig::default()
    }
}

/// `future`, or a test failure naming `what` after [`GUARD`].
pub async fn guarded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Reads `events` until `done` says the events seen so far (the latest included) are enough;
/// returns them all. Fails on a timeout or the end of the stream.
pub async fn collect_until<S>(
    events: &mut S,
    what: &str,
    mut done: impl FnMut(&[Event]) -> bool,
) -> Vec<Event>
where
    S: Stream<Item = Event> + Unpin,
{
    let mut seen = Vec::new();
    let result = tokio::time::timeout(GUARD, async {
        while let Some(event) = events.next().await {
            seen.push(event);
            if done(&seen) {
                return true;
            }
        }
        false
    })
    .await;
    match result {
        Ok(true) => seen,
        Ok(false) => panic!("event stream ended before {what}; saw {seen:?}"),
        Err(_) => panic!("timed out waiting for {what}; saw {seen:?}"),
    }
}

/// How many of `events` match `pred`.
pub fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

/// Whether `event` is a credited payment.
pub fn is_accepted(event: &Event) -> bool {
    matches!(event, Event::PaymentAccepted { .. })
}

/// Polls `condition` (a look at the model, say) every 20 ms until it holds; fails after
/// [`GUARD`]. For conditions the client cannot be told about (a silent release).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    guarded(what, async {
        while !condition() {
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    })
    .await;
}

/// Drains `events` to its end (the session and its task are gone), returning what was left.
pub async fn drain<S>(events: &mut S) -> Vec<Event>
where
    S: Stream<Item = Event> + Unpin,
{
    guarded("the event stream to end", events.collect::<Vec<_>>()).await
}

/// A request of `method` to `url` for `peer`, without headers or body, for tests that send
/// requests of their own with `HttpClient::execute`. Request ids only come from the core, so this
/// starts from a discovery query's request.
pub fn bare_request(peer: Peer, method: Method, url: &str) -> Request {
    let mut request = DiscoveryQuery::new("http://unused.example", None).request();
    // An endpoint of that peer: its TLS policy is the peer's.
    request.endpoint = match peer {
        Peer::Signer => livepay_core::Endpoint::Signer,
        Peer::Orchestrator => livepay_core::Endpoint::Discovery,
    };
    request.method = method;
    request.url = url.to_owned();
    request.headers.clear();
    request
}

// ---- hand-written servers ------------------------------------------------------------------

/// A loopback HTTP/1.1 server that answers every request with `response` (raw bytes, written as
/// they are) and then closes the connection. Returns its origin.
pub async fn canned_server(response: Vec<u8>) -> String {
    let listener = bind().await;
    let origin = origin_of(&listener);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                if read_request(&mut stream).await.is_some() {
                    let _ = stream.write_all(&response).await;
                }
                // Dropping the stream closes the connection.
            });
        }
    });
    origin
}

/// A loopback server that accepts connections and never answers (nor closes them).
pub async fn hanging_server() -> String {
    let listener = bind().await;
    let origin = origin_of(&listener);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    origin
}

/// A full response: `status`, the headers, `Content-Length` of `body`, `Connection: close`.
pub fn http_response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A listener on a free loopback port.
pub async fn bind() -> TcpListener {
    match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => panic!("cannot bind a loopback listener: {error}"),
    }
}

/// `http://{the listener's address}`.
pub fn origin_of(listener: &TcpListener) -> String {
    match listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(error) => panic!("no local address: {error}"),
    }
}

/// One request as a test server saw it.
pub struct RawRequest {
    /// The request target's path (and query).
    pub path: String,
    /// Header names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

/// Reads one request (head and `Content-Length` body); `None` if the peer went away or the
/// request line is not HTTP.
pub async fn read_request(stream: &mut TcpStream) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(RawRequest {
        path,
        headers,
        body: buf[head_end..head_end + length].to_vec(),
    })
}

/// An HTTPS server on loopback presenting `chain` (signed with `key`, PKCS#8 DER), answering 200
/// to anything. Returns its port.
pub async fn https_ok_server(
    chain: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
    key: Vec<u8>,
) -> u16 {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

/// Signer credentials fetched from the served model's token issuer (`SignerAuth`), each with
/// its life.
pub fn signer_tokens(served: &std::sync::Arc<ServedModel>) -> livepay_hyper::CredentialSource {
    use futures::FutureExt as _;
    let served = std::sync::Arc::clone(served);
    livepay_hyper::CredentialSource::new(move || {
        let token = served.issue_signer_token();
        async move {
            token.map(|(value, life)| livepay_core::engine::Credential {
                name: "Authorization".into(),
                value,
                expires_in: Some(life),
            })
        }
        .boxed()
    })
}
