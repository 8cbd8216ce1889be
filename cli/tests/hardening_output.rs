//! Issue 10, defect 1: a closed stdout never panics. `fund` stops funding, sends the stop, and
//! exits 7; the other commands exit 7 too.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{Served, livepay, wait_within};

#[test]
fn fund_with_a_closed_stdout_stops_the_session_and_exits_7() {
    let served = Served::clean();
    let mut child = served
        .fund(&["--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // `| head -1`: read one line, then close the pipe.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a first line");
    drop(stdout);
    let stderr = child.stderr.take().expect("stderr");
    let status = wait_within(child, Duration::from_secs(30));
    let err = std::io::read_to_string(stderr).unwrap_or_default();
    assert_eq!(status.code(), Some(7), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The stop reached the orchestrator: released by the client, not by the ticker.
    assert_eq!(served.model.with_world(|w| w.orchestrator().releases().len()), 1);
    assert_eq!(
        served
            .model
            .with_world(|w| w.orchestrator().stats().released_unpaid),
        0
    );
}

#[test]
fn sim_demo_and_serve_sim_exit_7_on_a_full_stdout() {
    for args in [
        vec!["sim", "--sessions", "2", "--hours", "0.01"],
        vec!["demo", "--duration", "1s"],
        vec![
            "serve-sim",
            "--addr",
            "127.0.0.1:0",
            "--signer-addr",
            "127.0.0.1:0",
        ],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let child = livepay(&args)
            .stdout(full)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
