//! [`ScriptedTransport`]: a [`livepay_core::Transport`] that answers from a [`Script`] on virtual
//! time and logs every call.

use core::cell::RefCell;
use core::ops::Range;
use std::collections::VecDeque;
use std::vec::Vec;

use livepay_core::{Duration, Endpoint, Instant, Reply, Transport, VirtualClock};

/// Latency of every scripted answer unless said otherwise.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(20);

/// One request the driver made, as the transport saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportCall {
    /// `request_payment(cycle)`: the signer's `generate-live-payment`.
    RequestPayment {
        /// The cycle the driver asked for.
        cycle: u32,
    },
    /// `request_payment(cycle, fresh_state: true)`: a stateless `generate-live-payment` (a
    /// fresh signer ledger).
    RequestFreshPayment {
        /// The cycle the driver asked for.
        cycle: u32,
    },
    /// `send_payment()`: the orchestrator's payment POST (or a repost of the same payment).
    SendPayment,
    /// `refresh()`: the orchestrator's `refresh-payment`.
    Refresh,
    /// `stop()`: the orchestrator's stop.
    Stop,
}

impl TransportCall {
    /// The endpoint this call reaches.
    pub const fn endpoint(self) -> Endpoint {
        match self {
            Self::RequestPayment { .. } | Self::RequestFreshPayment { .. } => Endpoint::Signer,
            Self::SendPayment => Endpoint::Payment,
            Self::Refresh => Endpoint::Refresh,
            Self::Stop => Endpoint::Stop,
        }
    }

    /// Whether this is a signer call ([`TransportCall::RequestPayment`] or
    /// [`TransportCall::RequestFreshPayment`], of any cycle).
    pub const fn is_request_payment(self) -> bool {
        matches!(
            self,
            Self::RequestPayment { .. } | Self::RequestFreshPayment { .. }
        )
    }
}

/// One scripted answer: what comes back, and how long the request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptedAnswer {
    /// Virtual time from the call to its reply.
    pub latency: Duration,
    /// The reply.
    pub reply: Reply,
}

impl ScriptedAnswer {
    /// `reply` after `latency`.
    pub const fn new(latency: Duration, reply: Reply) -> Self {
        Self { latency, reply }
    }

    /// `reply` after [`DEFAULT_LATENCY`].
    pub const fn quick(reply: Reply) -> Self {
        Self::new(DEFAULT_LATENCY, reply)
    }
}

/// Every call as the log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRecord {
    /// The call.
    pub call: TransportCall,
    /// When it was made.
    pub at: Instant,
    /// When its reply is (or was) due: `at` plus the scripted latency. A run that ended earlier
    /// dropped the call unanswered.
    pub answered_at: Instant,
    /// The scripted reply.
    pub reply: Reply,
}

/// An answer for every call to one endpoint made at an instant in `range`.
#[derive(Debug, Clone)]
struct Window {
    endpoint: Option<Endpoint>,
    range: Range<Instant>,
    answer: ScriptedAnswer,
}

const fn slot(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::Signer => 0,
        // A repost is the same POST: it answers from the payment script.
        Endpoint::Payment | Endpoint::Repost => 1,
        Endpoint::Refresh => 2,
        // The scripted transport carries funding actions only; nothing else reaches it.
        Endpoint::Stop
        | Endpoint::OrchestratorInfo
        | Endpoint::Reservation
        | Endpoint::PaidReservation
        | Endpoint::Discovery
        | Endpoint::Events => 3,
    }
}

/// What each endpoint answers, call by call.
///
/// A call to an endpoint made at instant `t` is answered by, in order of precedence:
///
/// 1. the most recently added window ([`during`](Self::during), [`outage`](Self::outage),
///    [`starting_at`](Self::starting_at)) whose range holds `t` and that covers the endpoint;
/// 2. otherwise the next queued answer for the endpoint ([`then`](Self::then) and friends),
///    which it consumes;
/// 3. otherwise the endpoint's default ([`otherwise`](Self::otherwise)): 200 for the signer,
///    payment and refresh, 204 for stop, each after [`DEFAULT_LATENCY`].
#[derive(Debug, Clone)]
pub struct Script {
    queues: [VecDeque<ScriptedAnswer>; 4],
    defaults: [ScriptedAnswer; 4],
    windows: Vec<Window>,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// Every request succeeds after [`DEFAULT_LATENCY`].
    pub fn new() -> Self {
        let ok = ScriptedAnswer::quick(Reply::Status(200));
        Self {
            queues: Default::default(),
            defaults: [ok, ok, ok, ScriptedAnswer::quick(Reply::Status(204))],
            windows: Vec::new(),
        }
    }

    /// Queues `reply` (after [`DEFAULT_LATENCY`]) for the next call to `endpoint`.
    #[must_use]
    pub fn then(self, endpoint: Endpoint, reply: Reply) -> Self {
        self.then_answer(endpoint, ScriptedAnswer::quick(reply))
    }

    /// Queues `reply` after `latency` for the next call to `endpoint`.
    #[must_use]
    pub fn then_after(self, endpoint: Endpoint, latency: Duration, reply: Reply) -> Self {
        self.then_answer(endpoint, ScriptedAnswer::new(latency, reply))
    }

    /// Queues `reply` (after [`DEFAULT_LATENCY`]) for the next `times` calls to `endpoint`.
    #[must_use]
    pub fn repeat(mut self, endpoint: Endpoint, times: usize, reply: Reply) -> Self {
        for _ in 0..times {
            self = self.then(endpoint, reply);
        }
        self
    }

    /// Queues `answer` for the next call to `endpoint`.
    #[must_use]
    pub fn then_answer(mut self, endpoint: Endpoint, answer: ScriptedAnswer) -> Self {
        self.queues[slot(endpoint)].push_back(answer);
        self
    }

    /// What `endpoint` answers once its queue is empty.
    #[must_use]
    pub fn otherwise(mut self, endpoint: Endpoint, latency: Duration, reply: Reply) -> Self {
        self.defaults[slot(endpoint)] = ScriptedAnswer::new(latency, reply);
        self
    }

    /// Every call to `endpoint` made during `range` gets `reply` (after [`DEFAULT_LATENCY`]).
    #[must_use]
    pub fn during(self, endpoint: Endpoint, range: Range<Instant>, reply: Reply) -> Self {
        self.window(Some(endpoint), range, ScriptedAnswer::quick(reply))
    }

    /// Every call to any endpoint made during `range` gets `reply` (after [`DEFAULT_LATENCY`]):
    /// a partition.
    #[must_use]
    pub fn outage(self, range: Range<Instant>, reply: Reply) -> Self {
        self.window(None, range, ScriptedAnswer::quick(reply))
    }

    /// Every call to `endpoint` made at or after `at` gets `reply` (after [`DEFAULT_LATENCY`]).
    #[must_use]
    pub fn starting_at(self, endpoint: Endpoint, at: Instant, reply: Reply) -> Self {
        self.window(Some(endpoint), at..Instant::MAX, ScriptedAnswer::quick(reply))
    }

    /// Every call to `endpoint` (any endpoint for `None`) made during `range` gets `answer`.
    #[must_use]
    pub fn window(
        mut self,
        endpoint: Option<Endpoint>,
        range: Range<Instant>,
        answer: ScriptedAnswer,
    ) -> Self {
        self.windows.push(Window {
            endpoint,
            range,
            answer,
        });
        self
    }

    /// The answer to a call to `endpoint` made at `at` (consuming a queued answer if that is
    /// what applies).
    pub fn answer(&mut self, endpoint: Endpoint, at: Instant) -> ScriptedAnswer {
        let window = self
            .windows
            .iter()
            .rev()
            .find(|w| w.endpoint.is_none_or(|e| e == endpoint) && w.range.contains(&at));
        if let Some(w) = window {
            return w.answer;
        }
        let i = slot(endpoint);
        self.queues[i].pop_front().unwrap_or(self.defaults[i])
    }
}

/// A [`livepay_core::Transport`] answering from a [`Script`] on a [`VirtualClock`].
///
/// Each call is logged when it is made, then completes once the clock has moved on by the
/// answer's latency, so virtual time passes as for a real request and other things (timers,
/// commands) can happen meanwhile. Moving the clock across a request's latency needs a driver
/// that advances time while everything waits: [`simulate`](crate::simulate) (which
/// [`drive`](crate::drive) uses), or any timer that is armed meanwhile.
#[derive(Debug)]
pub struct ScriptedTransport<'c> {
    clock: &'c VirtualClock,
    script: RefCell<Script>,
    log: RefCell<Vec<CallRecord>>,
}

impl<'c> ScriptedTransport<'c> {
    /// A transport answering from `script` on `clock`.
    pub fn new(clock: &'c VirtualClock, script: Script) -> Self {
        Self {
            clock,
            script: RefCell::new(script),
            log: RefCell::new(Vec::new()),
        }
    }

    /// Every call made so far, in order.
    pub fn log(&self) -> Vec<CallRecord> {
        self.log.borrow().clone()
    }

    async fn call(&self, call: TransportCall) -> Reply {
        self.clock.step("transport call");
        let at = self.clock.now();
        let answer = self.script.borrow_mut().answer(call.endpoint(), at);
        let answered_at = at + answer.latency;
        self.log.borrow_mut().push(CallRecord {
            call,
            at,
            answered_at,
            reply: answer.reply,
        });
        self.clock.reached(answered_at).await;
        answer.reply
    }
}

impl Transport for ScriptedTransport<'_> {
    async fn request_payment(&self, cycle: u32, fresh_state: bool) -> Reply {
        let call = if fresh_state {
            TransportCall::RequestFreshPayment { cycle }
        } else {
            TransportCall::RequestPayment { cycle }
        };
        self.call(call).await
    }

    async fn send_payment(&self) -> Reply {
        self.call(TransportCall::SendPayment).await
    }

    async fn refresh(&self) -> Reply {
        self.call(TransportCall::Refresh).await
    }

    async fn stop(&self) -> Reply {
        self.call(TransportCall::Stop).await
    }
}
