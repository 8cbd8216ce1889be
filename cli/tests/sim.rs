//! `livepay sim`: deterministic bytes, the JSON shape, the table, the plot, the cells grid, the
//! README tables, and bad input.

mod common;

use std::process::Output;

/// Runs `livepay args` with no `LIVEPAY_*` variable inherited.
fn livepay(args: &[&str]) -> Output {
    common::run(args)
}

#[test]
fn same_seed_same_json_bytes() {
    let args = [
        "sim",
        "--sessions",
        "10",
        "--hours",
        "0.5",
        "--profile",
        "flaky",
        "--seed",
        "3",
        "--json",
    ];
    let (a, b) = (livepay(&args), livepay(&args));
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let other = livepay(&[
        "sim",
        "--sessions",
        "10",
        "--hours",
        "0.5",
        "--profile",
        "flaky",
        "--seed",
        "4",
        "--json",
    ]);
    assert_ne!(a.stdout, other.stdout);
    let report: serde_json::Value = serde_json::from_slice(&a.stdout).expect("JSON");
    assert_eq!(report["profile"], "flaky");
    let policies = report["policies"].as_array().expect("policies");
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0]["policy"], "livepay");
    assert_eq!(policies[1]["policy"], "sdk-1.0");
    for key in [
        "drops",
        "drops_per_1000h",
        "overpayment",
        "payments_sent",
        "payments_accepted",
        "min_runway_s",
    ] {
        assert!(policies[0].get(key).is_some(), "missing {key}");
    }
}

#[test]
fn table_and_single_policy() {
    let out = livepay(&["sim", "--sessions", "5", "--hours", "0.2", "--policy", "livepay"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| livepay"), "{text}");
    assert!(!text.contains("sdk-1.0"), "{text}");
}

#[test]
fn plot_writes_an_svg() {
    let path = std::env::temp_dir().join(format!("livepay-sim-{}.svg", std::process::id()));
    let out = livepay(&[
        "sim",
        "--sessions",
        "5",
        "--hours",
        "0.2",
        "--plot",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&path).expect("the plot");
    assert!(svg.starts_with("<svg") && svg.contains("runway over time") && svg.contains("drops"));
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_toml_profile_file_is_accepted() {
    let path = std::env::temp_dir().join(format!("livepay-plan-{}.toml", std::process::id()));
    std::fs::write(&path, "name = \"mine\"\n[payment]\nerror_5xx = 0.05\n").unwrap();
    let out = livepay(&[
        "sim",
        "--sessions",
        "3",
        "--hours",
        "0.1",
        "--profile",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["profile"], "mine");
    let _ = std::fs::remove_file(path);
}

#[track_caller]
fn bad_input(args: &[&str], says: &str) {
    let out = livepay(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says), "{args:?}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_grid_prints_one_row_per_cell_and_the_criteria() {
    let args = [
        "sim",
        "--lengths",
        "1m,10m",
        "--evs",
        "1,60",
        "--profiles",
        "clean,payment-503-start",
        "--sessions",
        "4",
    ];
    let out = livepay(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let rows = text
        .lines()
        .filter(|l| l.starts_with("| 1m ") || l.starts_with("| 10m "))
        .count();
    assert_eq!(rows, 8, "{text}");
    assert!(text.contains("| payment-503-start |"), "{text}");
    assert!(text.contains("zero drops under payment-503-*"), "{text}");
    // JSON: the same cells, deterministically.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (a, b) = (livepay(&json_args), livepay(&json_args));
    assert_eq!(a.stdout, b.stdout);
    let report: serde_json::Value = serde_json::from_slice(&a.stdout).expect("JSON");
    let cells = report["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 8);
    assert_eq!(cells[0]["length_s"], 60);
    assert_eq!(cells[0]["ev_seconds"], 1.0);
    assert_eq!(cells[7]["profile"], "payment-503-start");
    for key in [
        "drops",
        "overpayment",
        "signer_calls_per_session_hour",
        "replays_refused",
    ] {
        assert!(cells[0]["livepay"].get(key).is_some(), "missing {key}");
        assert!(cells[0]["sdk"].get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["criteria"].as_array().map(Vec::len), Some(6));
    // The thread count changes nothing.
    json_args.extend(["--threads", "1"]);
    assert_eq!(livepay(&json_args).stdout, a.stdout);
}

#[test]
fn readme_tables_are_generated_markdown() {
    let out = livepay(&[
        "sim",
        "--readme",
        "--lengths",
        "1m,3m",
        "--evs",
        "2.5",
        "--profiles",
        "clean,payment-down",
        "--sessions",
        "3",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("Generated by `livepay sim --readme`"), "{md}");
    assert!(md.contains("| session | EV 2.5 s"), "{md}");
    assert!(md.contains("| 3m      |"), "{md}");
    assert!(md.contains("| payment-down |"), "{md}");
    assert!(md.contains("Signer calls per session-hour"), "{md}");
}

#[test]
fn the_grid_plot_draws_over_payment_against_length_and_drops_per_profile() {
    let path = std::env::temp_dir().join(format!("livepay-cells-{}.svg", std::process::id()));
    let out = livepay(&[
        "sim",
        "--lengths",
        "1m,3m",
        "--evs",
        "1,10",
        "--profiles",
        "clean,flaky",
        "--sessions",
        "3",
        "--plot",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&path).expect("the plot");
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(
        svg.contains("over-payment") && svg.contains("drops per profile"),
        "{svg}"
    );
    assert!(svg.contains("livepay EV 10 s") && svg.contains("flaky"), "{svg}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn the_single_run_takes_a_ticket_ev() {
    let out = livepay(&["sim", "--sessions", "3", "--hours", "0.1", "--ev", "60", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ev_seconds"], 60.0);
    assert!(report["policies"][1]["payments_skipped"].as_u64() > Some(0));
}

#[test]
fn every_dialect_simulates_and_a_challenge_in_payment_answers_saves_the_refreshes() {
    let refreshes = |dialect: &str| {
        let out = livepay(&[
            "sim",
            "--sessions",
            "3",
            "--hours",
            "1",
            "--policy",
            "livepay",
            "--dialect",
            dialect,
            "--json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(report["policies"][0]["drops"], 0, "{dialect}");
        report["policies"][0]["refreshes"].as_u64().expect("refreshes")
    };
    assert!(refreshes("go-livepeer") >= 3 * 6);
    assert_eq!(refreshes("go-livepeer-next"), 0);
    assert_eq!(refreshes("livepeer-node"), 0);
    let table = livepay(&[
        "sim",
        "--sessions",
        "2",
        "--hours",
        "0.1",
        "--dialect",
        "livepeer-node",
    ]);
    assert!(String::from_utf8_lossy(&table.stdout).starts_with("server livepeer-node · "));
}

#[test]
fn bad_input_is_one_clear_line_and_exit_2() {
    bad_input(&["sim", "--evs", "0"], "--evs: 0 is out of range");
    bad_input(&["sim", "--evs", "x"], "invalid value 'x'");
    bad_input(&["sim", "--ev=-1"], "--ev -1 is out of range");
    bad_input(&["sim", "--lengths", "500ms"], "shorter than a second");
    bad_input(&["sim", "--lengths", "1parsec"], "unknown unit");
    bad_input(
        &["sim", "--profiles", "clean,nope"],
        "unknown fault profile `nope`",
    );
    bad_input(&["sim", "--hours", "1", "--lengths", "1m"], "cannot be used with");
    bad_input(&["sim", "--readme", "--json"], "cannot be used with");
    bad_input(&["sim", "--profile", "nope"], "unknown fault profile `nope`");
    bad_input(&["sim", "--hours=-1"], "--hours -1 is out of range");
    bad_input(&["sim", "--hours", "x"], "invalid value 'x'");
    bad_input(&["sim", "--sessions", "0"], "sessions");
    bad_input(&["sim", "--policy", "mine"], "invalid value 'mine'");
    bad_input(&["sim", "--bogus"], "unexpected argument '--bogus'");
    bad_input(&["sim", "--dialect", "nope"], "unknown dialect");
    bad_input(&["frobnicate"], "unrecognized subcommand");
}

#[test]
fn flags_are_also_read_from_the_environment() {
    let run = |envs: &[(&str, &str)]| {
        common::livepay(&["sim"])
            .envs(envs.iter().copied())
            .output()
            .expect("runs")
    };
    let out = run(&[
        ("LIVEPAY_SIM_SESSIONS", "4"),
        ("LIVEPAY_SIM_HOURS", "0.1"),
        ("LIVEPAY_SIM_PROFILE", "flaky"),
        ("LIVEPAY_SIM_POLICY", "livepay"),
        ("LIVEPAY_SIM_JSON", "true"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from LIVEPAY_SIM_JSON");
    assert_eq!(report["profile"], "flaky");
    assert_eq!(report["sessions"], 4);
    assert_eq!(report["policies"].as_array().map(Vec::len), Some(1));
    // A bad value from the environment is bad input too.
    let bad = run(&[("LIVEPAY_SIM_PROFILE", "nope")]);
    assert_eq!(bad.status.code(), Some(2));
}
