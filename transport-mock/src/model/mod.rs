//! A sans-IO, deterministic model of a go-livepeer orchestrator and a remote signer on virtual time.
//!
//! The model speaks HTTP-shaped values ([`Request`], [`Response`]) so the same [`World`] can be served over
//! real HTTP or wrapped by an in-memory client transport. It never reads a clock: every input takes
//! `now: embassy_time::Instant`, and [`World::next_deadline`] tells a simulation when the next
//! orchestrator tick is due so it can jump virtual time. Same seed and same inputs give the same outputs.
//!
//! Method taxonomy of [`World`]: getters on `&self` (`now`, `next_deadline`, `orchestrator`, `signer`,
//! accounting accessors); inputs on `&mut self` taking `now` (`handle`, `advance`). Instants that go
//! backwards are clamped to the latest instant seen.

pub mod config;
pub mod dialect;
pub mod orchestrator;
pub mod signer;
pub(crate) mod token;
pub mod wire;

#[cfg(test)]
pub(crate) mod testkit;

use embassy_time::Instant;
use serde::Serialize;

pub use config::{
    DEFAULT_PRICE_WEI, DEFAULT_TICKET_EV_WEI, JitterFn, ManifestIds, ModelConfig, PIXELS_PER_SECOND_720P,
    PriceKind, Pricing, RunnerConfig, SignerConfig,
};
pub use orchestrator::{HostedSession, Orchestrator, OrchestratorStats, Release, ReleaseCause};
pub use signer::{Signer, SignerStats};

use livepay_core::rng::SplitMix64;
use token::Key;

/// Header names of the protocol.
pub mod headers {
    /// The payer address on a reservation.
    pub const PAYER_ADDRESS: &str = "Livepeer-Payer-Address";
    /// Base64 tickets.
    pub const PAYMENT: &str = "Livepeer-Payment";
    /// Base64 segment credentials.
    pub const SEGMENT: &str = "Livepeer-Segment";
    /// The orchestrator URL on a signer 480.
    pub const ORCHESTRATOR_URL: &str = "Livepeer-Orchestrator-URL";
    /// `Content-Type`.
    pub const CONTENT_TYPE: &str = "Content-Type";
}

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `HEAD`.
    Head,
    /// Any other method, upper case.
    Other(String),
}

impl Method {
    /// Parse a method name (case-insensitive).
    #[must_use]
    pub fn parse(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "HEAD" => Self::Head,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The method name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
            Self::Other(name) => name,
        }
    }
}

/// Which server of the world a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    /// The go-livepeer orchestrator.
    Orchestrator,
    /// The remote signer.
    Signer,
}

/// An HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Path and optional query (`/apps/r/session?app=x`). A full URL (`http://host/path`) is accepted
    /// too: scheme and authority are ignored.
    pub path_and_query: String,
    /// Headers; names are matched case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body.
    #[must_use]
    pub fn new(method: Method, path_and_query: impl Into<String>) -> Self {
        Self {
            method,
            path_and_query: path_and_query.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET`.
    #[must_use]
    pub fn get(path_and_query: impl Into<String>) -> Self {
        Self::new(Method::Get, path_and_query)
    }

    /// A `POST` with a body.
    #[must_use]
    pub fn post(path_and_query: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::new(Method::Post, path_and_query)
        }
    }

    /// A `POST` with a JSON body.
    #[must_use]
    pub fn post_json<T: Serialize>(path_and_query: impl Into<String>, body: &T) -> Self {
        Self::post(path_and_query, serde_json::to_vec(body).unwrap_or_default())
            .with_header(headers::CONTENT_TYPE, "application/json")
    }

    /// This request with one more header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The path, without scheme, authority or query.
    #[must_use]
    pub fn path(&self) -> &str {
        let mut rest = self.path_and_query.as_str();
        for scheme in ["http://", "https://"] {
            if let Some(after) = rest.strip_prefix(scheme) {
                rest = after.find('/').map_or("/", |i| &after[i..]);
                break;
            }
        }
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        &rest[..end]
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a status and nothing else.
    #[must_use]
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response.
    #[must_use]
    pub fn json<T: Serialize>(status: u16, body: &T) -> Self {
        Self {
            status,
            headers: vec![(headers::CONTENT_TYPE.into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    /// A plain-text response.
    #[must_use]
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![(headers::CONTENT_TYPE.into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A go-livepeer JSON error `{"error": {"message": …}}`.
    #[must_use]
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            &wire::ErrorBody {
                error: wire::ErrorMessage {
                    message: message.to_owned(),
                },
            },
        )
    }

    /// This response with one more header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body parsed as JSON, if it is.
    #[must_use]
    pub fn json_body<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as text (lossy).
    #[must_use]
    pub fn text_body(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The modelled world: one orchestrator and one remote signer on a shared virtual clock.
#[derive(Debug)]
pub struct World {
    now: Instant,
    orchestrator: Orchestrator,
    signer: Signer,
}

impl World {
    /// A world with `config`, all randomness (keys, manifest ids, jitter draws) derived from `seed`.
    /// Virtual time starts at `Instant::from_ticks(0)`.
    #[must_use]
    pub fn new(config: ModelConfig, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let orch_key = Key::new(rng.next_u64(), rng.next_u64());
        let signer_key = Key::new(rng.next_u64(), rng.next_u64());
        let orch_rng = SplitMix64::new(rng.next_u64());
        let signer = Signer::new(config.signer.clone(), signer_key);
        let orchestrator = Orchestrator::new(config, orch_rng, orch_key, signer_key);
        Self {
            now: Instant::from_ticks(0),
            orchestrator,
            signer,
        }
    }

    /// The latest instant the world has seen.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Serve one request at `now`: runs every tick due up to `now` first.
    pub fn handle(&mut self, now: Instant, host: Host, req: &Request) -> Response {
        self.advance(now);
        let now = self.now;
        match host {
            Host::Orchestrator => self.orchestrator.handle(now, req),
            Host::Signer => self.signer.handle(now, req),
        }
    }

    /// Run every orchestrator tick due up to and including `now`.
    pub fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        self.orchestrator.advance(self.now);
    }

    /// The earliest pending orchestrator tick (always after [`World::now`] once advanced), if any.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.orchestrator.next_deadline()
    }

    /// The orchestrator (accessors for assertions).
    #[must_use]
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }

    /// The orchestrator, mutable (e.g. to change a runner's price).
    pub fn orchestrator_mut(&mut self) -> &mut Orchestrator {
        &mut self.orchestrator
    }

    /// The signer (accessors for assertions).
    #[must_use]
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// When session `session_id` was released, if it was.
    #[must_use]
    pub fn released_at(&self, session_id: &str) -> Option<Instant> {
        self.orchestrator.released_at(session_id)
    }

    /// The orchestrator-side balance of session `session_id` (wei), if it has a live balance record.
    #[must_use]
    pub fn session_balance(&self, session_id: &str) -> Option<u128> {
        self.orchestrator.session_balance(self.now, session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_path_strips_origin_and_query() {
        assert_eq!(Request::get("/discovery?x=1").path(), "/discovery");
        assert_eq!(
            Request::get("http://orch.invalid/apps/r/session?app=a").path(),
            "/apps/r/session"
        );
        assert_eq!(Request::get("https://h:8935").path(), "/");
        let req = Request::get("/").with_header("livepeer-payment", "x");
        assert_eq!(req.header("Livepeer-Payment"), Some("x"));
    }

    #[test]
    fn method_parse_round_trips() {
        for m in ["GET", "post", "Put", "DELETE", "HEAD", "PATCH"] {
            assert_eq!(Method::parse(m).as_str(), m.to_ascii_uppercase());
        }
    }

    #[test]
    fn time_clamps_and_deadline_is_future() {
        let mut w = World::new(ModelConfig::default(), 1);
        w.advance(Instant::from_secs(10));
        w.advance(Instant::from_secs(3));
        assert_eq!(w.now(), Instant::from_secs(10));
        assert_eq!(w.next_deadline(), None);
    }
}
