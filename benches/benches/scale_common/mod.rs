//! What the scale benches share: the served model in a child process (this same executable,
//! re-run with `LIVEPAY_SCALE_SERVE=1`), so that the client's CPU time and RSS hold the client
//! only, and the client's resident set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use livepay_benches::{process_cpu, set_fixed_latency};
use livepay_mock::model::ReleaseCause;
use livepay_mock::serve::{ServeConfig, ServedModel};

pub(crate) const SERVE_ENV: &str = "LIVEPAY_SCALE_SERVE";
pub(crate) const LATENCY_ENV: &str = "LIVEPAY_SCALE_LATENCY_MS";

/// This process's resident set, bytes.
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

// ---- the server child ----------------------------------------------------------------------

/// Serves the model; prints `runner_url signer_url`, then answers each `stats` line on stdin with
/// `releases=<silent releases> stopped=<stops> active=<sessions>`, and exits when stdin closes.
pub(crate) fn serve_child() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    runtime.block_on(async {
        let mut config = ServeConfig::default();
        for runner in &mut config.model.runners {
            runner.capacity = u32::MAX;
        }
        let latency_ms: f64 = std::env::var(LATENCY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        set_fixed_latency(&mut config.plan, latency_ms);
        let served = Arc::new(ServedModel::start(config).await.expect("served"));
        println!("{} {}", served.runner_url("live-runner"), served.signer_url());
        let _ = std::io::stdout().flush();
        let model = Arc::clone(&served);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "stats" {
                    let (silent, stopped, active) = model.with_world(|w| {
                        let o = w.orchestrator();
                        let stopped = o
                            .releases()
                            .iter()
                            .filter(|r| r.reason == ReleaseCause::Stopped)
                            .count();
                        (
                            o.releases().len() - stopped,
                            stopped,
                            o.sessions().filter(|s| s.is_active()).count(),
                        )
                    });
                    println!("releases={silent} stopped={stopped} active={active}");
                    let _ = std::io::stdout().flush();
                }
            }
            std::process::exit(0);
        });
        std::future::pending::<()>().await;
    });
    ExitCode::SUCCESS
}

/// The server child, as seen by the bench.
pub(crate) struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub(crate) runner_url: String,
    pub(crate) signer_url: String,
}

/// What the model says.
#[derive(Debug, Default)]
pub(crate) struct ModelStats {
    /// Silent releases (insufficient balance).
    pub(crate) releases: u64,
    /// Stops by the client.
    pub(crate) stopped: u64,
    /// Active sessions.
    pub(crate) active: u64,
}

impl Server {
    pub(crate) fn spawn() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("this executable"))
            .env(SERVE_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("server child");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("server URLs");
        let mut urls = line.split_whitespace().map(str::to_owned);
        let (runner_url, signer_url) = (urls.next().expect("runner"), urls.next().expect("signer"));
        Self {
            child,
            stdin,
            stdout,
            runner_url,
            signer_url,
        }
    }

    pub(crate) fn cpu(&self) -> f64 {
        process_cpu(&self.child.id().to_string())
    }

    pub(crate) fn stats(&mut self) -> ModelStats {
        let stdin = self.stdin.as_mut().expect("open");
        writeln!(stdin, "stats").expect("server alive");
        stdin.flush().expect("server alive");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("server stats");
        let mut stats = ModelStats::default();
        for field in line.split_whitespace() {
            if let Some((name, value)) = field.split_once('=') {
                let value = value.parse().unwrap_or(0);
                match name {
                    "releases" => stats.releases = value,
                    "stopped" => stats.stopped = value,
                    "active" => stats.active = value,
                    _ => {}
                }
            }
        }
        stats
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing stdin makes the child exit; kill it anyway should it hang.
        drop(self.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
