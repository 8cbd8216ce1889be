#![doc = include_str!("../README.md")]
// A command-line program prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod demo;
mod duration;
mod events;
mod fund;
mod live;
mod plot;
mod serve;
mod sim;

use std::fmt;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keep Livepeer live-runner sessions funded.
#[derive(Debug, Parser)]
#[command(name = "livepay", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Fund session(s) on an embedded simulated orchestrator and signer, with a live status line.
    Demo(demo::DemoArgs),
    /// Reserve a real session and keep it funded until Ctrl-C, SIGTERM or --duration.
    Fund(fund::FundArgs),
    /// The deterministic simulation report: livepay against the livepeer-gateway 1.0.0 loop.
    Sim(sim::SimArgs),
    /// Serve the simulated orchestrator and signer over HTTP, for any Livepeer client.
    ServeSim(serve::ServeArgs),
}

/// A failure, and the exit code it maps to.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad flags, URLs, durations, files (exit 2).
    BadInput(String),
    /// The orchestrator released the session (exit 3).
    Released(String),
    /// A terminal rejection (exit 4).
    Rejected(String),
    /// A host could not be reached (exit 5).
    Unreachable(String),
}

impl CliError {
    fn code(&self) -> u8 {
        match self {
            Self::BadInput(_) => 2,
            Self::Released(_) => 3,
            Self::Rejected(_) => 4,
            Self::Unreachable(_) => 5,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadInput(m) => write!(f, "bad input: {m}"),
            Self::Released(m) => write!(f, "released by the server: {m}"),
            Self::Rejected(m) => write!(f, "rejected: {m}"),
            Self::Unreachable(m) => write!(f, "unreachable: {m}"),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// A multi-threaded tokio runtime for the network commands.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::BadInput(format!("cannot start the async runtime: {e}")))
}

/// Prints one block of output.
pub(crate) fn out(text: &str) {
    println!("{}", text.trim_end());
}

/// clap's error as one line (what was wrong, and where to look), or its help and version text.
fn parse_args() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        let rendered = e.render().to_string();
        let first = rendered
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid arguments")
            .trim_start_matches("error: ");
        eprintln!("livepay: bad input: {first} (see `livepay --help`)");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match &cli.command {
        Verb::Demo(args) => runtime().and_then(|rt| rt.block_on(demo::run(args))),
        Verb::Fund(args) => runtime().and_then(|rt| rt.block_on(fund::run(args))),
        Verb::Sim(args) => sim::run(args),
        Verb::ServeSim(args) => runtime().and_then(|rt| rt.block_on(serve::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("livepay: {e}");
            ExitCode::from(e.code())
        }
    }
}
