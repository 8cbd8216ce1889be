//! One table from an HTTP answer to what it means for funding (`docs/protocol.md` §2).
//!
//! Adapters never interpret a status themselves: the [`Sequencer`](crate::Sequencer) (and the
//! `engine::Engine` on top of it) hands the [`Reply`] of each request to
//! [`StatusTable::next`], which says what follows: another request of the same action, or the
//! [`Outcome`] for the [`Session`](crate::Session). The reservation (`engine::ReserveFlow`) reads
//! its answers through the same table ([`StatusTable::verdict`]). Callers can override single
//! rows, e.g. to treat a proxy's 401 as terminal, or to retry TLS failures.
//!
//! This module is the only place that knows what a status means: no other module of the
//! workspace compares a status number to decide anything.

use core::fmt;

use crate::event::ReleaseReason;

/// The request a [`Reply`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Signer `POST /generate-live-payment`.
    Signer,
    /// Orchestrator `POST {payment_url}` (session-scoped).
    Payment,
    /// Orchestrator `POST {payment_url}` again with the same minted payment, after a POST that
    /// failed transiently (a replay). Its rows differ from a first POST's: the orchestrator
    /// refuses a payment whose tickets it has already seen (go-livepeer: 400 "invalid ticket
    /// senderNonce: already seen"; livepeer/node: 403), and that is not a reason to stop.
    Repost,
    /// Orchestrator `POST /refresh-payment`.
    Refresh,
    /// Orchestrator `POST {control_url}/stop`.
    Stop,
    /// The reservation's signer `POST /sign-orchestrator-info` (the payer address).
    OrchestratorInfo,
    /// The reservation's first `POST {runner_url}`, answered by a 402 challenge (or a 200 for an
    /// unpriced runner).
    Reservation,
    /// The reservation's paid retry of `POST {runner_url}`, with the first payment.
    PaidReservation,
    /// The orchestrator's runner discovery (`GET`), outside the payment path.
    Discovery,
    /// A job's events URL (`GET`), watched for a release, outside the payment path.
    Events,
}

impl Endpoint {
    /// Every endpoint, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::Signer,
        Self::Payment,
        Self::Repost,
        Self::Refresh,
        Self::Stop,
        Self::OrchestratorInfo,
        Self::Reservation,
        Self::PaidReservation,
        Self::Discovery,
        Self::Events,
    ];

    /// A short lowercase name for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Signer => "signer",
            Self::Payment => "payment",
            Self::Repost => "repost",
            Self::Refresh => "refresh",
            Self::Stop => "stop",
            Self::OrchestratorInfo => "sign-orchestrator-info",
            Self::Reservation => "reservation",
            Self::PaidReservation => "paid-reservation",
            Self::Discovery => "discovery",
            Self::Events => "events",
        }
    }

    /// The server a request to this endpoint goes to.
    pub const fn peer(self) -> Peer {
        match self {
            Self::Signer | Self::OrchestratorInfo => Peer::Signer,
            Self::Payment
            | Self::Repost
            | Self::Refresh
            | Self::Stop
            | Self::Reservation
            | Self::PaidReservation
            | Self::Discovery
            | Self::Events => Peer::Orchestrator,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What came back from one request, as far as funding is concerned.
///
/// The kinds without a status say what is known about whether the server saw the request:
/// [`Refused`](Self::Refused) and [`BadUrl`](Self::BadUrl) provably never reached it;
/// [`Network`](Self::Network) and [`Timeout`](Self::Timeout) may or may not have (ambiguous);
/// [`TooLarge`](Self::TooLarge) and [`Malformed`](Self::Malformed) were answered, unusably.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP answer with this status.
    Status(u16),
    /// The connection could not be made (refused, DNS, connect timeout): the request never left.
    Refused,
    /// The connection failed after it was made (reset, closed early, not HTTP): the server may
    /// have processed the request.
    Network,
    /// No answer before the adapter's deadline: the server may have processed the request.
    Timeout,
    /// The URL cannot be sent to (not an absolute `http(s)` URL the transport accepts).
    BadUrl,
    /// The TLS handshake failed (an untrusted certificate, no common protocol).
    Tls,
    /// The answer's body exceeded the adapter's cap.
    TooLarge,
    /// A success whose body is not what the protocol says (checked by the protocol engine).
    Malformed,
}

impl Reply {
    /// Whether the server provably never saw the request ([`Refused`](Self::Refused),
    /// [`BadUrl`](Self::BadUrl), [`Tls`](Self::Tls): nothing was processed).
    pub const fn never_arrived(self) -> bool {
        matches!(self, Self::Refused | Self::BadUrl | Self::Tls)
    }
}

impl From<Failure> for Reply {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused => Self::Refused,
            Failure::Network => Self::Network,
            Failure::Timeout => Self::Timeout,
            Failure::BadUrl => Self::BadUrl,
            Failure::Tls => Self::Tls,
            Failure::TooLarge => Self::TooLarge,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Refused => f.write_str("connection refused"),
            Self::Network => f.write_str("network error"),
            Self::Timeout => f.write_str("timeout"),
            Self::BadUrl => f.write_str("bad URL"),
            Self::Tls => f.write_str("TLS failure"),
            Self::TooLarge => f.write_str("answer too large"),
            Self::Malformed => f.write_str("malformed answer"),
        }
    }
}

/// Why a request got no HTTP answer, as an adapter reports it: the part of [`Reply`] that only
/// the transport can know. Map an adapter's errors to these, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made: refused, DNS, connect timeout. Nothing was sent.
    Refused,
    /// The connection failed after the request may have been sent: reset, closed, not HTTP.
    Network,
    /// The adapter's deadline passed without a complete answer.
    Timeout,
    /// The URL is not one the transport can send to. Nothing was sent.
    BadUrl,
    /// The TLS handshake failed. Nothing was processed.
    Tls,
    /// The answer's body exceeded the adapter's cap.
    TooLarge,
}

/// Which server a request goes to. Each has its own TLS policy in a real adapter: the signer
/// holds the key, orchestrators are often self-signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// The orchestrator: reservation, payments, refresh, stop, discovery.
    Orchestrator,
    /// The remote signer: payer address and minting.
    Signer,
}

/// The meaning of one reply: the value of a row of the table, which a user overrides, so it
/// carries no data. Not an [`Outcome`], which is how a whole action ended: a `Minted` leads to
/// the POST, `CredentialRefused` to a credential and a retry, `CreditExhausted` and
/// `PriceChanged` to [`Outcome::Rejected`] with their own reason.
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
    /// A replayed payment was refused (400, 403): most likely because its tickets were credited
    /// already, possibly because they expired. Nothing new was credited; not terminal.
    ReplayRefused,
    /// The signer refused the credential (401, 403): worth retrying once a fresh credential is
    /// in place (the engine asks for one first). During a reservation: terminal.
    CredentialRefused,
    /// The signer's account has no credit left (pymthouse's 483): terminal, released as
    /// [`ReleaseReason::SignerCreditExhausted`].
    CreditExhausted,
    /// The orchestrator refused a payment because the runner's price changed (livepeer/node's
    /// 409 "runner price changed"): terminal, released as [`ReleaseReason::PriceChanged`].
    PriceChanged,
    /// The reservation's 402: the orchestrator asks for payment (a challenge follows).
    Challenge,
    /// A success of a request outside the funding cycle (the reservation's, discovery's).
    Success,
}

/// What follows a reply within an action: [`StatusTable::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Make this request next (the payment POST after a signer 200).
    Request(Endpoint),
    /// The action is answered: pass this to [`Session::handle_outcome`](crate::Session::handle_outcome).
    Done(Outcome),
}

/// The answer to one [`Action`](crate::Action), fed to [`Session::handle_outcome`](crate::Session::handle_outcome):
/// how the action ended, with the endpoint, reply and reason the machine and its stats need.
/// The [`Sequencer`](crate::Sequencer) makes it from the [`Verdict`]s of the action's replies.
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
        /// What came back: a status, or an unusable answer ([`Reply::Malformed`], …).
        reply: Reply,
        /// The release it leads to: [`ReleaseReason::Rejected`] with the same endpoint and
        /// reply, or a reason of its own row ([`Verdict::CreditExhausted`],
        /// [`Verdict::PriceChanged`]).
        reason: ReleaseReason,
    },
    /// A replayed payment ([`Endpoint::Repost`]) was refused: its tickets were most likely
    /// credited already (the first POST's answer was lost), or expired. Nothing new was credited,
    /// and whether the first POST was is unknown; funding goes on.
    ReplayRefused,
    /// A failure worth retrying.
    Transient {
        /// Which request failed. [`Endpoint::Payment`] or [`Endpoint::Repost`] means the signer had
        /// already minted: the signer billed those tickets, and the orchestrator has not (or not
        /// provably) credited them.
        endpoint: Endpoint,
        /// What came back.
        reply: Reply,
    },
}

/// One caller-supplied row that replaces the default meaning of `(endpoint, status)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Override {
    endpoint: Endpoint,
    reply: Reply,
    verdict: Verdict,
}

/// How many rows a [`StatusTable`] can override.
pub const MAX_OVERRIDES: usize = 8;

/// The status classification table of `docs/protocol.md` §2, with up to [`MAX_OVERRIDES`] caller
/// overrides. `Copy` and allocation-free.
///
/// | endpoint | 2xx | 482 | 480 | 404 | 408, 429, 5xx, other | 4xx terminal |
/// |---|---|---|---|---|---|---|
/// | signer | minted (200) | skipped | refresh | transient | transient | 400, 481 |
/// | payment | paid | — | — | gone | transient | 400, 402, 403, 409, other 4xx |
/// | repost | paid | — | — | gone | transient | 402, 409, other 4xx; 400 and 403 are a refused replay (not terminal) |
/// | refresh | refreshed | — | — | transient | transient | 400, 409, other 4xx |
/// | stop | stopped | — | — | gone | transient | — |
///
/// Failures without a status, everywhere: [`Reply::Refused`], [`Reply::Network`] and
/// [`Reply::Timeout`] are transient; [`Reply::BadUrl`], [`Reply::Tls`], [`Reply::TooLarge`] and
/// [`Reply::Malformed`] are terminal (retrying cannot change them). Every row, status or
/// failure, can be overridden.
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
        self.set_reply(endpoint, Reply::Status(status), verdict)
    }

    /// Makes `(endpoint, reply)` mean `verdict`: a status row, or a failure row such as
    /// `(Payment, Reply::Tls)`. Replaces an earlier override of the same row.
    pub fn set_reply(&mut self, endpoint: Endpoint, reply: Reply, verdict: Verdict) -> Result<(), TableFull> {
        let row = Override {
            endpoint,
            reply,
            verdict,
        };
        let same_row =
            |o: &Option<Override>| matches!(o, Some(o) if o.endpoint == endpoint && o.reply == reply);
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

    /// Builder form of [`set_reply`](Self::set_reply).
    pub fn with_reply(
        mut self,
        endpoint: Endpoint,
        reply: Reply,
        verdict: Verdict,
    ) -> Result<Self, TableFull> {
        self.set_reply(endpoint, reply, verdict)?;
        Ok(self)
    }

    /// The meaning of `reply` to a request to `endpoint`.
    pub fn verdict(&self, endpoint: Endpoint, reply: Reply) -> Verdict {
        self.verdict_with(endpoint, reply, "")
    }

    /// The meaning of `reply` to a request to `endpoint` whose body gave `message` (the error
    /// text the protocol layer read from it, empty for none): one row reads the message, a
    /// payment 409 that says "price changed" (livepeer/node). An override of the row's status
    /// replaces that reading too.
    pub fn verdict_with(&self, endpoint: Endpoint, reply: Reply, message: &str) -> Verdict {
        if let Some(row) = self
            .overrides
            .iter()
            .flatten()
            .find(|o| o.endpoint == endpoint && o.reply == reply)
        {
            return row.verdict;
        }
        let price_changed = matches!(
            (endpoint, reply),
            (Endpoint::Payment | Endpoint::Repost, Reply::Status(409))
        ) && contains_ignore_case(message, "price changed");
        if price_changed {
            Verdict::PriceChanged
        } else {
            default_verdict(endpoint, reply)
        }
    }

    /// What follows `reply` to `endpoint` within an action: the next request (only the payment
    /// POST, after a signer 200), or the outcome that answers the action. The
    /// [`Sequencer`](crate::Sequencer) follows this; adapters never need to.
    pub fn next(&self, endpoint: Endpoint, reply: Reply) -> Next {
        self.next_with(endpoint, reply, "")
    }

    /// [`next`](Self::next) for an answer whose body gave `message` ([`verdict_with`](Self::verdict_with)).
    pub fn next_with(&self, endpoint: Endpoint, reply: Reply, message: &str) -> Next {
        let rejected = |reason| Outcome::Rejected {
            endpoint,
            reply,
            reason,
        };
        let outcome = match self.verdict_with(endpoint, reply, message) {
            Verdict::Minted if endpoint == Endpoint::Signer => return Next::Request(Endpoint::Payment),
            // An override that marks a non-signer answer "minted" can only mean success there.
            Verdict::Minted | Verdict::Paid | Verdict::Refreshed | Verdict::Stopped | Verdict::Success => {
                match endpoint {
                    Endpoint::Refresh => Outcome::Refreshed,
                    Endpoint::Stop => Outcome::Stopped,
                    _ => Outcome::Paid,
                }
            }
            Verdict::Skipped => Outcome::Skipped,
            Verdict::RefreshRequired => Outcome::RefreshRequired,
            Verdict::Gone => Outcome::Gone { endpoint },
            Verdict::Rejected | Verdict::Challenge => rejected(ReleaseReason::Rejected { endpoint, reply }),
            Verdict::CreditExhausted => rejected(ReleaseReason::SignerCreditExhausted),
            Verdict::PriceChanged => rejected(ReleaseReason::PriceChanged),
            Verdict::Transient | Verdict::CredentialRefused => Outcome::Transient { endpoint, reply },
            Verdict::ReplayRefused => Outcome::ReplayRefused,
        };
        Next::Done(outcome)
    }
}

/// Whether `haystack` contains `needle`, ASCII case-insensitively (no allocation).
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    !n.is_empty() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

const fn transient_or_rejected(status: u16) -> Verdict {
    match status {
        408 | 429 | 500..=599 => Verdict::Transient,
        _ => Verdict::Rejected,
    }
}

const fn default_verdict(endpoint: Endpoint, reply: Reply) -> Verdict {
    let status = match reply {
        Reply::Status(status) => status,
        // The request may not have arrived, or may have and its answer was lost: try again.
        Reply::Refused | Reply::Network | Reply::Timeout => return Verdict::Transient,
        // Retrying cannot help: the URL, the certificate and the server's answers stay as they
        // are. Override a row to retry such failures.
        Reply::BadUrl | Reply::Tls | Reply::TooLarge | Reply::Malformed => return Verdict::Rejected,
    };
    match (endpoint, status) {
        (Endpoint::Signer, 200) => Verdict::Minted,
        (Endpoint::Signer, 482) => Verdict::Skipped,
        (Endpoint::Signer, 480) => Verdict::RefreshRequired,
        // An expired or revoked token (pymthouse's JWTs live 300 s): a fresh one, then again.
        (Endpoint::Signer, 401 | 403) => Verdict::CredentialRefused,
        // The account's credit is exhausted (pymthouse).
        (Endpoint::Signer, 483) => Verdict::CreditExhausted,
        // 413: a request the signer will never take (retrying sends the same).
        (Endpoint::Signer, 400 | 413 | 481) => Verdict::Rejected,
        // Signer 5xx and anything else (auth webhook failures, proxies) is transient.
        (Endpoint::Signer, _) => Verdict::Transient,

        (Endpoint::Payment, 200..=299) => Verdict::Paid,
        (Endpoint::Payment, 404) => Verdict::Gone,
        (Endpoint::Payment, 408 | 429) => Verdict::Transient,
        // 400 tickets, 402 header encoding, 403 seg-creds, 409 fixed price (or, with "price
        // changed" in the body, `PriceChanged`: `verdict_with`), and any other 4xx.
        (Endpoint::Payment, 400..=499) => Verdict::Rejected,
        (Endpoint::Payment, _) => Verdict::Transient,

        (Endpoint::Repost, 200..=299) => Verdict::Paid,
        (Endpoint::Repost, 404) => Verdict::Gone,
        (Endpoint::Repost, 408 | 429) => Verdict::Transient,
        // The tickets were seen already (go-livepeer 400, livepeer/node 403), or expired (400).
        (Endpoint::Repost, 400 | 403) => Verdict::ReplayRefused,
        (Endpoint::Repost, 400..=499) => Verdict::Rejected,
        (Endpoint::Repost, _) => Verdict::Transient,

        (Endpoint::Refresh, 200..=299) => Verdict::Refreshed,
        (Endpoint::Refresh, 408 | 429) => Verdict::Transient,
        // 409 (go-livepeer) and 404 (livepeer/node): no pinned price for this sender and
        // session, the same answer; 400: bad request.
        (Endpoint::Refresh, 400..=499) => Verdict::Rejected,
        (Endpoint::Refresh, _) => Verdict::Transient,

        (Endpoint::Stop, 200..=299) => Verdict::Stopped,
        (Endpoint::Stop, 404) => Verdict::Gone,
        (Endpoint::Stop, _) => Verdict::Transient,

        // The reservation (`docs/protocol.md` §2.1, §2.3): a transient failure is retried after
        // a backoff; anything else ends it.
        (Endpoint::OrchestratorInfo, 200..=299) => Verdict::Success,
        (Endpoint::OrchestratorInfo, 401 | 403) => Verdict::CredentialRefused,
        (Endpoint::Reservation, 200..=299) => Verdict::Success,
        (Endpoint::Reservation, 402) => Verdict::Challenge,
        (Endpoint::PaidReservation, 200..=299) => Verdict::Success,
        (Endpoint::Discovery | Endpoint::Events, 200..=299) => Verdict::Success,
        (
            Endpoint::OrchestratorInfo
            | Endpoint::Reservation
            | Endpoint::PaidReservation
            | Endpoint::Discovery
            | Endpoint::Events,
            _,
        ) => transient_or_rejected(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint::*;

    #[track_caller]
    fn check(endpoint: Endpoint, reply: Reply, expected: Next) {
        assert_eq!(
            StatusTable::new().next(endpoint, reply),
            expected,
            "{endpoint:?} {reply:?}"
        );
    }

    fn done(o: Outcome) -> Next {
        Next::Done(o)
    }

    fn rejected(endpoint: Endpoint, status: u16) -> Next {
        let reply = Reply::Status(status);
        done(Outcome::Rejected {
            endpoint,
            reply,
            reason: ReleaseReason::Rejected { endpoint, reply },
        })
    }

    fn transient(endpoint: Endpoint, reply: Reply) -> Next {
        done(Outcome::Transient { endpoint, reply })
    }

    #[test]
    fn signer_rows() {
        check(Signer, Reply::Status(200), Next::Request(Payment));
        check(Signer, Reply::Status(482), done(Outcome::Skipped));
        check(Signer, Reply::Status(480), done(Outcome::RefreshRequired));
        check(Signer, Reply::Status(481), rejected(Signer, 481));
        check(Signer, Reply::Status(400), rejected(Signer, 400));
        for s in [500, 502, 503, 401, 403] {
            check(Signer, Reply::Status(s), transient(Signer, Reply::Status(s)));
        }
        let t = StatusTable::new();
        assert_eq!(t.verdict(Signer, Reply::Status(401)), Verdict::CredentialRefused);
        assert_eq!(t.verdict(Signer, Reply::Status(403)), Verdict::CredentialRefused);
        let exhausted = t.next(Signer, Reply::Status(483));
        assert!(
            matches!(
                exhausted,
                Next::Done(Outcome::Rejected {
                    reason: ReleaseReason::SignerCreditExhausted,
                    ..
                })
            ),
            "{exhausted:?}"
        );
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
            check(Payment, Reply::Status(s), rejected(Payment, s));
        }
        for s in [408, 429, 500, 503] {
            check(Payment, Reply::Status(s), transient(Payment, Reply::Status(s)));
        }
    }

    #[test]
    fn repost_rows_refuse_a_replay_without_stopping() {
        check(Repost, Reply::Status(200), done(Outcome::Paid));
        check(
            Repost,
            Reply::Status(404),
            done(Outcome::Gone { endpoint: Repost }),
        );
        for s in [400, 403] {
            check(Repost, Reply::Status(s), done(Outcome::ReplayRefused));
        }
        for s in [402, 409] {
            check(Repost, Reply::Status(s), rejected(Repost, s));
        }
        for s in [408, 429, 503] {
            check(Repost, Reply::Status(s), transient(Repost, Reply::Status(s)));
        }
        check(Repost, Reply::Refused, transient(Repost, Reply::Refused));
    }

    #[test]
    fn refresh_rows() {
        check(Refresh, Reply::Status(200), done(Outcome::Refreshed));
        check(Refresh, Reply::Status(409), rejected(Refresh, 409));
        check(Refresh, Reply::Status(400), rejected(Refresh, 400));
        check(
            Refresh,
            Reply::Status(503),
            transient(Refresh, Reply::Status(503)),
        );
    }

    #[test]
    fn stop_rows() {
        check(Stop, Reply::Status(204), done(Outcome::Stopped));
        check(Stop, Reply::Status(404), done(Outcome::Gone { endpoint: Stop }));
        check(Stop, Reply::Status(500), transient(Stop, Reply::Status(500)));
    }

    #[test]
    fn only_a_signer_200_continues_an_action() {
        let table = StatusTable::new();
        assert_eq!(table.next(Payment, Reply::Status(200)), Next::Done(Outcome::Paid));
        // An override that marks a payment answer "minted" cannot loop.
        let odd = StatusTable::new().with(Payment, 299, Verdict::Minted).unwrap();
        assert_eq!(odd.next(Payment, Reply::Status(299)), Next::Done(Outcome::Paid));
    }

    #[test]
    fn refused_network_errors_and_timeouts_are_transient_everywhere() {
        for endpoint in [Signer, Payment, Repost, Refresh, Stop] {
            for reply in [Reply::Refused, Reply::Network, Reply::Timeout] {
                check(endpoint, reply, transient(endpoint, reply));
            }
        }
    }

    #[test]
    fn failures_retrying_cannot_mend_are_terminal_everywhere() {
        for endpoint in [Signer, Payment, Repost, Refresh, Stop] {
            for reply in [Reply::BadUrl, Reply::Tls, Reply::TooLarge, Reply::Malformed] {
                let reason = ReleaseReason::Rejected { endpoint, reply };
                check(
                    endpoint,
                    reply,
                    done(Outcome::Rejected {
                        endpoint,
                        reply,
                        reason,
                    }),
                );
            }
        }
    }

    #[test]
    fn only_refused_bad_urls_and_tls_failures_provably_never_arrived() {
        assert!(Reply::Refused.never_arrived());
        assert!(Reply::BadUrl.never_arrived());
        assert!(Reply::Tls.never_arrived());
        for ambiguous in [Reply::Network, Reply::Timeout, Reply::TooLarge, Reply::Malformed] {
            assert!(!ambiguous.never_arrived(), "{ambiguous:?}");
        }
        assert!(!Reply::Status(503).never_arrived());
    }

    #[test]
    fn overrides_replace_single_rows_and_are_bounded() {
        let mut table = StatusTable::new().with(Signer, 401, Verdict::Rejected).unwrap();
        assert_eq!(table.next(Signer, Reply::Status(401)), rejected(Signer, 401));
        // Other rows keep their default meaning; re-setting a row does not use a new slot.
        assert_eq!(table.verdict(Signer, Reply::Status(402)), Verdict::Transient);
        table.set(Signer, 401, Verdict::Transient).unwrap();
        assert_eq!(table.verdict(Signer, Reply::Status(401)), Verdict::Transient);
        // Failure rows are overridable like status rows.
        table.set_reply(Payment, Reply::Tls, Verdict::Transient).unwrap();
        assert_eq!(table.next(Payment, Reply::Tls), transient(Payment, Reply::Tls));
        assert_eq!(table.verdict(Signer, Reply::Tls), Verdict::Rejected);
        for s in 0..(MAX_OVERRIDES as u16 - 2) {
            table.set(Payment, 600 + s, Verdict::Gone).unwrap();
        }
        assert_eq!(table.set(Payment, 700, Verdict::Gone), Err(TableFull));
        // A status override never changes what a timeout means.
        let t = StatusTable::new().with(Payment, 503, Verdict::Rejected).unwrap();
        assert_eq!(
            t.next(Payment, Reply::Timeout),
            transient(Payment, Reply::Timeout)
        );
    }

    #[test]
    fn a_payment_409_that_says_the_price_changed_is_its_own_row() {
        let t = StatusTable::new();
        for endpoint in [Payment, Repost] {
            let said = t.next_with(
                endpoint,
                Reply::Status(409),
                "Runner Price Changed; request a new challenge",
            );
            assert!(
                matches!(
                    said,
                    Next::Done(Outcome::Rejected {
                        reason: ReleaseReason::PriceChanged,
                        ..
                    })
                ),
                "{said:?}"
            );
            assert_eq!(
                t.next_with(endpoint, Reply::Status(409), "fixed price"),
                rejected(endpoint, 409)
            );
        }
        // The signer's 409 means nothing of the kind.
        assert_eq!(
            t.verdict_with(Signer, Reply::Status(409), "price changed"),
            Verdict::Transient
        );
        // An override of the status replaces the reading of the message too.
        let o = StatusTable::new().with(Payment, 409, Verdict::Transient).unwrap();
        assert_eq!(
            o.verdict_with(Payment, Reply::Status(409), "price changed"),
            Verdict::Transient
        );
    }

    #[test]
    fn reservation_rows() {
        let t = StatusTable::new();
        assert_eq!(t.verdict(Reservation, Reply::Status(402)), Verdict::Challenge);
        assert_eq!(t.verdict(Reservation, Reply::Status(200)), Verdict::Success);
        assert_eq!(t.verdict(PaidReservation, Reply::Status(200)), Verdict::Success);
        assert_eq!(t.verdict(OrchestratorInfo, Reply::Status(200)), Verdict::Success);
        assert_eq!(
            t.verdict(OrchestratorInfo, Reply::Status(401)),
            Verdict::CredentialRefused
        );
        for endpoint in [OrchestratorInfo, Reservation, PaidReservation] {
            for s in [408, 429, 500, 503] {
                assert_eq!(
                    t.verdict(endpoint, Reply::Status(s)),
                    Verdict::Transient,
                    "{endpoint} {s}"
                );
            }
            for s in [400, 404, 409] {
                assert_eq!(
                    t.verdict(endpoint, Reply::Status(s)),
                    Verdict::Rejected,
                    "{endpoint} {s}"
                );
            }
            assert_eq!(t.verdict(endpoint, Reply::Timeout), Verdict::Transient);
            assert_eq!(t.verdict(endpoint, Reply::Tls), Verdict::Rejected);
        }
        // Overridable like any row: a reservation 404 retried.
        let o = StatusTable::new()
            .with(Reservation, 404, Verdict::Transient)
            .unwrap();
        assert_eq!(o.verdict(Reservation, Reply::Status(404)), Verdict::Transient);
    }

    #[test]
    fn every_endpoint_names_its_peer_and_a_distinct_label() {
        for (i, a) in Endpoint::ALL.iter().enumerate() {
            for b in &Endpoint::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
        assert_eq!(OrchestratorInfo.peer(), Peer::Signer);
        assert_eq!(PaidReservation.peer(), Peer::Orchestrator);
    }
}
