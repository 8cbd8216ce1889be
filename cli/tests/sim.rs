//! `livepay sim`: deterministic bytes, the JSON shape, the table, the plot, and bad input.

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
fn bad_input_is_one_clear_line_and_exit_2() {
    bad_input(&["sim", "--profile", "nope"], "unknown fault profile `nope`");
    bad_input(&["sim", "--hours=-1"], "--hours -1 is out of range");
    bad_input(&["sim", "--hours", "x"], "invalid value 'x'");
    bad_input(&["sim", "--sessions", "0"], "sessions");
    bad_input(&["sim", "--policy", "mine"], "invalid value 'mine'");
    bad_input(&["sim", "--bogus"], "unexpected argument '--bogus'");
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
