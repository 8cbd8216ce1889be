//! The policy comparison: livepay against the livepeer-gateway 1.0.0 loop under each fault
//! profile, same seeds and faults: drops per 1,000 session-hours and over-payment (credit minted ÷
//! service debited). A report, not a timing:
//!
//! `cargo bench -p livepay-benches --bench policy_comparison` (200 sessions × 10 h per profile).
//! Under `cargo test` (`--bench` absent) it runs a small version so CI exercises it.

#![allow(clippy::print_stdout)]

use livepay_core::Duration;
use livepay_mock::faults::{FaultPlan, PROFILES};
use livepay_mock::sim::{PolicyKind, SimConfig, compare};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let full = std::env::args().any(|a| a == "--bench");
    let (sessions, hours) = if full { (200, 10) } else { (10, 1) };
    println!(
        "| profile | policy | drops / 1,000 h | over-payment | min runway s | failed | minted after release |"
    );
    println!("|---|---|---|---|---|---|---|");
    for profile in PROFILES {
        let config = SimConfig {
            sessions,
            duration: Duration::from_secs(hours * 3_600),
            plan: FaultPlan::profile(profile)?,
            ..SimConfig::default()
        };
        let report = compare(&config, &[PolicyKind::Livepay, PolicyKind::Sdk10])?;
        for p in &report.policies {
            println!(
                "| {profile} | {} | {:.2} | {:.3} | {} | {} | {} |",
                p.policy.name(),
                p.drops_per_1000h,
                p.overpayment,
                p.min_runway_s.map_or("-".into(), |r| format!("{r:.2}")),
                p.payments_failed,
                p.minted_after_release,
            );
        }
    }
    println!("({sessions} sessions × {hours} h per profile and policy, seed 1)");
    Ok(())
}
