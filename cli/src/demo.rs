//! `livepay demo`: the embedded simulated orchestrator and signer on a free loopback port,
//! session(s) reserved and funded through the real hyper transport, a live status line, events as
//! they happen, then a clean close and a summary.

use std::time::Duration;

use clap::Args;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use livepay_core::engine::ReserveOptions;
use livepay_core::{Config, PaymentType, ReleaseReason};
use livepay_hyper::{HttpClient, HttpConfig, LiveOptions, LiveSession};
use livepay_mock::faults::FaultPlan;
use livepay_mock::serve::ServeConfig;
use tokio::sync::mpsc;

use crate::live::{Totals, live_error, routine};
use crate::spend::{Pricing, RunnerPrice, Spend};
use crate::{CliError, duration, serve};

/// `livepay demo` options.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How long to fund (real time).
    #[arg(long, default_value = "30s", value_parser = duration::parse, env = "LIVEPAY_DURATION")]
    duration: Duration,
    /// How many sessions.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2_000), env = "LIVEPAY_SESSIONS")]
    sessions: u32,
    /// A fault profile or a TOML file for the simulated servers.
    #[arg(long, default_value = "clean", env = "LIVEPAY_PROFILE")]
    profile: String,
    /// Seed for the simulated servers.
    #[arg(long, default_value_t = 1, env = "LIVEPAY_SEED")]
    seed: u64,
    /// ETH in US dollars (a positive number, e.g. 2000): the summary shows the spend in USD too.
    #[arg(long, value_name = "RATE", env = "LIVEPAY_ETH_USD", value_parser = crate::spend::eth_usd, allow_negative_numbers = true)]
    eth_usd: Option<f64>,
}

/// The simulated runner's price, wei per second.
const PRICE_WEI: u128 = 1_000_000_000;

pub(crate) async fn run(args: &DemoArgs) -> Result<(), CliError> {
    let plan = FaultPlan::load(&args.profile).map_err(|e| CliError::BadInput(e.to_string()))?;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let served = serve::start(ServeConfig {
        orchestrator_addr: loopback,
        signer_addr: loopback,
        model: serve::model_config(PRICE_WEI, Duration::from_secs(5))?,
        plan,
        seed: args.seed,
        ..ServeConfig::default()
    })
    .await?;
    crate::out(&format!(
        "livepay demo · simulated orchestrator {} · signer {}\n{} session(s) · profile {} · {:?}",
        served.orchestrator_url(),
        served.signer_url(),
        args.sessions,
        args.profile,
        args.duration
    ));

    let client = HttpClient::new(HttpConfig::default()).map_err(|e| CliError::BadInput(e.to_string()))?;
    let reserve = ReserveOptions::new(
        served.runner_url("live-runner"),
        Some(served.signer_url()),
        PaymentType::Live,
    );
    let config = Config::new(PaymentType::Live);
    // The demo set the model's price: the spend is priced at it when the payments cannot be read.
    let pricing = Pricing {
        runner: RunnerPrice::wei_per_second(PRICE_WEI),
        eth_usd: args.eth_usd,
        prepay: config.prepay,
    };
    let options = LiveOptions::new(reserve).with_config(config).with_client(client);
    let reserved = futures::stream::iter(0..args.sessions)
        .map(|_| LiveSession::reserve(options.clone()))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let sessions = reserved
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(live_error)?;

    let started = tokio::time::Instant::now();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    for s in &sessions {
        let id = s.session_id().to_owned();
        let tx = events_tx.clone();
        let mut stream = s.events();
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                if tx.send((id.clone(), started.elapsed(), event)).is_err() {
                    break;
                }
            }
        });
    }
    drop(events_tx);

    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let print_routine = args.sessions <= 3;
    let mut status = tokio::time::interval(Duration::from_millis(250));
    let deadline = tokio::time::sleep(args.duration);
    tokio::pin!(deadline);
    let ids: Vec<String> = sessions.iter().map(|s| s.session_id().to_owned()).collect();
    let shutdown = crate::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // A closed stdout ends the demo like Ctrl-C: the sessions are still closed cleanly.
        if crate::output_closed() {
            break;
        }
        tokio::select! {
            () = &mut deadline => break,
            () = &mut shutdown => break,
            Some((id, at, event)) = events.recv() => {
                if print_routine || !routine(&event) {
                    let line = format!("{:>8.3}s  {id}  {event}", at.as_secs_f64());
                    if bar.is_hidden() { crate::out(&line) } else { bar.println(line) }
                }
            }
            _ = status.tick() => {
                let totals = Totals::of(&sessions);
                let runway = ids
                    .iter()
                    .filter_map(|id| served.with_world(|w| w.session_balance(id)))
                    .min()
                    .map_or_else(|| "-".to_owned(), |wei| format!("{:.1}s", wei as f64 / PRICE_WEI as f64));
                bar.set_message(format!(
                    "{:>5.1}s · funding {}/{} · accepted {} · skipped {} · failed {} · refreshes {} · min server balance {runway}",
                    started.elapsed().as_secs_f64(),
                    totals.funding,
                    args.sessions,
                    totals.accepted,
                    totals.skipped,
                    totals.failed,
                    totals.refreshes,
                ));
            }
        }
    }
    bar.finish_and_clear();

    let totals = Totals::of(&sessions);
    // As of the close, with the counters.
    let spend = sessions
        .iter()
        .map(|s| pricing.spend(s.spend_wei(), s.stats().billed, s.is_metered()))
        .reduce(Spend::plus)
        .unwrap_or_default();
    let mut reasons = Vec::new();
    for s in sessions {
        reasons.push(s.close().await.map_err(live_error)?);
    }
    let (credited, debited, releases) = served.with_world(|w| {
        let orch = w.orchestrator();
        let credited: u128 = ids
            .iter()
            .filter_map(|id| orch.session(id))
            .map(|s| s.credited())
            .sum();
        let debited: u128 = ids
            .iter()
            .filter_map(|id| orch.session(id))
            .map(|s| s.debited())
            .sum();
        (credited, debited, orch.stats().released_unpaid)
    });
    let closed = reasons
        .iter()
        .filter(|r| **r == ReleaseReason::ClosedByClient)
        .count();
    crate::out(&format!(
        "summary: {} session(s) over {:.1}s · closed cleanly {closed} · released by the server {releases}\n\
         payments accepted {} · skipped {} · failed {} · refreshes {} · risk warnings {}\n\
         credited {:.1}s of service, debited {:.1}s (the rest is the runway still bought)\n\
         {}",
        args.sessions,
        started.elapsed().as_secs_f64(),
        totals.accepted,
        totals.skipped,
        totals.failed,
        totals.refreshes,
        totals.at_risk,
        credited as f64 / PRICE_WEI as f64,
        debited as f64 / PRICE_WEI as f64,
        crate::spend::line(&spend),
    ));
    served.shutdown().await;
    Ok(())
}
