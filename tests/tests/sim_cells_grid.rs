//! The cells grid: lengths × profiles × EVs, both policies with the same seeds in every cell, one
//! table row and one JSON object per cell, and the criteria with the cells that fail each.

use livepay_core::Duration;
use livepay_mock::faults::FaultPlan;
use livepay_mock::sim::{CellsConfig, Criterion, SimConfig, cells};

#[test]
fn a_grid_reports_every_cell_deterministically_with_its_criteria() {
    let config = CellsConfig {
        lengths: vec![Duration::from_secs(60), Duration::from_secs(1_800)],
        profiles: vec![
            FaultPlan::profile("clean").unwrap(),
            FaultPlan::profile("payment-503-start").unwrap(),
        ],
        evs: vec![1.0, 60.0],
        base: SimConfig {
            sessions: 8,
            seed: 7,
            ..SimConfig::default()
        },
        threads: 2,
    };
    let report = cells(&config).expect("a valid grid");
    assert_eq!(report.cells.len(), 8);
    assert_eq!(report.to_json(), cells(&config).unwrap().to_json());
    let rows = report.to_string();
    assert_eq!(
        rows.lines()
            .filter(|l| l.starts_with("| 30m") || l.starts_with("| 1m"))
            .count(),
        8,
        "{rows}"
    );
    assert_eq!(report.criteria.len(), Criterion::ALL.len());
    let near_price = report
        .criteria
        .iter()
        .find(|c| c.criterion == Criterion::OverpaymentNearPriceFrom30Min)
        .unwrap();
    assert_eq!(near_price.checked, 2, "clean cells of 30 min and more");
    let no_drops = report
        .criteria
        .iter()
        .find(|c| c.criterion == Criterion::NoDropsUnderPayment503)
        .unwrap();
    assert_eq!(no_drops.checked, 4);
    for c in &report.cells {
        assert_eq!(c.livepay.sessions, 8);
        assert!(
            c.livepay.signer_calls > 0 && c.sdk.signer_calls > 0,
            "{}",
            c.label()
        );
    }
    let md = report.readme_markdown();
    assert!(md.contains("| 30m     |"), "{md}");
}
