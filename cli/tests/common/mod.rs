//! Shared helpers: run the binary, serve the model in-process.

#![allow(dead_code)]

pub(crate) mod daemon;
pub(crate) mod raw;

use std::process::{Command, Output, Stdio};

use livepay_mock::serve::{ServeConfig, ServedModel};

/// The `livepay` binary with `args`, environment cleared of `LIVEPAY_*`.
pub(crate) fn livepay(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_livepay"));
    cmd.args(args).stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("LIVEPAY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `livepay args` to completion.
pub(crate) fn run(args: &[&str]) -> Output {
    livepay(args).output().expect("the livepay binary runs")
}

/// The served model on free loopback ports, in a runtime that lives as long as the returned
/// value.
pub(crate) struct Served {
    pub(crate) model: ServedModel,
    _runtime: tokio::runtime::Runtime,
}

impl Served {
    pub(crate) fn start(config: ServeConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let model = runtime
            .block_on(ServedModel::start(config))
            .expect("served model");
        Self {
            model,
            _runtime: runtime,
        }
    }

    pub(crate) fn clean() -> Self {
        Self::start(ServeConfig::default())
    }

    /// `livepay fund` of this model's runner with its signer, then `extra`.
    pub(crate) fn fund(&self, extra: &[&str]) -> Command {
        let runner = self.model.runner_url("live-runner");
        let signer = self.model.signer_url();
        let mut args = vec!["fund", "--runner-url", &runner, "--signer", &signer];
        args.extend_from_slice(extra);
        livepay(&args)
    }
}

#[track_caller]
pub(crate) fn stderr_one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "one line on stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

/// Runs `livepay args` to completion and checks that it exits with `code` (a failure shows the
/// arguments, stdout and stderr).
#[track_caller]
pub(crate) fn run_exiting(code: i32, args: &[&str]) -> Output {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Sends signal `name` (`INT`, `TERM`, `HUP`) to process `pid`.
pub(crate) fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Waits for `child` to exit, at most `limit`: a failure guard, not a measurement (past it the
/// child is killed and the test fails); returns its exit status.
pub(crate) fn wait_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            signal(pid, "KILL");
            panic!("the child did not exit within {limit:?}");
        }
    }
}

/// Runs `fund --json` against `served` with `extra` flags; returns the exit code, the JSON event
/// lines and stderr.
pub(crate) fn fund_json(served: &Served, extra: &[&str]) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = served.fund(&args).output().expect("the livepay binary runs");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    (
        out.status.code(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
