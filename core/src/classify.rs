//! One table from an HTTP answer to what it means for funding (protocol.md §2).
//!
//! Adapters never interpret a status themselves: they hand the [`Reply`] of each request to
//! [`StatusTable::classify`] and feed the resulting [`Outcome`] to
//! [`Session::handle_outcome`](crate::Session::handle_outcome). Callers can override single rows,
//! e.g. to treat a proxy's 401 as terminal.

use core::fmt;

/// The request a [`Reply`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Signer `POST /generate-live-payment`.
    Signer,
    /// Orchestrator `POST {payment_url}` (session-scoped).
    Payment,
    /// Orchestrator `POST /refresh-payment`.
    Refresh,
    /// Orchestrator `POST {control_url}/stop`.
    Stop,
}

impl Endpoint {
    /// A short lowercase name for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Signer => "signer",
            Self::Payment => "payment",
            Self::Refresh => "refresh",
            Self::Stop => "stop",
        }
    }
}

/// What came back from one request, as far as funding is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP answer with this status.
    Status(u16),
    /// No HTTP answer: connection refused or reset, DNS, TLS, malformed response.
    Network,
    /// No answer before the adapter's deadline.
    Timeout,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Network => f.write_str("network error"),
            Self::Timeout => f.write_str("timeout"),
        }
    }
}

/// The meaning of one row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Signer 200: tickets minted, POST them to the orchestrator next.
    Minted,
    /// Payment accepted.
    Paid,
    /// Signer 482: the balance is current, nothing to send this cycle.
    Skipped,
    /// Signer 480: refresh the orchestrator's payment params, then ask again.
    RefreshRequired,
    /// Refresh-payment succeeded.
    Refreshed,
    /// Stop acknowledged.
    Stopped,
    /// The session (or runner) is gone: the orchestrator released it.
    Gone,
    /// A terminal answer: funding cannot continue.
    Rejected,
    /// Worth retrying.
    Transient,
}

/// What [`StatusTable::classify`] tells the caller to do with a [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Signer 200: carry on with the payment POST; the action is not answered yet.
    Continue,
    /// The action is answered: pass this to [`Session::handle_outcome`](crate::Session::handle_outcome).
    Done(Outcome),
}

/// What follows a reply within an action: [`StatusTable::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Make this request next (the payment POST after a signer 200).
    Request(Endpoint),
    /// The action is answered: pass this to [`Session::handle_outcome`](crate::Session::handle_outcome).
    Done(Outcome),
}

/// The answer to one [`Action`](crate::Action), fed to [`Session::handle_outcome`](crate::Session::handle_outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The payment was credited (signer 200, then payment 200).
    Paid,
    /// Signer 482: balance current, nothing was minted.
    Skipped,
    /// Signer 480: the payment params need a refresh.
    RefreshRequired,
    /// Refresh-payment returned fresh params.
    Refreshed,
    /// The stop request was acknowledged (204).
    Stopped,
    /// A 404 from the orchestrator: the session was released.
    Gone {
        /// Which request saw it.
        endpoint: Endpoint,
    },
    /// A terminal answer.
    Rejected {
        /// Which request saw it.
        endpoint: Endpoint,
        /// The HTTP status.
        status: u16,
    },
    /// A failure worth retrying.
    Transient {
        /// Which request failed. [`Endpoint::Payment`] means the signer had already minted, so
        /// those tickets are lost: the signer billed them but the orchestrator never credited them.
        endpoint: Endpoint,
        /// What came back.
        reply: Reply,
    },
}

/// One caller-supplied row that replaces the default meaning of `(endpoint, status)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Override {
    endpoint: Endpoint,
    status: u16,
    verdict: Verdict,
}

/// How many rows a [`StatusTable`] can override.
pub const MAX_OVERRIDES: usize = 8;

/// The status classification table of protocol.md §2, with up to [`MAX_OVERRIDES`] caller
/// overrides. `Copy` and allocation-free.
///
/// | endpoint | 2xx | 482 | 480 | 404 | 408, 429, 5xx, other | 4xx terminal |
/// |---|---|---|---|---|---|---|
/// | signer | minted (200) | skipped | refresh | transient | transient | 400, 481 |
/// | payment | paid | — | — | gone | transient | 400, 402, 403, 409, other 4xx |
/// | refresh | refreshed | — | — | transient | transient | 400, 409, other 4xx |
/// | stop | stopped | — | — | gone | transient | — |
///
/// Network errors and timeouts are transient everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusTable {
    overrides: [Option<Override>; MAX_OVERRIDES],
}

/// Returned by [`StatusTable::set`] when every override slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status table: all {MAX_OVERRIDES} override slots are taken")
    }
}

impl core::error::Error for TableFull {}

impl StatusTable {
    /// The upstream table, no overrides.
    pub const fn new() -> Self {
        Self {
            overrides: [None; MAX_OVERRIDES],
        }
    }

    /// Makes `(endpoint, status)` mean `verdict`, replacing an earlier override of the same row.
    pub fn set(&mut self, endpoint: Endpoint, status: u16, verdict: Verdict) -> Result<(), TableFull> {
        let row = Override {
            endpoint,
            status,
            verdict,
        };
        let same_row =
            |o: &Option<Override>| matches!(o, Some(o) if o.endpoint == endpoint && o.status == status);
        if let Some(slot) = self.overrides.iter_mut().find(|o| same_row(o)) {
            *slot = Some(row);
            return Ok(());
        }
        let slot = self.overrides.iter_mut().find(|o| o.is_none()).ok_or(TableFull)?;
        *slot = Some(row);
        Ok(())
    }

    /// Builder form of [`set`](Self::set).
    pub fn with(mut self, endpoint: Endpoint, status: u16, verdict: Verdict) -> Result<Self, TableFull> {
        self.set(endpoint, status, verdict)?;
        Ok(self)
    }

    /// The meaning of `reply` to a request to `endpoint`.
    pub fn verdict(&self, endpoint: Endpoint, reply: Reply) -> Verdict {
        let Reply::Status(status) = reply else {
            return Verdict::Transient;
        };
        self.overrides
            .iter()
            .flatten()
            .find(|o| o.endpoint == endpoint && o.status == status)
            .map_or_else(|| default_verdict(endpoint, status), |o| o.verdict)
    }

    /// What follows `reply` to `endpoint` within an action: the next request (only the payment
    /// POST, after a signer 200), or the outcome that answers the action. Adapters that schedule
    /// requests one at a time (a [`Funder`]-style multiplexer) follow this instead of knowing the
    /// protocol's sequence themselves.
    ///
    /// [`Funder`]: https://docs.rs/livepay-hyper
    pub fn next(&self, endpoint: Endpoint, reply: Reply) -> Next {
        match self.classify(endpoint, reply) {
            Step::Continue if endpoint == Endpoint::Signer => Next::Request(Endpoint::Payment),
            // Only the signer's answer continues an action.
            Step::Continue => Next::Done(Outcome::Transient { endpoint, reply }),
            Step::Done(outcome) => Next::Done(outcome),
        }
    }

    /// What to do with `reply`: go on to the next request of the same action, or answer it.
    pub fn classify(&self, endpoint: Endpoint, reply: Reply) -> Step {
        let outcome = match self.verdict(endpoint, reply) {
            Verdict::Minted if endpoint == Endpoint::Signer => return Step::Continue,
            // An override that marks a non-signer answer "minted" can only mean success there.
            Verdict::Minted | Verdict::Paid | Verdict::Refreshed | Verdict::Stopped => match endpoint {
                Endpoint::Signer | Endpoint::Payment => Outcome::Paid,
                Endpoint::Refresh => Outcome::Refreshed,
                Endpoint::Stop => Outcome::Stopped,
            },
            Verdict::Skipped => Outcome::Skipped,
            Verdict::RefreshRequired => Outcome::RefreshRequired,
            Verdict::Gone => Outcome::Gone { endpoint },
            Verdict::Rejected => match reply {
                Reply::Status(status) => Outcome::Rejected { endpoint, status },
                Reply::Network | Reply::Timeout => Outcome::Transient { endpoint, reply },
            },
            Verdict::Transient => Outcome::Transient { endpoint, reply },
        };
        Step::Done(outcome)
    }
}

const fn default_verdict(endpoint: Endpoint, status: u16) -> Verdict {
    match (endpoint, status) {
        (Endpoint::Signer, 200) => Verdict::Minted,
        (Endpoint::Signer, 482) => Verdict::Skipped,
        (Endpoint::Signer, 480) => Verdict::RefreshRequired,
        (Endpoint::Signer, 400 | 481) => Verdict::Rejected,
        // Signer 5xx and anything else (auth webhook failures, proxies) is transient.
        (Endpoint::Signer, _) => Verdict::Transient,

        (Endpoint::Payment, 200..=299) => Verdict::Paid,
        (Endpoint::Payment, 404) => Verdict::Gone,
        (Endpoint::Payment, 408 | 429) => Verdict::Transient,
        // 400 tickets, 402 header encoding, 403 seg-creds, 409 fixed price, and any other 4xx.
        (Endpoint::Payment, 400..=499) => Verdict::Rejected,
        (Endpoint::Payment, _) => Verdict::Transient,

        (Endpoint::Refresh, 200..=299) => Verdict::Refreshed,
        (Endpoint::Refresh, 404 | 408 | 429) => Verdict::Transient,
        // 409: no pinned price for this sender and session; 400: bad request.
        (Endpoint::Refresh, 400..=499) => Verdict::Rejected,
        (Endpoint::Refresh, _) => Verdict::Transient,

        (Endpoint::Stop, 200..=299) => Verdict::Stopped,
        (Endpoint::Stop, 404) => Verdict::Gone,
        (Endpoint::Stop, _) => Verdict::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint::*;

    #[track_caller]
    fn check(endpoint: Endpoint, reply: Reply, expected: Step) {
        assert_eq!(
            StatusTable::new().classify(endpoint, reply),
            expected,
            "{endpoint:?} {reply:?}"
        );
    }

    fn done(o: Outcome) -> Step {
        Step::Done(o)
    }

    #[test]
    fn signer_rows() {
        check(Signer, Reply::Status(200), Step::Continue);
        check(Signer, Reply::Status(482), done(Outcome::Skipped));
        check(Signer, Reply::Status(480), done(Outcome::RefreshRequired));
        check(
            Signer,
            Reply::Status(481),
            done(Outcome::Rejected {
                endpoint: Signer,
                status: 481,
            }),
        );
        check(
            Signer,
            Reply::Status(400),
            done(Outcome::Rejected {
                endpoint: Signer,
                status: 400,
            }),
        );
        for s in [500, 502, 503, 401] {
            check(
                Signer,
                Reply::Status(s),
                done(Outcome::Transient {
                    endpoint: Signer,
                    reply: Reply::Status(s),
                }),
            );
        }
    }

    #[test]
    fn payment_rows() {
        check(Payment, Reply::Status(200), done(Outcome::Paid));
        check(
            Payment,
            Reply::Status(404),
            done(Outcome::Gone { endpoint: Payment }),
        );
        for s in [409, 403, 402, 400] {
            check(
                Payment,
                Reply::Status(s),
                done(Outcome::Rejected {
                    endpoint: Payment,
                    status: s,
                }),
            );
        }
        for s in [408, 429, 500, 503] {
            check(
                Payment,
                Reply::Status(s),
                done(Outcome::Transient {
                    endpoint: Payment,
                    reply: Reply::Status(s),
                }),
            );
        }
    }

    #[test]
    fn refresh_rows() {
        check(Refresh, Reply::Status(200), done(Outcome::Refreshed));
        check(
            Refresh,
            Reply::Status(409),
            done(Outcome::Rejected {
                endpoint: Refresh,
                status: 409,
            }),
        );
        check(
            Refresh,
            Reply::Status(400),
            done(Outcome::Rejected {
                endpoint: Refresh,
                status: 400,
            }),
        );
        check(
            Refresh,
            Reply::Status(503),
            done(Outcome::Transient {
                endpoint: Refresh,
                reply: Reply::Status(503),
            }),
        );
    }

    #[test]
    fn stop_rows() {
        check(Stop, Reply::Status(204), done(Outcome::Stopped));
        check(Stop, Reply::Status(404), done(Outcome::Gone { endpoint: Stop }));
        check(
            Stop,
            Reply::Status(500),
            done(Outcome::Transient {
                endpoint: Stop,
                reply: Reply::Status(500),
            }),
        );
    }

    #[test]
    fn next_follows_a_signer_200_with_the_payment_post_and_answers_everything_else() {
        let table = StatusTable::new();
        assert_eq!(table.next(Signer, Reply::Status(200)), Next::Request(Payment));
        assert_eq!(table.next(Payment, Reply::Status(200)), Next::Done(Outcome::Paid));
        assert_eq!(
            table.next(Signer, Reply::Status(482)),
            Next::Done(Outcome::Skipped)
        );
        // An override that marks a payment answer "minted" cannot loop.
        let odd = StatusTable::new().with(Payment, 299, Verdict::Minted).unwrap();
        assert_eq!(odd.next(Payment, Reply::Status(299)), Next::Done(Outcome::Paid));
    }

    #[test]
    fn network_errors_and_timeouts_are_transient_everywhere() {
        for endpoint in [Signer, Payment, Refresh, Stop] {
            for reply in [Reply::Network, Reply::Timeout] {
                check(endpoint, reply, done(Outcome::Transient { endpoint, reply }));
            }
        }
    }

    #[test]
    fn overrides_replace_single_rows_and_are_bounded() {
        let mut table = StatusTable::new().with(Signer, 401, Verdict::Rejected).unwrap();
        assert_eq!(
            table.classify(Signer, Reply::Status(401)),
            done(Outcome::Rejected {
                endpoint: Signer,
                status: 401
            })
        );
        // Other rows keep their default meaning; re-setting a row does not use a new slot.
        assert_eq!(table.verdict(Signer, Reply::Status(402)), Verdict::Transient);
        table.set(Signer, 401, Verdict::Transient).unwrap();
        assert_eq!(table.verdict(Signer, Reply::Status(401)), Verdict::Transient);
        for s in 0..(MAX_OVERRIDES as u16 - 1) {
            table.set(Payment, 600 + s, Verdict::Gone).unwrap();
        }
        assert_eq!(table.set(Payment, 700, Verdict::Gone), Err(TableFull));
        // A status override never turns a timeout into a terminal rejection.
        let t = StatusTable::new().with(Payment, 503, Verdict::Rejected).unwrap();
        assert_eq!(
            t.classify(Payment, Reply::Timeout),
            done(Outcome::Transient {
                endpoint: Payment,
                reply: Reply::Timeout
            })
        );
    }
}
