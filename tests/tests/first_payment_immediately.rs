//! When the first payment after `start` goes out: by default on schedule, just over the third
//! whole second after the reservation's mint (an immediate call would bill a second that has
//! barely started); at the start instant with `FirstPayment::Immediately`; one interval (3 s)
//! later with `FirstPayment::AfterInterval` (livepeer-gateway 1.0.0's behaviour).

use livepay_core::{Config, Event, FirstPayment, PaymentType};
use livepay_tests::{Commands, START, Script, TransportCall, at_ms, drive, secs};

#[test]
fn by_default_the_first_request_goes_out_on_schedule_just_over_a_whole_second() {
    let config = Config::new(PaymentType::Live);
    assert_eq!(config.first_payment, FirstPayment::OnSchedule);
    let report = drive(config, Script::new(), Commands::new(), secs(4));

    report.assert_exit(None);
    // One interval after the reservation's mint (at START), past the whole second by twice the
    // 50 ms mint margin: billed 4 s for 3.1 s.
    assert_eq!(
        report.calls.first(),
        Some(&(at_ms(3_100), TransportCall::RequestPayment { cycle: 1 })),
        "{}",
        report.timeline()
    );
}

#[test]
fn immediately_the_first_request_goes_out_at_the_start_instant() {
    let report = drive(
        livepay_tests::live_config(),
        Script::new(),
        Commands::new(),
        secs(1),
    );

    report.assert_exit(None);
    assert_eq!(
        report.calls,
        [
            (START, TransportCall::RequestPayment { cycle: 1 }),
            (at_ms(20), TransportCall::SendPayment),
        ],
        "{}",
        report.timeline()
    );
    assert_eq!(
        report.first_event(|e| matches!(e, Event::PaymentAccepted { .. })),
        Some((
            at_ms(40),
            Event::PaymentAccepted {
                cycle: 1,
                latency: livepay_core::Duration::from_millis(40)
            }
        ))
    );
}

#[test]
fn after_interval_the_first_request_goes_out_one_interval_later() {
    let mut config = Config::new(PaymentType::Live);
    config.first_payment = FirstPayment::AfterInterval;
    assert_eq!(config.interval, livepay_core::Duration::from_secs(3));

    let report = drive(config, Script::new(), Commands::new(), secs(4));

    report.assert_exit(None);
    assert_eq!(
        report.calls.first(),
        Some(&(secs(3), TransportCall::RequestPayment { cycle: 1 })),
        "{}",
        report.timeline()
    );
    assert_eq!(report.times_of(TransportCall::SendPayment), [at_ms(3_020)]);
}
