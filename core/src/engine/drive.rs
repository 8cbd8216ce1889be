//! [`Engine::run`]: the engine's whole loop as an `async fn`, over any [`Http`] that moves bytes
//! and any [`Clock`], on any executor.

use alloc::string::String;
use alloc::vec::Vec;

use embassy_time::Instant;
use futures::future::{Either, FutureExt};
use futures::pin_mut;
use futures::stream::{Stream, StreamExt};

use super::Engine;
use super::output::Output;
use super::request::{Request, Response};
use crate::classify::Failure;
use crate::driver::{Clock, Command, Exit, Input, next_input};

/// An adapter that moves bytes: sends a [`Request`] and hands back what came back. It decides
/// nothing: no status is read, no request is built, no retry is made here.
///
/// `&self`, so that [`Engine::run`] can hold a request while it also waits for commands and
/// timers; use interior mutability if the adapter needs any.
// `async fn` without a `Send` bound on purpose: embedded executors are single-threaded, and a
// std adapter's concrete future is still `Send` when its implementation is.
#[allow(async_fn_in_trait)]
pub trait Http {
    /// The body of an answer (a `Vec<u8>`, `bytes::Bytes`, …).
    type Body: AsRef<[u8]>;

    /// Sends `request` to `request.peer()` and waits for the whole answer (under the adapter's own
    /// deadline and body cap).
    async fn send(&self, request: Request) -> Delivery<Self::Body>;

    /// A fresh signer credential, when the adapter has a source of them (a token command, a
    /// callback) and the engine asks ([`Engine::wants_credential`]): the header and how long it
    /// lives. `None` (the default): static headers only.
    async fn refresh_credential(&self) -> Option<Credential> {
        None
    }
}

/// A signer credential: one header, and how long it lives if the source says.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The header name (`Authorization`).
    pub name: String,
    /// The value (secret).
    pub value: String,
    /// How long it is valid from now; `None`: until the signer refuses it.
    pub expires_in: Option<embassy_time::Duration>,
}

impl core::fmt::Debug for Credential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("value", &crate::redact::Redacted(self.value.len()))
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// What a transport hands back for one request: when it left, and the answer or why there was
/// none. `E` is the transport's own error (`livepay_hyper::HttpError` keeps the detail for
/// logs); the core reads only the [`Failure`] it maps to ([`map_err`](Self::map_err)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<B, E = Failure> {
    /// When the request's bytes left, if the adapter knows (after any queueing of its own).
    pub sent_at: Option<Instant>,
    /// The answer, or why there was none.
    pub result: Result<Answered<B>, E>,
}

impl<B, E> Delivery<B, E> {
    /// The same delivery with its error mapped (to the core's [`Failure`], say).
    pub fn map_err<F>(self, f: impl FnOnce(E) -> F) -> Delivery<B, F> {
        Delivery {
            sent_at: self.sent_at,
            result: self.result.map_err(f),
        }
    }
}

/// An HTTP answer, owned: what a transport received. The engine reads it as a borrowed
/// [`Response`] ([`as_response`](Self::as_response)). `Debug` never shows the body (it may carry
/// a signer state or tickets).
#[derive(Clone, PartialEq, Eq)]
pub struct Answered<B> {
    /// The status.
    pub status: u16,
    /// The headers, `(name, value)`; may be empty.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: B,
}

impl<B: AsRef<[u8]>> Answered<B> {
    /// An answer with `status` and `body` and no headers.
    pub const fn new(status: u16, body: B) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// The headers as `(&str, &str)` pairs, for [`as_response`](Self::as_response).
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// This answer as the engine reads it, with `headers` from
    /// [`header_pairs`](Self::header_pairs).
    pub fn as_response<'a>(&'a self, headers: &'a [(&'a str, &'a str)]) -> Response<'a> {
        Response::new(self.status, self.body.as_ref()).with_headers(headers)
    }
}

impl<B> core::fmt::Debug for Answered<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The body never: it may carry a signer state or tickets.
        f.debug_struct("Answered")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Hands `delivery`, the answer to request `id`, to the engine at `now`.
    fn deliver<B: AsRef<[u8]>>(&mut self, now: Instant, id: super::RequestId, delivery: &Delivery<B>) {
        if let Some(at) = delivery.sent_at {
            self.handle_sent(at, id);
        }
        let answered = match &delivery.result {
            Ok(answer) => {
                let headers = answer.header_pairs();
                self.handle_response(now, id, &answer.as_response(&headers))
            }
            Err(failure) => self.handle_failure(now, id, *failure),
        };
        debug_assert!(answered.is_ok(), "engine: answered a request not in flight");
    }

    /// The pump: drives the engine until the run ends ([`Output::Done`]: released, or reserved
    /// and idle), carrying out every [`Output`]: sends each request over `http`, fetches a
    /// credential when asked, drops a cancelled request, sleeps on `clock` until the next
    /// timer, and applies `commands` as they arrive. `on_output` sees every output first (log
    /// the events, publish the counters, store a snapshot): a [`Output::Persist`] counts as
    /// durable once `on_output` returns, so a store that writes synchronously there keeps the
    /// write-ahead rule.
    ///
    /// Like [`run`](crate::run), it never starts funding on its own: call
    /// [`start`](Engine::start) (or [`close`](Engine::close)) first. At most one request is in
    /// flight; a command arriving meanwhile is applied at once.
    pub async fn run<H, C, S>(
        &mut self,
        http: &H,
        clock: &C,
        commands: S,
        mut on_output: impl FnMut(&Engine, &Output),
    ) -> Exit
    where
        H: Http,
        C: Clock,
        S: Stream<Item = Command> + Unpin,
    {
        let mut commands = commands.fuse();
        let in_flight = futures::future::Fuse::terminated();
        pin_mut!(in_flight);
        let mut request_in_flight = None;
        loop {
            let mut wake = None;
            while let Some(output) = self.poll_output(clock.now()) {
                on_output(self, &output);
                match output {
                    Output::Transmit(request) => {
                        request_in_flight = Some(request.id);
                        in_flight.set(http.send(request).fuse());
                    }
                    Output::Persist { id, .. } => {
                        let _ = self.handle_persisted(id, true);
                    }
                    Output::NeedCredential => {
                        let fresh = http.refresh_credential().await;
                        self.handle_credential(clock.now(), fresh.as_ref());
                    }
                    Output::Cancel(id) => {
                        if request_in_flight == Some(id) {
                            // Dropping the future abandons the request (the adapter closes its
                            // connection).
                            in_flight.set(futures::future::Fuse::terminated());
                            request_in_flight = None;
                        }
                    }
                    Output::Checkpoint(_) | Output::Event(_) => {}
                    Output::Timeout(at) => {
                        wake = Some(at);
                        break;
                    }
                    Output::Done(exit) => return exit,
                }
            }
            let sleep = match wake {
                Some(at) => Either::Left(clock.sleep_until(at)),
                None => Either::Right(futures::future::pending::<()>()),
            }
            .fuse();
            pin_mut!(sleep);
            match next_input(in_flight.as_mut(), &mut commands, sleep).await {
                Input::Answer(delivery) => {
                    if let Some(id) = request_in_flight.take() {
                        self.deliver(clock.now(), id, &delivery);
                    }
                }
                Input::Command(command) => self.apply(command, clock.now()),
                Input::Timer => self.handle_timeout(clock.now()),
            }
        }
    }
}
