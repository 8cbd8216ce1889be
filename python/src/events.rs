//! What a session's event stream yields: the core's [`Event`]s, then its release, as JSON
//! objects with a `"type"` (the Python side parses them into dicts).

use livepay_core::{Event, State};
use serde_json::{Value, json};

use crate::funding::{Ended, Slot};

/// One item of a session's stream.
#[derive(Debug, Clone)]
pub(crate) enum EventItem {
    Event(Event),
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Reserved => "reserved",
        State::Funding => "funding",
        State::Skipped => "skipped",
        State::Released { .. } => "released",
    }
}

fn secs(d: livepay_core::Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let ms = d.as_millis() as f64;
    ms / 1e3
}

/// `event` as the JSON object the Python side yields. Its text holds no secret: the core's
/// events carry counters, durations, endpoints and replies only.
pub(crate) fn to_json(event: &Event) -> Value {
    match event {
        Event::StateChanged { from, to } => {
            json!({"type": "state_changed", "from": state_name(*from), "to": state_name(*to)})
        }
        Event::PaymentAccepted { cycle, latency } => {
            json!({"type": "payment_accepted", "cycle": cycle, "latency": secs(*latency)})
        }
        Event::CycleSkipped { cycle } => json!({"type": "cycle_skipped", "cycle": cycle}),
        Event::PaymentFailed {
            endpoint,
            reply,
            consecutive,
            ..
        } => json!({
            "type": "payment_failed",
            "endpoint": endpoint.as_str(),
            "reply": reply.to_string(),
            "consecutive": consecutive,
        }),
        Event::PaymentAbandoned { endpoint, reply } => json!({
            "type": "payment_abandoned",
            "endpoint": endpoint.as_str(),
            "reply": reply.to_string(),
        }),
        Event::RefreshRequired { attempt } => json!({"type": "refresh_required", "attempt": attempt}),
        Event::Refreshed { attempt } => json!({"type": "refreshed", "attempt": attempt}),
        Event::AtRisk { runway } => json!({"type": "at_risk", "runway": secs(*runway)}),
        Event::Lapsed { .. } => json!({"type": "lapsed"}),
        Event::BudgetExhausted { .. } => json!({"type": "budget_exhausted"}),
        Event::MintLost { cycle } => json!({"type": "mint_lost", "cycle": cycle}),
        Event::FundingNotRequired { why } => {
            json!({"type": "funding_not_required", "why": format!("{why:?}").to_lowercase()})
        }
        Event::StopFailed { reply } => json!({"type": "stop_failed", "reply": reply.to_string()}),
    }
}

/// The next item of `slot`'s stream as JSON text: queued events first, then the release once;
/// `None` once the session ended and everything was yielded. Waits for the next event.
pub(crate) async fn next(slot: &Slot) -> Option<String> {
    let mut ended = slot.ended.subscribe();
    let mut reader = slot.events_rx.lock().await;
    loop {
        if let Ok(EventItem::Event(event)) = reader.0.try_recv() {
            return Some(to_json(&event).to_string());
        }
        let end = ended.borrow_and_update().clone();
        match end {
            Some(Ended::Released(reason)) if !reader.1 => {
                reader.1 = true;
                return Some(json!({"type": "released", "reason": reason}).to_string());
            }
            Some(_) => return None,
            None => {}
        }
        tokio::select! {
            item = reader.0.recv() => match item {
                Some(EventItem::Event(event)) => return Some(to_json(&event).to_string()),
                None => return None,
            },
            changed = ended.changed() => if changed.is_err() { return None },
        }
    }
}
