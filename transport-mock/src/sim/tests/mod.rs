//! Tests of the simulation.

use super::*;

fn config(profile: &str, sessions: u32, hours: u64) -> SimConfig {
    SimConfig {
        sessions,
        duration: Duration::from_secs(hours * 3_600),
        plan: FaultPlan::profile(profile).unwrap(),
        ..SimConfig::default()
    }
}

#[test]
fn same_seed_same_report_byte_for_byte() {
    let c = config("flaky", 20, 1);
    let a = compare(&c, &[PolicyKind::Livepay, PolicyKind::Sdk10])
        .unwrap()
        .to_json();
    let b = compare(&c, &[PolicyKind::Livepay, PolicyKind::Sdk10])
        .unwrap()
        .to_json();
    assert_eq!(a, b);
    let other = compare(&SimConfig { seed: 2, ..c }, &[PolicyKind::Livepay])
        .unwrap()
        .to_json();
    assert_ne!(a, other);
}

#[test]
fn clean_run_livepay_pays_near_the_price_and_the_sdk_about_a_third_more() {
    let c = config("clean", 20, 2);
    let report = compare(&c, &[PolicyKind::Livepay, PolicyKind::Sdk10]).unwrap();
    let (ours, sdk) = (&report.policies[0], &report.policies[1]);
    assert_eq!(ours.drops, 0, "{report}");
    assert_eq!(sdk.drops, 0, "{report}");
    assert!(ours.overpayment < 1.05, "{report}");
    assert!((1.25..1.40).contains(&sdk.overpayment), "{report}");
}

#[test]
fn an_invalid_config_is_an_error_naming_the_problem_not_replaced_by_defaults() {
    let mut c = config("clean", 1, 1);
    c.client.interval = Duration::from_secs(0);
    let err = simulate(&c, PolicyKind::Livepay).unwrap_err();
    assert!(
        matches!(err, SimError::Client(ConfigError::Zero("interval"))),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "simulation: livepay's config: `interval` must not be zero"
    );
    // Even when only the baseline is simulated: the comparison is of one configuration.
    assert!(compare(&c, &[PolicyKind::Sdk10]).is_err());

    let mut c = config("clean", 1, 1);
    c.client.payment_type = PaymentType::Lv2v;
    assert!(matches!(c.validate(), Err(SimError::NotLive)));
    let mut c = config("clean", 1, 1);
    c.sdk_interval = Duration::from_secs(0);
    assert!(matches!(c.validate(), Err(SimError::Zero("sdk_interval"))));
    let mut c = config("clean", 1, 1);
    c.model.tick = Duration::from_secs(0);
    assert!(matches!(c.validate(), Err(SimError::Zero("model.tick"))));
    let mut c = config("clean", 1, 1);
    c.plan.signer.refused = 2.0;
    assert!(matches!(c.validate(), Err(SimError::Plan(_))));
    assert!(config("flaky", 1, 1).validate().is_ok());
}

#[test]
fn the_counters_are_the_policies_own() {
    let c = config("flaky", 5, 1);
    let ours = simulate(&c, PolicyKind::Livepay).unwrap();
    let sdk = simulate(&c, PolicyKind::Sdk10).unwrap();
    for report in [&ours, &sdk] {
        assert!(report.payments_sent >= report.payments_accepted + report.payments_skipped);
        assert!(report.payments_failed > 0, "flaky: {report:?}");
    }
}

/// Over-payment is what the orchestrator received; what the signer minted for lost POSTs shows
/// apart. Every payment POST fails under `payment-down`: both policies drop, nothing but the
/// reservation is credited, and the signer still bills mints.
#[test]
fn over_payment_is_credit_received_and_lost_mints_show_apart() {
    let mut c = config("payment-down", 5, 1);
    c.duration = Duration::from_secs(120);
    let report = compare(&c, &[PolicyKind::Livepay, PolicyKind::Sdk10]).unwrap();
    for p in &report.policies {
        assert_eq!(p.drops, 5, "{report}");
        assert!(p.minted_per_debited > p.overpayment, "{report}");
        assert!(p.signer_calls >= 5, "{report}");
        assert!(p.signer_calls_per_session_hour > 0.0, "{report}");
    }
    // The SDK never warns; drops are counted whether warned or not.
    assert_eq!(report.policies[1].warned_before_release, 0);
    let mut clean = config("clean", 5, 1);
    clean.duration = Duration::from_secs(600);
    let report = compare(&clean, &[PolicyKind::Sdk10]).unwrap();
    let sdk = &report.policies[0];
    assert_eq!(
        sdk.overpayment, sdk.minted_per_debited,
        "nothing lost on a clean run"
    );
    assert_eq!(
        sdk.signer_calls, sdk.payments_sent,
        "one signer request per cycle"
    );
    assert_eq!((sdk.replays, sdk.resyncs, sdk.lost_answers), (0, 0, 0));
}

/// Windows are measured from each session's start; "mid" is half the run.
#[test]
fn payment_503_windows_hit_the_first_minute_or_the_middle_of_the_run() {
    let run = |profile: &str, secs: u64| {
        let mut c = config(profile, 10, 1);
        c.duration = Duration::from_secs(secs);
        simulate(&c, PolicyKind::Sdk10).unwrap()
    };
    // 60 s of 50 % failures from the start: about half the SDK's cycles fail (and most of its
    // sessions die of it, the finding).
    let start = run("payment-503-start", 60);
    let share = start.payments_failed as f64 / start.payments_sent as f64;
    assert!((0.35..0.65).contains(&share), "{start:?}");
    assert!(start.drops > 0, "{start:?}");
    // After the window, nothing fails.
    let longer = run("payment-503-start", 600);
    assert!(longer.payments_failed <= start.payments_failed + 10, "{longer:?}");
    // From the middle of the run: as many failures in its minute as the start window's minute,
    // whatever the run's length.
    for secs in [290, 600, 1_800] {
        let mid = run("payment-503-mid", secs);
        assert!((50..170).contains(&mid.payments_failed), "{secs} s: {mid:?}");
    }
    // The signer refuses for 20 s from the middle: about 7 failed cycles per session.
    let down = run("signer-down-20s", 600);
    assert!((40..100).contains(&down.payments_failed), "{down:?}");
}

/// A lost answer: the server processed the request, the client saw a timeout.
#[test]
fn lost_answers_are_processed_by_the_server() {
    let mut plan = FaultPlan::clean();
    plan.name = "lost".into();
    plan.payment.lost_answer = 0.2;
    let c = SimConfig {
        sessions: 5,
        duration: Duration::from_secs(600),
        plan,
        ..SimConfig::default()
    };
    let sdk = simulate(&c, PolicyKind::Sdk10).unwrap();
    assert!(sdk.lost_answers > 100, "{sdk:?}");
    // The SDK takes each for a failure, yet the orchestrator credited it: no drop, and the
    // credit equals the mints.
    assert_eq!(sdk.drops, 0, "{sdk:?}");
    assert!(sdk.payments_failed + 5 >= sdk.lost_answers, "{sdk:?}");
    assert_eq!(sdk.overpayment, sdk.minted_per_debited, "{sdk:?}");
}

mod cells;
mod dialects;
mod differential;
mod estimate;
