//! The README's Python client (between `<!-- python-client -->` and `<!-- /python-client -->`)
//! run with `python3` against `livepay daemon` on the served model: it reserves a session, reads
//! its events until the first accepted payment, and closes it.
//!
//! It needs `python3` with httpx (`python3 -m pip install httpx`; CI installs it): without them
//! the test fails, saying so.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Served, livepay, signal, wait_within};
use livepay_mock::model::ReleaseCause;

/// A failure guard for each child, never a measurement.
const LIMIT: Duration = Duration::from_secs(60);

/// The code of the README's Python client block.
fn python_client() -> String {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let start = readme
        .find("<!-- python-client -->")
        .expect("a `<!-- python-client -->` marker in README.md");
    let end = readme
        .find("<!-- /python-client -->")
        .expect("a `<!-- /python-client -->` marker in README.md");
    let block = &readme[start..end];
    let code = block
        .split_once("```python\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code)
        .expect("a ```python block between the markers");
    assert!(!code.trim().is_empty());
    code.to_owned()
}

/// Fails (does not skip) when `python3` or httpx is missing.
fn require_httpx() {
    let check = Command::new("python3")
        .args(["-c", "import httpx"])
        .stdin(Stdio::null())
        .output();
    match check {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "python3 cannot import httpx: run `python3 -m pip install httpx` (pip install httpx)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("python3 is not available ({e}): install Python 3, then `pip install httpx`"),
    }
}

/// A fresh directory under cargo's per-target temporary directory.
fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("daemon-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[test]
fn the_readme_python_client_funds_a_session_through_the_daemon() {
    require_httpx();
    let code = python_client();
    let served = Served::clean();
    let dir = scratch_dir();
    let state = dir.join("livepay.db");
    let stderr = std::fs::File::create(dir.join("daemon.stderr")).expect("a stderr file");

    let mut daemon = livepay(&["daemon", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn livepay daemon");
    let pid = daemon.id();
    // Its start block: `daemon       http://ADDR`, then `token        PATH[ (made now, …)]`.
    let stdout = daemon.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut base, mut token_path) = (None, None);
    while base.is_none() || token_path.is_none() {
        let Ok(line) = rx.recv_timeout(LIMIT) else {
            signal(pid, "KILL");
            let err = std::fs::read_to_string(dir.join("daemon.stderr")).unwrap_or_default();
            panic!("livepay daemon printed no address and token: {err}");
        };
        if let Some(url) = line.strip_prefix("daemon ") {
            base = Some(url.trim().to_owned());
        } else if let Some(path) = line.strip_prefix("token ") {
            let path = path.trim();
            let path = path.split_once(" (").map_or(path, |(p, _)| p);
            token_path = Some(PathBuf::from(path));
        }
    }
    let (base, token_path) = (base.expect("base"), token_path.expect("token"));
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );
    let token = std::fs::read_to_string(&token_path).expect("the token file");

    let script = dir.join("client.py");
    std::fs::write(&script, code).expect("write the client");
    let client = Command::new("python3")
        .arg(&script)
        .env("LIVEPAY_DAEMON", &base)
        .env("LIVEPAY_TOKEN", token.trim())
        .env("RUNNER_URL", served.model.runner_url("live-runner"))
        .env("SIGNER_URL", served.model.signer_url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client.wait_with_output());
    });
    let out = match rx.recv_timeout(LIMIT) {
        Ok(out) => out.expect("python3 runs"),
        Err(_) => {
            signal(pid, "KILL");
            panic!("the Python client did not finish within {LIMIT:?}");
        }
    };
    let (printed, errors) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );

    signal(pid, "TERM");
    let status = wait_within(daemon, LIMIT);
    assert!(
        out.status.success(),
        "the Python client failed ({:?})\nstdout: {printed}\nstderr: {errors}",
        out.status
    );
    assert_eq!(printed.trim(), "released: closed by the client", "{errors}");
    assert!(!printed.contains(token.trim()) && !errors.contains(token.trim()));
    assert!(status.success(), "livepay daemon exited {status:?}");

    // The model saw one funded session, paid at least once and stopped by the client.
    let (releases, payments) = served.model.with_world(|w| {
        let releases: Vec<ReleaseCause> = w.orchestrator().releases().iter().map(|r| r.reason).collect();
        (releases, w.orchestrator().stats().payments_accepted)
    });
    assert_eq!(releases, [ReleaseCause::Stopped]);
    assert!(payments >= 2, "the paid reservation and one payment: {payments}");
    let _ = std::fs::remove_dir_all(&dir);
}
