//! The API's view of a session.

use livepay_core::State;

use super::{Summary, state_name, unix_ms};
use crate::spec::{SessionSpec, SessionView, SpendView, wei_text};

/// The API's view of a session: its spec, state and release, and what its last snapshot said.
pub(super) fn render_view(
    id: &str,
    spec: &SessionSpec,
    state: State,
    release: Option<String>,
    last: Option<Summary>,
) -> SessionView {
    let now_ms = unix_ms();
    let runway_ms = last.map_or(0, |l| {
        u64::from(l.runway_ms).saturating_sub(now_ms.saturating_sub(l.taken_ms))
    });
    let stats = last.map(|l| l.stats).unwrap_or_default();
    let spend = last.map(|l| l.spend).unwrap_or_default();
    #[allow(clippy::cast_precision_loss)]
    SessionView {
        id: id.to_owned(),
        state: state_name(state),
        release_reason: release,
        runway_s: if state.is_released() {
            0.0
        } else {
            runway_ms as f64 / 1e3
        },
        payments_accepted: stats.payments_accepted,
        cycles_skipped: stats.cycles_skipped,
        failures: stats.failures,
        refreshes: stats.refreshes,
        lost_mints: stats.lost_mints,
        billed_s: stats.billed.as_millis() as f64 / 1e3,
        spend: SpendView {
            wei: spend.wei.map(wei_text),
            usd: spend.usd,
        },
        runner_url: spec.runner_url.clone(),
        signer_url: spec.signer_url.clone(),
        created_ms: spec.created_ms,
    }
}
