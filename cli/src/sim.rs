//! `livepay sim`: the deterministic simulation report, as a table or JSON, with an optional SVG
//! plot.
//!
//! Two modes:
//!
//! - a single run (`--hours`, `--profile`, `--ev`): one configuration, both policies side by side,
//!   plotted as runway over time and drops per policy;
//! - the cells grid, chosen by any of `--lengths`, `--evs`, `--profiles` or `--readme`: every
//!   combination of session lengths × fault profiles × ticket EVs (each omitted axis takes the full
//!   grid's values), both policies with the same seeds in every cell, one row per cell and the
//!   project's criteria; plotted as over-payment against session length and drops per profile.
//!   `--readme` prints the README's cost and drops tables in Markdown instead.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use livepay_core::Duration;
use livepay_mock::faults::{FaultPlan, PROFILES};
use livepay_mock::model::dialect::Dialect;
use livepay_mock::sim::{
    CellsConfig, Comparison, FastConfig, GRID_EVS, GRID_LENGTHS, PolicyKind, SimConfig, cells, compare,
};

use crate::{CliError, duration};

/// Which policies to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PolicyChoice {
    /// livepay's machine.
    Livepay,
    /// The livepeer-gateway 1.0.0 loop.
    #[value(name = "sdk-1.0")]
    Sdk10,
    /// Both, same seeds and faults.
    Both,
}

/// The flags that choose the grid; the single run's own flags conflict with them.
const GRID_FLAGS: [&str; 4] = ["lengths", "evs", "profiles", "readme"];

/// `livepay sim` options.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Sessions per policy (per cell in the grid).
    #[arg(long, default_value_t = 100, env = "LIVEPAY_SIM_SESSIONS", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    sessions: u32,
    /// Simulated hours per session (single run).
    #[arg(long, default_value_t = 1.0, env = "LIVEPAY_SIM_HOURS", conflicts_with_all = GRID_FLAGS)]
    hours: f64,
    /// A fault profile or a TOML file (single run); see `--profiles` for the names.
    #[arg(long, default_value = "clean", env = "LIVEPAY_SIM_PROFILE", conflicts_with_all = GRID_FLAGS)]
    profile: String,
    /// The ticket EV in seconds of price (single run).
    #[arg(long, default_value_t = 1.0, env = "LIVEPAY_SIM_EV", conflicts_with_all = GRID_FLAGS)]
    ev: f64,
    /// Seed for everything random.
    #[arg(long, default_value_t = 1, env = "LIVEPAY_SIM_SEED")]
    seed: u64,
    /// Which policies (single run; the grid always runs both).
    #[arg(long, value_enum, default_value_t = PolicyChoice::Both, env = "LIVEPAY_SIM_POLICY", conflicts_with_all = GRID_FLAGS)]
    policy: PolicyChoice,
    /// Grid: session lengths, e.g. `1m,3m,10m,30m,1h,10h` (the default).
    #[arg(long, value_delimiter = ',', value_parser = duration::parse, env = "LIVEPAY_SIM_LENGTHS")]
    lengths: Vec<std::time::Duration>,
    /// Grid: ticket EVs in seconds of price, e.g. `1,2.5,10,60,180` (the default).
    #[arg(long, value_delimiter = ',', env = "LIVEPAY_SIM_EVS")]
    evs: Vec<f64>,
    /// Grid: fault profiles or TOML files, e.g. `clean,flaky` (default: every profile: clean,
    /// flaky, slow-signer, partition-8s, partition-30s, payment-503-start, payment-503-mid,
    /// payment-down, signer-down-20s).
    #[arg(long, value_delimiter = ',', env = "LIVEPAY_SIM_PROFILES")]
    profiles: Vec<String>,
    /// Grid: print the README's cost and drops tables in Markdown (the full grid unless narrowed
    /// by `--lengths`, `--evs`, `--profiles`).
    #[arg(long, env = "LIVEPAY_SIM_README", conflicts_with = "json")]
    readme: bool,
    /// Grid: worker threads (0: one per core). The report does not depend on it.
    #[arg(long, default_value_t = 0, env = "LIVEPAY_SIM_THREADS")]
    threads: usize,
    /// livepay does not read the tickets of its payments (as with a signer whose payments are
    /// not `net.Payment` messages): measures the fallback estimate.
    #[arg(long, env = "LIVEPAY_SIM_OPAQUE_PAYMENTS")]
    opaque_payments: bool,
    /// livepay is told when each session ends, as `livepay fund --duration` tells it.
    #[arg(long, env = "LIVEPAY_SIM_PLANNED_END")]
    planned_end: bool,
    /// Which server's answers to simulate: go-livepeer (master), go-livepeer-next (a fresh
    /// challenge in payment answers, 480 at nonce 500) or livepeer-node (the same, and refresh
    /// 404).
    #[arg(long, default_value = "go-livepeer", value_parser = crate::serve::parse_dialect, env = "LIVEPAY_SIM_DIALECT")]
    dialect: Dialect,
    /// Print the report as JSON (deterministic: same seed, same bytes).
    #[arg(long, env = "LIVEPAY_SIM_JSON")]
    json: bool,
    /// Also draw an SVG: runway over time and drops per policy (single run), or over-payment
    /// against session length and drops per profile (grid).
    #[arg(long, value_name = "FILE.svg", env = "LIVEPAY_SIM_PLOT")]
    plot: Option<PathBuf>,
}

impl SimArgs {
    fn grid(&self) -> bool {
        self.readme || !self.lengths.is_empty() || !self.evs.is_empty() || !self.profiles.is_empty()
    }
}

fn bad(e: impl std::fmt::Display) -> CliError {
    CliError::BadInput(e.to_string())
}

fn check_ev(ev: f64, flag: &str) -> Result<(), CliError> {
    if ev.is_finite() && ev > 0.0 && ev <= 100_000.0 {
        Ok(())
    } else {
        Err(CliError::BadInput(format!(
            "{flag} {ev} is out of range (0 < EV ≤ 100000 seconds of price)"
        )))
    }
}

pub(crate) fn run(args: &SimArgs) -> Result<(), CliError> {
    if args.grid() {
        run_grid(args)
    } else {
        run_single(args)
    }
}

fn run_single(args: &SimArgs) -> Result<(), CliError> {
    if !(args.hours > 0.0 && args.hours <= 10_000.0) {
        return Err(CliError::BadInput(format!(
            "--hours {} is out of range (0 < hours ≤ 10000)",
            args.hours
        )));
    }
    check_ev(args.ev, "--ev")?;
    let plan = FaultPlan::load(&args.profile).map_err(bad)?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let duration = Duration::from_secs((args.hours * 3_600.0).round() as u64);
    let config = SimConfig {
        sessions: args.sessions,
        duration,
        seed: args.seed,
        plan,
        trace_sessions: if args.plot.is_some() { 3 } else { 0 },
        read_tickets: !args.opaque_payments,
        planned_end: args.planned_end,
        model: args.dialect.fast_config(FastConfig::default()),
        ..SimConfig::default()
    }
    .with_ev_seconds(args.ev);
    let policies: &[PolicyKind] = match args.policy {
        PolicyChoice::Livepay => &[PolicyKind::Livepay],
        PolicyChoice::Sdk10 => &[PolicyKind::Sdk10],
        PolicyChoice::Both => &[PolicyKind::Livepay, PolicyKind::Sdk10],
    };
    let report = compare(&config, policies).map_err(bad)?;
    if let Some(path) = &args.plot {
        crate::plot::draw(path, &report)
            .map_err(|e| CliError::BadInput(format!("--plot {}: {e}", path.display())))?;
    }
    let mut report = report;
    // Traces go to the plot, not to stdout.
    for p in &mut report.policies {
        p.traces.clear();
    }
    crate::out(&if args.json {
        report.to_json()
    } else {
        format!("server {} · {}", args.dialect.name(), table(&report))
    });
    Ok(())
}

fn run_grid(args: &SimArgs) -> Result<(), CliError> {
    let lengths: Vec<Duration> = if args.lengths.is_empty() {
        GRID_LENGTHS.to_vec()
    } else {
        args.lengths
            .iter()
            .map(|l| {
                let micros = u64::try_from(l.as_micros()).unwrap_or(u64::MAX);
                if micros < 1_000_000 {
                    return Err(CliError::BadInput(format!(
                        "--lengths: {l:?} is shorter than a second"
                    )));
                }
                Ok(Duration::from_micros(micros))
            })
            .collect::<Result<_, _>>()?
    };
    let evs = if args.evs.is_empty() {
        GRID_EVS.to_vec()
    } else {
        args.evs.clone()
    };
    for &ev in &evs {
        check_ev(ev, "--evs:")?;
    }
    let names: Vec<String> = if args.profiles.is_empty() {
        PROFILES.iter().map(|&p| p.to_owned()).collect()
    } else {
        args.profiles.clone()
    };
    let profiles = names
        .iter()
        .map(|name| FaultPlan::load(name.trim()).map_err(bad))
        .collect::<Result<_, _>>()?;
    let config = CellsConfig {
        lengths,
        profiles,
        evs,
        base: SimConfig {
            sessions: args.sessions,
            seed: args.seed,
            read_tickets: !args.opaque_payments,
            planned_end: args.planned_end,
            model: args.dialect.fast_config(FastConfig::default()),
            ..SimConfig::default()
        },
        threads: args.threads,
    };
    let report = cells(&config).map_err(bad)?;
    if let Some(path) = &args.plot {
        crate::plot::draw_cells(path, &report)
            .map_err(|e| CliError::BadInput(format!("--plot {}: {e}", path.display())))?;
    }
    crate::out(&if args.readme {
        report.readme_markdown()
    } else if args.json {
        report.to_json()
    } else {
        report.to_string()
    });
    Ok(())
}

fn table(report: &Comparison) -> String {
    report.to_string()
}
