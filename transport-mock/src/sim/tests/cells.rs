//! The cells grid, its renderings and the criteria.

use embassy_time::Duration;

use crate::faults::FaultPlan;
use crate::sim::{
    CellReport, CellsConfig, Criterion, PolicyKind, SimConfig, SimError, cells, check_criteria, compare,
};

fn small(threads: usize) -> CellsConfig {
    CellsConfig {
        lengths: vec![Duration::from_secs(60), Duration::from_secs(600)],
        profiles: vec![
            FaultPlan::profile("clean").unwrap(),
            FaultPlan::profile("payment-503-mid").unwrap(),
        ],
        evs: vec![1.0, 10.0],
        base: SimConfig {
            sessions: 6,
            ..SimConfig::default()
        },
        threads,
    }
}

#[test]
fn cells_run_every_combination_with_the_same_seeds_whatever_the_threads() {
    let one = cells(&small(1)).unwrap();
    let two = cells(&small(2)).unwrap();
    assert_eq!(one.to_json(), two.to_json());
    assert_eq!(one.cells.len(), 8);
    let labels: Vec<String> = one.cells.iter().map(|c| c.label()).collect();
    assert_eq!(labels[0], "1m clean EV 1 s");
    assert_eq!(labels[7], "10m payment-503-mid EV 10 s");
    // A cell is exactly `compare` of its configuration: same seeds, both policies.
    let cell = &one.cells[5];
    let direct = compare(
        &SimConfig {
            duration: Duration::from_secs(600),
            plan: FaultPlan::profile("clean").unwrap(),
            sessions: 6,
            ..SimConfig::default()
        }
        .with_ev_seconds(10.0),
        &[PolicyKind::Livepay, PolicyKind::Sdk10],
    )
    .unwrap();
    assert_eq!(cell.label(), "10m clean EV 10 s");
    assert_eq!(cell.livepay, direct.policies[0]);
    assert_eq!(cell.sdk, direct.policies[1]);
    assert_eq!(direct.ev_seconds, 10.0);
}

#[test]
fn the_table_json_and_readme_name_every_cell_and_criterion() {
    let report = cells(&small(0)).unwrap();
    let table = report.to_string();
    assert!(table.contains("| 10m    | payment-503-mid |"), "{table}");
    assert!(table.contains("over-payment"), "{table}");
    assert!(table.contains("signer calls/session-h"), "{table}");
    for c in Criterion::ALL {
        assert!(table.contains(c.description()), "{table}");
    }
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["cells"].as_array().map(Vec::len), Some(8));
    assert_eq!(json["criteria"].as_array().map(Vec::len), Some(6));
    for key in [
        "signer_calls_per_session_hour",
        "replays_refused",
        "minted_per_debited",
        "lapse_lead_min_s",
    ] {
        assert!(json["cells"][0]["livepay"].get(key).is_some(), "{key}");
    }
    let md = report.readme_markdown();
    assert!(md.contains("Over-payment on the clean profile"), "{md}");
    assert!(md.contains("| session | EV 1 s"), "{md}");
    assert!(md.contains("| payment-503-mid |"), "{md}");
    assert!(md.contains("summed over the lengths 1m, 10m"), "{md}");
}

#[test]
fn criteria_apply_to_their_cells_and_list_the_failing_ones() {
    let mut report: CellReport = cells(&small(0)).unwrap();
    let checked = |report: &CellReport, c: Criterion| {
        check_criteria(report)
            .into_iter()
            .find(|r| r.criterion == c)
            .unwrap()
    };
    assert_eq!(checked(&report, Criterion::OverpaymentAtMostSdk).checked, 8);
    assert_eq!(checked(&report, Criterion::NoDropsUnderPayment503).checked, 4);
    assert_eq!(
        checked(&report, Criterion::OverpaymentNearPriceFrom30Min).checked,
        0
    );
    assert_eq!(
        checked(&report, Criterion::SignerCallsHalfSdkFrom10Min).checked,
        2
    );
    // Make livepay worse than the SDK in one cell: that cell, and only it, fails.
    let cell = &mut report.cells[2];
    cell.livepay.overpayment_kept = cell.sdk.overpayment_kept.map(|o| o + 0.5);
    cell.livepay.drops = cell.sdk.drops + 1;
    cell.livepay.signer_calls_per_funded_hour = cell.sdk.signer_calls_per_funded_hour * 2.0;
    let label = cell.label();
    let before_drops = checked(&report, Criterion::DropsAtMostSdk).failing.len();
    let over = checked(&report, Criterion::OverpaymentAtMostSdk);
    assert!(over.failing.iter().any(|f| f.cell == label), "{over}");
    assert!(!over.passed());
    assert!(over.to_string().starts_with("FAIL over-payment"), "{over}");
    let drops = checked(&report, Criterion::DropsAtMostSdk);
    assert!(drops.failing.iter().any(|f| f.cell == label));
    assert_eq!(drops.failing.len(), before_drops);
    let calls = checked(&report, Criterion::SignerCallsBounded);
    assert!(
        calls
            .failing
            .iter()
            .any(|f| f.cell == label && f.bound < f.livepay)
    );
}

#[test]
fn an_empty_or_invalid_grid_is_an_error() {
    let mut c = small(1);
    c.evs.clear();
    assert!(matches!(cells(&c), Err(SimError::Grid(_))));
    let mut c = small(1);
    c.evs = vec![0.0];
    assert!(matches!(cells(&c), Err(SimError::Grid(_))));
    let mut c = small(1);
    c.lengths = vec![Duration::from_secs(0)];
    assert!(matches!(cells(&c), Err(SimError::Grid(_))));
    let mut c = small(1);
    c.base.sdk_interval = Duration::from_secs(0);
    assert!(matches!(cells(&c), Err(SimError::Zero("sdk_interval"))));
    let grid = CellsConfig::grid(100).unwrap();
    assert_eq!(
        (grid.lengths.len(), grid.profiles.len(), grid.evs.len()),
        (6, 9, 5)
    );
}
