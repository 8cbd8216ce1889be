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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

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

/// Polls `condition` until it holds; [`GUARD`] only turns a hang into a failure.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    const POLL: Duration = Duration::from_millis(20);
    for _ in 0..GUARD.as_millis() / POLL.as_millis() {
        if condition() {
            return;
        }
        std::thread::sleep(POLL);
    }
    panic!("{what}: not within {GUARD:?}");
}

/// The upper bound on any wait: a failure guard, never a synchronisation.
const GUARD: Duration = Duration::from_secs(60);

/// One HTTP/1.1 exchange with the daemon: the status and the body.
fn call(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).expect("the daemon listens");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).expect("sent");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("answered");
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// A running daemon: the child, its address and its token.
struct Running {
    child: Child,
    addr: SocketAddr,
    token: String,
    resumed: usize,
}

/// A failed assertion must not leave the daemon running (and funding) after the test.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `livepay daemon` on `state` (with `extra` flags) and waits for its start lines.
fn start(state: &Path, extra: &[&str]) -> Running {
    let state_arg = state.to_str().expect("utf-8 path");
    let mut args = vec!["daemon", "--listen", "127.0.0.1:0", "--state", state_arg];
    args.extend_from_slice(extra);
    let log = state.with_extension("stderr");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("a log file");
    let mut child = common::livepay(&args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the daemon starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut field = |name: &str| -> String {
        let line = lines.next().and_then(Result::ok).unwrap_or_else(|| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the daemon printed no `{name}` line; its stderr: {log}")
        });
        line.strip_prefix(name)
            .unwrap_or_else(|| panic!("expected `{name}`: {line}"))
            .trim()
            .to_owned()
    };
    let addr = field("daemon");
    let token_path = field("token");
    let state_line = field("state");
    let addr: SocketAddr = addr.trim_start_matches("http://").parse().expect("an address");
    let token_path = token_path.split(' ').next().expect("a path");
    let token = std::fs::read_to_string(token_path)
        .expect("the token file")
        .trim()
        .to_owned();
    let resumed = state_line
        .split('·')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("sessions resumed");
    // Keep reading stdout so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        addr,
        token,
        resumed,
    }
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
