//! When payments go out: the first payment, the build and steady phases, retries and their
//! backoff, and the schedule of valued credit (the signer's next mint predicted).

use super::*;
use crate::tickets::TicketValue;

#[test]
fn first_payment_goes_out_immediately() {
    let mut h = H::started_at(cfg(), 500);
    assert_eq!(h.action(), Action::Pay { cycle: 1 });
    assert_eq!(
        h.take_events(),
        [Event::StateChanged {
            from: State::Reserved,
            to: State::Funding
        }]
    );
}

#[test]
fn first_payment_after_one_interval_like_gateway_1_0() {
    let mut c = cfg_for(PaymentType::Live);
    c.first_payment = FirstPayment::AfterInterval;
    let mut h = H::started_at(c, 500);
    h.no_action();
    assert_eq!(h.next(), ms(3_500));
    assert_eq!(h.action(), Action::Pay { cycle: 1 });
}

#[test]
fn first_payment_within_a_span_is_a_seeded_draw_inside_it() {
    let first = |seed: u64| {
        let mut c = cfg_for(PaymentType::Live);
        c.first_payment = FirstPayment::Within(span_ms(3_000));
        c.seed = seed;
        let mut h = H::started_at(c, 500);
        h.next()
    };
    let draws: Vec<Instant> = (0..64).map(first).collect();
    assert!(
        draws.iter().all(|&at| at >= ms(500) && at < ms(3_500)),
        "{draws:?}"
    );
    assert_eq!(first(7), first(7), "same seed, same phase");
    let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
    assert!(distinct.len() > 32, "phases spread: {}", distinct.len());
}

#[test]
fn below_target_runway_mints_land_just_over_a_whole_second() {
    let mut h = H::started_at(cfg(), 500);
    h.action();
    h.answer(20, PAID);
    // Runway 10.5 s < target 55 s: build runway, one interval later and 0.1 s past the third
    // whole second after the last mint (billed 4 s for 3.1 s: about 0.3 s of runway per second).
    assert_eq!(h.s.poll_timeout(), Some(ms(3_600)));
}

#[test]
fn at_or_above_target_runway_mints_land_just_under_a_whole_second() {
    let mut c = cfg_for(PaymentType::Live);
    c.target_runway = Duration::from_secs(5);
    c.refill_runway = Duration::from_secs(4);
    c.check_runway = Duration::from_secs(2);
    let mut h = H::started_at(c, 500);
    h.action();
    h.answer(20, PAID);
    // The runway (11 s of credit) falls to the 4 s refill level at 7 s: the mint lands 5.95 s
    // after the last one, billed 6 s for 5.95 s. (With a refill level under one server tick, the
    // at-risk warning comes first, at 6 s.)
    assert_eq!(h.next(), ms(6_000));
    h.no_action();
    assert_eq!(h.next(), ms(6_450));
    assert!(matches!(h.action(), Action::Pay { cycle: 2 }));
}

#[test]
fn an_hour_of_clean_funding_pays_close_to_the_price_and_keeps_the_target_runway() {
    let mut h = H::started_at(cfg(), 300);
    let mut min_runway = Duration::MAX;
    while h.now < ms(3_600_000) {
        if let Some(Action::Pay { .. }) = h.s.poll_action() {
            if h.now > ms(200_000) {
                min_runway = min_runway.min(h.s.runway(h.now));
            }
            h.answer(20, PAID);
        } else {
            h.next();
        }
    }
    let st = h.s.stats();
    let elapsed = 3_600_000.0;
    let ratio = (st.billed.as_millis() as f64) / elapsed;
    // The one-off ~45 s of runway, then 50 ms in every 15 s.
    assert!(ratio < 1.02, "over-payment ratio {ratio}");
    // After the runway is built (about 150 s at 0.3 s per second), a mint goes out when it
    // falls to the 40 s refill level.
    assert!(min_runway >= Duration::from_secs(39), "{min_runway:?}");
    assert_eq!(st.failures, 0);
    assert_eq!(st.at_risk, 0);
    // About one payment every 15 s once built: a fifth of the SDK's 1,197 signer calls an hour.
    assert!(
        (200..350).contains(&st.payments_accepted),
        "{}",
        st.payments_accepted
    );
}

#[test]
fn lv2v_is_not_rounded_and_uses_the_nominal_interval() {
    let mut h = H::started_at(cfg_for(PaymentType::Lv2v), 500);
    h.action();
    h.answer(20, PAID);
    assert_eq!(h.s.funded_until(), ms(60_500));
    assert_eq!(h.s.stats().surplus, span_ms(0));
    // The 60 s prepay is above the target runway: the next payment is due when the runway falls
    // to the 40 s refill level, and nothing is rounded.
    assert_eq!(h.s.poll_timeout(), Some(ms(20_500)));
}

#[test]
fn retries_back_off_exponentially_with_jitter_never_under_the_floor() {
    let mut c = cfg_for(PaymentType::Live);
    c.prepay = Duration::from_secs(60); // keep the deadline out of the way
    c.target_runway = Duration::from_secs(65);
    c.seed = 42;
    let mut h = H::started_at(c, 0);
    let mut delays = Vec::new();
    for _ in 0..7 {
        h.action();
        h.answer(10, transient(Endpoint::Signer, Reply::Status(500)));
        let sent = h.now;
        let Some(Event::PaymentFailed {
            next_retry,
            consecutive,
            ..
        }) = h.events.last().copied()
        else {
            panic!("no failure event");
        };
        assert_eq!(h.next(), next_retry);
        delays.push((consecutive, (next_retry.as_millis() - sent.as_millis())));
    }
    for (n, delay) in &delays {
        let base = (250u64 << (n - 1)).min(2_000);
        assert!(
            *delay >= (base * 80 / 100).max(250) && *delay <= base * 120 / 100,
            "failure {n}: {delay} ms"
        );
    }
    assert!(
        delays.iter().any(|(_, d)| d % 250 != 0),
        "jitter applied: {delays:?}"
    );
}

#[test]
fn same_seed_same_retries() {
    let retries = |seed| {
        let mut c = cfg_for(PaymentType::Live);
        c.seed = seed;
        let mut h = H::started_at(c, 0);
        let mut out = Vec::new();
        for _ in 0..4 {
            h.action();
            h.answer(10, transient(Endpoint::Signer, Reply::Timeout));
            out.push(h.next());
        }
        out
    };
    assert_eq!(retries(7), retries(7));
    assert_ne!(retries(7), retries(8));
}

#[test]
fn a_retry_is_pulled_in_to_the_deadline() {
    let mut c = cfg_for(PaymentType::Live);
    c.backoff.max = Duration::from_secs(5);
    c.backoff.jitter_percent = 0;
    let mut h = H::started_at(c, 0);
    // Fail until the next backoff (4 s after the 4th failure) would overshoot the 9 s deadline.
    let mut last_retry = ms(0);
    for _ in 0..5 {
        h.action();
        h.answer(10, transient(Endpoint::Signer, Reply::Network));
        last_retry = h.next();
    }
    let deadline = h.s.deadline().unwrap();
    assert_eq!(deadline, ms(9_000));
    assert!(last_retry <= deadline, "{last_retry} > {deadline}");
}

#[test]
fn on_schedule_the_first_payment_lands_just_over_a_whole_second_one_interval_after_the_mint() {
    let mut h = H::started_at(Config::default(), 500);
    h.no_action();
    // The reservation's mint at 0; one interval later, plus twice the 50 ms mint margin.
    assert_eq!(h.next(), ms(3_100));
    assert_eq!(h.action(), Action::Pay { cycle: 1 });
}

#[test]
fn on_schedule_never_waits_past_the_check_level_of_a_short_prepay() {
    // A tenth of every span (the time-scaled model): 1 s prepay, 0.3 s interval, 0.6 s check
    // level. A whole-second landing would come after the credit ran out.
    let mut h = H::started_at(Config::default().time_scaled(10), 0);
    let at = h.next();
    assert!(at <= ms(400), "{at:?}");
    assert!(matches!(h.action(), Action::Pay { .. }));
}

/// Answers at the current instant exactly (sub-millisecond instants included).
fn answer_now(h: &mut H, outcome: Outcome) {
    h.s.handle_outcome(h.now, outcome).expect("accepted outcome");
    h.drain();
}

#[test]
fn a_signer_failure_backs_off_plainly_but_a_failed_post_retries_within_the_runway() {
    let mut c = cfg();
    c.backoff.jitter_percent = 0;
    c.prepay = Duration::from_secs(60); // keep the deadline out of the way
    c.target_runway = Duration::from_secs(65);
    // The signer: 250 ms, 500 ms, 1 s, 2 s, 2 s, whatever the runway left.
    let mut h = H::started_at(c, 0);
    let mut delays = Vec::new();
    for _ in 0..5 {
        h.action();
        answer_now(&mut h, transient(Endpoint::Signer, Reply::Status(503)));
        let failed = h.now;
        delays.push(h.next().as_millis() - failed.as_millis());
    }
    assert_eq!(delays, [250, 500, 1_000, 2_000, 2_000]);
    // A minted payment whose POST failed: no attempt waits over a sixteenth of the time left
    // before the deadline, so that many fit in a short runway.
    let mut c = cfg();
    c.backoff.jitter_percent = 0;
    let mut h = H::started_at(c, 0);
    h.action();
    answer_now(&mut h, transient(Endpoint::Payment, Reply::Status(503)));
    for _ in 0..8 {
        let failed = h.now;
        let left = h.s.deadline().unwrap().as_ticks() - failed.as_ticks();
        let at = h.next();
        let floor = Duration::from_millis(250).as_ticks();
        assert!(
            at.as_ticks() - failed.as_ticks() <= (left / 16).max(floor),
            "{at:?}"
        );
        assert_eq!(h.action(), Action::Repost { cycle: 1 });
        answer_now(&mut h, transient(Endpoint::Repost, Reply::Status(503)));
    }
}

/// A `live` session whose reservation's payment carried `tickets` tickets of `each_s` seconds.
fn valued(config: Config, tickets: u32, each_s: u64) -> H {
    let mut h = H::new(config);
    h.s.handle_reservation_value(TicketValue {
        count: tickets,
        each: Duration::from_secs(each_s),
    });
    h.s.start(h.now);
    h.drain();
    h
}

/// Answers the signer 200 of the `Pay` in flight at `at_ms` with `tickets` of `each_s`, then the
/// POST 20 ms later.
fn mint_valued(h: &mut H, at_ms: u64, tickets: u32, each_s: u64) {
    h.s.handle_minted(ms(at_ms));
    h.s.handle_ticket_value(TicketValue {
        count: tickets,
        each: Duration::from_secs(each_s),
    });
    h.answer_at(at_ms + 20, PAID);
}

#[test]
fn with_large_tickets_the_signer_is_called_only_when_it_will_mint() {
    // A ticket worth 60 s; the reservation's one ticket, less the 10 s prepay, leaves the
    // signer 50 s of balance: it mints at once (under one ticket), then not before its fee
    // since that mint exceeds the balance that mint leaves.
    let mut h = valued(cfg(), 1, 60);
    assert_eq!(h.s.funded_until(), ms(60_000));
    assert!(h.s.is_valued());
    let (at, action) = loop {
        if let Some(action) = h.s.poll_action() {
            break (h.now, action);
        }
        h.next();
    };
    assert_eq!((at, action), (ms(0), Action::Pay { cycle: 1 }));
    mint_valued(&mut h, 10, 1, 60);
    assert_eq!(h.s.funded_until(), ms(120_000));
    // Balance now: 120 s delivered − 10 s prepay − 1 s billed = 109 s. The signer mints past
    // 10 ms + 109 s; the refill level (40 s of runway) comes at 80 s, before that.
    let next = h.s.poll_timeout().unwrap();
    assert!(next > ms(109_010), "{next:?}");
    assert!(next <= ms(114_000), "never past the check level: {next:?}");
    assert_eq!(h.s.stats().cycles_skipped, 0);
}
