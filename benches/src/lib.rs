//! Criterion benchmarks of livepay. Run them with `cargo bench -p livepay-benches`.
//!
//! - `core_cycle`: one full funding cycle of the core machine (timeout → `Pay` → `Paid` → drain
//!   events), against a bare enum step measured side by side as the physical floor.
//! - `sim_throughput`: simulated session-hours per wall-clock second on one core, for livepay and
//!   the livepeer-gateway 1.0.0 baseline, and the memory a simulated session needs.
//! - `policy_comparison`: drops per 1,000 session-hours and over-payment of both policies under
//!   each fault profile, same seeds (a report, not a timing).
