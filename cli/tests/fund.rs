//! `livepay fund` against the served model: a funded session closed by the duration, `--json`
//! output, a graceful SIGTERM, and every documented exit code.

mod common;

use common::{Served, livepay, run_exiting, stderr_one_line};
use livepay_mock::faults::{FaultPlan, Partition};
use livepay_mock::serve::ServeConfig;
use std::io::{BufRead, BufReader};

/// The runner and signer URLs of `served`.
fn urls(served: &Served) -> (String, String) {
    (served.model.runner_url("live-runner"), served.model.signer_url())
}

/// `fund --runner-url RUNNER --signer SIGNER`, then `extra`.
fn fund_args<'a>(runner: &'a str, signer: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["fund", "--runner-url", runner, "--signer", signer];
    args.extend_from_slice(extra);
    args
}

#[test]
fn funds_until_the_duration_then_closes_with_exit_0() {
    let served = Served::clean();
    let (runner, signer) = urls(&served);
    let out = run_exiting(0, &fund_args(&runner, &signer, &["--duration", "2500ms"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("reserved session"), "{text}");
    // The close is planned at 2.5 s: the reservation's 10 s prepay covers it (with the 1 s
    // margin), so nothing more is bought.
    assert_eq!(text.matches("payment accepted").count(), 0, "{text}");
    assert!(text.contains("closed by the client"), "{text}");
    assert_eq!(
        served
            .model
            .with_world(|w| w.orchestrator().stats().released_unpaid),
        0
    );
}

#[test]
fn json_prints_one_event_object_per_line() {
    let served = Served::clean();
    let (runner, signer) = urls(&served);
    let out = run_exiting(
        0,
        &fund_args(&runner, &signer, &["--duration", "1500ms", "--json"]),
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|v| v["event"].is_string() && v["session"].is_string() && v["t_s"].is_number())
    );
    assert!(
        lines
            .iter()
            .any(|v| v["event"] == "state_changed" && v["to"].is_string()),
        "{lines:?}"
    );
    let last = lines.last().expect("an exit line");
    assert_eq!(last["event"], "exit");
    assert_eq!(last["release"]["reason"], "closed_by_client");
}

#[test]
fn sigterm_closes_gracefully_with_exit_0() {
    let served = Served::clean();
    let (runner, signer) = urls(&served);
    let mut child = livepay(&fund_args(&runner, &signer, &[]))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait for the first accepted payment, then ask it to stop.
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("utf-8");
        let paid = line.contains("payment accepted");
        seen.push(line);
        if paid {
            break;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().expect("wait");
    assert_eq!(exit.code(), Some(0), "{seen:?} {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("closed by the client")),
        "{rest:?}"
    );
    // The orchestrator saw the stop: the session is released by the client, not the ticker.
    let stopped = served.model.with_world(|w| w.orchestrator().releases().len());
    assert_eq!(stopped, 1);
    assert_eq!(
        served
            .model
            .with_world(|w| w.orchestrator().stats().released_unpaid),
        0
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        vec!["fund", "--runner-url", "ftp://x", "--signer", "http://s"],
        vec![
            "fund",
            "--runner-url",
            "http://o/apps/r/session",
            "--interval",
            "soon",
        ],
        vec![
            "fund",
            "--runner-url",
            "http://o/apps/r/session",
            "--interval",
            "20s",
        ],
        vec![
            "fund",
            "--runner-url",
            "http://o/apps/r/session",
            "--signer-header",
            "no colon",
        ],
        vec![
            "fund",
            "--runner-url",
            "http://o/apps/r/session",
            "--type",
            "barter",
        ],
        vec!["fund"],
    ] {
        stderr_one_line(&run_exiting(2, &args));
    }
}

#[test]
fn an_unreachable_orchestrator_exits_5() {
    // Nothing listens on this port: bind, read the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let runner = format!("http://127.0.0.1:{port}/apps/live-runner/session");
    let out = run_exiting(5, &fund_args(&runner, &runner, &["--timeout", "1s"]));
    assert!(stderr_one_line(&out).contains("unreachable"));
}

#[test]
fn a_type_that_contradicts_the_discovered_unit_exits_2_before_any_payment() {
    let served = Served::clean();
    let (runner, signer) = urls(&served);
    // A per-second runner reserved as `fixed` would be released after its first debit.
    for wrong in ["fixed", "lv2v"] {
        let out = run_exiting(2, &fund_args(&runner, &signer, &["--type", wrong]));
        let err = stderr_one_line(&out);
        assert!(err.contains("--type") && err.contains("live"), "{err}");
    }
    assert_eq!(
        served.model.with_world(|w| w.orchestrator().stats().challenges),
        0
    );
}

#[test]
fn a_signer_url_that_is_not_a_signer_exits_4() {
    let served = Served::clean();
    let runner = served.model.runner_url("live-runner");
    // Not a signer: its endpoints answer 404 (a malformed 200 is exit 6, see `hardening_peer`).
    let garbage_signer = format!("{}/discovery", served.model.orchestrator_url());
    let out = run_exiting(4, &fund_args(&runner, &garbage_signer, &[]));
    assert!(stderr_one_line(&out).contains("404"));
}

#[test]
fn a_release_by_the_server_exits_3_with_the_reason() {
    // Every request fails from 1 s to 16 s: the 10 s prepay (plus the little buffer a second of
    // funding builds) runs out, the orchestrator releases, and the first payment after the
    // outage gets a 404.
    let mut plan = FaultPlan::clean();
    plan.partitions.push(Partition::Once {
        at_s: 1.0,
        duration_s: 15.0,
    });
    let served = Served::start(ServeConfig {
        plan,
        ..ServeConfig::default()
    });
    let (runner, signer) = urls(&served);
    let out = run_exiting(3, &fund_args(&runner, &signer, &["--duration", "60s"]));
    assert!(stderr_one_line(&out).contains("gone"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lapsed"));
}
