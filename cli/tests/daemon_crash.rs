//! Issue 12: the daemon survives `kill -9`. A thousand sessions are funded through the daemon
//! against the served model; the daemon is killed at 20 points and restarted on the same state
//! each time. Some kills are the daemon's own abort right after a signer state was written ahead
//! and before its payment was posted (the narrowest window). The model then shows no session
//! released for want of payment, and its signer never refused a stale state.
//!
//! The model runs in real time (5 s ticks, 10 s prepay); the daemon pays every 3 s. Kill points
//! are counts of credited payments drawn from a seeded generator: the test waits on what the
//! model saw, never on a sleep.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::daemon::{Running, call, wait_for};

use livepay_core::rng::SplitMix64;
use livepay_mock::model::orchestrator::ReleaseCause;

const SESSIONS: usize = 1_000;
const KILLS: usize = 20;

/// Payments the model has credited so far.
fn accepted(served: &common::Served) -> u64 {
    served
        .model
        .with_world(|w| w.orchestrator().stats().payments_accepted)
}

/// Starts the daemon on `state`, its stderr beside it.
fn start(state: &Path, extra: &[&str]) -> Running {
    common::daemon::start(
        state.to_str().expect("utf-8 path"),
        &state.with_extension("stderr"),
        extra,
    )
}

/// Reserves and funds `n` sessions through the daemon, 16 at a time.
fn create(running: &Running, runner: &str, signer: &str, n: usize) {
    let body = format!(r#"{{"runner_url":"{runner}","signer_url":"{signer}"}}"#);
    std::thread::scope(|scope| {
        for worker in 0..16 {
            let body = &body;
            scope.spawn(move || {
                for _ in (worker..n).step_by(16) {
                    let (status, answer) = call(running.addr, "POST", "/v1/sessions", &running.token, body);
                    assert_eq!(status, 201, "{answer}");
                }
            });
        }
    });
}

#[test]
#[allow(clippy::print_stderr)] // The run's figures, for the CI log.
fn a_thousand_sessions_survive_twenty_kill_9s_without_a_release_or_a_stale_state() {
    let served = common::Served::clean();
    let runner = served.model.runner_url("live-runner");
    let signer = served.model.signer_url();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = dir.path().join("sessions.db");
    let mut running = start(&state, &[]);
    create(&running, &runner, &signer, SESSIONS);
    let mut rng = SplitMix64::new(12);
    for kill in 0..KILLS {
        // Every fourth restart aborts itself right after a state written ahead, before its POST.
        let abort_after = (kill % 4 == 3).then(|| (1 + rng.below_or_eq(300)).to_string());
        if let Some(n) = &abort_after {
            running.child.kill().expect("kill -9");
            let _ = running.child.wait();
            // It may abort before it has printed its start lines: only its end is read.
            let log = state.with_extension(format!("abort{kill}"));
            let stderr = std::fs::File::create(&log).expect("a log file");
            let state_arg = state.to_str().expect("utf-8 path");
            let status = common::livepay(&[
                "daemon",
                "--listen",
                "127.0.0.1:0",
                "--state",
                state_arg,
                "--abort-after-write-ahead",
                n,
            ])
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .expect("the daemon runs");
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                !status.success() && said.contains("aborting after"),
                "kill {kill}: the daemon aborted after {n} write-aheads: {status:?} {said}"
            );
        } else {
            // The kill point: after a seeded number of payments the model credits.
            let target = accepted(&served) + 30 + rng.below_or_eq(770);
            wait_for("payments before the kill", || accepted(&served) >= target);
            running.child.kill().expect("kill -9");
            let _ = running.child.wait();
        }
        running = start(&state, &[]);
        if running.resumed != SESSIONS {
            let (_, list) = call(running.addr, "GET", "/v1/sessions", &running.token, "");
            let released: Vec<&str> = list
                .split(r#""release_reason":"#)
                .skip(1)
                .filter(|s| !s.starts_with("null"))
                .map(|s| s.split(',').next().unwrap_or(""))
                .collect();
            let model = served.model.with_world(|w| {
                format!(
                    "{:?} / signer {:?}",
                    w.orchestrator()
                        .releases()
                        .iter()
                        .map(|r| r.reason)
                        .collect::<Vec<_>>(),
                    w.signer().stats()
                )
            });
            panic!(
                "kill {kill}: {} of {SESSIONS} resumed; released: {released:?}; model: {model}",
                running.resumed
            );
        }
    }
    // Every session paid twice more after the last restart.
    let target = accepted(&served) + 2 * SESSIONS as u64;
    wait_for("two payments per session after the last restart", || {
        accepted(&served) >= target
    });
    let (summary, releases, signer_400s, accepted) = served.model.with_world(|w| {
        let summary = format!(
            "{SESSIONS} sessions, {KILLS} kills: orchestrator {:?}; signer {:?}",
            w.orchestrator().stats(),
            w.signer().stats()
        );
        let unpaid: Vec<_> = w
            .orchestrator()
            .releases()
            .iter()
            .filter(|r| r.reason != ReleaseCause::Stopped)
            .map(|r| (r.session_id.clone(), r.reason))
            .collect();
        (
            summary,
            unpaid,
            w.signer().stats().rejected_400,
            w.orchestrator().stats().payments_accepted,
        )
    });
    eprintln!("daemon crash test: {summary}");
    assert_eq!(releases, Vec::new(), "no session released by the model");
    assert_eq!(signer_400s, 0, "no signer 400 (a stale state)");
    assert!(accepted > SESSIONS as u64 * 5, "payments went on: {accepted}");
    let (status, list) = call(running.addr, "GET", "/v1/sessions", &running.token, "");
    assert_eq!(status, 200);
    assert_eq!(
        list.matches(r#""state":"funding""#).count() + list.matches(r#""state":"skipped""#).count(),
        SESSIONS,
        "{list}"
    );
    running.child.kill().expect("kill -9");
    let _ = running.child.wait();
}
