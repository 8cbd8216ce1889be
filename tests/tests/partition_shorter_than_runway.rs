//! A network partition shorter than the runway is ridden out by retries: no lapse, funding
//! continues. One longer than the runway is reported as `AtRisk` (one server tick of runway left), then
//! `Lapsed` (the deadline passed), while funding keeps retrying until a 404 confirms the release.

use livepay_core::{Duration, Endpoint, Event, ReleaseReason, Reply};
use livepay_tests::{Commands, EventFilter, Script, drive, rel, secs};

#[test]
fn a_6_s_outage_is_ridden_out_without_a_lapse() {
    let (from, to) = (secs(20), secs(26));
    let script = Script::new().outage(from..to, Reply::Network);
    let report = drive(livepay_tests::live_config(), script, Commands::new(), secs(60));

    report.assert_exit(None);
    let failures = report.events_where(|e| matches!(e, Event::PaymentFailed { .. }));
    assert!(
        failures.len() >= 3,
        "retried during the outage:\n{}",
        report.timeline()
    );
    assert!(failures.iter().all(|&(t, _)| (from..to).contains(&t)));
    report.assert_no_event("risk", |e| {
        matches!(e, Event::AtRisk { .. } | Event::Lapsed { .. })
    });

    // The first retry after the outage pays: within the longest backoff (2 s + 20 %) plus one
    // request's latency of the end.
    let (paid, _) = report
        .events_where(|e| matches!(e, Event::PaymentAccepted { .. }))
        .into_iter()
        .find(|&(t, _)| t >= to)
        .expect("a payment after the outage");
    assert!(
        paid - to <= Duration::from_millis(2_400 + 40),
        "first payment {} after the outage",
        rel(paid)
    );
    let accepted_after = report
        .events_where(|e| matches!(e, Event::PaymentAccepted { .. }))
        .into_iter()
        .filter(|&(t, _)| t >= to)
        .count();
    assert!(accepted_after >= 10, "{}", report.timeline());
    assert!(report.state.is_funding());
}

#[test]
fn a_60_s_outage_is_at_risk_then_lapsed_then_gone() {
    // 20 s of funding builds ~28 s of runway (each mint 1.05 s after the last is billed 2 s):
    // a 60 s outage outlasts it.
    let (from, to) = (secs(20), secs(80));
    let script =
        Script::new()
            .outage(from..to, Reply::Network)
            .starting_at(Endpoint::Payment, to, Reply::Status(404));
    let config = livepay_tests::live_config();
    let report = drive(config, script, Commands::new(), secs(120));

    report.assert_exit(Some(Some(ReleaseReason::Gone)));
    let at_risk: EventFilter<'_> = &|e| matches!(e, Event::AtRisk { .. });
    let lapsed: EventFilter<'_> = &|e| matches!(e, Event::Lapsed { .. });
    let gone: EventFilter<'_> = &|e| {
        matches!(
            e,
            Event::StateChanged {
                to: livepay_core::State::Released { .. },
                ..
            }
        )
    };
    let times = report.assert_events_in_order(&[("AtRisk", at_risk), ("Lapsed", lapsed), ("release", gone)]);
    let (risk_at, lapsed_at, released_at) = (times[0], times[1], times[2]);
    assert_eq!(report.events_where(at_risk).len(), 1);
    assert_eq!(report.events_where(lapsed).len(), 1);

    // At risk on its timer, with exactly one server tick of runway; lapsed on the deadline,
    // the safety margin before the credit runs out.
    assert!((from..to).contains(&risk_at), "at risk at {}", rel(risk_at));
    assert_eq!(
        report.first_event(at_risk).map(|(_, e)| e),
        Some(Event::AtRisk {
            runway: config.server_tick
        })
    );
    assert_eq!(
        report.first_event(lapsed).map(|(_, e)| e),
        Some(Event::Lapsed { deadline: lapsed_at })
    );
    assert_eq!(lapsed_at - risk_at, config.server_tick - config.safety_margin);

    // Funding kept retrying after the lapse, and the first 404 released the session.
    assert!(
        report
            .events_where(|e| matches!(e, Event::PaymentFailed { .. }))
            .iter()
            .any(|&(t, _)| t > lapsed_at)
    );
    let first_404 = report
        .log
        .iter()
        .find(|r| r.reply == Reply::Status(404))
        .expect("a 404 after the outage");
    assert_eq!(released_at, first_404.answered_at);
    assert!(first_404.at >= to);
}
