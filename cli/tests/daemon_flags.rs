//! `livepay daemon`'s bad input: one clear line on stderr and exit 2, before anything is bound
//! or stored.

mod common;

fn refused(extra: &[&str], says: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = dir.path().join("s.db");
    let mut args = vec!["daemon", "--state", state.to_str().expect("utf-8")];
    if !extra.contains(&"--listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    let out = common::run_exiting(2, &args);
    let err = common::stderr_one_line(&out);
    assert!(err.contains(says), "{extra:?}: {err}");
    assert!(!state.exists(), "{extra:?}: nothing stored");
}

#[test]
fn bad_flags_are_bad_input_and_store_nothing() {
    refused(&["--listen", "0.0.0.0:0"], "--allow-remote");
    refused(
        &["--signer-token-command", "exit 3"],
        "--signer-token-command: it exited",
    );
    refused(
        &["--signer-token-command", "echo no-colon"],
        "--signer-token-command",
    );
    refused(&["--eth-usd", "0"], "--eth-usd");
    refused(&["--interval", "30s"], "--interval");
    refused(&["--api-token-file", "/nonexistent/token"], "API token file");
}

#[test]
fn the_token_command_output_is_never_shown() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = dir.path().join("s.db");
    let out = common::run_exiting(
        2,
        &[
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().expect("utf-8"),
            "--signer-token-command",
            "echo 'Authorization: Bearer TOKEN-SECRET'; echo -5",
        ],
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("TOKEN-SECRET"), "{all}");
}
