//! A `livepay daemon` child process driven over its HTTP API, for the crash and fleet tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// Polls `condition` until it holds; [`GUARD`] only turns a hang into a failure.
pub(crate) fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    const POLL: Duration = Duration::from_millis(20);
    for _ in 0..GUARD.as_millis() / POLL.as_millis() {
        if condition() {
            return;
        }
        std::thread::sleep(POLL);
    }
    panic!("{what}: not within {GUARD:?}");
}

/// The upper bound on any wait: a failure guard, never a synchronisation.
pub(crate) const GUARD: Duration = Duration::from_secs(60);

/// One HTTP/1.1 exchange with the daemon: the status and the body.
pub(crate) fn call(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).expect("the daemon listens");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).expect("sent");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("answered");
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// A running daemon: the child, its address and its token.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) token: String,
    pub(crate) resumed: usize,
}

/// A failed assertion must not leave the daemon running (and funding) after the test.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `livepay daemon` on `state` (with `extra` flags), its stderr appended to `log`, and
/// waits for its start lines.
pub(crate) fn start(state: &str, log: &Path, extra: &[&str]) -> Running {
    let mut args = vec!["daemon", "--listen", "127.0.0.1:0", "--state", state];
    args.extend_from_slice(extra);
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("a log file");
    let mut child = super::livepay(&args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the daemon starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut field = |name: &str| -> String {
        let line = lines.next().and_then(Result::ok).unwrap_or_else(|| {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the daemon printed no `{name}` line; its stderr: {log}")
        });
        line.strip_prefix(name)
            .unwrap_or_else(|| panic!("expected `{name}`: {line}"))
            .trim()
            .to_owned()
    };
    let addr = field("daemon");
    let token_path = field("token");
    let state_line = field("state");
    let addr: SocketAddr = addr.trim_start_matches("http://").parse().expect("an address");
    let token_path = token_path.split(' ').next().expect("a path");
    let token = std::fs::read_to_string(token_path)
        .expect("the token file")
        .trim()
        .to_owned();
    let resumed = state_line
        .split('·')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("sessions resumed");
    // Keep reading stdout so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        addr,
        token,
        resumed,
    }
}
