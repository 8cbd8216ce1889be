//! `livepay serve-sim`: the simulated orchestrator and signer over HTTP, for any client.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use livepay_mock::faults::FaultPlan;
use livepay_mock::model::{self, Pricing};
use livepay_mock::serve::{ServeConfig, ServedModel};

use crate::{CliError, duration};

/// `livepay serve-sim` options.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where the orchestrator listens.
    #[arg(long, default_value = "127.0.0.1:8935", env = "LIVEPAY_ADDR")]
    addr: SocketAddr,
    /// Where the signer listens.
    #[arg(long, default_value = "127.0.0.1:8936", env = "LIVEPAY_SIGNER_ADDR")]
    signer_addr: SocketAddr,
    /// The runner's price, wei per second.
    #[arg(long, default_value_t = 1_000_000_000, env = "LIVEPAY_PRICE")]
    price: u128,
    /// The orchestrator's debit period.
    #[arg(long, default_value = "5s", value_parser = duration::parse, env = "LIVEPAY_TICK")]
    tick: Duration,
    /// A fault profile or a TOML file.
    #[arg(long, default_value = "clean", env = "LIVEPAY_PROFILE")]
    profile: String,
    /// Seed for manifest ids and faults.
    #[arg(long, default_value_t = 1, env = "LIVEPAY_SEED")]
    seed: u64,
}

/// The model configuration the CLI serves: one `live` runner at `price` wei per second.
pub(crate) fn model_config(price: u128, tick: Duration) -> Result<model::ModelConfig, CliError> {
    if price == 0 {
        return Err(CliError::BadInput(
            "--price must be above zero (use an unpriced runner instead)".into(),
        ));
    }
    if tick.is_zero() {
        return Err(CliError::BadInput("--tick must be above zero".into()));
    }
    let mut config = model::ModelConfig::single(
        "live-runner",
        Pricing::Live {
            wei_per_second: price,
        },
    );
    config.tick = livepay_core::Duration::from_micros(u64::try_from(tick.as_micros()).unwrap_or(u64::MAX));
    Ok(config)
}

/// Starts the served model, mapping a bind failure to a clear error.
pub(crate) async fn start(config: ServeConfig) -> Result<ServedModel, CliError> {
    let (orch, signer) = (config.orchestrator_addr, config.signer_addr);
    ServedModel::start(config).await.map_err(|e| {
        CliError::BadInput(format!(
            "cannot listen on {orch} / {signer}: {e} (pick free ports with --addr and --signer-addr, or port 0)"
        ))
    })
}

pub(crate) async fn run(args: &ServeArgs) -> Result<(), CliError> {
    let plan = FaultPlan::load(&args.profile).map_err(|e| CliError::BadInput(e.to_string()))?;
    let served = start(ServeConfig {
        orchestrator_addr: args.addr,
        signer_addr: args.signer_addr,
        model: model_config(args.price, args.tick)?,
        plan,
        seed: args.seed,
    })
    .await?;
    crate::out(&format!(
        "orchestrator {}\nsigner       {}\nrunner       {}\nprofile {} · price {} wei/s · tick {:?} · Ctrl-C to stop",
        served.orchestrator_url(),
        served.signer_url(),
        served.runner_url("live-runner"),
        args.profile,
        args.price,
        args.tick,
    ));
    crate::shutdown_signal().await;
    served.shutdown().await;
    crate::out("stopped");
    Ok(())
}
