//! `livepay serve-sim`: the simulated orchestrator and signer over HTTP, for any client.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use livepay_mock::faults::FaultPlan;
use livepay_mock::model::dialect::{Dialect, SignerAuth};
use livepay_mock::model::{self, Pricing};
use livepay_mock::serve::{ServeConfig, ServeLimits, ServedModel};

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
    /// The expected value of one ticket: wei (`2500000000`), or seconds of price (`2.5s`: a ticket
    /// worth 2.5 s of service). Default: one second of price.
    #[arg(long, value_name = "WEI|SECONDSs", value_parser = parse_ticket_ev, env = "LIVEPAY_TICKET_EV")]
    ticket_ev: Option<TicketEv>,
    /// A fault profile or a TOML file.
    #[arg(long, default_value = "clean", env = "LIVEPAY_PROFILE")]
    profile: String,
    /// The length of the run the plan's `"mid"` windows are half of (e.g. `payment-503-mid`).
    #[arg(long, default_value = "10m", value_parser = duration::parse, env = "LIVEPAY_RUN_DURATION")]
    run_duration: Duration,
    /// Seed for manifest ids and faults.
    #[arg(long, default_value_t = 1, env = "LIVEPAY_SEED")]
    seed: u64,
    /// How long a connection may take to send a complete request head (or sit idle between requests)
    /// before it is closed: bounds what slow or silent clients hold.
    #[arg(long, default_value = "5s", value_parser = duration::parse, env = "LIVEPAY_HEADER_TIMEOUT")]
    header_timeout: Duration,
    /// How long a request body may take to arrive after its head before it is answered 408 and closed.
    #[arg(long, default_value = "10s", value_parser = duration::parse, env = "LIVEPAY_BODY_TIMEOUT")]
    body_timeout: Duration,
    /// The most connections each listener serves at once; at the cap it stops accepting until one
    /// closes (new clients wait in the listen backlog). Keep it below half the open-file limit.
    #[arg(long, default_value_t = 1024, env = "LIVEPAY_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Which server to play: go-livepeer (master), go-livepeer-next (#4029: a JSON challenge in
    /// payment answers; #4028: signer 480 at nonce 500) or livepeer-node (lowercase state keys,
    /// flat error bodies, `session_` ids, refresh 404, 480 at nonce 500).
    #[arg(long, default_value = "go-livepeer", value_parser = parse_dialect, env = "LIVEPAY_DIALECT")]
    dialect: Dialect,
    /// Put the signer behind bearer tokens that live this long: `POST {signer}/token` issues one
    /// (`{"token", "expires_in"}`); a missing or expired token is a 401.
    #[arg(long, value_parser = duration::parse, env = "LIVEPAY_SIGNER_TOKEN_TTL")]
    signer_token_ttl: Option<Duration>,
    /// With --signer-token-ttl: the signer mints this many payments, then answers 483 (credit
    /// exhausted).
    #[arg(long, requires = "signer_token_ttl", env = "LIVEPAY_SIGNER_CREDIT_MINTS")]
    signer_credit_mints: Option<u64>,
}

pub(crate) fn parse_dialect(name: &str) -> Result<Dialect, String> {
    Dialect::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
        format!("unknown dialect (use one of {})", names.join(", "))
    })
}

/// A ticket's expected value as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TicketEv {
    /// Wei.
    Wei(u128),
    /// Seconds of the runner's price.
    Seconds(f64),
}

impl TicketEv {
    /// The value in wei at `price` wei per second (at least 1).
    pub(crate) fn wei(self, price: u128) -> u128 {
        match self {
            Self::Wei(wei) => wei.max(1),
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            Self::Seconds(s) => ((s * price as f64).round() as u128).max(1),
        }
    }
}

/// `2500000000` (wei) or `2.5s` (seconds of price).
pub(crate) fn parse_ticket_ev(text: &str) -> Result<TicketEv, String> {
    let text = text.trim();
    if let Some(seconds) = text.strip_suffix('s') {
        return match seconds.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(TicketEv::Seconds(s)),
            _ => Err(format!(
                "`{text}`: seconds of price must be a number in (0, 86400], e.g. 2.5s"
            )),
        };
    }
    match text.parse::<u128>() {
        Ok(wei) if wei > 0 => Ok(TicketEv::Wei(wei)),
        _ => Err(format!(
            "`{text}` is neither wei (a positive integer) nor seconds of price (e.g. 2.5s)"
        )),
    }
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

/// The connection limits of `serve-sim`'s flags; zero is refused (it would close every connection, or
/// accept none).
fn limits(
    header_timeout: Duration,
    body_timeout: Duration,
    max_connections: usize,
) -> Result<ServeLimits, CliError> {
    if header_timeout.is_zero() {
        return Err(CliError::BadInput("--header-timeout must be above zero".into()));
    }
    if body_timeout.is_zero() {
        return Err(CliError::BadInput("--body-timeout must be above zero".into()));
    }
    if max_connections == 0 {
        return Err(CliError::BadInput("--max-connections must be above zero".into()));
    }
    Ok(ServeLimits {
        header_timeout: Some(header_timeout),
        body_timeout: Some(body_timeout),
        max_connections,
    })
}

/// Starts the served model with the default [`ServeLimits`], mapping a bind failure to a clear error.
pub(crate) async fn start(config: ServeConfig) -> Result<ServedModel, CliError> {
    start_limited(config, ServeLimits::default()).await
}

/// Starts the served model with `limits`, mapping a bind failure to a clear error.
async fn start_limited(config: ServeConfig, limits: ServeLimits) -> Result<ServedModel, CliError> {
    let (orch, signer) = (config.orchestrator_addr, config.signer_addr);
    ServedModel::start_limited(config, limits).await.map_err(|e| {
        CliError::BadInput(format!(
            "cannot listen on {orch} / {signer}: {e} (pick free ports with --addr and --signer-addr, or port 0)"
        ))
    })
}

pub(crate) async fn run(args: &ServeArgs) -> Result<(), CliError> {
    let run =
        livepay_core::Duration::from_micros(u64::try_from(args.run_duration.as_micros()).unwrap_or(u64::MAX));
    let plan = FaultPlan::load(&args.profile)
        .map_err(|e| CliError::BadInput(e.to_string()))?
        .resolved(run);
    let mut model = args.dialect.model_config(model_config(args.price, args.tick)?);
    if let Some(ev) = args.ticket_ev {
        model.ticket_ev_wei = ev.wei(args.price);
    }
    let ticket_ev = model.ticket_ev_wei;
    let limits = limits(args.header_timeout, args.body_timeout, args.max_connections)?;
    let served = start_limited(
        ServeConfig {
            orchestrator_addr: args.addr,
            signer_addr: args.signer_addr,
            model,
            plan,
            seed: args.seed,
            dialect: args.dialect,
            signer_auth: args.signer_token_ttl.map(|ttl| {
                SignerAuth::new(
                    livepay_core::Duration::from_micros(u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX)),
                    args.signer_credit_mints,
                )
            }),
        },
        limits,
    )
    .await?;
    #[allow(clippy::cast_precision_loss)]
    let ev_seconds = ticket_ev as f64 / args.price as f64;
    crate::out(&format!(
        "orchestrator {}\nsigner       {}\nrunner       {}\nprofile {} · price {} wei/s · ticket EV {} wei ({} s of price) · tick {:?} · Ctrl-C to stop",
        served.orchestrator_url(),
        served.signer_url(),
        served.runner_url("live-runner"),
        args.profile,
        args.price,
        ticket_ev,
        ev_seconds,
        args.tick,
    ));
    crate::out(&format!(
        "limits       header timeout {:?} · body timeout {:?} · {} connections per listener\ndialect      {}{}",
        args.header_timeout,
        args.body_timeout,
        args.max_connections,
        args.dialect.name(),
        args.signer_token_ttl.map_or_else(String::new, |ttl| format!(
            " · signer tokens live {ttl:?} (POST {}/token)",
            served.signer_url()
        )),
    ));
    // Whoever started us reads the URLs from stdout: without them the servers are unusable.
    if crate::output_closed() {
        served.shutdown().await;
        return Err(CliError::OutputClosed);
    }
    crate::shutdown_signal().await;
    served.shutdown().await;
    crate::out("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn the_flag_defaults_are_the_library_limits() {
        let args = Cli::try_parse_from(["serve-sim"]).expect("defaults parse").serve;
        let defaults = limits(args.header_timeout, args.body_timeout, args.max_connections);
        assert_eq!(defaults.ok(), Some(ServeLimits::default()));
        let args = Cli::try_parse_from([
            "serve-sim",
            "--header-timeout",
            "300ms",
            "--body-timeout=2s",
            "--max-connections",
            "8",
        ])
        .expect("flags parse")
        .serve;
        assert_eq!(
            limits(args.header_timeout, args.body_timeout, args.max_connections).ok(),
            Some(ServeLimits {
                header_timeout: Some(Duration::from_millis(300)),
                body_timeout: Some(Duration::from_secs(2)),
                max_connections: 8,
            })
        );
        let second = Duration::from_secs(1);
        assert!(limits(Duration::ZERO, second, 1).is_err());
        assert!(limits(second, Duration::ZERO, 1).is_err());
        assert!(limits(second, second, 0).is_err());
    }

    #[test]
    fn a_ticket_ev_is_wei_or_seconds_of_price() {
        assert_eq!(parse_ticket_ev("2500000000"), Ok(TicketEv::Wei(2_500_000_000)));
        assert_eq!(parse_ticket_ev("2.5s"), Ok(TicketEv::Seconds(2.5)));
        assert_eq!(
            parse_ticket_ev("2.5s").map(|ev| ev.wei(1_000_000_000)),
            Ok(2_500_000_000)
        );
        assert_eq!(TicketEv::Seconds(1e-12).wei(1), 1, "at least one wei");
        for bad in ["", "0", "-1", "2.5", "fast", "0s", "-2s", "1e9s", "nans"] {
            assert!(parse_ticket_ev(bad).is_err(), "{bad}");
        }
    }
}
