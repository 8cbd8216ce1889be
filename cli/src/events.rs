//! Events as one JSON object per line (`--json`), with the session and the time in seconds.

use livepay_core::{Endpoint, Event, NotFunded, ReleaseReason, Reply, State};
use serde_json::{Value, json};

fn reply(r: Reply) -> Value {
    match r {
        Reply::Status(s) => json!({ "status": s }),
        Reply::Refused => json!("refused"),
        Reply::Network => json!("network"),
        Reply::Timeout => json!("timeout"),
        Reply::BadUrl => json!("bad_url"),
        Reply::Tls => json!("tls"),
        Reply::TooLarge => json!("too_large"),
        Reply::Malformed => json!("malformed"),
    }
}

fn endpoint(e: Endpoint) -> &'static str {
    e.as_str()
}

fn secs(micros: u64) -> f64 {
    (micros as f64 / 1e3).round() / 1e3
}

/// The name and fields of a release reason.
pub(crate) fn reason(r: ReleaseReason) -> Value {
    match r {
        ReleaseReason::ClosedByClient => json!({ "reason": "closed_by_client" }),
        ReleaseReason::Gone => json!({ "reason": "gone" }),
        ReleaseReason::Rejected {
            endpoint: e,
            reply: r,
        } => {
            json!({ "reason": "rejected", "endpoint": endpoint(e), "reply": reply(r) })
        }
        ReleaseReason::BudgetExhausted => json!({ "reason": "budget_exhausted" }),
        ReleaseReason::Lapsed => json!({ "reason": "lapsed" }),
        ReleaseReason::GaveUp => json!({ "reason": "gave_up" }),
        ReleaseReason::PriceChanged => json!({ "reason": "price_changed" }),
        ReleaseReason::SignerCreditExhausted => json!({ "reason": "signer_credit_exhausted" }),
        ReleaseReason::ReleasedByServer => json!({ "reason": "released_by_server" }),
    }
}

fn state(s: State) -> Value {
    match s {
        State::Reserved => json!("reserved"),
        State::Funding => json!("funding"),
        State::Skipped => json!("skipped"),
        State::Released { reason: r } => json!({ "released": reason(r) }),
    }
}

/// `event` of `session` at `t_s` seconds, as one JSON object.
pub(crate) fn to_json(session: &str, t_s: f64, event: &Event) -> Value {
    let (kind, fields) = match *event {
        Event::StateChanged { from, to } => {
            ("state_changed", json!({ "from": state(from), "to": state(to) }))
        }
        Event::PaymentAccepted { cycle, latency } => (
            "payment_accepted",
            json!({ "cycle": cycle, "latency_s": secs(latency.as_micros()) }),
        ),
        Event::CycleSkipped { cycle } => ("cycle_skipped", json!({ "cycle": cycle })),
        Event::PaymentFailed {
            endpoint: e,
            reply: r,
            consecutive,
            next_retry,
        } => (
            "payment_failed",
            json!({ "endpoint": endpoint(e), "reply": reply(r), "consecutive": consecutive, "next_retry_s": secs(next_retry.as_micros()) }),
        ),
        Event::PaymentAbandoned {
            endpoint: e,
            reply: r,
        } => (
            "payment_abandoned",
            json!({ "endpoint": endpoint(e), "reply": reply(r) }),
        ),
        Event::RefreshRequired { attempt } => ("refresh_required", json!({ "attempt": attempt })),
        Event::Refreshed { attempt } => ("refreshed", json!({ "attempt": attempt })),
        Event::AtRisk { runway } => ("at_risk", json!({ "runway_s": secs(runway.as_micros()) })),
        Event::Lapsed { deadline } => ("lapsed", json!({ "deadline_s": secs(deadline.as_micros()) })),
        Event::BudgetExhausted { closes_at } => (
            "budget_exhausted",
            json!({ "closes_at_s": secs(closes_at.as_micros()) }),
        ),
        Event::MintLost { cycle } => ("mint_lost", json!({ "cycle": cycle })),
        Event::FundingNotRequired { why } => (
            "funding_not_required",
            json!({ "why": match why { NotFunded::Offchain => "offchain", NotFunded::FixedPrice => "fixed_price" } }),
        ),
        Event::StopFailed { reply: r } => ("stop_failed", json!({ "reply": reply(r) })),
    };
    let mut object = json!({ "t_s": t_s, "session": session, "event": kind });
    if let (Some(target), Value::Object(extra)) = (object.as_object_mut(), fields) {
        target.extend(extra);
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use livepay_core::{Duration, Instant};

    #[test]
    fn events_render_as_flat_objects() {
        let e = Event::PaymentFailed {
            endpoint: Endpoint::Payment,
            reply: Reply::Status(503),
            consecutive: 2,
            next_retry: Instant::from_millis(1_500),
        };
        assert_eq!(
            to_json("abcd1234", 1.25, &e),
            json!({"t_s": 1.25, "session": "abcd1234", "event": "payment_failed", "endpoint": "payment",
                   "reply": {"status": 503}, "consecutive": 2, "next_retry_s": 1.5})
        );
        let accepted = Event::PaymentAccepted {
            cycle: 3,
            latency: Duration::from_micros(1_234),
        };
        assert_eq!(to_json("s", 0.0, &accepted)["latency_s"], json!(0.001));
        let released = Event::StateChanged {
            from: State::Funding,
            to: State::Released {
                reason: ReleaseReason::Gone,
            },
        };
        assert_eq!(
            to_json("s", 0.0, &released)["to"],
            json!({"released": {"reason": "gone"}})
        );
    }
}
