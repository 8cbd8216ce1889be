//! `livepay fund` at real scale against the served model in the regimes of issue 9: a ticket
//! worth 2.5 s of price, half the payment POSTs answering 503 for the first minute (the session
//! is kept), and every payment POST failing (`AtRisk` and `Lapsed` before the model releases the
//! session, then exit 3 with the reason).

mod common;

use common::{Served, fund_json};
use livepay_mock::faults::FaultPlan;
use livepay_mock::model::{DEFAULT_PRICE_WEI, ModelConfig};
use livepay_mock::serve::ServeConfig;
use serde_json::Value;

/// The served model with tickets worth 2.5 s of its price and the fault profile `profile`.
fn served(profile: &str, seed: u64) -> Served {
    Served::start(ServeConfig {
        model: ModelConfig {
            ticket_ev_wei: DEFAULT_PRICE_WEI * 5 / 2,
            ..ModelConfig::default()
        },
        plan: FaultPlan::profile(profile).expect("a profile"),
        seed,
        ..ServeConfig::default()
    })
}

/// Runs `fund --json` on `served` for `duration`; returns the exit code and the event lines.
fn fund(served: &Served, duration: &str) -> (Option<i32>, Vec<Value>) {
    let (code, lines, _) = fund_json(served, &["--duration", duration]);
    (code, lines)
}

fn first(lines: &[Value], event: &str) -> Option<f64> {
    lines
        .iter()
        .find(|v| v["event"] == event)
        .and_then(|v| v["t_s"].as_f64())
}

#[test]
fn half_the_payments_failing_for_a_minute_with_2_5_s_tickets_keeps_the_session() {
    let served = served("payment-503-start", 3);
    let (code, lines) = fund(&served, "70s");
    let failed = lines.iter().filter(|v| v["event"] == "payment_failed").count();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(failed > 0, "the fault window was met: {lines:#?}");
    assert_eq!(lines.last().unwrap()["release"]["reason"], "closed_by_client");
    served.model.with_world(|w| {
        let orchestrator = w.orchestrator();
        assert_eq!(
            orchestrator.stats().released_unpaid,
            0,
            "released for lack of credit"
        );
    });
}

#[test]
fn every_payment_failing_warns_then_lapses_before_the_release_and_exits_3() {
    let served = served("payment-down", 5);
    let (code, lines) = fund(&served, "25s");
    assert_eq!(code, Some(3), "{lines:#?}");
    let at_risk = first(&lines, "at_risk").expect("an at-risk warning");
    let lapsed = first(&lines, "lapsed").expect("a lapse");
    let reserved = first(&lines, "state_changed").expect("funding started");
    assert!(at_risk < lapsed, "{lines:#?}");
    let release = served.model.with_world(|w| {
        let session = w.orchestrator().sessions().next().expect("the session");
        let (at, _) = session.released().expect("the model released it");
        (at.as_micros() - session.created_at().as_micros()) as f64 / 1e6
    });
    // On the client's clock, from funding's start (just after the reservation).
    assert!(
        lapsed - reserved < release,
        "lapsed at {lapsed} s, released at {release} s"
    );
    assert_eq!(lines.last().unwrap()["release"]["reason"], "lapsed", "{lines:#?}");
}
