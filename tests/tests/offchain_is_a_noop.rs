//! An offchain (unpriced) runner has nothing to fund: `run` returns at once, having sent
//! nothing and said why.

use livepay_core::{Config, Event, NotFunded, State};
use livepay_tests::{Commands, START, Script, drive, secs};

#[test]
fn offchain_run_returns_stopped_at_once_without_a_request() {
    let report = drive(Config::offchain(), Script::new(), Commands::new(), secs(60));

    report.assert_exit(Some(None));
    assert_eq!(
        report.end, START,
        "run returned at once, not after virtual time passed"
    );
    assert!(
        report.calls.is_empty(),
        "no request at all:\n{}",
        report.timeline()
    );
    assert_eq!(
        report.events,
        [(
            START,
            Event::FundingNotRequired {
                why: NotFunded::Offchain
            }
        )]
    );
    assert_eq!(report.state, State::Reserved);
    assert_eq!(report.stats.payments_sent, 0);
}
