//! Every dialect in the simulation: the servers' differences change the requests livepay makes
//! (a fresh challenge in payment answers saves refreshes; the nonce limit costs some), never
//! whether a session stays funded.

use super::*;
use crate::model::dialect::Dialect;

fn run(dialect: Dialect, ev: f64, profile: &str) -> PolicyReport {
    let c = SimConfig {
        sessions: 10,
        duration: Duration::from_secs(2 * 3_600),
        plan: FaultPlan::profile(profile).unwrap(),
        model: dialect.fast_config(FastConfig::default()),
        ..SimConfig::default()
    }
    .with_ev_seconds(ev);
    simulate(&c, PolicyKind::Livepay).unwrap()
}

#[test]
fn every_dialect_keeps_sessions_funded_across_ticket_values() {
    for dialect in Dialect::ALL {
        for ev in [1.0, 10.0, 60.0, 180.0] {
            let r = run(dialect, ev, "clean");
            assert_eq!(r.drops, 0, "{dialect:?} at {ev} s tickets");
        }
        let r = run(dialect, 2.5, "flaky");
        assert_eq!(r.drops, 0, "{dialect:?}, flaky");
    }
}

#[test]
fn a_challenge_in_payment_answers_saves_the_refreshes() {
    let master = run(Dialect::GoLivepeer, 1.0, "clean");
    let next = run(Dialect::GoLivepeerNext, 1.0, "clean");
    let node = run(Dialect::LivepeerNode, 1.0, "clean");
    // Params live 8 min: about 15 refreshes per 2 h session on master, none with the challenge.
    assert!(master.refreshes >= 10 * 14, "{}", master.refreshes);
    assert_eq!(next.refreshes, 0);
    assert_eq!(node.refreshes, 0);
    assert!(next.signer_calls <= master.signer_calls);
}

#[test]
fn the_nonce_limit_costs_a_refresh_without_a_challenge_in_payment_answers() {
    // #4028 alone (no #4029): tickets worth 1 s, 5 per payment, reach nonce 500 within about
    // 8 min, the params' own life; at 0.1 s tickets (50 per payment) within a minute.
    let model = FastConfig {
        refresh_at_nonce: Some(500),
        ..FastConfig::default()
    };
    let c = SimConfig {
        sessions: 10,
        duration: Duration::from_secs(3_600),
        model,
        ..SimConfig::default()
    }
    .with_ev_seconds(0.1);
    let limited = simulate(&c, PolicyKind::Livepay).unwrap();
    let unlimited = simulate(
        &SimConfig {
            model: FastConfig {
                refresh_at_nonce: None,
                ..c.model
            },
            ..c
        },
        PolicyKind::Livepay,
    )
    .unwrap();
    assert_eq!(limited.drops, 0);
    assert!(
        limited.refreshes > unlimited.refreshes * 3,
        "{} vs {}",
        limited.refreshes,
        unlimited.refreshes
    );
}
