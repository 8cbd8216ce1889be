//! Property tests over arbitrary sequences of commands, outcomes and time steps.
//!
//! Invariants: no action after `Released`; at most one action in flight; `poll_timeout` never in
//! the past of the latest input; no panic; `handle_outcome` refuses outcomes only with a typed error.

use livepay_core::{
    Action, Config, Duration, Endpoint, Instant, Outcome, PaymentType, Reply, Session, State,
};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Op {
    Start,
    Stop,
    Close,
    PaymentDue,
    Timeout,
    Poll,
    Answer(Outcome),
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    prop_oneof![
        Just(Endpoint::Signer),
        Just(Endpoint::Payment),
        Just(Endpoint::Refresh),
        Just(Endpoint::Stop)
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        Just(Reply::Network),
        Just(Reply::Timeout),
        (100u16..600).prop_map(Reply::Status)
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Paid),
        2 => Just(Outcome::Skipped),
        1 => Just(Outcome::RefreshRequired),
        1 => Just(Outcome::Refreshed),
        1 => Just(Outcome::Stopped),
        1 => endpoint().prop_map(|endpoint| Outcome::Gone { endpoint }),
        1 => (endpoint(), 400u16..500).prop_map(|(endpoint, status)| {
            let reply = Reply::Status(status);
            Outcome::Rejected {
                endpoint,
                reply,
                reason: livepay_core::ReleaseReason::Rejected { endpoint, reply },
            }
        }),
        3 => (endpoint(), reply()).prop_map(|(endpoint, reply)| Outcome::Transient { endpoint, reply }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Start),
        1 => Just(Op::Stop),
        1 => Just(Op::Close),
        1 => Just(Op::PaymentDue),
        6 => Just(Op::Timeout),
        6 => Just(Op::Poll),
        8 => outcome().prop_map(Op::Answer),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![
            Just(PaymentType::Live),
            Just(PaymentType::Lv2v),
            Just(PaymentType::Fixed)
        ],
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
        proptest::option::of(1u32..20),
    )
        .prop_map(
            |(payment_type, offchain, stop_on_rejection, seed, max_payments)| {
                let mut c = Config::new(payment_type);
                c.offchain = offchain;
                c.stop_on_rejection = stop_on_rejection;
                c.seed = seed;
                c.budget.max_payments = max_payments;
                c
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn machine_invariants_hold(
        config in config(),
        ops in proptest::collection::vec((op(), 0u64..8_000), 1..300),
    ) {
        let mut now = Instant::from_millis(0);
        let mut s = Session::new(&config, now).unwrap();
        let mut in_flight: Option<Action> = None;
        let mut released = false;
        for (op, step_ms) in ops {
            // `Poll` gives the session no input, so it does not move time either.
            if !matches!(op, Op::Poll) {
                now += Duration::from_millis(step_ms);
            }
            match op {
                Op::Start => s.start(now),
                Op::Stop => s.stop(now),
                Op::Close => s.close(now),
                Op::PaymentDue => s.payment_due(now),
                Op::Timeout => s.handle_timeout(now),
                Op::Poll => {}
                Op::Answer(outcome) => {
                    if s.handle_outcome(now, outcome).is_ok() {
                        prop_assert!(in_flight.is_some(), "accepted an outcome with nothing in flight");
                        in_flight = None;
                    }
                }
            }
            // Drain outputs in the documented order.
            while let Some(action) = s.poll_action() {
                prop_assert!(!released, "action {action:?} after Released");
                prop_assert!(in_flight.is_none(), "two actions in flight");
                in_flight = Some(action);
            }
            prop_assert_eq!(s.has_action_in_flight(), in_flight.is_some());
            if let Some(at) = s.poll_timeout() {
                prop_assert!(at >= now, "timeout {at} before the latest input {now}");
            }
            while s.poll_event().is_some() {}
            // Drained after every input, the queue never overflows.
            prop_assert_eq!(s.stats().events_dropped, 0);
            if s.state().is_released() {
                released = true;
                prop_assert_eq!(s.poll_timeout(), None);
            }
            prop_assert!(!released || matches!(s.state(), State::Released { .. }), "left Released");
        }
    }

    /// Funding against a server that always succeeds never lapses, whatever the latencies.
    #[test]
    fn healthy_server_never_lapses(seed in any::<u64>(), latencies in proptest::collection::vec(1u64..900, 50..200)) {
        let mut config = Config::new(PaymentType::Live);
        config.seed = seed;
        let mut now = Instant::from_millis(0);
        let mut s = Session::new(&config, now).unwrap();
        s.start(now);
        for latency in latencies {
            if s.poll_action().is_some() {
                now += Duration::from_millis(latency);
                s.handle_outcome(now, Outcome::Paid).unwrap();
            } else if let Some(at) = s.poll_timeout() {
                now = at;
                s.handle_timeout(now);
            }
            while s.poll_event().is_some() {}
        }
        prop_assert_eq!(s.stats().lapses, 0);
        prop_assert_eq!(s.stats().at_risk, 0);
    }
}
