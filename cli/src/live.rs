//! What `demo` and `fund` share: error mapping, event filtering, and totals of the core's counters.

use livepay_core::engine::ReserveError;
use livepay_core::{Event, ReleaseReason, Reply, State, Stats};
use livepay_hyper::{HttpError, LiveError, LiveSession, TlsProblem, WireProblem};

use crate::CliError;

/// Maps a `LiveSession` error to the CLI's exit codes: the caller's input (2), a refusal (4), no
/// answer (5), a peer that broke the protocol (6). TLS failures get plain words and the flag
/// that would help.
pub(crate) fn live_error(e: LiveError) -> CliError {
    let text = e.to_string();
    match e {
        LiveError::Unreachable { error, .. } => CliError::Unreachable(with_tls_hint(text, &error)),
        LiveError::Http(error) => CliError::BadInput(with_tls_hint(text, &error)),
        LiveError::Reserve(r) if r.is_protocol_violation() => CliError::Protocol(text),
        LiveError::Reserve(r) if r.is_caller_input() => CliError::BadInput(text),
        LiveError::Reserve(ReserveError::Unreachable { .. }) => CliError::Unreachable(text),
        LiveError::Config(_) | LiveError::PaymentTypeMismatch { .. } | LiveError::NoRuntime => {
            CliError::BadInput(text)
        }
        LiveError::StopFailed { .. } => CliError::Unreachable(text),
        _ => CliError::Rejected(text),
    }
}

/// `text`, plus what to do about a TLS failure.
fn with_tls_hint(text: String, error: &HttpError) -> String {
    let Some(failure) = error.tls_failure() else {
        return text;
    };
    let hint = match failure.problem() {
        TlsProblem::UnknownIssuer if failure.orchestrator_ca_may_help() => {
            "; to trust the orchestrator's own CA pass --orchestrator-ca FILE (--insecure-orchestrator-tls accepts any certificate)"
        }
        TlsProblem::NotValidForName => "; check the host name in the URL",
        TlsProblem::Expired | TlsProblem::NotYetValid => {
            "; check the server's certificate dates and this machine's clock"
        }
        _ => "",
    };
    format!("{text}{hint}")
}

/// The exit for a session that ended with `reason`, with the last problem seen on the wire and
/// the session's counters for the summary.
pub(crate) fn release_result(
    reason: ReleaseReason,
    problem: Option<&WireProblem>,
    stats: &Stats,
) -> Result<(), CliError> {
    let detail = problem.map_or_else(String::new, |p| format!(" (last problem: {p})"));
    match reason {
        ReleaseReason::ClosedByClient | ReleaseReason::BudgetExhausted => Ok(()),
        ReleaseReason::Gone
        | ReleaseReason::Lapsed
        | ReleaseReason::PriceChanged
        | ReleaseReason::ReleasedByServer => Err(CliError::Released(reason.to_string())),
        ReleaseReason::SignerCreditExhausted => Err(CliError::Rejected(format!("{reason}{detail}"))),
        ReleaseReason::GaveUp => Err(CliError::Unreachable(format!(
            "{reason}: {} payment(s) accepted, {} failure(s){detail}",
            stats.payments_accepted, stats.failures
        ))),
        ReleaseReason::Rejected {
            reply: Reply::Malformed,
            ..
        } => Err(CliError::Protocol(format!("{reason}{detail}"))),
        ReleaseReason::Rejected { .. } => Err(CliError::Rejected(format!("{reason}{detail}"))),
    }
}

/// The core's counters of several sessions, added up (never recounted from events).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub(crate) funding: usize,
    pub(crate) accepted: u64,
    pub(crate) skipped: u64,
    pub(crate) failed: u64,
    pub(crate) refreshes: u64,
    pub(crate) at_risk: u64,
}

impl Totals {
    /// The totals of `sessions` now.
    pub(crate) fn of(sessions: &[LiveSession]) -> Self {
        let mut totals = Self::default();
        for session in sessions {
            totals.funding += usize::from(session.state().is_funding());
            totals.add(&session.stats());
        }
        totals
    }

    fn add(&mut self, stats: &Stats) {
        self.accepted += u64::from(stats.payments_accepted);
        self.skipped += u64::from(stats.cycles_skipped);
        self.failed += u64::from(stats.failures);
        self.refreshes += u64::from(stats.refreshes);
        self.at_risk += u64::from(stats.at_risk) + u64::from(stats.lapses);
    }
}

/// Whether an event is routine (printed only when few sessions run).
pub(crate) fn routine(event: &Event) -> bool {
    matches!(
        event,
        Event::PaymentAccepted { .. }
            | Event::CycleSkipped { .. }
            | Event::StateChanged {
                to: State::Funding | State::Skipped,
                ..
            }
    )
}
