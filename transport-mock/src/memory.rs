//! An in-memory [`Transport`] and [`Clock`] over the faithful [`World`] model: livepay-core's
//! async [`run`](livepay_core::run) driver, its [`client`](livepay_core::client) and the model,
//! end to end on virtual time, without sockets.
//!
//! - [`VirtualClock`]: virtual time. [`sleep_until`](Clock::sleep_until) jumps forward and
//!   completes at once, but never past an instant something registered with
//!   [`VirtualClock::wake_no_later_than`] (e.g. a scheduled command awaiting
//!   [`VirtualClock::reached`]). Moving the clock advances the world, so orchestrator ticks and
//!   silent releases happen at their modelled instants.
//! - [`MemoryNet`]: the world, the clock and a fixed latency per request. [`MemoryNet::execute`]
//!   routes an [`HttpRequest`] by origin to the orchestrator or the signer.
//! - [`reserve`]: drives a [`ReserveFlow`] over the net.
//! - [`MemoryTransport`]: a [`Transport`] over a reserved [`PaymentSession`].
//!
//! # Example: reserve, then fund for a minute
//!
//! [`run`](livepay_core::run) drives a session over this transport on any executor (see
//! `tests/tests/e2e_memory_*.rs`). The loop below is the same, by hand, since every request
//! of the memory transport completes at once ([`MemoryTransport::call`]).
//!
//! ```
//! use livepay_core::{Action, Config, Duration, Endpoint, PaymentType, Session, StatusTable, Step};
//! use livepay_mock::memory::{MemoryNet, MemoryTransport, reserve};
//! use livepay_mock::model::{self, World};
//!
//! let net = MemoryNet::new(World::new(model::Config::default(), 7));
//! let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live))?;
//! let transport = MemoryTransport::new(net.clone(), reserved.payment.expect("a priced runner"));
//!
//! let clock = net.clock();
//! let table = StatusTable::new();
//! let mut session = Session::new(&Config::new(PaymentType::Live), clock.now())?;
//! session.start(clock.now());
//! let until = clock.now() + Duration::from_secs(60);
//! while clock.now() < until {
//!     while let Some(action) = session.poll_action() {
//!         let (first, then) = match action {
//!             Action::Pay { .. } => (Endpoint::Signer, Some(Endpoint::Payment)),
//!             Action::Refresh => (Endpoint::Refresh, None),
//!             Action::Stop => (Endpoint::Stop, None),
//!         };
//!         let mut step = table.classify(first, transport.call(first));
//!         if let (Step::Continue, Some(next)) = (step, then) {
//!             step = table.classify(next, transport.call(next));
//!         }
//!         if let Step::Done(outcome) = step {
//!             session.handle_outcome(clock.now(), outcome)?;
//!         }
//!     }
//!     clock.advance_to(session.poll_timeout().expect("a funding session has a timer"));
//!     session.handle_timeout(clock.now());
//! }
//! assert!(session.stats().payments_accepted >= 19);
//! let world = net.world();
//! assert!(world.orchestrator().releases().is_empty(), "never released");
//! assert!(world.session_balance(&reserved.session_id).unwrap() > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::cell::{Cell, Ref, RefCell, RefMut};
use core::fmt;
use core::future::{Future, poll_fn};
use core::task::Poll;
use std::rc::Rc;

use embassy_time::{Duration, Instant};
use livepay_core::client::{
    Answer, HttpRequest, Method, PaymentSession, ProtocolError, ReserveError, ReserveFlow, ReserveOptions,
    Reserved, origin,
};
use livepay_core::{Clock, Endpoint, PaymentType, Reply, Transport};

use crate::model::{self, Host, World};

/// The signer's origin unless [`MemoryNet::with_signer_origin`] says otherwise.
pub const DEFAULT_SIGNER_ORIGIN: &str = "http://signer.invalid";

/// Latency of every request unless [`MemoryNet::with_latency`] says otherwise.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(10);

/// Consecutive pending polls of [`VirtualClock::reached`] at one instant after which the clock
/// decides nothing will ever move time, and panics instead of spinning.
const MAX_STALLED_POLLS: u32 = 100_000;

/// Virtual time for [`Clock`], optionally tied to a [`World`] it advances.
///
/// Time only moves forward: by [`advance_to`](Self::advance_to) (the net does it by each
/// request's latency) and by [`sleep_until`](Clock::sleep_until), which jumps to its deadline and
/// completes at once, unless an earlier instant was registered with
/// [`wake_no_later_than`](Self::wake_no_later_than): then it stops there, wakes its task and
/// stays pending, so whatever waits for that instant runs on time. Futures that wait on this
/// clock wake their task at once (there is no reactor), so a plain `block_on` keeps polling.
pub struct VirtualClock {
    now: Cell<Instant>,
    wake_by: Cell<Option<Instant>>,
    stalled: Cell<(Instant, u32)>,
    /// Answers being handed over ([`VirtualClock::yield_now`]): sleeps hold time still meanwhile.
    held: Cell<u32>,
    world: Option<Rc<RefCell<World>>>,
}

impl VirtualClock {
    /// A clock reading `start`, tied to no world.
    pub fn new(start: Instant) -> Self {
        Self {
            now: Cell::new(start),
            wake_by: Cell::new(None),
            stalled: Cell::new((start, 0)),
            held: Cell::new(0),
            world: None,
        }
    }

    fn with_world(world: Rc<RefCell<World>>) -> Self {
        let start = world.borrow().now();
        Self {
            world: Some(world),
            ..Self::new(start)
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.advance_to(self.now() + by);
    }

    /// Moves time forward to `at` (an earlier `at` is ignored), running every orchestrator tick
    /// due by then.
    ///
    /// # Panics
    ///
    /// When the world is borrowed elsewhere at that moment.
    pub fn advance_to(&self, at: Instant) {
        if at > self.now() {
            self.now.set(at);
        }
        if let Some(world) = &self.world {
            world.borrow_mut().advance(self.now());
        }
    }

    /// Asks that time stop at `at` on its way forward. The earliest registration still in the
    /// future wins; waiters register again each time they are polled.
    pub fn wake_no_later_than(&self, at: Instant) {
        let now = self.now();
        let earliest = match self.wake_by.get() {
            Some(current) if current > now => current.min(at),
            _ => at,
        };
        self.wake_by.set(Some(earliest));
    }

    /// The earliest registered instant still in the future.
    pub fn next_wake(&self) -> Option<Instant> {
        self.wake_by.get().filter(|&at| at > self.now())
    }

    /// Completes once virtual time reaches `at`, without moving time itself: it registers `at`
    /// so that a sleep stops there. Use it to schedule commands:
    /// `stream::once(async { clock.reached(t).await; Command::Close })`.
    ///
    /// # Panics
    ///
    /// When polled pending 100,000 times in a row at one instant: nothing moves
    /// time (no sleep, no request), so it would wait forever.
    pub fn reached(&self, at: Instant) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            let now = self.now();
            if now >= at {
                return Poll::Ready(());
            }
            let (since, polls) = self.stalled.get();
            let polls = if since == now { polls + 1 } else { 1 };
            assert!(
                polls < MAX_STALLED_POLLS,
                "livepay-mock: virtual time is stuck at {now}: something waits for {at}, but no \
                 sleep or request moves the clock"
            );
            self.stalled.set((now, polls));
            self.wake_no_later_than(at);
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }
}

impl VirtualClock {
    /// Returns `Pending` once (waking its task) with time held still, then completes: whatever
    /// else the task polls meanwhile (a command due now) runs at this very instant, and no sleep
    /// moves time until this completes. [`MemoryTransport`] yields after every answer, so that
    /// requests answered at once do not starve [`run`](livepay_core::run)'s commands.
    pub fn yield_now(&self) -> YieldNow<'_> {
        YieldNow {
            clock: self,
            yielded: false,
            done: false,
        }
    }
}

/// The future of [`VirtualClock::yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldNow<'c> {
    clock: &'c VirtualClock,
    yielded: bool,
    done: bool,
}

impl Future for YieldNow<'_> {
    type Output = ();

    fn poll(self: core::pin::Pin<&mut Self>, cx: &mut core::task::Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        if this.yielded {
            this.done = true;
            this.clock.held.set(this.clock.held.get() - 1);
            return Poll::Ready(());
        }
        this.yielded = true;
        this.clock.held.set(this.clock.held.get() + 1);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for YieldNow<'_> {
    fn drop(&mut self) {
        if self.yielded && !self.done {
            self.clock.held.set(self.clock.held.get() - 1);
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }

    async fn sleep_until(&self, deadline: Instant) {
        poll_fn(|cx| {
            let now = self.now();
            if now >= deadline {
                return Poll::Ready(());
            }
            if self.held.get() > 0 {
                // An answer is being handed over at `now`: let it land before time moves.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let target = self.next_wake().map_or(deadline, |wake| wake.min(deadline));
            self.advance_to(target);
            if self.now() >= deadline {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualClock")
            .field("now", &self.now())
            .field("next_wake", &self.next_wake())
            .field("held", &self.held.get())
            .field("world", &self.world.is_some())
            .finish()
    }
}

/// The modelled network: a shared [`World`], its [`VirtualClock`], and a fixed latency per
/// request. Cheap to clone: clones share the world and the clock.
///
/// Requests are routed by origin: the orchestrator's (from the model's
/// [`Config::service_url`](model::Config::service_url)) or the signer's
/// ([`DEFAULT_SIGNER_ORIGIN`] unless set). A request reaches its server half a latency after it
/// is sent, and its answer arrives after the full latency.
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
        let world = Rc::new(RefCell::new(world));
        Self {
            clock: Rc::new(VirtualClock::with_world(Rc::clone(&world))),
            world,
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

    /// The clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The world, for assertions.
    ///
    /// # Panics
    ///
    /// When it is mutably borrowed (never while no request is being served).
    pub fn world(&self) -> Ref<'_, World> {
        self.world.borrow()
    }

    /// The world, mutable (e.g. to change a runner's price).
    ///
    /// # Panics
    ///
    /// When it is borrowed elsewhere.
    pub fn world_mut(&self) -> RefMut<'_, World> {
        self.world.borrow_mut()
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

    /// The reservation URL of runner `runner_id`.
    pub fn runner_url(&self, runner_id: &str) -> String {
        format!("{}/apps/{runner_id}/session", self.orchestrator_origin)
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

    /// Sends `req` and returns the answer's status and body, moving the clock by the latency.
    ///
    /// # Errors
    ///
    /// [`Reply::Network`] (after the latency) when the URL's origin is neither the
    /// orchestrator's nor the signer's, as a failed DNS lookup or a refused connection would be.
    ///
    /// # Panics
    ///
    /// When the world is borrowed elsewhere.
    pub fn execute(&self, req: &HttpRequest) -> Result<(u16, Vec<u8>), Reply> {
        self.requests.set(self.requests.get() + 1);
        let sent = self.clock.now();
        let arrives = sent + Duration::from_ticks(self.latency.as_ticks() / 2);
        self.clock.advance_to(arrives);
        let host = match origin(&req.url) {
            Some(o) if o == self.orchestrator_origin => Some(Host::Orchestrator),
            Some(o) if o == self.signer_origin => Some(Host::Signer),
            _ => None,
        };
        let response = host.map(|host| {
            let request = model::Request {
                method: match req.method {
                    Method::Get => model::Method::Get,
                    Method::Post => model::Method::Post,
                },
                // The model ignores scheme and authority.
                path_and_query: req.url.clone(),
                headers: req
                    .headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.clone()))
                    .collect(),
                body: req.body.clone(),
            };
            self.world.borrow_mut().handle(arrives, host, &request)
        });
        self.clock.advance_to(sent + self.latency);
        response.map(|r| (r.status, r.body)).ok_or(Reply::Network)
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

/// Reserves a session over `net` (protocol.md §2.1, §2.3), driving a [`ReserveFlow`].
///
/// # Errors
///
/// Why the reservation failed, as [`ReserveFlow`] reports it.
pub fn reserve(net: &MemoryNet, options: ReserveOptions) -> Result<Reserved, ReserveError> {
    let mut flow = ReserveFlow::new(options)?;
    while let Some(req) = flow.poll_request() {
        match net.execute(&req) {
            Ok((status, body)) => flow.handle_response(status, &body),
            Err(reply) => flow.handle_failure(reply),
        }
    }
    flow.result()
}

/// A [`Transport`] over a [`MemoryNet`] for one reserved [`PaymentSession`]: each method builds
/// the request with the session, executes it at once (moving the clock by the latency), hands
/// the answer back to the session, and yields once ([`VirtualClock::yield_now`]) so that a
/// command due meanwhile is applied before the answer, as with a real network.
/// [`Reply::Network`] when there is no minted payment to send.
pub struct MemoryTransport {
    net: MemoryNet,
    session: RefCell<PaymentSession>,
    last_error: RefCell<Option<ProtocolError>>,
}

impl MemoryTransport {
    /// A transport for `session` over `net`.
    pub fn new(net: MemoryNet, session: PaymentSession) -> Self {
        Self {
            net,
            session: RefCell::new(session),
            last_error: RefCell::new(None),
        }
    }

    /// The net.
    pub fn net(&self) -> &MemoryNet {
        &self.net
    }

    /// The session's protocol state.
    ///
    /// # Panics
    ///
    /// Never while no request is being made.
    pub fn session(&self) -> Ref<'_, PaymentSession> {
        self.session.borrow()
    }

    /// The session's protocol state, taken back.
    pub fn into_session(self) -> PaymentSession {
        self.session.into_inner()
    }

    /// The most recent [`ProtocolError`] (a non-success answer with its reason, or a malformed
    /// success), for logs and assertions.
    pub fn last_error(&self) -> Option<ProtocolError> {
        self.last_error.borrow().clone()
    }

    /// Performs the request of `endpoint` at once and returns its reply: [`Endpoint::Signer`]
    /// mints, [`Endpoint::Payment`] posts the minted payment, [`Endpoint::Refresh`] refreshes,
    /// [`Endpoint::Stop`] stops. The [`Transport`] methods are this, as futures.
    pub fn call(&self, endpoint: Endpoint) -> Reply {
        let req = match endpoint {
            Endpoint::Signer => Some(self.session.borrow().signer_request()),
            Endpoint::Payment => self.session.borrow_mut().payment_request(),
            Endpoint::Refresh => Some(self.session.borrow().refresh_request()),
            Endpoint::Stop => Some(self.session.borrow().stop_request()),
        };
        let Some(req) = req else {
            *self.last_error.borrow_mut() = Some(ProtocolError::NothingMinted);
            return Reply::Network;
        };
        let (status, body) = match self.net.execute(&req) {
            Ok(answer) => answer,
            Err(reply) => return reply,
        };
        let mut session = self.session.borrow_mut();
        let Answer { reply, error } = match endpoint {
            Endpoint::Signer => session.on_signer_response(status, &body),
            Endpoint::Payment => session.on_payment_response(status, &body),
            Endpoint::Refresh => session.on_refresh_response(status, &body),
            Endpoint::Stop => session.on_stop_response(status, &body),
        };
        if let Some(error) = error {
            *self.last_error.borrow_mut() = Some(error);
        }
        reply
    }
}

impl Transport for MemoryTransport {
    async fn request_payment(&self, _cycle: u32) -> Reply {
        let reply = self.call(Endpoint::Signer);
        self.net.clock().yield_now().await;
        reply
    }

    async fn send_payment(&self) -> Reply {
        let reply = self.call(Endpoint::Payment);
        self.net.clock().yield_now().await;
        reply
    }

    async fn refresh(&self) -> Reply {
        let reply = self.call(Endpoint::Refresh);
        self.net.clock().yield_now().await;
        reply
    }

    async fn stop(&self) -> Reply {
        let reply = self.call(Endpoint::Stop);
        self.net.clock().yield_now().await;
        reply
    }
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("net", &self.net)
            .field("session", &self.session)
            .field("last_error", &self.last_error)
            .finish()
    }
}

#[cfg(test)]
mod tests;
