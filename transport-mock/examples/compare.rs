//! Prints the policy comparison under each named profile.
//!
//! `cargo run --release -p livepay-mock --example compare -- [SESSIONS] [HOURS]`

#![allow(clippy::print_stdout)]

use embassy_time::Duration;
use livepay_mock::faults::FaultPlan;
use livepay_mock::sim::{PolicyKind, SimConfig, compare};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let sessions: u32 = args.next().map_or(Ok(100), |s| s.parse())?;
    let hours: u64 = args.next().map_or(Ok(10), |s| s.parse())?;
    for profile in ["clean", "flaky", "slow-signer", "partition-8s", "partition-30s"] {
        let config = SimConfig {
            sessions,
            duration: Duration::from_secs(hours * 3_600),
            plan: FaultPlan::profile(profile)?,
            ..SimConfig::default()
        };
        // Wall time of the simulation itself, for the reader; the simulation never reads a clock.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let report = compare(&config, &[PolicyKind::Livepay, PolicyKind::Sdk10])?;
        println!("{report}(in {:.2?})\n", started.elapsed());
    }
    Ok(())
}
