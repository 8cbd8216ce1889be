//! The policy comparison: livepay against the livepeer-gateway 1.0.0 loop over the cells grid
//! (session lengths × fault profiles × ticket EVs, same seeds in every cell): drops, over-payment
//! (credit received ÷ service debited), signer calls per session-hour, replays, and the criteria of
//! the cost-and-safety goal with the cells that fail each. A report, not a timing. It runs the grid
//! three times: payments whose tickets livepay reads (the default), the same with a planned end
//! (the caller knows when the session ends), and opaque payments (a signer whose payments cannot be
//! read, so livepay counts only what was billed):
//!
//! `cargo bench -p livepay-benches --bench policy_comparison` runs the full grid (1 min to 10 h
//! × every profile × EVs of 1 s to 3 min of price, 200 sessions per cell and policy). Under
//! `cargo test` (`--bench` absent) it runs a small grid so CI exercises it.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use livepay_core::Duration;
use livepay_mock::faults::{FaultPlan, PROFILES};
use livepay_mock::sim::{CellsConfig, GRID_EVS, GRID_LENGTHS, SimConfig, cells};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let full = std::env::args().any(|a| a == "--bench");
    let config = if full {
        CellsConfig::grid(200)?
    } else {
        CellsConfig {
            lengths: vec![GRID_LENGTHS[0], Duration::from_secs(600)],
            profiles: ["clean", "flaky", "payment-503-start", "payment-down"]
                .iter()
                .map(|p| FaultPlan::profile(p))
                .collect::<Result<_, _>>()?,
            evs: vec![GRID_EVS[0], GRID_EVS[1], GRID_EVS[3]],
            base: SimConfig {
                sessions: 10,
                ..SimConfig::default()
            },
            threads: 0,
        }
    };
    let variants = [
        ("tickets read (default)", config.base.clone()),
        (
            "planned end",
            SimConfig {
                planned_end: true,
                ..config.base.clone()
            },
        ),
        (
            "opaque payments",
            SimConfig {
                read_tickets: false,
                ..config.base.clone()
            },
        ),
    ];
    for (index, (name, base)) in variants.into_iter().enumerate() {
        let variant = CellsConfig {
            base,
            ..config.clone()
        };
        // A bench is a driver: it may read the wall clock to time the grid.
        #[allow(clippy::disallowed_methods)]
        let started = Instant::now();
        let report = cells(&variant)?;
        let elapsed = started.elapsed();
        println!("=== {name} ===");
        if index == 0 {
            println!("{report}");
        } else {
            for criterion in &report.criteria {
                println!("{criterion}");
            }
        }
        let session_hours: f64 = report
            .cells
            .iter()
            .map(|c| c.livepay.session_hours + c.sdk.session_hours)
            .sum();
        println!(
            "({} cells of {} profiles, {} sessions per cell and policy, seed {}: {session_hours:.0} session-hours in {:.2} s)\n",
            report.cells.len(),
            if full {
                PROFILES.len()
            } else {
                variant.profiles.len()
            },
            report.sessions,
            report.seed,
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
