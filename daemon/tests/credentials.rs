//! The daemon's signer account behind expiring tokens (`ServiceConfig::credentials`, the CLI's
//! `--signer-token-command`): a fresh token is fetched for each reservation, then by the funder
//! before each expires, and a session keeps paying across rotations.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Events, Running, options, post};
use futures::FutureExt as _;
use livepay_core::engine::Credential;
use livepay_hyper::CredentialSource;
use livepay_mock::model::dialect::SignerAuth;
use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_pay_on_across_token_rotations() {
    let served = Arc::new(
        ServedModel::start(ServeConfig {
            // Tokens live 4 s: several rotations within the test.
            signer_auth: Some(SignerAuth::new(livepay_core::Duration::from_secs(4), None)),
            ..ServeConfig::default()
        })
        .await
        .expect("served"),
    );
    let tokens = {
        let served = Arc::clone(&served);
        CredentialSource::new(move || {
            let token = served.issue_signer_token();
            async move {
                token.map(|(value, life)| Credential {
                    name: "Authorization".into(),
                    value,
                    expires_in: Some(life),
                })
            }
            .boxed()
        })
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut options = options(&dir.path().join("sessions.db"));
    options.service.credentials = Some(tokens);
    let daemon = Running::start_with(options).await;
    let body = json!({
        "runner_url": served.runner_url("live-runner"),
        "signer_url": served.signer_url(),
    });
    let reply = post(daemon.addr, &daemon.token, "/v1/sessions", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.json()["id"].as_str().expect("an id").to_owned();
    let issued = served.signer_tokens_issued();
    let mut events = Events::open(daemon.addr, &daemon.token, &format!("/v1/sessions/{id}/events")).await;
    // Payments go on until the token has been renewed twice (4 s lives, renewed 0.4 s early):
    // at most a dozen 3 s cycles.
    let mut paid = 0;
    while served.signer_tokens_issued() < issued + 2 {
        events.until("payment_accepted", Duration::from_secs(30)).await;
        paid += 1;
        assert!(
            paid <= 12,
            "no renewal: {issued} then {}",
            served.signer_tokens_issued()
        );
    }
    // And after the last renewal, still.
    events.until("payment_accepted", Duration::from_secs(30)).await;
    assert_eq!(common::releases_of(&served, &id), Vec::new(), "never released");
    daemon.stop().await;
}
