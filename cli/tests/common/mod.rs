//! Shared helpers: run the binary, serve the model in-process.

#![allow(dead_code)]

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
