//! The faithful [`World`] model as an in-memory network: livepay-core's protocol
//! [`Engine`](livepay_core::engine::Engine) and its [`ReserveFlow`], end to end on virtual time,
//! without sockets.
//!
//! This module only moves bytes, as any adapter does: it builds no request, reads no status and
//! knows no endpoint. The core's engine says what to send; the model answers it.
//!
//! - [`MemoryNet`]: the world, a [`VirtualClock`] (the core's) and a fixed latency per request.
//!   [`MemoryNet::execute`] carries one [`Request`] to the orchestrator or the signer (routed by
//!   its URL's origin) at once, moving the clock by the latency. The world is advanced lazily to
//!   the clock's instant: before each request is served, and whenever it is looked at
//!   ([`MemoryNet::world`], [`MemoryNet::world_mut`]), so orchestrator ticks and silent releases
//!   happen at their modelled instants.
//! - [`MemoryHttp`]: the net as an [`Http`] adapter, for [`Engine::run`](livepay_core::engine::Engine::run)
//!   on any executor (see `tests/tests/e2e_memory_*.rs`).
//! - [`reserve`]: drives a [`ReserveFlow`] over the net.
//!
//! # Example: reserve, then fund for a minute, by hand
//!
//! Every request over the net completes at once, so a plain loop pumps the engine: send what
//! it asks for, hand back what came back, sleep (jump) to its next timer.
//!
//! ```
//! use livepay_core::engine::{Engine, Output, Response};
//! use livepay_core::{Config, Duration, PaymentType, StatusTable};
//! use livepay_mock::memory::{MemoryNet, reserve};
//! use livepay_mock::model::{self, World};
//!
//! let net = MemoryNet::new(World::new(model::ModelConfig::default(), 7));
//! let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live))?;
//! let session_id = reserved.session_id.clone();
//! let mut engine = Engine::new(&Config::new(PaymentType::Live), reserved, StatusTable::new())?;
//! engine.start(net.now());
//! let until = net.now() + Duration::from_secs(60);
//! while net.now() < until {
//!     match engine.poll_output(net.now()) {
//!         Some(Output::Transmit(request)) => match net.execute(&request) {
//!             Ok(answer) => {
//!                 let response = Response::new(answer.status, &answer.body);
//!                 engine.handle_response(net.now(), request.id, &response)?;
//!             }
//!             Err(failure) => engine.handle_failure(net.now(), request.id, failure)?,
//!         },
//!         Some(Output::Timeout(at)) => {
//!             net.clock().advance_to(at);
//!             engine.handle_timeout(net.now());
//!         }
//!         Some(Output::NeedCredential) => engine.handle_credential(net.now(), None),
//!         Some(_) => {} // events: log them, react to them
//!         None => break,
//!     }
//! }
//! assert!(engine.stats().payments_accepted >= 19);
//! let world = net.world();
//! assert!(world.orchestrator().releases().is_empty(), "never released");
//! assert!(world.session_balance(&session_id).unwrap() > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::cell::{Cell, Ref, RefCell, RefMut};
use core::fmt;
use std::rc::Rc;

use embassy_time::{Duration, Instant};
use livepay_core::engine::{
    Answered, Delivery, Http, Method, Output, PayerCache, Request, ReserveError, ReserveFlow, ReserveOptions,
    Reserved, origin,
};
use livepay_core::{Failure, PaymentType, VirtualClock};

use crate::model::{self, Host, World};

/// The signer's origin unless [`MemoryNet::with_signer_origin`] says otherwise.
pub const DEFAULT_SIGNER_ORIGIN: &str = "http://signer.invalid";

/// Latency of every request unless [`MemoryNet::with_latency`] says otherwise.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(10);

/// The modelled network: a shared [`World`], a [`VirtualClock`], and a fixed latency per
/// request. Cheap to clone: clones share the world and the clock.
///
/// Requests are routed by origin: the orchestrator's (from the model's
/// [`ModelConfig::service_url`](model::ModelConfig::service_url)) or the signer's
/// ([`DEFAULT_SIGNER_ORIGIN`] unless set). A request reaches its server half a latency after it
/// is sent, and its answer arrives after the full latency.
///
/// The clock does not know the world: whoever moves it (a sleep, [`VirtualClock::advance_to`])
/// moves only time, and the net brings the world up to the clock's instant before it serves a
/// request or shows the world.
#[derive(Clone)]
pub struct MemoryNet {
    world: Rc<RefCell<World>>,
    clock: Rc<VirtualClock>,
    latency: Duration,
    orchestrator_origin: String,
    signer_origin: String,
    requests: Rc<Cell<u64>>,
}

impl MemoryNet {
    /// A net over `world`, its clock starting at the world's time, with [`DEFAULT_LATENCY`].
    ///
    /// # Panics
    ///
    /// When the model's service URL is not an `http(s)` URL.
    pub fn new(world: World) -> Self {
        let orchestrator_origin = origin(world.orchestrator().service_url())
            .unwrap_or_else(|| panic!("livepay-mock: the model's service_url is not an http(s) URL"));
        Self {
            clock: Rc::new(VirtualClock::new(world.now())),
            world: Rc::new(RefCell::new(world)),
            latency: DEFAULT_LATENCY,
            orchestrator_origin,
            signer_origin: DEFAULT_SIGNER_ORIGIN.to_owned(),
            requests: Rc::new(Cell::new(0)),
        }
    }

    /// This net with `latency` per request (for requests sent through this handle and its
    /// later clones).
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// This net with the signer at `url`'s origin.
    ///
    /// # Panics
    ///
    /// When `url` is not an `http(s)` URL.
    #[must_use]
    pub fn with_signer_origin(mut self, url: &str) -> Self {
        self.signer_origin = origin(url)
            .unwrap_or_else(|| panic!("livepay-mock: signer origin {url:?} is not an http(s) URL"));
        self
    }

    /// The clock (shared by every clone).
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The world, advanced to the clock's instant, for assertions.
    ///
    /// # Panics
    ///
    /// When it is mutably borrowed elsewhere (never while no request is being served), or when
    /// the clock moved while another borrow of the world is still held (the world cannot catch
    /// up then).
    pub fn world(&self) -> Ref<'_, World> {
        let now = self.now();
        // Only a world behind the clock needs the mutable borrow, so that several shared
        // borrows taken at one instant can coexist.
        if self.world.borrow().now() < now {
            self.world.borrow_mut().advance(now);
        }
        self.world.borrow()
    }

    /// The world, advanced to the clock's instant, mutable (e.g. to change a runner's price).
    ///
    /// # Panics
    ///
    /// When it is borrowed elsewhere.
    pub fn world_mut(&self) -> RefMut<'_, World> {
        let mut world = self.world.borrow_mut();
        world.advance(self.now());
        world
    }

    /// The latency of each request.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The orchestrator's origin.
    pub fn orchestrator_url(&self) -> &str {
        &self.orchestrator_origin
    }

    /// The signer's origin: the `signer_url` of [`ReserveOptions`].
    pub fn signer_url(&self) -> &str {
        &self.signer_origin
    }

    /// The reservation URL of runner `runner_id`, as the model's orchestrator names it (in its
    /// discovery answer).
    ///
    /// # Panics
    ///
    /// When the world is mutably borrowed elsewhere.
    pub fn runner_url(&self, runner_id: &str) -> String {
        self.world.borrow().orchestrator().runner_url(runner_id)
    }

    /// Options to reserve runner `runner_id` with this net's signer.
    pub fn reserve_options(&self, runner_id: &str, payment_type: PaymentType) -> ReserveOptions {
        ReserveOptions::new(
            self.runner_url(runner_id),
            Some(self.signer_origin.clone()),
            payment_type,
        )
    }

    /// Requests executed so far (by every clone).
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// Carries `request` to its server and returns the answer, moving the clock by the latency:
    /// the server sees it half a latency after the current instant (the world is advanced to
    /// then first), and the answer is back after the full latency.
    ///
    /// # Errors
    ///
    /// [`Failure::Refused`] (after the latency) when the URL's origin is neither the
    /// orchestrator's nor the signer's, as a failed DNS lookup or a refused connection would be.
    ///
    /// # Panics
    ///
    /// When the world is borrowed elsewhere.
    pub fn execute(&self, request: &Request) -> Result<Answered<Vec<u8>>, Failure> {
        self.requests.set(self.requests.get() + 1);
        let sent = self.clock.now();
        let arrives = sent + Duration::from_ticks(self.latency.as_ticks() / 2);
        self.clock.advance_to(arrives);
        let host = match origin(&request.url) {
            Some(o) if o == self.orchestrator_origin => Some(Host::Orchestrator),
            Some(o) if o == self.signer_origin => Some(Host::Signer),
            _ => None,
        };
        let response = host.map(|host| {
            let request = model::Request {
                method: match request.method {
                    Method::Get => model::Method::Get,
                    Method::Post => model::Method::Post,
                },
                // The model ignores scheme and authority.
                path_and_query: request.url.clone(),
                headers: request
                    .headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.clone()))
                    .collect(),
                body: request.body.clone(),
            };
            self.world.borrow_mut().handle(arrives, host, &request)
        });
        self.clock.advance_to(sent + self.latency);
        response
            .map(|r| Answered {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .ok_or(Failure::Refused)
    }
}

impl fmt::Debug for MemoryNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryNet")
            .field("now", &self.now())
            .field("latency", &self.latency)
            .field("orchestrator", &self.orchestrator_origin)
            .field("signer", &self.signer_origin)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

/// A [`MemoryNet`] as an [`Http`] adapter: each request is executed at once
/// ([`MemoryNet::execute`], moving the clock by the latency), then the answer is handed over
/// after one [`VirtualClock::yield_now`], so that a command due meanwhile is applied before the
/// answer lands, as with a real network. Each request counts one [clock
/// step](VirtualClock::step), so a driver that loops on requests without time passing is caught.
#[derive(Debug, Clone)]
pub struct MemoryHttp {
    net: MemoryNet,
}

impl MemoryHttp {
    /// The adapter over `net`.
    pub const fn new(net: MemoryNet) -> Self {
        Self { net }
    }

    /// The net.
    pub const fn net(&self) -> &MemoryNet {
        &self.net
    }
}

impl Http for MemoryHttp {
    type Body = Vec<u8>;

    async fn send(&self, request: Request) -> Delivery<Vec<u8>> {
        let clock = self.net.clock();
        clock.step("memory request");
        let sent_at = clock.now();
        let result = self.net.execute(&request);
        clock.yield_now().await;
        Delivery {
            sent_at: Some(sent_at),
            result,
        }
    }
}

/// Reserves a session over `net` (`docs/protocol.md` §2.1–2.3), driving a [`ReserveFlow`] on the
/// net's clock: the result's [`Reserved::minted_at`] is on that clock, so fund it there.
///
/// # Errors
///
/// Why the reservation failed, as [`ReserveFlow`] reports it.
pub fn reserve(net: &MemoryNet, options: ReserveOptions) -> Result<Reserved, ReserveError> {
    let mut flow = ReserveFlow::new(options)?;
    carry_out(net, &mut flow)
}

/// [`reserve`] with a payer-address cache: a signer already in `cache` is not asked for its
/// address again, and `cache` learns (or forgets) the address the flow used.
///
/// # Errors
///
/// As [`reserve`].
pub fn reserve_with_cache(
    net: &MemoryNet,
    options: ReserveOptions,
    cache: &mut PayerCache,
) -> Result<Reserved, ReserveError> {
    let mut flow = ReserveFlow::with_cache(options, cache)?;
    let result = carry_out(net, &mut flow);
    flow.update_cache(cache);
    result
}

/// The reservation's pump over `net`: sends every request `flow` produces, hands back each
/// answer, waits (moves the net's virtual clock) until a timeout, and returns the result.
fn carry_out(net: &MemoryNet, flow: &mut ReserveFlow) -> Result<Reserved, ReserveError> {
    loop {
        match flow.poll_output(net.now()) {
            Some(Output::Transmit(request)) => match net.execute(&request) {
                Ok(answer) => {
                    let headers = answer.header_pairs();
                    flow.handle_response(net.now(), request.id, &answer.as_response(&headers));
                }
                Err(failure) => flow.handle_failure(net.now(), request.id, failure),
            },
            Some(Output::Timeout(at)) => net.clock().advance_to(at),
            Some(Output::Done(result)) => return result,
            // A reservation persists nothing, asks for no credential and cancels nothing.
            Some(_) => {}
            None => return Err(ReserveError::Unfinished),
        }
    }
}

#[cfg(test)]
mod tests;
