//! Arbitrary sequences of commands, outcomes and time steps on the session machine: no panic, no
//! action after `Released`, at most one action in flight, no timeout in the past.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livepay_core::{Config, Duration, Endpoint, Instant, Outcome, PaymentType, Reply, Session};

#[derive(Debug, Arbitrary)]
enum Op {
    Start,
    Stop,
    Close,
    PaymentDue,
    Timeout,
    Answer { kind: u8, endpoint: u8, status: u16 },
}

fn outcome(kind: u8, endpoint: u8, status: u16) -> Outcome {
    let endpoint = [
        Endpoint::Signer,
        Endpoint::Payment,
        Endpoint::Refresh,
        Endpoint::Stop,
    ][usize::from(endpoint % 4)];
    match kind % 8 {
        0 => Outcome::Paid,
        1 => Outcome::Skipped,
        2 => Outcome::RefreshRequired,
        3 => Outcome::Refreshed,
        4 => Outcome::Stopped,
        5 => Outcome::Gone { endpoint },
        6 => Outcome::Rejected {
            endpoint,
            reply: Reply::Status(status),
            reason: livepay_core::ReleaseReason::Rejected {
                endpoint,
                reply: Reply::Status(status),
            },
        },
        _ => Outcome::Transient {
            endpoint,
            reply: Reply::Status(status),
        },
    }
}

fuzz_target!(|input: (u64, u8, Vec<(Op, u16)>)| {
    let (seed, kind, ops) = input;
    let mut config =
        Config::new([PaymentType::Live, PaymentType::Lv2v, PaymentType::Fixed][usize::from(kind % 3)]);
    config.seed = seed;
    config.offchain = kind & 0x80 != 0;
    let mut now = Instant::from_millis(0);
    let Ok(mut s) = Session::new(&config, now) else {
        return;
    };
    let mut in_flight = false;
    let mut released = false;
    for (op, step) in ops {
        now += Duration::from_millis(u64::from(step));
        match op {
            Op::Start => s.start(now),
            Op::Stop => s.stop(now),
            Op::Close => s.close(now),
            Op::PaymentDue => s.payment_due(now),
            Op::Timeout => s.handle_timeout(now),
            Op::Answer {
                kind,
                endpoint,
                status,
            } => {
                if s.handle_outcome(now, outcome(kind, endpoint, status)).is_ok() {
                    assert!(in_flight);
                    in_flight = false;
                }
            }
        }
        while s.poll_action().is_some() {
            assert!(!released && !in_flight);
            in_flight = true;
        }
        if let Some(at) = s.poll_timeout() {
            assert!(at >= now);
        }
        while s.poll_event().is_some() {}
        released |= s.state().is_released();
    }
});
