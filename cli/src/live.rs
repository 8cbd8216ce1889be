//! What `demo` and `fund` share: error mapping, event filtering, and totals of the core's counters.

use livepay_core::engine::ReserveError;
use livepay_core::{Event, ReleaseReason, State, Stats};
use livepay_hyper::{LiveError, LiveSession};

use crate::CliError;

/// Maps a `LiveSession` error to the CLI's exit codes.
pub(crate) fn live_error(e: LiveError) -> CliError {
    let text = e.to_string();
    match e {
        LiveError::Unreachable { .. } | LiveError::Http(_) => CliError::Unreachable(text),
        LiveError::Reserve(r) => match r {
            ReserveError::Unreachable { .. } => CliError::Unreachable(text),
            ReserveError::BadUrl { .. } | ReserveError::BadMaxPrice => CliError::BadInput(text),
            _ => CliError::Rejected(text),
        },
        LiveError::Config(_) | LiveError::PaymentTypeMismatch { .. } | LiveError::NoRuntime => {
            CliError::BadInput(text)
        }
        LiveError::StopFailed { .. } => CliError::Unreachable(text),
        _ => CliError::Rejected(text),
    }
}

/// The exit for a session that ended with `reason`.
pub(crate) fn release_result(reason: ReleaseReason) -> Result<(), CliError> {
    match reason {
        ReleaseReason::ClosedByClient | ReleaseReason::BudgetExhausted => Ok(()),
        ReleaseReason::Gone | ReleaseReason::Lapsed => Err(CliError::Released(reason.to_string())),
        ReleaseReason::Rejected { .. } => Err(CliError::Rejected(reason.to_string())),
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
