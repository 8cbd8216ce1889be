//! Tests of the fault plan.

use super::*;

const T0: Instant = Instant::from_ticks(0);
const TIMEOUT: Duration = Duration::from_secs(5);

fn at(s: u64) -> Instant {
    Instant::from_secs(s)
}

#[test]
fn every_profile_loads_and_validates() {
    for name in PROFILES {
        let plan = FaultPlan::profile(name).unwrap();
        assert_eq!(plan.name, name);
        plan.validate().unwrap();
        // TOML round trip.
        assert_eq!(FaultPlan::from_toml(&plan.to_toml()).unwrap(), plan, "{name}");
    }
    assert!(matches!(
        FaultPlan::profile("nope"),
        Err(PlanError::UnknownProfile(_))
    ));
}

#[test]
fn toml_plans_parse_and_bad_ones_are_refused() {
    let plan = FaultPlan::from_toml(
        r#"
        name = "custom"
        tick_jitter_ms = 50
        [signer]
        latency = { kind = "long-tail", median_ms = 300, p99_ms = 4000 }
        error_5xx = 0.1
        [[partitions]]
        every_s = 600
        duration_s = 8
        [[partitions]]
        at_s = 30
        duration_s = 12
        [[refresh_storms]]
        at_s = 100
        duration_s = 60
        rate = 0.5
        [[client_suspends]]
        at_s = 200
        duration_s = 20
        "#,
    )
    .unwrap();
    assert_eq!(plan.partitions.len(), 2);
    assert!(plan.partitioned(T0, at(35)));
    assert!(plan.partitioned(T0, at(604)));
    assert!(!plan.partitioned(T0, at(610)));
    assert_eq!(plan.storm_rate(T0, at(120)), 0.5);
    assert_eq!(plan.resume_at(T0, at(210)), at(220));
    assert_eq!(plan.resume_at(T0, at(230)), at(230));
    assert!(matches!(
        FaultPlan::from_toml("[signer]\nerror_5xx = 1.5"),
        Err(PlanError::Invalid(_))
    ));
    assert!(matches!(
        FaultPlan::from_toml("bogus = 1"),
        Err(PlanError::Toml(_))
    ));
    assert!(matches!(
        FaultPlan::from_toml("[signer]\nlatency = { kind = \"uniform\", min_ms = 5, max_ms = 1 }"),
        Err(PlanError::Invalid(_))
    ));
}

#[test]
fn fates_follow_the_rates_and_the_seed() {
    let plan = FaultPlan::profile("flaky").unwrap();
    let draw = |seed| {
        let mut rng = SplitMix64::new(seed);
        (0..10_000)
            .map(|i| plan.fate(Endpoint::Signer, T0, at(i), TIMEOUT, &mut rng))
            .collect::<Vec<_>>()
    };
    let fates = draw(1);
    assert_eq!(fates, draw(1));
    assert_ne!(fates, draw(2));
    let count = |reply: Reply| {
        fates
            .iter()
            .filter(|f| matches!(f, Fate::Failed { reply: r, .. } if *r == reply))
            .count()
    };
    let (e5xx, timeouts) = (count(Reply::Status(503)), count(Reply::Timeout));
    assert!((850..1_150).contains(&e5xx), "{e5xx}");
    assert!((130..270).contains(&timeouts), "{timeouts}");
    // The refresh endpoint is clean in this profile.
    let mut rng = SplitMix64::new(3);
    assert!(matches!(
        plan.fate(Endpoint::Refresh, T0, at(1), TIMEOUT, &mut rng),
        Fate::Delivered { .. }
    ));
}

#[test]
fn long_tail_latency_has_its_median_and_p99() {
    let tail = Latency::LongTail {
        median_ms: 300.0,
        p99_ms: 4_000.0,
    };
    let mut rng = SplitMix64::new(9);
    let mut v: Vec<u64> = (0..20_000).map(|_| tail.sample(&mut rng).as_millis()).collect();
    v.sort_unstable();
    let median = v[v.len() / 2];
    let p99 = v[v.len() * 99 / 100];
    assert!((270..330).contains(&median), "median {median}");
    assert!((3_400..4_700).contains(&p99), "p99 {p99}");
}

#[test]
fn partitions_refuse_everything_and_slow_answers_time_out() {
    let plan = FaultPlan::profile("partition-30s").unwrap();
    let mut rng = SplitMix64::new(1);
    assert_eq!(
        plan.fate(Endpoint::Payment, T0, at(310), TIMEOUT, &mut rng),
        Fate::Failed {
            after: REFUSED_AFTER,
            reply: Reply::Network
        }
    );
    assert!(matches!(
        plan.fate(Endpoint::Payment, T0, at(331), TIMEOUT, &mut rng),
        Fate::Delivered { .. }
    ));
    let mut slow = FaultPlan::clean();
    slow.signer.latency = Latency::Fixed { ms: 6_000.0 };
    assert_eq!(
        slow.fate(Endpoint::Signer, T0, at(0), TIMEOUT, &mut rng),
        Fate::Failed {
            after: TIMEOUT,
            reply: Reply::Timeout
        }
    );
}

#[test]
fn tick_jitter_stays_in_bounds() {
    let plan = FaultPlan {
        tick_jitter_ms: 40.0,
        ..FaultPlan::clean()
    };
    let mut rng = SplitMix64::new(5);
    assert!((0..1_000).all(|_| plan.tick_jitter_us(&mut rng).abs() <= 40_000));
    assert_eq!(FaultPlan::clean().tick_jitter_us(&mut rng), 0);
}

fn count_statuses(
    plan: &FaultPlan,
    endpoint: Endpoint,
    session: Instant,
    from: u64,
    to: u64,
) -> (usize, usize) {
    let mut rng = SplitMix64::new(11);
    let mut failed = 0;
    let mut total = 0;
    for ms in (from * 1_000..to * 1_000).step_by(7) {
        let at = Instant::from_millis(ms);
        total += 1;
        if let Fate::Failed {
            reply: Reply::Status(503),
            ..
        } = plan.fate_at(endpoint, T0, session, at, TIMEOUT, &mut rng)
        {
            failed += 1;
        }
    }
    (failed, total)
}

#[test]
fn payment_503_windows_fail_half_the_payment_posts_for_60_s_from_the_session_start() {
    let plan = FaultPlan::profile("payment-503-start").unwrap();
    let session = at(2);
    for endpoint in [Endpoint::Payment, Endpoint::Repost] {
        let (failed, total) = count_statuses(&plan, endpoint, session, 2, 62);
        let share = failed as f64 / total as f64;
        assert!((0.45..0.55).contains(&share), "{endpoint:?}: {share}");
        assert_eq!(count_statuses(&plan, endpoint, session, 62, 120).0, 0);
    }
    assert_eq!(count_statuses(&plan, Endpoint::Signer, session, 2, 62).0, 0);
    // "mid" is half the run, once resolved; unresolved it covers nothing.
    let mid = FaultPlan::profile("payment-503-mid").unwrap();
    assert_eq!(count_statuses(&mid, Endpoint::Payment, T0, 0, 4_000).0, 0);
    let resolved = mid.resolved(Duration::from_secs(3_600));
    assert_eq!(resolved.windows[0].start, WindowStart::Seconds(1_800.0));
    assert_eq!(
        count_statuses(&resolved, Endpoint::Payment, T0, 1_700, 1_800).0,
        0
    );
    assert!(count_statuses(&resolved, Endpoint::Payment, T0, 1_800, 1_860).0 > 3_000);
    assert_eq!(
        count_statuses(&resolved, Endpoint::Payment, T0, 1_860, 1_900).0,
        0
    );
}

#[test]
fn payment_down_fails_every_payment_post_and_signer_down_refuses_for_20_s_mid_run() {
    let down = FaultPlan::profile("payment-down").unwrap();
    let (failed, total) = count_statuses(&down, Endpoint::Payment, T0, 0, 100);
    assert_eq!(failed, total);
    let signer_down = FaultPlan::profile("signer-down-20s")
        .unwrap()
        .resolved(Duration::from_secs(600));
    let mut rng = SplitMix64::new(1);
    let fate = |s: f64, rng: &mut SplitMix64| {
        let when = Instant::from_micros((s * 1e6) as u64);
        signer_down.fate_at(Endpoint::Signer, T0, T0, when, TIMEOUT, rng)
    };
    let refused = Fate::Failed {
        after: REFUSED_AFTER,
        reply: Reply::Refused,
    };
    assert_eq!(fate(300.0, &mut rng), refused);
    assert_eq!(fate(319.9, &mut rng), refused);
    assert!(matches!(fate(299.9, &mut rng), Fate::Delivered { .. }));
    assert!(matches!(fate(320.0, &mut rng), Fate::Delivered { .. }));
    assert!(matches!(
        signer_down.fate_at(Endpoint::Payment, T0, T0, at(305), TIMEOUT, &mut rng),
        Fate::Delivered { .. }
    ));
}

#[test]
fn lost_answers_are_processed_then_time_out_and_windows_shift_no_other_draw() {
    let mut plan = FaultPlan::clean();
    plan.payment.lost_answer = 0.25;
    let mut rng = SplitMix64::new(4);
    let fates: Vec<Fate> = (0..4_000)
        .map(|i| plan.fate(Endpoint::Payment, T0, at(i), TIMEOUT, &mut rng))
        .collect();
    let lost = fates
        .iter()
        .filter(
            |f| matches!(f, Fate::LostAnswer { after, latency } if *after == TIMEOUT && *latency < TIMEOUT),
        )
        .count();
    assert!((900..1_100).contains(&lost), "{lost}");
    // A window that is not active draws nothing: the flaky stream is unchanged by one.
    let flaky = FaultPlan::profile("flaky").unwrap();
    let mut windowed = flaky.clone();
    windowed.windows.push(Window {
        endpoints: vec![WindowEndpoint::Signer, WindowEndpoint::Payment],
        start: WindowStart::Seconds(1e9),
        duration_s: 1.0,
        kind: WindowKind::Error5xx,
        rate: 1.0,
    });
    let draw = |plan: &FaultPlan| {
        let mut rng = SplitMix64::new(9);
        (0..2_000)
            .map(|i| plan.fate(Endpoint::Signer, T0, at(i), TIMEOUT, &mut rng))
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(&flaky), draw(&windowed));
}

#[test]
fn windows_in_toml_parse_and_bad_ones_are_refused() {
    let plan = FaultPlan::from_toml(
        r#"
        name = "w"
        [payment]
        lost_answer = 0.1
        [[windows]]
        endpoints = ["payment", "signer"]
        start = "mid"
        duration_s = 60
        kind = "error-5xx"
        rate = 0.5
        [[windows]]
        endpoints = ["refresh"]
        start = 30
        duration_s = 5
        kind = "refuse"
        "#,
    )
    .unwrap();
    assert_eq!(plan.payment.lost_answer, 0.1);
    assert_eq!(plan.windows.len(), 2);
    assert_eq!(plan.windows[0].start, WindowStart::Mid);
    assert_eq!(plan.windows[1].start, WindowStart::Seconds(30.0));
    assert_eq!(plan.windows[1].rate, 1.0, "the default rate");
    assert_eq!(FaultPlan::from_toml(&plan.to_toml()).unwrap(), plan);
    let window = |body: &str| FaultPlan::from_toml(&format!("[[windows]]\n{body}"));
    for bad in [
        "endpoints = []\nstart = 0\nduration_s = 1\nkind = \"refuse\"",
        "endpoints = [\"payment\"]\nstart = -1\nduration_s = 1\nkind = \"refuse\"",
        "endpoints = [\"payment\"]\nstart = 0\nduration_s = -1\nkind = \"refuse\"",
        "endpoints = [\"payment\"]\nstart = 0\nduration_s = 1\nkind = \"error-5xx\"\nrate = 1.5",
    ] {
        assert!(matches!(window(bad), Err(PlanError::Invalid(_))), "{bad}");
    }
    for bad in [
        "endpoints = [\"payment\"]\nstart = \"soon\"\nduration_s = 1\nkind = \"refuse\"",
        "endpoints = [\"orchestra\"]\nstart = 0\nduration_s = 1\nkind = \"refuse\"",
        "endpoints = [\"payment\"]\nstart = 0\nduration_s = 1\nkind = \"melt\"",
        "endpoints = [\"payment\"]\nstart = 0\nduration_s = 1\nkind = \"refuse\"\nbogus = 1",
    ] {
        assert!(matches!(window(bad), Err(PlanError::Toml(_))), "{bad}");
    }
    assert!(matches!(
        FaultPlan::from_toml("[payment]\nlost_answer = 2"),
        Err(PlanError::Invalid(_))
    ));
}

#[test]
fn the_original_profiles_are_unchanged() {
    let flaky = FaultPlan::profile("flaky").unwrap();
    for e in [&flaky.signer, &flaky.payment] {
        assert_eq!((e.error_5xx, e.timeout, e.lost_answer), (0.10, 0.02, 0.0));
    }
    assert!(flaky.windows.is_empty() && flaky.partitions.is_empty());
    assert_eq!(FaultPlan::profile("clean").unwrap(), FaultPlan::clean());
    let p8 = FaultPlan::profile("partition-8s").unwrap();
    assert_eq!(
        p8.partitions,
        vec![Partition::Every {
            every_s: 600.0,
            duration_s: 8.0,
            offset_s: 300.0
        }]
    );
    assert_eq!(
        &PROFILES[..5],
        &["clean", "flaky", "slow-signer", "partition-8s", "partition-30s"]
    );
}
