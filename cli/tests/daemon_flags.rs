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

/// Issue 17, item 12: a token file anyone may rewrite, a one-character token and one that can
/// never match are refused, naming the file, and the token itself is never shown.
#[cfg(unix)]
#[test]
fn unsafe_or_unusable_token_files_are_bad_input() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cases = [
        (
            "world.token",
            "0123456789abcdef0123",
            0o666,
            "writable by every user",
        ),
        ("short.token", "x", 0o600, "shorter than 16"),
        (
            "unicode.token",
            "t\u{f6}ken-t\u{f6}ken-t\u{f6}ken",
            0o600,
            "non-ASCII",
        ),
        ("spaced.token", "a token with spaces in it", 0o600, "space"),
    ];
    for (name, token, mode, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{token}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        refused(&["--api-token-file", path.to_str().expect("utf-8")], says);
        let out = common::run_exiting(
            2,
            &[
                "daemon",
                "--listen",
                "127.0.0.1:0",
                "--state",
                dir.path().join("s.db").to_str().expect("utf-8"),
                "--api-token-file",
                path.to_str().expect("utf-8"),
            ],
        );
        let err = common::stderr_one_line(&out);
        assert!(err.contains(name), "names the file: {err}");
        assert!(
            token.len() < 4 || !err.contains(token),
            "never shows the token: {err}"
        );
    }
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
