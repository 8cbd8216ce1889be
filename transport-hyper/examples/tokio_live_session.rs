//! Fund one live-runner session over real HTTP on tokio: the model is served in-process on
//! loopback, the session is reserved (the 402 flow), funded for about 5 s by `livepay_core::run`
//! over `HyperTransport` and `TokioClock`, then closed.
//!
//! `cargo run -p livepay-hyper --example tokio_live_session`
#![allow(clippy::print_stdout)]

use std::time::Duration;

use livepay_core::client::ReserveOptions;
use livepay_core::{Clock, Command, Config, PaymentType, Session, StatusTable, run};
use livepay_hyper::{HttpClient, HttpConfig, HyperTransport, TokioClock, reserve};
use livepay_mock::serve::{ServeConfig, ServedModel};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let served = ServedModel::start(ServeConfig::default()).await?;
    println!(
        "orchestrator {}, signer {}",
        served.orchestrator_url(),
        served.signer_url()
    );

    let http = HttpClient::new(HttpConfig::default())?;
    let clock = TokioClock::new();
    let options = ReserveOptions::new(
        served.runner_url("live-runner"),
        Some(served.signer_url()),
        PaymentType::Live,
    );
    let reserved = reserve(&http, options).await?;
    println!("reserved {} (app at {})", reserved.session_id, reserved.app_url);
    let payment = reserved.payment.ok_or("the runner is unpriced")?;
    let transport = HyperTransport::new(http, payment);

    let mut session = Session::new(&Config::new(PaymentType::Live), clock.now())?;
    session.start(clock.now());
    // Close after 5 s; `run` returns once the orchestrator acknowledged the stop.
    let close = Box::pin(futures::stream::once(async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Command::Close
    }));
    let exit = run(
        &mut session,
        &transport,
        &clock,
        &StatusTable::new(),
        close,
        |event| {
            let ms = clock.now().as_millis();
            println!("{:>2}.{:03}s  {event}", ms / 1000, ms % 1000);
        },
    )
    .await;
    println!("exit: {exit:?}");
    println!("stats: {:?}", session.stats());
    let releases = served.with_world(|w| w.orchestrator().releases().to_vec());
    println!("model releases: {releases:?}");
    served.shutdown().await;
    Ok(())
}
