//! `livepay demo`: works with nothing else running, funds, closes cleanly, summarises, exits 0.

mod common;

use common::run;

#[test]
fn demo_funds_and_closes_cleanly() {
    // The first payment goes out on schedule, about 3.1 s after each reservation.
    let out = run(&["demo", "--duration", "4s", "--sessions", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("livepay demo"), "{text}");
    assert!(text.contains("payment accepted"), "{text}");
    assert!(
        text.contains("closed cleanly 3 · released by the server 0"),
        "{text}"
    );
}

#[test]
fn demo_rejects_a_bad_profile() {
    let out = run(&["demo", "--profile", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}
