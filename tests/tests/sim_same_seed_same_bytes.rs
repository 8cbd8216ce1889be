//! The simulation is deterministic: the same seed and plan give byte-identical JSON reports; a
//! different seed gives a different one.

use livepay_mock::faults::FaultPlan;
use livepay_tests::sim::{both, sim_config};

#[test]
fn same_seed_same_bytes() {
    let config = sim_config(FaultPlan::profile("flaky").unwrap(), 20, 30);
    let (_, _, a) = both(&config);
    let (_, _, b) = both(&config);
    assert_eq!(a.to_json(), b.to_json());
    let mut other = config;
    other.seed = 8;
    let (_, _, c) = both(&other);
    assert_ne!(a.to_json(), c.to_json());
}
