//! Issue 11, done means: `livepay fund` keeps a session funded for 30 s against the livepeer/node
//! dialect (lowercase state, flat errors, `session_` ids, JSON challenges in payment answers)
//! with its params expiring every few seconds and its signer behind 5 s tokens fetched by
//! `--signer-token-command`; and for 30 s against a server whose tickets are worth 25 s (482s).

mod common;

use common::{Served, fund_json};
use livepay_mock::model::dialect::{Dialect, SignerAuth};
use livepay_mock::model::{DEFAULT_PRICE_WEI, ManifestIds, ModelConfig};
use livepay_mock::serve::ServeConfig;
use serde_json::Value;

fn fund_30s(served: &Served, extra: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut args = vec!["--duration", "30s"];
    args.extend_from_slice(extra);
    fund_json(served, &args)
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

#[test]
fn thirty_seconds_against_livepeer_node_with_expiring_tokens_and_params() {
    let served = Served::start(ServeConfig {
        model: ModelConfig {
            manifest_ids: ManifestIds::Session10,
            param_lifetime: livepay_core::Duration::from_secs(4),
            ..ModelConfig::default()
        },
        dialect: Dialect::LivepeerNode,
        signer_auth: Some(SignerAuth::new(livepay_core::Duration::from_secs(5), None)),
        ..ServeConfig::default()
    });
    // The token issuer is `POST {signer}/token`; the command fetches one with bash alone.
    let port = served
        .model
        .signer_url()
        .rsplit(':')
        .next()
        .expect("a port")
        .to_owned();
    let command = format!(
        r#"exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'POST /token HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' >&3; body=$(tail -n 1 <&3); tok=$(printf %s "$body" | sed -E 's/.*"token":"([^"]+)".*/\1/'); ttl=$(printf %s "$body" | sed -E 's/.*"expires_in":([0-9.]+).*/\1/'); printf 'Authorization: Bearer %s\n%s\n' "$tok" "$ttl""#
    );
    let command = format!("bash -c '{}'", command.replace('\'', r"'\''"));
    let (code, events, err) = fund_30s(&served, &["--signer-token-command", &command]);
    assert_eq!(code, Some(0), "{err}\n{events:?}");
    let exit = events.last().expect("an exit line");
    assert_eq!(exit["release"]["reason"], "closed_by_client", "{exit}");
    assert!(
        exit["session"]
            .as_str()
            .is_some_and(|s| s.starts_with("session_")),
        "{exit}"
    );
    assert!(count(&events, "payment_accepted") >= 5, "{events:?}");
    assert!(
        served.model.signer_tokens_issued() >= 4,
        "{}",
        served.model.signer_tokens_issued()
    );
    assert_eq!(
        served
            .model
            .with_world(|w| w.orchestrator().stats().released_unpaid),
        0
    );
    assert!(!err.contains("lp-sim-"), "a token leaked: {err}");
}

#[test]
fn thirty_seconds_with_tickets_worth_25_seconds() {
    let served = Served::start(ServeConfig {
        model: ModelConfig {
            ticket_ev_wei: DEFAULT_PRICE_WEI * 25,
            ..ModelConfig::default()
        },
        ..ServeConfig::default()
    });
    let (code, events, err) = fund_30s(&served, &[]);
    assert_eq!(code, Some(0), "{err}\n{events:?}");
    assert_eq!(
        events.last().expect("exit")["release"]["reason"],
        "closed_by_client"
    );
    assert!(count(&events, "cycle_skipped") >= 1, "{events:?}");
    assert_eq!(
        served
            .model
            .with_world(|w| w.orchestrator().stats().released_unpaid),
        0
    );
}
