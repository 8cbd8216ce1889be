//! The daemon's adopt path on arbitrary bodies: the API's parsing (`AdoptRequest`), its checks,
//! and the engine's resume, then a funded run. Whatever the body, nothing panics; whatever passes
//! the checks resumes; a bare `Snapshot` that passes `Snapshot::check` resumes and runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepay_core::engine::{Engine, Output, Snapshot};
use livepay_core::{Config, Duration, Instant, StatusTable};
use livepay_daemon::spec::AdoptRequest;

/// This host's clock, in Unix ms, for `taken_at_ms`.
const NOW_MS: u64 = 1_800_000_000_000;

/// Runs `engine` on timers alone for a few steps (no answers: every request times out).
fn run(mut engine: Engine) {
    let mut now = Instant::from_millis(0);
    engine.start(now);
    for _ in 0..32 {
        while let Some(output) = engine.poll_output(now) {
            match output {
                Output::Transmit(request) => {
                    let _ = engine.handle_failure(now, request.id, livepay_core::Failure::Timeout);
                }
                Output::Persist { id, .. } => {
                    let _ = engine.handle_persisted(id, true);
                }
                Output::Timeout(at) => {
                    now = at.max(now + Duration::from_millis(1));
                    engine.handle_timeout(now);
                    break;
                }
                Output::Done(_) => return,
                _ => {}
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let config = Config::default();
    if let Ok(request) = serde_json::from_slice::<AdoptRequest>(data)
        && let Ok((snapshot, elapsed_ms, spec)) = request.checked(&config, NOW_MS)
    {
        let resumed = Engine::resume(
            &config,
            snapshot,
            spec.signer_headers,
            Instant::from_millis(0),
            Duration::from_millis(elapsed_ms),
            StatusTable::new(),
        );
        if let Ok(engine) = resumed {
            run(engine);
        }
    }
    if let Ok(snapshot) = serde_json::from_slice::<Snapshot>(data) {
        let checked = snapshot.check().is_ok();
        let resumed = Engine::resume(
            &config,
            snapshot,
            Vec::new(),
            Instant::from_millis(0),
            Duration::from_millis(0),
            StatusTable::new(),
        );
        assert!(!checked || resumed.is_ok() || config.validate().is_err());
        if let Ok(engine) = resumed {
            run(engine);
        }
    }
});
