//! The ledger and the policy added for lost mints and real ticket values: held payments and
//! reposts, giving up and starting a fresh signer ledger, what a 482 may prove in and out of
//! sync, the ticket value learnt from 482s, the planned end, and the lapse reason.

use super::*;

fn post_failed(reply: Reply) -> Outcome {
    transient(Endpoint::Payment, reply)
}

fn repost_failed(reply: Reply) -> Outcome {
    transient(Endpoint::Repost, reply)
}

/// Lets time pass until an action is produced; returns it and its instant.
#[track_caller]
fn next_action(h: &mut H) -> (Instant, Action) {
    loop {
        if let Some(action) = h.s.poll_action() {
            return (h.now, action);
        }
        h.next();
    }
}

#[test]
fn a_failed_post_is_reposted_unchanged_before_anything_new_is_minted() {
    let mut h = H::started_at(cfg(), 0);
    assert_eq!(h.action(), Action::Pay { cycle: 1 });
    h.answer(10, post_failed(Reply::Status(503)));
    for attempt in 1..=3 {
        let (_, action) = next_action(&mut h);
        assert_eq!(action, Action::Repost { cycle: 1 }, "attempt {attempt}");
        h.answer(10, repost_failed(Reply::Refused));
    }
    let (_, action) = next_action(&mut h);
    assert_eq!(action, Action::Repost { cycle: 1 });
    h.answer(10, PAID);
    let st = h.s.stats();
    assert_eq!((st.reposts, st.reposts_credited, st.lost_mints), (4, 1, 0));
    assert_eq!(st.payments_sent, 1, "one signer call for the whole cycle");
    assert!(h.s.in_sync());
}

#[test]
fn a_payment_whose_reposts_all_fail_is_given_up_and_a_fresh_ledger_started() {
    let c = Config {
        max_reposts: 2,
        ..cfg()
    };
    let mut h = H::started_at(c, 0);
    h.action();
    h.answer(10, post_failed(Reply::Timeout));
    for _ in 0..2 {
        let (_, action) = next_action(&mut h);
        assert_eq!(action, Action::Repost { cycle: 1 });
        h.answer(10, repost_failed(Reply::Status(502)));
    }
    assert!(h.events.contains(&Event::MintLost { cycle: 1 }));
    assert_eq!(h.s.stats().lost_mints, 1);
    assert!(!h.s.in_sync());
    // Fresh params first, so that the fresh ledger's nonces are new; then a stateless mint.
    let (_, action) = next_action(&mut h);
    assert_eq!(action, Action::Refresh);
    h.answer(10, Outcome::Refreshed);
    let (sent, action) = next_action(&mut h);
    assert_eq!(action, Action::Resync { cycle: 2 });
    assert!(action.fresh_state());
    let before = h.s.funded_until();
    h.answer(10, PAID);
    assert!(h.s.in_sync());
    assert_eq!(h.s.stats().resyncs, 1);
    // At least a prepay past the fresh mint, on top of what was proven before.
    assert_eq!(h.s.funded_until(), before.max(sent) + Duration::from_secs(10));
}

#[test]
fn a_refused_replay_is_not_terminal_and_proves_nothing() {
    let mut h = H::started_at(cfg(), 0);
    h.action();
    h.answer(10, post_failed(Reply::Network));
    let (_, action) = next_action(&mut h);
    assert_eq!(action, Action::Repost { cycle: 1 });
    let before = h.s.funded_until();
    h.answer(10, Outcome::ReplayRefused);
    assert_eq!(h.s.state(), State::Funding, "not terminal");
    assert_eq!(h.s.funded_until(), before, "not counted as credit");
    assert_eq!(h.s.stats().replays_refused, 1);
    assert!(!h.s.in_sync());
    assert_eq!(next_action(&mut h).1, Action::Refresh);
}

#[test]
fn a_482_while_in_sync_proves_the_time_since_the_last_mint_and_no_more() {
    let mut h = H::started_at(cfg(), 500);
    h.action();
    h.answer(20, PAID); // minted at 0.5 s, answered 0.52 s: credit to 11 s
    assert_eq!(h.s.funded_until(), ms(11_000));
    let (sent, action) = next_action(&mut h);
    assert_eq!(action, Action::Pay { cycle: 2 });
    h.answer(20, Outcome::Skipped);
    // The signer's ledger covers at least sent − 0.52 s beyond the delivered credit.
    let covered = sent.as_millis() - 520;
    assert_eq!(h.s.funded_until(), ms(11_000 + covered));
}

#[test]
fn with_every_payment_lost_no_482_is_asked_and_the_warnings_come_before_the_credit_ends() {
    // The 100 % failure case: before, each lost POST was followed by 482s read as
    // "balance current", which pushed the estimate out while the session was dying.
    let mut h = H::started_at(cfg(), 0);
    let mut skipped = 0;
    h.run(40_000, |action, _| match action {
        Action::Pay { .. } | Action::Resync { .. } => post_failed(Reply::Status(503)),
        Action::Repost { .. } => repost_failed(Reply::Status(503)),
        Action::Refresh => Outcome::Refreshed,
        Action::Stop => Outcome::Stopped,
    });
    for e in &h.events {
        if matches!(e, Event::CycleSkipped { .. }) {
            skipped += 1;
        }
    }
    assert_eq!(skipped, 0);
    // The delivered credit is the reservation's 10 s: AtRisk one tick before, Lapsed one
    // margin before.
    assert_eq!(h.s.funded_until(), ms(10_000));
    let at_risk = h.events.iter().position(|e| matches!(e, Event::AtRisk { .. }));
    let lapsed = h.events.iter().position(|e| matches!(e, Event::Lapsed { .. }));
    assert!(
        at_risk.is_some() && lapsed.is_some() && at_risk < lapsed,
        "{:?}",
        h.events
    );
    assert!(h.events.contains(&Event::Lapsed { deadline: ms(9_000) }));
}

#[test]
fn closing_a_lapsed_session_reports_the_lapse_not_a_clean_close() {
    let mut h = H::started_at(cfg(), 0);
    h.run(12_000, |action, _| match action {
        Action::Repost { .. } => repost_failed(Reply::Refused),
        Action::Stop => Outcome::Stopped,
        Action::Refresh => Outcome::Refreshed,
        _ => post_failed(Reply::Refused),
    });
    assert_eq!(h.s.stats().lapses, 1);
    h.s.close(h.now);
    h.drain();
    if h.s.has_action_in_flight() {
        h.answer(10, repost_failed(Reply::Refused));
    }
    assert_eq!(h.action(), Action::Stop);
    h.answer(10, Outcome::Stopped);
    assert_eq!(
        h.s.state(),
        State::Released {
            reason: ReleaseReason::Lapsed
        }
    );
    // A fresh ledger's payment credited after the lapse proves the credit again: the close is
    // clean.
    let mut h = H::started_at(cfg(), 0);
    h.run(12_000, |action, _| match action {
        Action::Repost { .. } => repost_failed(Reply::Refused),
        Action::Refresh => Outcome::Refreshed,
        _ => post_failed(Reply::Refused),
    });
    assert!(h.s.stats().lapses >= 1);
    loop {
        let (_, action) = next_action(&mut h);
        match action {
            Action::Repost { .. } => h.answer(10, Outcome::ReplayRefused),
            Action::Refresh => h.answer(10, Outcome::Refreshed),
            Action::Resync { .. } => {
                h.answer(10, PAID);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(h.s.stats().resyncs, 1);
    h.s.close(h.now);
    assert_eq!(h.action(), Action::Stop);
    h.answer(10, Outcome::Stopped);
    assert_eq!(
        h.s.state(),
        State::Released {
            reason: ReleaseReason::ClosedByClient
        }
    );
}

#[test]
fn retries_near_the_deadline_fit_many_attempts_into_the_runway() {
    let c = Config {
        max_reposts: 100,
        ..cfg()
    };
    let mut h = H::started_at(c, 0);
    h.action();
    h.answer(10, post_failed(Reply::Status(503)));
    let mut attempts = 0;
    while h.now < ms(9_000) {
        let (at, action) = next_action(&mut h);
        if at >= ms(9_000) {
            break;
        }
        assert!(matches!(action, Action::Repost { .. }));
        attempts += 1;
        h.answer(5, repost_failed(Reply::Status(503)));
    }
    // A 2 s backoff cap alone would allow about 6; a sixteenth of the time left allows more.
    assert!(attempts >= 12, "{attempts} attempts before the deadline");
}

#[test]
fn a_ticket_value_learnt_from_482s_projects_the_runway_past_later_mints() {
    // A signer whose ticket is worth about 60 s: after each mint it answers 482 for a while.
    let mut h = H::started_at(cfg(), 500);
    h.action();
    h.answer(20, PAID); // fee 1 s
    // 482s for the first 30 s (the signer's balance covers them).
    loop {
        let (at, action) = next_action(&mut h);
        assert!(matches!(action, Action::Pay { .. }), "{action:?}");
        if at >= ms(30_000) {
            break;
        }
        h.answer(20, Outcome::Skipped);
    }
    // The mint that ends the streak; the 482s proved a ticket worth more than half the time
    // they covered.
    h.answer(20, PAID);
    let learnt = Duration::from_millis(u64::from(h.s.ev_floor_ms));
    assert!(learnt >= Duration::from_secs(12), "{learnt:?}");
    let after_mint = h.s.funded_until();
    // Another 482 right after a mint now proves the learnt ticket value past it.
    let (sent, _) = next_action(&mut h);
    h.answer(20, Outcome::Skipped);
    assert!(h.s.funded_until() >= after_mint.max(sent) + learnt - Duration::from_secs(1));
}

#[test]
fn a_planned_end_stops_building_runway_and_lets_the_credit_run_out_at_the_end() {
    let mut h = H::started_at(cfg(), 0);
    h.s.plan_end(ms(0), ms(60_000));
    h.run(60_000, |action, _| match action {
        Action::Stop => Outcome::Stopped,
        _ => PAID,
    });
    let st = h.s.stats();
    // The credit ends one safety margin after the end, give or take the last mint's rounding.
    let left = h.s.funded_until().as_millis() as i64 - 60_000;
    assert!(
        (1_000..=4_000).contains(&left),
        "{left} ms of credit left at the end"
    );
    assert_eq!(st.at_risk + st.lapses, 0, "running down to the end is not a risk");

    // Without a plan, the runway is built and left unused at the end.
    let mut h = H::started_at(cfg(), 0);
    h.run(60_000, |action, _| match action {
        Action::Stop => Outcome::Stopped,
        _ => PAID,
    });
    let unplanned = h.s.funded_until().as_millis() - 60_000;
    assert!(unplanned > 15_000, "{unplanned} ms");
    assert!(h.s.stats().billed > st.billed + Duration::from_secs(10));
}

#[test]
fn past_a_planned_end_funding_goes_on() {
    let mut h = H::started_at(cfg(), 0);
    h.s.plan_end(ms(0), ms(30_000));
    h.run(120_000, |action, _| match action {
        Action::Stop => Outcome::Stopped,
        _ => PAID,
    });
    assert_eq!(h.s.stats().lapses, 0);
    assert!(h.s.runway(h.now) > Duration::from_secs(10));
}

#[test]
fn a_slow_signer_answer_still_lands_builds_past_the_boundary() {
    let mut h = H::started_at(cfg(), 500);
    h.action();
    h.s.handle_minted(ms(800)); // a 300 ms signer round trip
    h.answer_at(820, PAID);
    let (at, _) = next_action(&mut h);
    // One interval after the mint, plus the round trip and the margin past the boundary.
    assert_eq!(at, ms(3_850));
    h.s.handle_minted(ms(4_150));
    h.answer_at(4_160, PAID);
    // Billed from the previous answer (0.8 s) to this send (3.85 s): ceil(3.05 s) = 4 s.
    assert_eq!(h.s.stats().billed, span_ms(1_000 + 4_000));
}

#[test]
fn a_lapse_with_nothing_credited_gives_up_after_the_configured_span() {
    let config = Config {
        give_up_after_lapse: Some(Duration::from_secs(5)),
        ..cfg()
    };
    let mut h = H::started_at(config, 0);
    let mut stop_at = None;
    h.run(60_000, |action, now| match action {
        Action::Stop => {
            stop_at.get_or_insert(now);
            Outcome::Stopped
        }
        Action::Repost { .. } => repost_failed(Reply::Refused),
        Action::Refresh => Outcome::Refreshed,
        _ => post_failed(Reply::Refused),
    });
    // Lapsed at 9 s (the prepay's end less the margin); the stop follows 5 s later, as soon as
    // the retry in flight (at most one backoff) is answered.
    let stop_at = stop_at.expect("a stop").as_millis();
    assert!((14_000..=16_500).contains(&stop_at), "{stop_at}");
    assert_eq!(
        h.s.state(),
        State::Released {
            reason: ReleaseReason::GaveUp
        }
    );
    // Without a give-up span it retries until closed.
    let config = Config {
        give_up_after_lapse: None,
        ..cfg()
    };
    let mut h = H::started_at(config, 0);
    h.run(120_000, |action, _| match action {
        Action::Stop => Outcome::Stopped,
        Action::Repost { .. } => repost_failed(Reply::Refused),
        Action::Refresh => Outcome::Refreshed,
        _ => post_failed(Reply::Refused),
    });
    assert!(h.s.state().is_funding());
}

#[test]
fn a_signer_answering_482_for_ever_is_caught_at_risk_then_lapsed() {
    // The old livepeer/node bug: 482 whenever the payer's funds or the chain were unavailable.
    // Nothing is ever minted after the reservation, so nothing is delivered: the estimate must
    // run out and warn, never stay silent.
    let config = Config {
        give_up_after_lapse: Some(Duration::from_secs(60)),
        ..cfg()
    };
    let mut h = H::started_at(config, 0);
    h.run(600_000, |action, _| match action {
        Action::Stop => Outcome::Stopped,
        Action::Refresh => Outcome::Refreshed,
        _ => Outcome::Skipped,
    });
    let at_risk = h.events.iter().position(|e| matches!(e, Event::AtRisk { .. }));
    let lapsed = h.events.iter().position(|e| matches!(e, Event::Lapsed { .. }));
    assert!(at_risk.is_some() && at_risk < lapsed, "{:?}", h.events);
    // The proof stops at the prepay plus the largest believable ticket (300 s by default).
    assert!(
        h.s.funded_until() <= ms(10_000 + 300_000 + 5_000),
        "{:?}",
        h.s.funded_until()
    );
    // Then the give-up: the stop, and the reason.
    assert_eq!(
        h.s.state(),
        State::Released {
            reason: ReleaseReason::GaveUp
        }
    );
}
