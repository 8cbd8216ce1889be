//! `livepay daemon` twice on one state file (a rolling deploy): the second refuses to start,
//! exit 2, naming the holder; the lock ends with its holder, however it ends (`kill -9`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

fn daemon(state: &str) -> Child {
    common::livepay(&["daemon", "--listen", "127.0.0.1:0", "--state", state])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Waits for the daemon's banner (its first line): it holds the store by then.
fn banner(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a banner");
    line
}

#[test]
fn a_second_daemon_on_one_state_is_exit_2_naming_the_holder_until_the_holder_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("s.db");
    let state = state.to_str().expect("utf-8");
    let mut first = daemon(state);
    assert!(
        banner(&mut first).starts_with("daemon "),
        "the first daemon starts"
    );

    let second = daemon(state).wait_with_output().expect("the second ends");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in use by another livepay daemon"), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.id())),
        "names the holder: {stderr}"
    );

    // No lock outlives its holder: after a kill -9, a daemon starts on the same file.
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    let mut third = daemon(state);
    assert!(
        banner(&mut third).starts_with("daemon "),
        "starts once the holder is gone"
    );
    third.kill().expect("kill");
    let _ = third.wait();
}
