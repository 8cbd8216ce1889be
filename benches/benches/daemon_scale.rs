//! The daemon at scale, side by side with the in-process `Funder`, in one run: N sessions
//! (default 10,000) funded at the default 3 s cadence against the model served in a child
//! process (5 s ticks, 10 s prepay) for a window of real time. Each mode runs in a fresh
//! process of its own, so that one's heap does not flatter the other's RSS.
//!
//! - `funder`: reserve N sessions and hand them to one `Funder` (one task, current-thread runtime);
//! - `daemon`: the whole daemon in this process (axum API, the funder, the SQLite store in WAL
//!   mode with its writer thread), the sessions created through `POST /v1/sessions`, and the
//!   control API probed during the window (`GET /v1/sessions/{id}` of a random session, one at a
//!   time) for its latency.
//!
//! Printed per mode: lapses and model releases (both must be 0: the bench fails otherwise),
//! client CPU as a percentage of one core, client memory per session (`VmRSS` growth / N),
//! payments credited per session-second during the window; for the daemon also the control API's p50/p99 and the store's
//! commits and rows written per second.
//!
//! Knobs: `LIVEPAY_DAEMON_SCALE_SESSIONS` (default 10000 under `cargo bench`, 40 under
//! `cargo test --benches`), `LIVEPAY_DAEMON_SCALE_SECS` (window; default 30, 3 under test),
//! `LIVEPAY_DAEMON_SCALE_MODE` (`funder`, `daemon`; default both, in that order).
#![allow(clippy::print_stdout)]

#[path = "scale_common/mod.rs"]
mod scale_common;

use std::process::{Command, ExitCode};
use std::time::Duration;

use futures::StreamExt;
use livepay_benches::{process_cpu, record_figure};
use livepay_core::PaymentType;
use livepay_core::engine::ReserveOptions;
use livepay_daemon::run::{Daemon, DaemonOptions};
use livepay_daemon::service::ServiceConfig;
use livepay_hyper::{Funder, FunderConfig, FunderStats, HttpClient, HttpConfig, reserve};
use scale_common::{SERVE_ENV, Server, rss_bytes, serve_child};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SESSIONS_ENV: &str = "LIVEPAY_DAEMON_SCALE_SESSIONS";
const SECS_ENV: &str = "LIVEPAY_DAEMON_SCALE_SECS";
const MODE_ENV: &str = "LIVEPAY_DAEMON_SCALE_MODE";

/// What one mode measured.
struct Measured {
    stats: FunderStats,
    /// Payments credited during the window.
    paid: u64,
    window: f64,
    cpu: f64,
    server_cpu: f64,
    rss_growth: u64,
    model_releases: u64,
    /// The daemon's control API: latencies of the probes, seconds, sorted.
    api: Vec<f64>,
    /// The store: commits and rows written over the window.
    store: Option<(u64, u64)>,
}

/// One HTTP/1.1 exchange: status and body.
async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

fn window_of(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

async fn funder_mode(server: &mut Server, n: usize, secs: u64) -> Measured {
    let http = HttpClient::new(HttpConfig::default()).expect("client");
    let funder = Funder::new(http.clone(), FunderConfig::default()).expect("valid config");
    let handle = funder.handle();
    let rss_before = rss_bytes();
    let run = tokio::spawn(funder.run());
    let (runner_url, signer_url) = (server.runner_url.clone(), server.signer_url.clone());
    futures::stream::iter(0..n)
        .map(|_| {
            let options =
                ReserveOptions::new(runner_url.clone(), Some(signer_url.clone()), PaymentType::Live);
            let (http, clock) = (&http, handle.clock());
            async move { reserve(http, &clock, options).await }
        })
        .buffer_unordered(32)
        .for_each(|reserved| {
            if let Ok(reserved) = reserved {
                let _ = handle.add(reserved);
            }
            futures::future::ready(())
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu0, server0) = (process_cpu("self"), server.cpu());
    let paid0 = handle.stats().payments;
    let started = tokio::time::Instant::now();
    tokio::time::sleep(window_of(secs)).await;
    let window = started.elapsed().as_secs_f64();
    let stats = handle.stats();
    let measured = Measured {
        paid: stats.payments - paid0,
        stats,
        window,
        cpu: process_cpu("self") - cpu0,
        server_cpu: server.cpu() - server0,
        rss_growth: rss_bytes().saturating_sub(rss_before),
        model_releases: server.stats().releases,
        api: Vec::new(),
        store: None,
    };
    handle.close_all().expect("funder running");
    drop(handle);
    let _ = tokio::time::timeout(Duration::from_secs(60), run).await;
    measured
}

async fn daemon_mode(server: &mut Server, n: usize, secs: u64) -> Measured {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rss_before = rss_bytes();
    let daemon = Daemon::start(DaemonOptions {
        listen: "127.0.0.1:0".parse().expect("an address"),
        state: dir.path().join("sessions.db").into(),
        api_token_file: None,
        allow_remote: false,
        http: HttpConfig::default(),
        service: ServiceConfig::default(),
        api_limits: livepay_daemon::listen::ApiLimits::default(),
    })
    .await
    .expect("the daemon starts");
    let addr = daemon.addr;
    let token = std::fs::read_to_string(&daemon.token_path)
        .expect("token")
        .trim()
        .to_owned();
    let service = daemon.service().clone();
    let writer = daemon.writer();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(daemon.serve(async move {
        let _ = stopped.await;
    }));
    let body = format!(
        r#"{{"runner_url":"{}","signer_url":"{}"}}"#,
        server.runner_url, server.signer_url
    );
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|_| call(addr, "POST", "/v1/sessions", &token, &body))
        .buffer_unordered(32)
        .filter_map(|(status, body)| {
            let id = (status == 201)
                .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
                .flatten()
                .and_then(|v| v["id"].as_str().map(str::to_owned));
            if id.is_none() {
                println!("create failed: {status} {body}");
            }
            futures::future::ready(id)
        })
        .collect()
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu0, server0) = (process_cpu("self"), server.cpu());
    let paid0 = service.funder_stats().payments;
    let store0 = writer.stats();
    let started = tokio::time::Instant::now();
    let mut api = Vec::new();
    let mut pick = livepay_core::rng::SplitMix64::new(5);
    while started.elapsed() < window_of(secs) && !ids.is_empty() {
        let id = &ids[usize::try_from(pick.below_or_eq(ids.len() as u64 - 1)).unwrap_or(0)];
        let sent = tokio::time::Instant::now();
        let (status, _) = call(addr, "GET", &format!("/v1/sessions/{id}"), &token, "").await;
        if status == 200 {
            api.push(sent.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let window = started.elapsed().as_secs_f64();
    let store1 = writer.stats();
    api.sort_by(f64::total_cmp);
    let stats = service.funder_stats();
    let measured = Measured {
        paid: stats.payments - paid0,
        stats,
        window,
        cpu: process_cpu("self") - cpu0,
        server_cpu: server.cpu() - server0,
        rss_growth: rss_bytes().saturating_sub(rss_before),
        model_releases: server.stats().releases,
        api,
        store: Some((
            store1.commits - store0.commits,
            store1.rows_written - store0.rows_written,
        )),
    };
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), serving).await;
    measured
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Runs `mode` for `n` sessions; `true` when nothing lapsed and the model released nothing.
#[allow(clippy::cast_precision_loss)]
fn run_mode(mode: &str, n: usize, secs: u64) -> bool {
    let mut server = Server::spawn();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let m = runtime.block_on(async {
        if mode == "daemon" {
            daemon_mode(&mut server, n, secs).await
        } else {
            funder_mode(&mut server, n, secs).await
        }
    });
    let cpu = m.cpu / m.window * 100.0;
    let per_session = m.rss_growth as f64 / n as f64;
    let rate = m.paid as f64 / n as f64 / m.window;
    let (p50, p99) = (percentile(&m.api, 0.5) * 1e3, percentile(&m.api, 0.99) * 1e3);
    let (commits, rows) = m
        .store
        .map_or((0.0, 0.0), |(c, r)| (c as f64 / m.window, r as f64 / m.window));
    println!(
        "{mode} N={n}: held {} funding {}, lapses {} (must be 0), model releases {} (must be 0); \
         CPU {cpu:.1} % of one core (server {:.1} %); {per_session:.0} B/session; \
         {rate:.3} payments/session-s",
        m.stats.sessions,
        m.stats.funding,
        m.stats.lapses,
        m.model_releases,
        m.server_cpu / m.window * 100.0
    );
    if mode == "daemon" {
        println!(
            "{mode} N={n}: control API GET p50 {p50:.2} ms, p99 {p99:.2} ms over {} probes; \
             store {commits:.0} commits/s, {rows:.0} rows/s",
            m.api.len()
        );
    }
    if std::env::args().any(|a| a == "--bench") {
        record_figure(
            "daemon_scale",
            &format!("{mode}_n{n:06}"),
            &format!(
                "{}|{}|{cpu:.1} %|{:.1} KB|{rate:.3}|{p50:.2}|{p99:.2}|{rows:.0}",
                m.stats.lapses,
                m.model_releases,
                per_session / 1_000.0
            ),
        );
    }
    m.stats.lapses == 0 && m.model_releases == 0 && m.stats.sessions == n as u64
}

fn main() -> ExitCode {
    if std::env::var_os(SERVE_ENV).is_some() {
        return serve_child();
    }
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var(SESSIONS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000 } else { 40 });
    let secs: u64 = std::env::var(SECS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 30 } else { 3 });
    if let Ok(mode) = std::env::var(MODE_ENV) {
        return if run_mode(&mode, n, secs) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let mut ok = true;
    for mode in ["funder", "daemon"] {
        let status = Command::new(std::env::current_exe().expect("this executable"))
            .args(std::env::args().skip(1))
            .env(MODE_ENV, mode)
            .env(SESSIONS_ENV, n.to_string())
            .env(SECS_ENV, secs.to_string())
            .status()
            .expect("bench child");
        ok &= status.success();
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
