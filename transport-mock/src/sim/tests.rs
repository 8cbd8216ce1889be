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

/// The fast model applies the faithful model's arithmetic: identical schedules (mints at random
/// spacings, some POSTs lost, refreshes on 480, long gaps that release) give identical statuses,
/// debits, credits and release instants.
#[test]
fn fast_model_matches_the_faithful_model() {
    use crate::model::testkit::Flow;
    use crate::model::{ModelConfig, PriceKind, World as Faithful};

    for seed in 0..40u64 {
        let mut rng = SplitMix64::new(seed);
        let fast_config = FastConfig::default();
        let mut faithful = Faithful::new(ModelConfig::default(), seed);
        let t0 = Instant::from_millis(1_000 + rng.next_u64() % 3_000);
        let mut flow = Flow::reserve(&mut faithful, t0, "live-runner", PriceKind::Live);
        let mut fast = FastLedger::reserve(&fast_config, us(t0), 0);
        let mut now = t0;
        let mut log = Vec::new();
        for step in 0..400 {
            // Mostly 1–4 s apart, sometimes a long gap that may let the session lapse.
            let gap_ms = if rng.next_u64().is_multiple_of(50) {
                8_000 + rng.next_u64() % 10_000
            } else {
                900 + rng.next_u64() % 3_200
            };
            now += Duration::from_millis(gap_ms);
            let lose_post = rng.next_u64().is_multiple_of(10);
            let (faithful_status, fast_status) = match flow.mint(&mut faithful, now) {
                Ok(minted) => {
                    let SignerAnswer::Minted { ev } = fast.generate(&fast_config, us(now)) else {
                        panic!("seed {seed} step {step}: faithful minted, fast did not");
                    };
                    if lose_post {
                        (200, 200)
                    } else {
                        let status = flow.pay(&mut faithful, now, &minted).status;
                        (
                            status,
                            if fast.pay(&fast_config, us(now), ev, || 0) {
                                200
                            } else {
                                404
                            },
                        )
                    }
                }
                Err(resp) => {
                    let fast_status = match fast.generate(&fast_config, us(now)) {
                        SignerAnswer::NoTickets => 482,
                        SignerAnswer::RefreshRequired => 480,
                        SignerAnswer::TooManyTickets => 400,
                        SignerAnswer::Minted { .. } => 200,
                    };
                    if resp.status == 480 {
                        let r = flow.refresh(&mut faithful, now).status;
                        assert_eq!(
                            r,
                            fast.refresh(&fast_config, us(now), || 0),
                            "seed {seed} step {step} refresh"
                        );
                    }
                    (resp.status, fast_status)
                }
            };
            log.push((now, faithful_status));
            assert_eq!(
                faithful_status, fast_status,
                "seed {seed} step {step} at {now}: {log:?}"
            );
            if faithful_status == 404 {
                break;
            }
        }
        faithful.advance(now);
        fast.catch_up(&fast_config, us(now), || 0);
        let session = faithful
            .orchestrator()
            .session(flow.session_id())
            .expect("session");
        assert_eq!(session.debited(), u128::from(fast.debited), "seed {seed} debited");
        assert_eq!(
            session.released().map(|(at, _)| us(at)),
            fast.released_at(),
            "seed {seed} release instant"
        );
        assert_eq!(
            faithful.signer().minted_ev(&flow.challenge.manifest_id),
            u128::from(fast.minted),
            "seed {seed} minted"
        );
    }
}
