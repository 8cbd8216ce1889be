//! `Command::PaymentDue` (demand-driven payment) pays at once when idle; a burst of signals is
//! spaced by `min_demand_spacing` (500 ms) and cannot flood the signer.

use livepay_core::{Command, Duration, Event};
use livepay_tests::{Commands, START, Script, TransportCall, at_ms, drive, secs};

#[test]
fn payment_due_pays_at_once() {
    // Cycle 1 goes out at 0; the next scheduled cycle would be about 2 s later.
    let commands = Commands::new().at(secs(1), Command::PaymentDue);
    let report = drive(
        livepay_tests::live_config(),
        Script::new(),
        commands,
        at_ms(1_500),
    );

    report.assert_exit(None);
    assert_eq!(
        report.pay_requests(),
        [(START, 1), (secs(1), 2)],
        "{}",
        report.timeline()
    );
    assert_eq!(
        report.events.last(),
        Some(&(
            at_ms(1_040),
            Event::PaymentAccepted {
                cycle: 2,
                latency: Duration::from_millis(40)
            }
        ))
    );
}

#[test]
fn a_burst_of_payment_due_is_spaced_by_at_least_500_ms() {
    let config = livepay_tests::live_config();
    assert_eq!(config.min_demand_spacing, Duration::from_millis(500));
    // Twenty signals, 50 ms apart, from 0.3 s to 1.25 s.
    let mut commands = Commands::new();
    for i in 0..20 {
        commands = commands.at(at_ms(300 + 50 * i), Command::PaymentDue);
    }
    let report = drive(config, Script::new(), commands, secs(2));

    report.assert_exit(None);
    assert_eq!(report.commands.len(), 20);
    // Twenty signals, but one payment per 500 ms since the last went out: the last signal
    // (1.25 s) is served at 1.5 s, and nothing more follows before the next scheduled cycle.
    assert_eq!(
        report.pay_requests(),
        [(START, 1), (at_ms(500), 2), (secs(1), 3), (at_ms(1_500), 4)],
        "{}",
        report.timeline()
    );
    report.assert_calls_spaced(config.min_demand_spacing, TransportCall::is_request_payment);
}
