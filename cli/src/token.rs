//! `--signer-token-command`: signer credentials that expire, fetched by running a command. The
//! command prints a header (`Authorization: Bearer …`) on its first line and, optionally, how
//! many seconds it lives on the second. Its output is a secret: it is never printed or logged,
//! and errors say what was wrong, never what it printed.

use std::time::Duration;

use futures::FutureExt as _;
use livepay_core::engine::{Credential, check_signer_header};
use livepay_hyper::CredentialSource;
use tokio::io::AsyncReadExt as _;

/// The longest the command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The most output read from it.
const MAX_OUTPUT: u64 = 64 * 1024;

/// Runs `command` once (`sh -c`) and reads the credential it prints.
///
/// # Errors
///
/// Why no credential came out, in words that quote nothing the command printed.
pub(crate) async fn fetch(command: &str) -> Result<Credential, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no output")?;
    let run = async {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_OUTPUT).read_to_end(&mut out).await;
        (child.wait().await, out)
    };
    let (status, out) = tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .map_err(|_| format!("it did not finish within {COMMAND_TIMEOUT:?}"))?;
    let status = status.map_err(|e| format!("cannot wait for it: {e}"))?;
    if !status.success() {
        return Err(format!("it exited with {status}"));
    }
    parse(&String::from_utf8_lossy(&out))
}

/// The credential in a command's output.
fn parse(out: &str) -> Result<Credential, String> {
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = lines.next().ok_or("it printed nothing")?;
    let (name, value) = header
        .split_once(':')
        .ok_or("its first line is not `Name: value`")?;
    let (name, value) = (name.trim(), value.trim());
    check_signer_header(name, value).map_err(|problem| format!("its header {problem}"))?;
    let expires_in = match lines.next() {
        None => None,
        Some(secs) => {
            let secs: f64 = secs
                .parse()
                .map_err(|_| "its second line is not a number of seconds".to_owned())?;
            if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
                return Err("its lifetime is not a positive number of seconds".to_owned());
            }
            Some(livepay_core::Duration::from_micros((secs * 1e6) as u64))
        }
    };
    Ok(Credential {
        name: name.to_owned(),
        value: value.to_owned(),
        expires_in,
    })
}

/// A credential source running `command` each time; a failure keeps the current headers and
/// is logged (without the output).
pub(crate) fn source(command: String) -> CredentialSource {
    CredentialSource::new(move || {
        let command = command.clone();
        async move {
            match fetch(&command).await {
                Ok(credential) => Some(credential),
                Err(why) => {
                    tracing::warn!("--signer-token-command: {why}; keeping the current credential");
                    None
                }
            }
        }
        .boxed()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_a_header_and_an_optional_lifetime() {
        let c = parse("Authorization: Bearer abc\n300\n").expect("parses");
        assert_eq!(
            (c.name.as_str(), c.value.as_str()),
            ("Authorization", "Bearer abc")
        );
        assert_eq!(c.expires_in, Some(livepay_core::Duration::from_secs(300)));
        assert_eq!(parse("X-Token: t").expect("parses").expires_in, None);
        for bad in [
            "",
            "no colon s3cret",
            "Host: s3cret",
            "Authorization: s3cret\nsoon",
            "A: s3cret\n-1",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
