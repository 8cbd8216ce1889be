//! `livepay daemon`: the crash-safe funding service (`livepay_daemon`), for gateways in any
//! language. Its sessions live in a SQLite file or a PostgreSQL database shared by a fleet
//! (`--state`); a restart, or another daemon of the fleet, resumes every session not closed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, builder::BoolishValueParser};
use livepay_core::PaymentType;
use livepay_daemon::run::{Daemon, DaemonError, DaemonOptions, StateLocation};
use livepay_daemon::service::{FleetConfig, ServiceConfig};
use livepay_hyper::HttpConfig;

use crate::{CliError, duration};

/// `livepay daemon` options.
#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// Where the API listens (loopback; another address needs --allow-remote).
    #[arg(long, default_value = "127.0.0.1:7878", env = "LIVEPAY_DAEMON_LISTEN")]
    listen: SocketAddr,
    /// Where the sessions live: a SQLite file (created, mode 0600; WAL beside it), or a
    /// PostgreSQL database shared by a fleet of daemons (`postgres://USER[:PASSWORD]@HOST:PORT/DB`).
    #[arg(
        long,
        value_name = "PATH|URL",
        env = "LIVEPAY_DAEMON_STATE",
        hide_env_values = true
    )]
    state: String,
    /// A file holding the API token (`Authorization: Bearer TOKEN`). Without it, a token is made
    /// at first start in `<state>.token` (mode 0600) and its path printed; a PostgreSQL state
    /// needs one (the fleet's daemons share it).
    #[arg(long, value_name = "FILE", env = "LIVEPAY_DAEMON_API_TOKEN_FILE")]
    api_token_file: Option<PathBuf>,
    /// Listen on a non-loopback address. The API has no TLS of its own: put a TLS proxy in front.
    #[arg(long, env = "LIVEPAY_DAEMON_ALLOW_REMOTE", value_parser = BoolishValueParser::new(), action = ArgAction::SetTrue)]
    allow_remote: bool,
    /// Nominal spacing between payments (a session's `interval` overrides it).
    #[arg(long, default_value = "3s", value_parser = duration::parse, env = "LIVEPAY_INTERVAL")]
    interval: Duration,
    /// Per-request timeout.
    #[arg(long, default_value = "5s", value_parser = duration::parse, env = "LIVEPAY_TIMEOUT")]
    timeout: Duration,
    /// Give up a session this long after a lapse with nothing credited since; `0s` never.
    #[arg(long, default_value = "60s", value_parser = duration::parse, env = "LIVEPAY_GIVE_UP_AFTER")]
    give_up_after: Duration,
    /// A command printing a fresh signer credential for every session (the daemon's signer
    /// account): `Name: value` on its first line, optionally its lifetime in seconds on the
    /// second. Run before each reservation, before each credential expires, and when the signer
    /// refuses one (401, 403). Its output is never shown or stored.
    #[arg(
        long,
        value_name = "CMD",
        env = "LIVEPAY_SIGNER_TOKEN_COMMAND",
        hide_env_values = true
    )]
    signer_token_command: Option<String>,
    /// The longest an API connection may take to send a request head; then it is closed.
    #[arg(long, default_value = "5s", value_parser = duration::parse, env = "LIVEPAY_DAEMON_API_HEADER_TIMEOUT")]
    api_header_timeout: Duration,
    /// The most API connections at once (default: a quarter of the descriptor limit, 16 to
    /// 1,024; the rest is kept for funding).
    #[arg(long, value_name = "N", env = "LIVEPAY_DAEMON_API_MAX_CONNECTIONS")]
    api_max_connections: Option<usize>,
    /// ETH in US dollars: spend is also shown in USD.
    #[arg(long, value_name = "RATE", env = "LIVEPAY_ETH_USD")]
    eth_usd: Option<f64>,
    /// How long a session's lease holds without renewal: after it, another daemon of the fleet
    /// takes the session over.
    #[arg(long, default_value = "3s", value_parser = duration::parse, env = "LIVEPAY_DAEMON_LEASE")]
    lease: Duration,
    /// How often leases are renewed and expired ones claimed. Lease plus interval must stay
    /// within 6 s (a takeover well inside the orchestrator's 10 s prepay).
    #[arg(long, default_value = "1s", value_parser = duration::parse, env = "LIVEPAY_DAEMON_CLAIM_INTERVAL")]
    claim_interval: Duration,
    /// Test hook: abort (as `kill -9` would) right after this many signer states were written
    /// ahead, before their payment is posted.
    #[arg(long, hide = true, env = "LIVEPAY_DAEMON_ABORT_AFTER_WRITE_AHEAD")]
    abort_after_write_ahead: Option<u64>,
}

fn options(args: &DaemonArgs) -> Result<DaemonOptions, CliError> {
    let config = crate::fund::session_config(PaymentType::Live, args.interval, args.give_up_after)?;
    if args.timeout.is_zero() {
        return Err(CliError::BadInput("--timeout must be above zero".into()));
    }
    if args.api_header_timeout.is_zero() {
        return Err(CliError::BadInput(
            "--api-header-timeout must be above zero".into(),
        ));
    }
    if args.api_max_connections == Some(0) {
        return Err(CliError::BadInput(
            "--api-max-connections must be above zero".into(),
        ));
    }
    if let Some(rate) = args.eth_usd
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(CliError::BadInput(format!(
            "--eth-usd {rate} must be a positive number"
        )));
    }
    Ok(DaemonOptions {
        listen: args.listen,
        state: StateLocation::parse(&args.state),
        api_token_file: args.api_token_file.clone(),
        allow_remote: args.allow_remote,
        api_limits: livepay_daemon::listen::ApiLimits {
            header_timeout: args.api_header_timeout,
            max_connections: args.api_max_connections,
            ..livepay_daemon::listen::ApiLimits::default()
        },
        http: HttpConfig {
            request_timeout: args.timeout,
            ..HttpConfig::default()
        },
        service: ServiceConfig {
            session_config: config,
            eth_usd: args.eth_usd,
            abort_after_write_ahead: args.abort_after_write_ahead,
            credentials: args.signer_token_command.clone().map(crate::token::source),
            fleet: FleetConfig {
                lease: args.lease,
                tick: args.claim_interval,
                ..FleetConfig::default()
            },
            ..ServiceConfig::default()
        },
    })
}

pub(crate) async fn run(args: &DaemonArgs) -> Result<(), CliError> {
    if let Some(command) = &args.signer_token_command {
        // Checked once now, so that a broken command is bad input rather than a 401 later.
        crate::token::fetch(command)
            .await
            .map_err(|why| CliError::BadInput(format!("--signer-token-command: {why}")))?;
    }
    let daemon = Daemon::start(options(args)?).await.map_err(|e| match e {
        DaemonError::Bind(..)
        | DaemonError::Remote(_)
        | DaemonError::Token(..)
        | DaemonError::EmptyToken(_)
        | DaemonError::BadToken(..) => CliError::BadInput(e.to_string()),
        other => CliError::BadInput(other.to_string()),
    })?;
    if !daemon.addr.ip().is_loopback() {
        crate::err_line("warning: the API listens beyond loopback without TLS; put a TLS proxy in front");
    }
    crate::out(&format!(
        "daemon       http://{}\ntoken        {}{}\nstate        {} · {} sessions resumed",
        daemon.addr,
        daemon.token_path.display(),
        if daemon.token_created {
            " (made now, mode 0600)"
        } else {
            ""
        },
        StateLocation::parse(&args.state),
        daemon.resumed,
    ));
    daemon
        .serve(crate::shutdown_signal())
        .await
        .map_err(|e| CliError::Unreachable(format!("the API stopped: {e}")))
}
