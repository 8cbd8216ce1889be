//! Fund one live-runner session over real HTTP on tokio with `LiveSession`: the model is served
//! in-process on loopback, the session is reserved (the 402 flow), funded for about 5 s from a
//! background task, then closed.
//!
//! `cargo run -p livepay-hyper --example tokio_live_session`
#![allow(clippy::print_stdout)]

use std::time::Duration;

use futures::StreamExt;
use livepay_core::PaymentType;
use livepay_core::engine::ReserveOptions;
use livepay_hyper::{LiveOptions, LiveSession};
use livepay_mock::serve::{ServeConfig, ServedModel};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let served = ServedModel::start(ServeConfig::default()).await?;
    println!(
        "orchestrator {}, signer {}",
        served.orchestrator_url(),
        served.signer_url()
    );

    let reserve = ReserveOptions::new(
        served.runner_url("live-runner"),
        Some(served.signer_url()),
        PaymentType::Live,
    );
    // Subscribe to the events before funding starts, so that none is missed.
    let session = LiveSession::reserve(LiveOptions::new(reserve).with_start_payments(false)).await?;
    println!("reserved {} (app at {})", session.session_id(), session.app_url());
    let started = tokio::time::Instant::now();
    let printer = tokio::spawn(session.events().for_each(move |event| {
        let ms = started.elapsed().as_millis();
        println!("{:>2}.{:03}s  {event}", ms / 1000, ms % 1000);
        futures::future::ready(())
    }));
    session.start_payments()?;

    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = session.stats(); // the engine's own counters
    println!(
        "{} payments credited of {} sent, {} ms of service bought",
        stats.payments_accepted,
        stats.payments_sent,
        stats.billed.as_millis()
    );
    let reason = session.close().await?;
    printer.await?;
    println!("released: {reason}");
    let releases = served.with_world(|w| w.orchestrator().releases().to_vec());
    println!("model releases: {releases:?}");
    served.shutdown().await;
    Ok(())
}
