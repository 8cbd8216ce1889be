//! What `demo` and `fund` share: error mapping, event printing, and a running tally.

use std::collections::HashMap;

use livepay_core::client::ReserveError;
use livepay_core::{Event, ReleaseReason, State};
use livepay_hyper::LiveError;

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
        ReleaseReason::Gone => Err(CliError::Released(reason.to_string())),
        ReleaseReason::Rejected { .. } => Err(CliError::Rejected(reason.to_string())),
    }
}

/// Counts per session, from events.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) accepted: u64,
    pub(crate) skipped: u64,
    pub(crate) failed: u64,
    pub(crate) refreshes: u64,
    pub(crate) at_risk: u64,
    pub(crate) states: HashMap<String, State>,
}

impl Tally {
    pub(crate) fn add(&mut self, session: &str, event: &Event) {
        match *event {
            Event::PaymentAccepted { .. } => self.accepted += 1,
            Event::CycleSkipped { .. } => self.skipped += 1,
            Event::PaymentFailed { .. } | Event::PaymentAbandoned { .. } => self.failed += 1,
            Event::Refreshed { .. } => self.refreshes += 1,
            Event::AtRisk { .. } | Event::Lapsed { .. } => self.at_risk += 1,
            Event::StateChanged { to, .. } => {
                self.states.insert(session.to_owned(), to);
            }
            _ => {}
        }
    }

    pub(crate) fn funding(&self) -> usize {
        self.states.values().filter(|s| s.is_funding()).count()
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
