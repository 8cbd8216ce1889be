//! Criterion benchmarks of livepay. Run them with `cargo bench -p livepay-benches`.
//!
//! - `core_cycle`: one full funding cycle of the core machine (timeout → `Pay` → `Paid` → drain
//!   events), against a bare enum step measured side by side as the physical floor.
