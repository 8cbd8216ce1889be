//! The funder's two outputs, pumped into the daemon: events to the streams (lossy, decides
//! nothing), and each session's exit (lossless: the registry, the store's close, the metrics).

use livepay_core::{Event, Exit, State};
use livepay_hyper::SessionKey;
use tokio::sync::mpsc;

use super::{Service, state_name, unix_ms};
use crate::metrics::SessionCounts;
use crate::spec::wei_text;
use crate::store::Write;

impl Service {
    /// Forwards the funder's events to the events streams, and live state changes to the view.
    /// Events may be dropped under back-pressure: nothing here decides the session's end, its
    /// storage or a metric (those come from [`pump_exits`](Self::pump_exits)).
    pub(super) async fn pump_events(self, mut events: mpsc::Receiver<(SessionKey, Event)>) {
        while let Some((key, event)) = events.recv().await {
            let mut registry = self.shared.registry();
            let Some(id) = registry.by_key.get(&key).cloned() else {
                continue;
            };
            let Some(entry) = registry.by_id.get_mut(&id) else {
                continue;
            };
            if let Some(events) = &entry.events
                && events.receiver_count() > 0
            {
                let mut line = event_line(&event);
                // A credited payment's checkpoint came first (the funder stores it before it emits
                // the event): its spend is the session's, up to this payment.
                if matches!(event, Event::PaymentAccepted { .. })
                    && let Some(spend) = entry.last.map(|l| l.spend)
                    && let Some(wei) = spend.wei
                {
                    line["spend_wei"] = wei_text(wei).into();
                    if let Some(usd) = spend.usd {
                        line["spend_usd"] = usd.into();
                    }
                }
                let _ = events.send(line.to_string());
            }
            if let Event::StateChanged { to, .. } = event
                && !to.is_released()
                && !entry.state.is_released()
            {
                entry.state = to;
                let counts = SessionCounts::of(registry.by_id.values().map(|e| e.state));
                drop(registry);
                self.shared.metrics.set_sessions(counts);
            }
        }
    }

    /// Every session's end, from the funder's lossless exits: the view, `DELETE`'s waiters, the
    /// events stream's last line, the store's close record and the metrics.
    pub(super) async fn pump_exits(self, mut exits: mpsc::UnboundedReceiver<(SessionKey, Exit)>) {
        while let Some((key, exit)) = exits.recv().await {
            self.on_exit(key, exit);
        }
    }

    fn on_exit(&self, key: SessionKey, exit: Exit) {
        let mut registry = self.shared.registry();
        let Some(id) = registry.by_key.remove(&key) else {
            return;
        };
        let Some(entry) = registry.by_id.get_mut(&id) else {
            return;
        };
        let before = entry.last.map(|l| l.stats).unwrap_or_default();
        if let Some(last) = &mut entry.last {
            last.stats = exit.stats();
        }
        match exit {
            Exit::Released { reason, .. } => {
                entry.state = State::Released { reason };
                entry.key = None;
                // A stop this daemon decided for a reason of its own (the app went away) is
                // recorded as that reason.
                let text = entry.close_reason.take().unwrap_or_else(|| reason.to_string());
                entry.release = Some(text.clone());
                for waiter in entry.closing.drain(..) {
                    let _ = waiter.send(text.clone());
                }
                // The stream ends with the release, its last line saying why.
                if let Some(events) = entry.events.take() {
                    let line = event_line(&Event::StateChanged {
                        from: State::Funding,
                        to: State::Released { reason },
                    });
                    let _ = events.send(line.to_string());
                }
                self.shared.writer.submit(Write::Close {
                    id,
                    reason: text,
                    at_ms: unix_ms(),
                    epoch: entry.epoch,
                });
                self.shared.metrics.observe_release(reason);
            }
            Exit::Stopped { .. } => {
                // Handed off (the handoff records it), or nothing to fund: funded no more here.
                entry.state = State::Reserved;
                entry.key = None;
            }
        }
        let counts = SessionCounts::of(registry.by_id.values().map(|e| e.state));
        drop(registry);
        self.shared.metrics.observe_stats_growth(&before, &exit.stats());
        self.shared.metrics.set_sessions(counts);
    }
}

/// One event as a JSON object: its kind and its text (which holds no secret).
pub(super) fn event_line(event: &Event) -> serde_json::Value {
    let kind = match event {
        Event::StateChanged { .. } => "state_changed",
        Event::PaymentAccepted { .. } => "payment_accepted",
        Event::CycleSkipped { .. } => "cycle_skipped",
        Event::PaymentFailed { .. } => "payment_failed",
        Event::PaymentAbandoned { .. } => "payment_abandoned",
        Event::RefreshRequired { .. } => "refresh_required",
        Event::Refreshed { .. } => "refreshed",
        Event::AtRisk { .. } => "at_risk",
        Event::Lapsed { .. } => "lapsed",
        Event::BudgetExhausted { .. } => "budget_exhausted",
        Event::MintLost { .. } => "mint_lost",
        Event::FundingNotRequired { .. } => "funding_not_required",
        Event::StopFailed { .. } => "stop_failed",
    };
    let mut line = serde_json::json!({ "type": kind, "text": event.to_string() });
    if let Event::StateChanged {
        to: State::Released { reason },
        ..
    } = event
    {
        line["state"] = "released".into();
        line["reason"] = reason.to_string().into();
    } else if let Event::StateChanged { to, .. } = event {
        line["state"] = state_name(*to).into();
    }
    line
}
