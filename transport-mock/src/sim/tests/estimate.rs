//! The property the runway model promises: over arbitrary schedules of lost POSTs, lost answers
//! (so replays of credited payments), signer failures, 482s, 480 storms and refreshes, with a
//! ticket worth 0.5 s to 300 s of price, whether or not the client reads its tickets, the
//! machine's estimate of the end of credit is never later than the fast model's truth.

use embassy_time::{Duration, Instant};
use livepay_core::rng::SplitMix64;
use livepay_core::tickets::TicketValue;
use livepay_core::{Config, Endpoint, Reply, Sequencer, Session, StatusTable};
use proptest::prelude::*;

use crate::sim::fast::{FastConfig, FastLedger, Mint, SignerAnswer};

/// How each request fares, in per mille.
#[derive(Debug, Clone, Copy)]
struct Faults {
    /// The request never reaches the server (refused, a 503 before any work).
    lost_request: u64,
    /// The server does the work; its answer never arrives (a timeout).
    lost_answer: u64,
    /// The signer answers 480 whatever its state.
    storm: u64,
}

fn value_of(config: &FastConfig, tickets: u64) -> Option<TicketValue> {
    let each = u128::from(config.ticket_ev_wei) * 1_000_000 / u128::from(config.price_wei);
    let count = u32::try_from(tickets).ok()?;
    (each > 0 && count > 0).then(|| TicketValue {
        count,
        each: Duration::from_micros(u64::try_from(each).unwrap_or(u64::MAX)),
    })
}

/// Runs one schedule for `secs`, checking after every step that the estimate is not past the
/// truth. Returns a description of the first violation.
fn run(seed: u64, ev_s: f64, read_tickets: bool, faults: Faults, secs: u64) -> Result<(), String> {
    let mut rng = SplitMix64::new(seed);
    let model = FastConfig {
        param_lifetime: Duration::from_secs(60 + rng.next_u64() % 480),
        ..FastConfig::default().with_ev_seconds(ev_s)
    };
    let t0 = Instant::from_secs(1);
    let mut ledger = FastLedger::reserve(&model, t0.as_micros(), 0);
    let config = Config {
        seed,
        ..Config::default()
    };
    let mut session = Session::new(&config, t0).map_err(|e| e.to_string())?;
    if read_tickets && let Some(v) = value_of(&model, ledger.minted / model.ticket_ev_wei) {
        session.handle_reservation_value(v);
    }
    session.start(t0);
    let mut calls = Sequencer::new(session, StatusTable::new());
    let mut held: Option<Mint> = None;
    let mut now = t0;
    let end = t0 + Duration::from_secs(secs);
    let chance = |rng: &mut SplitMix64, per_mille: u64| rng.next_u64() % 1_000 < per_mille;
    while now < end && !calls.machine().state().is_released() {
        ledger.catch_up(&model, now.as_micros(), || 0);
        let truth = ledger
            .released_at()
            .unwrap_or_else(|| now.as_micros() + ledger.runway_us(&model, now.as_micros()));
        let estimate = calls.machine().funded_until().as_micros();
        if estimate > truth {
            return Err(format!(
                "at {:.3} s the estimate {:.3} s is past the truth {:.3} s ({:?})",
                now.as_micros() as f64 / 1e6,
                estimate as f64 / 1e6,
                truth as f64 / 1e6,
                calls.machine().stats()
            ));
        }
        let Some(call) = calls.poll_call() else {
            let Some(at) = calls.machine().poll_timeout() else {
                break;
            };
            now = at.max(now);
            calls.machine_mut().handle_timeout(now);
            continue;
        };
        let latency = Duration::from_millis(5 + rng.next_u64() % 400);
        let served = (now + latency / 2).as_micros();
        let fresh = call.action.fresh_state();
        let mut value = None;
        let answer_lost = chance(&mut rng, faults.lost_answer);
        let reply = if chance(&mut rng, faults.lost_request) {
            [Reply::Refused, Reply::Status(503), Reply::Network][(rng.next_u64() % 3) as usize]
        } else if answer_lost && call.endpoint == Endpoint::Signer {
            // The signer minted; the client never hears of it and keeps the state it sent.
            ledger.catch_up(&model, served, || 0);
            let _ = ledger.generate_unanswered(&model, served, fresh);
            Reply::Timeout
        } else {
            let reply = match call.endpoint {
                Endpoint::Signer if chance(&mut rng, faults.storm) => Reply::Status(480),
                Endpoint::Signer => {
                    ledger.catch_up(&model, served, || 0);
                    let answer = ledger.generate(&model, served, fresh);
                    if let SignerAnswer::Minted(mint) = answer {
                        held = Some(mint);
                        value = value_of(&model, u64::from(mint.tickets)).filter(|_| read_tickets);
                    }
                    Reply::Status(answer.status())
                }
                Endpoint::Payment | Endpoint::Repost => match held {
                    Some(mint) => Reply::Status(ledger.pay(&model, served, &mint, || 0).status()),
                    None => Reply::Malformed,
                },
                Endpoint::Refresh => Reply::Status(ledger.refresh(&model, served, || 0)),
                Endpoint::Stop => Reply::Status(ledger.stop(&model, served, || 0)),
                _ => Reply::BadUrl,
            };
            if answer_lost { Reply::Timeout } else { reply }
        };
        now += latency;
        let answered = calls
            .handle_reply(now, call.id, reply)
            .map_err(|e| e.to_string())?;
        while calls.machine_mut().poll_event().is_some() {}
        if let (None, Some(v)) = (answered, value) {
            calls.machine_mut().handle_ticket_value(v);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_estimate_is_never_later_than_the_true_end_of_credit(
        seed in any::<u64>(),
        ev_s in 0.5_f64..300.0,
        read_tickets in any::<bool>(),
        lost_request in 0_u64..300,
        lost_answer in 0_u64..200,
        storm in 0_u64..50,
        secs in 60_u64..1_800,
    ) {
        let faults = Faults { lost_request, lost_answer, storm };
        prop_assert_eq!(run(seed, ev_s, read_tickets, faults, secs), Ok(()));
    }
}

#[test]
fn the_regimes_of_the_issue_hold_too() {
    // A ticket worth 2.5 s with half the POSTs failing; one worth 25 s; every POST failing.
    for (ev_s, lost) in [(2.5, 500), (25.0, 500), (2.5, 1_000), (180.0, 300), (0.5, 200)] {
        for read_tickets in [false, true] {
            for seed in 0..8 {
                let faults = Faults {
                    lost_request: lost,
                    lost_answer: 100,
                    storm: 5,
                };
                assert_eq!(
                    run(seed, ev_s, read_tickets, faults, 600),
                    Ok(()),
                    "EV {ev_s} s, lost {lost}‰, read {read_tickets}, seed {seed}"
                );
            }
        }
    }
}
