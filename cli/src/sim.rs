//! `livepay sim`: the deterministic simulation report, as a table or JSON, with an optional SVG
//! plot of runway over time and drops per policy.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use livepay_core::Duration;
use livepay_mock::faults::FaultPlan;
use livepay_mock::sim::{Comparison, PolicyKind, SimConfig, compare};

use crate::CliError;

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

/// `livepay sim` options.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Sessions per policy.
    #[arg(long, default_value_t = 100, env = "LIVEPAY_SIM_SESSIONS", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    sessions: u32,
    /// Simulated hours per session.
    #[arg(long, default_value_t = 1.0, env = "LIVEPAY_SIM_HOURS")]
    hours: f64,
    /// A fault profile (clean, flaky, slow-signer, partition-8s, partition-30s) or a TOML file.
    #[arg(long, default_value = "clean", env = "LIVEPAY_SIM_PROFILE")]
    profile: String,
    /// Seed for everything random.
    #[arg(long, default_value_t = 1, env = "LIVEPAY_SIM_SEED")]
    seed: u64,
    /// Which policies.
    #[arg(long, value_enum, default_value_t = PolicyChoice::Both, env = "LIVEPAY_SIM_POLICY")]
    policy: PolicyChoice,
    /// Print the report as JSON (deterministic: same seed, same bytes).
    #[arg(long, env = "LIVEPAY_SIM_JSON")]
    json: bool,
    /// Also draw runway over time and drops per policy to this SVG file.
    #[arg(long, value_name = "FILE.svg", env = "LIVEPAY_SIM_PLOT")]
    plot: Option<PathBuf>,
}

pub(crate) fn run(args: &SimArgs) -> Result<(), CliError> {
    if !(args.hours > 0.0 && args.hours <= 10_000.0) {
        return Err(CliError::BadInput(format!(
            "--hours {} is out of range (0 < hours ≤ 10000)",
            args.hours
        )));
    }
    let plan = FaultPlan::load(&args.profile).map_err(|e| CliError::BadInput(e.to_string()))?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let duration = Duration::from_secs((args.hours * 3_600.0).round() as u64);
    let config = SimConfig {
        sessions: args.sessions,
        duration,
        seed: args.seed,
        plan,
        trace_sessions: if args.plot.is_some() { 3 } else { 0 },
        ..SimConfig::default()
    };
    let policies: &[PolicyKind] = match args.policy {
        PolicyChoice::Livepay => &[PolicyKind::Livepay],
        PolicyChoice::Sdk10 => &[PolicyKind::Sdk10],
        PolicyChoice::Both => &[PolicyKind::Livepay, PolicyKind::Sdk10],
    };
    let report = compare(&config, policies).map_err(|e| CliError::BadInput(e.to_string()))?;
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
        table(&report)
    });
    Ok(())
}

fn table(report: &Comparison) -> String {
    report.to_string()
}
