//! Issue 10: `-v` and `RUST_LOG` turn on logs on stderr, and a whole session logged at trace
//! level holds no ticket, segment credentials, signer state or auth header.

mod common;

use common::raw::{RawReply, fake_runner, json};
use common::{livepay, signal};

const PAYMENT: &str = "UEFZTUVOVC1TRUNSRVQtdGlja2V0cw==";
const SEG_CREDS: &str = "U0VHQ1JFRFMtU0VDUkVU";
const STATE: &str = "U1RBVEUtU0VDUkVULXN0YXRl";
const SIG: &str = "U0lHLVNFQ1JFVC1zaWc=";
const TOKEN: &str = "Bearer AUTH-S3CRET-token";

fn minted() -> RawReply {
    json(
        200,
        &format!(
            r#"{{"payment":"{PAYMENT}","segCreds":"{SEG_CREDS}","state":{{"State":"{STATE}","Sig":"{SIG}"}}}}"#
        ),
    )
}

#[test]
fn trace_logs_of_a_whole_session_hold_no_secret() {
    let server = fake_runner(|request, _| (request.path == "/generate-live-payment").then(minted));
    let runner = format!("{}/apps/live-runner/session", server.base);
    let header = format!("Authorization: {TOKEN}");
    for (verbosity, rust_log) in [("-vvv", None), ("-v", Some("trace"))] {
        let mut cmd = livepay(&[
            verbosity,
            "fund",
            "--runner-url",
            &runner,
            "--signer",
            &server.base,
            "--signer-header",
            &header,
        ]);
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // A whole session: reservation, a funding cycle (mint and payment), the close.
        server.wait_for("/payment");
        signal(child.id(), "TERM");
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        server.wait_for("/stop");
        // Logs are on.
        assert!(err.contains("livepay"), "{err}");
        for secret in [PAYMENT, SEG_CREDS, STATE, SIG, "AUTH-S3CRET"] {
            assert!(
                !err.contains(secret),
                "{verbosity} {rust_log:?} leaks {secret}:\n{err}"
            );
        }
    }
}

#[test]
fn without_v_or_rust_log_stderr_stays_quiet() {
    let server = fake_runner(|_, _| None);
    let runner = format!("{}/apps/live-runner/session", server.base);
    let out = livepay(&[
        "fund",
        "--runner-url",
        &runner,
        "--signer",
        &server.base,
        "--duration",
        "200ms",
    ])
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
