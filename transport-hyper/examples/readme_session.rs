//! The README's "A session in 20 lines", compiled so it stays true. It needs a real orchestrator
//! and signer to run; `livepay demo` and `tokio_live_session` run against the simulated ones.

#![allow(clippy::print_stdout)]

use futures::StreamExt;
use livepay_core::{Config, PaymentType, engine::ReserveOptions};
use livepay_hyper::{LiveOptions, LiveSession};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reserve = ReserveOptions::new(
        "https://orch.example:8935/apps/live-runner/session", // the discovery answer's runner url
        Some("https://signer.example".into()),                // the remote signer holds the key
        PaymentType::Live,
    )
    .with_signer_header("Authorization", "Bearer …"); // redacted in Debug and logs
    let options = LiveOptions::new(reserve).with_config(Config::new(PaymentType::Live));
    let session = LiveSession::reserve(options).await?; // 402 → signer → paid retry; funding starts
    let mut events = session.events();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            println!("{e}");
        }
    });
    // ... stream media over session.app_url() ...
    let reason = session.close().await?; // stop funding, then POST stop
    println!("released: {reason}");
    Ok(())
}
