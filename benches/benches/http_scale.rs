//! Scale: one `Funder` (one task on a current-thread tokio runtime, one pooled HTTP client) funds
//! N sessions at the default 3 s cadence against the model served on loopback (default 5 s server
//! tick, 10 s prepay) for about 30 s of real time, and prints:
//!
//! - sessions held (and funding) at the end of the window;
//! - lapses (must be 0) and releases by the model (must be 0): the bench exits non-zero otherwise;
//! - client CPU, as a percentage of one core, over the window;
//! - client memory per session: the growth of the client's `VmRSS` (`/proc/self/status`) from
//!   before the first reservation to the end of the window, divided by N.
//!
//! # Method
//!
//! The served model runs in a **child process** (this same executable, re-run with
//! `LIVEPAY_SCALE_SERVE=1`), so that the client's CPU time (`/proc/self/stat` utime + stime) and
//! RSS hold the client only. CPU time is the scheduler's exact per-thread runtime
//! (`se.sum_exec_runtime` in `/proc/<pid>/task/<tid>/sched`, summed over threads; utime + stime
//! from `stat` where it is missing), for the client and, printed beside it, the server child. The child exits when its stdin closes, so it never outlives the bench. Sessions are reserved
//! 32 at a time and handed to the funder as each reservation completes; the window starts once all
//! are added and one interval has passed (every session has started).
//!
//! # Knobs (environment)
//!
//! - `LIVEPAY_SCALE_SESSIONS`: N, or a comma-separated list (each N then runs in a fresh process).
//!   Default 10000 under `cargo bench`, 50 under `cargo test --benches`.
//! - `LIVEPAY_SCALE_SECS`: the window, seconds. Default 30 (3 under `cargo test --benches`).
//! - `LIVEPAY_SCALE_LATENCY_MS`: the served model's simulated latency per request, ms.
//!   Default 0 (the server then costs the least CPU on a shared machine); the model's own default
//!   is 2–5 ms.
//!
//! `cargo bench -p livepay-benches --bench http_scale`, or e.g.
//! `LIVEPAY_SCALE_SESSIONS=1000,5000,10000 cargo bench -p livepay-benches --bench http_scale`.
#![allow(clippy::print_stdout)]

#[path = "scale_common/mod.rs"]
mod scale_common;

use std::process::{Command, ExitCode};
use std::time::Duration;

use futures::StreamExt;
use livepay_benches::{process_cpu, record_figure};
use livepay_core::PaymentType;
use livepay_core::engine::ReserveOptions;
use livepay_hyper::{Funder, FunderConfig, FunderStats, HttpClient, HttpConfig, reserve};
use scale_common::{ModelStats, SERVE_ENV, Server, rss_bytes, serve_child};

const SESSIONS_ENV: &str = "LIVEPAY_SCALE_SESSIONS";
const SECS_ENV: &str = "LIVEPAY_SCALE_SECS";
// ---- the bench -----------------------------------------------------------------------------

/// Funds `n` sessions for `secs` seconds; `true` when nothing lapsed and the model released nothing.
fn run_one(n: usize, secs: u64) -> bool {
    let mut server = Server::spawn();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let http = HttpClient::new(HttpConfig::default()).expect("client");
    let funder = Funder::new(http.clone(), FunderConfig::default()).expect("valid config");
    let interval = FunderConfig::default().session_config.interval;
    let handle = funder.handle();
    let rss_before = rss_bytes();

    let (stats, window, client_cpu, server_cpu, rss_after, model) = runtime.block_on(async {
        let run = tokio::spawn(funder.run());
        let reserving = tokio::time::Instant::now();
        let (runner_url, signer_url) = (server.runner_url.clone(), server.signer_url.clone());
        let added = futures::stream::iter(0..n)
            .map(|_| {
                let options =
                    ReserveOptions::new(runner_url.clone(), Some(signer_url.clone()), PaymentType::Live);
                // On the funder's clock: each runway counts from its reservation's mint.
                let (http, clock) = (&http, handle.clock());
                async move { reserve(http, &clock, options).await }
            })
            .buffer_unordered(32)
            .filter_map(|reserved| {
                let key = match reserved {
                    Ok(reserved) if reserved.payment.is_some() => handle.add(reserved).ok(),
                    Ok(_) => {
                        println!("reservation unpriced: nothing to fund");
                        None
                    }
                    Err(error) => {
                        println!("reservation failed: {error}");
                        None
                    }
                };
                futures::future::ready(key)
            })
            .count()
            .await;
        println!(
            "N={n}: {added} sessions reserved and added in {:.1} s",
            reserving.elapsed().as_secs_f64()
        );
        // Every session has started after one interval (the start spread).
        tokio::time::sleep(Duration::from_micros(interval.as_micros())).await;

        let (client0, server0) = (process_cpu("self"), server.cpu());
        let started = tokio::time::Instant::now();
        let mut last_report = started;
        while started.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if last_report.elapsed() >= Duration::from_secs(10) {
                last_report = tokio::time::Instant::now();
                let s = handle.stats();
                println!(
                    "  t={:>4.1}s held {} funding {} payments {} lapses {} at-risk {} signer peak {}",
                    started.elapsed().as_secs_f64(),
                    s.sessions,
                    s.funding,
                    s.payments,
                    s.lapses,
                    s.at_risk,
                    s.signer_in_flight_peak
                );
            }
        }
        let window = started.elapsed().as_secs_f64();
        let client_cpu = process_cpu("self") - client0;
        let server_cpu = server.cpu() - server0;
        let rss_after = rss_bytes();
        let stats = handle.stats();
        let model = server.stats();

        // Close everything and let the funder finish on its own.
        handle.close_all().expect("funder running");
        drop(handle);
        match tokio::time::timeout(Duration::from_secs(60), run).await {
            Ok(Ok(last)) => println!(
                "  closed: released {} (sessions left {})",
                last.released, last.sessions
            ),
            _ => println!("  the funder did not finish within 60 s of close_all"),
        }
        (stats, window, client_cpu, server_cpu, rss_after, model)
    });
    report(
        n, &stats, window, client_cpu, server_cpu, rss_before, rss_after, &model,
    );
    let after_close = server.stats();
    println!(
        "  model after close: silent releases {}, stopped {}, active {}",
        after_close.releases, after_close.stopped, after_close.active
    );
    stats.lapses == 0
        && model.releases == 0
        && stats.sessions == n as u64
        && after_close.stopped == n as u64
        && after_close.releases == 0
}

#[allow(clippy::too_many_arguments, clippy::cast_precision_loss)]
fn report(
    n: usize,
    stats: &FunderStats,
    window: f64,
    client_cpu: f64,
    server_cpu: f64,
    rss_before: u64,
    rss_after: u64,
    model: &ModelStats,
) {
    let per_session = rss_after.saturating_sub(rss_before) as f64 / n as f64;
    if std::env::args().any(|a| a == "--bench") {
        record_figure(
            "http_scale",
            &format!("n{n:06}"),
            &format!(
                "{}|{}|{:.1} %|{:.1} KB|{:.2}",
                stats.lapses,
                model.releases,
                client_cpu / window * 100.0,
                per_session / 1_000.0,
                stats.payments as f64 / n as f64 / window
            ),
        );
    }
    println!(
        "N={n}: held {} (funding {}), lapses {} (must be 0), model releases {} (must be 0), \
         model active {}",
        stats.sessions, stats.funding, stats.lapses, model.releases, model.active
    );
    println!(
        "N={n}: over {window:.1} s: client CPU {:.1} % of one core, server CPU {:.1} %; \
         client memory {:.0} B/session (VmRSS {:.1} → {:.1} MiB)",
        client_cpu / window * 100.0,
        server_cpu / window * 100.0,
        per_session,
        rss_before as f64 / 1_048_576.0,
        rss_after as f64 / 1_048_576.0,
    );
    println!(
        "N={n}: payments {} ({:.2} per session-second), skipped {}, failures {}, at-risk {}, \
         signer in flight peak {}, events dropped {}",
        stats.payments,
        stats.payments as f64 / n as f64 / window,
        stats.skipped,
        stats.failures,
        stats.at_risk,
        stats.signer_in_flight_peak,
        stats.events_dropped
    );
}

fn main() -> ExitCode {
    if std::env::var_os(SERVE_ENV).is_some() {
        return serve_child();
    }
    let full = std::env::args().any(|a| a == "--bench");
    let sessions: Vec<usize> = std::env::var(SESSIONS_ENV)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![if full { 10_000 } else { 50 }]);
    let secs: u64 = std::env::var(SECS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 30 } else { 3 });
    if let [n] = sessions[..] {
        return if run_one(n, secs) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    // Several N: each in a fresh process, so one run's heap does not flatter the next's RSS.
    let mut ok = true;
    for n in sessions {
        let status = Command::new(std::env::current_exe().expect("this executable"))
            .args(std::env::args().skip(1))
            .env(SESSIONS_ENV, n.to_string())
            .env(SECS_ENV, secs.to_string())
            .status()
            .expect("bench child");
        ok &= status.success();
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
