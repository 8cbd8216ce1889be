//! One HTTP funding cycle over loopback: the signer call (`generate-live-payment`) and the payment
//! POST, as a core `Engine` builds and reads them, sent with `HttpClient::execute_owned` on a
//! keep-alive client, against the model served on loopback (`livepay_mock::serve`). The engine
//! runs on virtual time that jumps to its next payment, so a cycle is the two requests and the
//! engine's work around them, never a wait.
//!
//! Reported:
//!
//! - criterion's estimate of the cycle (`http/funding_cycle`);
//! - then, from 20,000 individually timed cycles: the **median**, p90 and p99 latency;
//! - **CPU per cycle**, client and server separately.
//!
//! # How client CPU is separated from the server's
//!
//! The served model runs in this process, so process CPU time alone would mix both sides. The
//! server therefore runs on its **own thread** with a current-thread tokio runtime (every
//! connection task it spawns stays on that thread), and the client runs on the bench's main
//! thread with another current-thread runtime (hyper's connection tasks stay there too; loopback
//! IP literals need no DNS thread). Each thread's CPU time is read before and after the timed
//! cycles from the scheduler's exact per-thread runtime, `se.sum_exec_runtime` in
//! `/proc/self/task/<tid>/sched` (falling back to utime + stime in `.../stat`, one clock tick =
//! 10 ms resolution, where that file is missing); the tids come from `/proc/thread-self`. Tick
//! sampling is not used by default because on this VM it splits a strict ping-pong between two
//! threads evenly whatever each really costs. The process total (every live thread) is printed as
//! a cross-check; criterion's own work is outside the timed pass.
//!
//! `cargo bench -p livepay-benches --bench http_cycle`; under `cargo test --benches` it runs a
//! few cycles only.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::Duration as StdDuration;

use criterion::Criterion;
use livepay_benches::{process_cpu, record_figure, set_fixed_latency, thread_cpu_at};
use livepay_core::engine::{Engine, Output, Request, ReserveOptions};
use livepay_core::{Clock as _, Config, Instant, PaymentType, Peer, StatusTable};
use livepay_hyper::{HttpClient, HttpConfig, TokioClock, reserve};
use livepay_mock::serve::{ServeConfig, ServedModel};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// This thread's id, from `/proc/thread-self` (`PID/task/TID`).
fn current_tid() -> String {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name()
        .and_then(|n| n.to_str())
        .expect("a tid")
        .to_owned()
}

/// CPU time of thread `tid` of this process, seconds.
fn thread_cpu(tid: &str) -> f64 {
    thread_cpu_at(&format!("/proc/self/task/{tid}"))
}

/// The served model on its own thread and runtime.
struct Server {
    runner_url: String,
    signer_url: String,
    tid: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let mut config = ServeConfig::default();
                // No simulated network latency: measure the HTTP stack and the model, not sleeps.
                set_fixed_latency(&mut config.plan, 0.0);
                // Long-lived params: no 480 refresh during a long bench run.
                config.model.param_lifetime = livepay_core::Duration::from_secs(24 * 3600);
                config.model.auth_token_lifetime = livepay_core::Duration::from_secs(48 * 3600);
                let served = ServedModel::start(config).await.expect("served");
                ready_tx
                    .send((
                        served.runner_url("live-runner"),
                        served.signer_url(),
                        current_tid(),
                    ))
                    .expect("bench waits");
                let _ = stopped.await;
                served.shutdown().await;
            });
        });
        let (runner_url, signer_url, tid) = ready_rx.recv().expect("server started");
        Self {
            runner_url,
            signer_url,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A funded session's engine on virtual time, and the client its requests go out on.
struct Funded {
    engine: Engine,
    now: Instant,
    http: HttpClient,
}

impl Funded {
    /// The engine's next request; virtual time jumps to the engine's next timer until it has one.
    fn next_request(&mut self) -> Request {
        loop {
            match self.engine.poll_output(self.now) {
                Some(Output::Transmit(request)) => return request,
                Some(Output::Timeout(at)) => {
                    self.now = at;
                    self.engine.handle_timeout(self.now);
                }
                Some(Output::NeedCredential) => self.engine.handle_credential(self.now, None),
                Some(_) => {}
                None => panic!("a funding session has a timer"),
            }
        }
    }

    /// Sends `request` and hands the answer to the engine.
    async fn send(&mut self, request: Request) {
        let (id, what) = (request.id, request.endpoint);
        let response = self
            .http
            .execute_owned(request)
            .await
            .unwrap_or_else(|error| panic!("{what}: {error}"));
        let headers = response.header_pairs();
        self.engine
            .handle_response(self.now, id, &response.as_response(&headers))
            .expect("the request in flight");
    }
}

/// One funding cycle; panics unless the payment is credited (every signer call mints: the
/// model's ticket value equals one second of service, the least a call bills).
async fn cycle(funded: &mut Funded) {
    let credited = funded.engine.stats().payments_accepted;
    let mint = funded.next_request();
    assert_eq!(mint.peer(), Peer::Signer, "{mint:?}");
    funded.send(mint).await;
    let payment = funded.next_request();
    assert_eq!(
        payment.peer(),
        Peer::Orchestrator,
        "signer: {:?}",
        funded.engine.last_problem()
    );
    funded.send(payment).await;
    assert_eq!(
        funded.engine.stats().payments_accepted,
        credited + 1,
        "payment: {:?}",
        funded.engine.last_problem()
    );
}

fn percentile(sorted: &[StdDuration], p: f64) -> StdDuration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Times `cycles` cycles one by one and reads both threads' CPU around them.
fn timed_pass(runtime: &Runtime, funded: &mut Funded, server_tid: &str, cycles: u32) {
    let client_tid = current_tid();
    let (client0, server0, process0) = (
        thread_cpu(&client_tid),
        thread_cpu(server_tid),
        process_cpu("self"),
    );
    let wall = tokio::time::Instant::now();
    let mut latencies = Vec::with_capacity(cycles as usize);
    runtime.block_on(async {
        for _ in 0..cycles {
            let start = tokio::time::Instant::now();
            cycle(funded).await;
            latencies.push(start.elapsed());
        }
    });
    let wall = wall.elapsed();
    let (client, server, process) = (
        thread_cpu(&client_tid) - client0,
        thread_cpu(server_tid) - server0,
        process_cpu("self") - process0,
    );
    latencies.sort_unstable();
    let per_cycle = |seconds: f64| seconds / f64::from(cycles) * 1e6;
    println!(
        "http/funding_cycle, {cycles} cycles timed one by one: median {:.1} µs, p90 {:.1} µs, p99 {:.1} µs \
         (target: median ≤ 250 µs); wall {:.2} s",
        percentile(&latencies, 0.5).as_secs_f64() * 1e6,
        percentile(&latencies, 0.9).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        wall.as_secs_f64(),
    );
    println!(
        "CPU per cycle: client {:.1} µs, server {:.1} µs, process {:.1} µs (client + server + rest)",
        per_cycle(client),
        per_cycle(server),
        per_cycle(process),
    );
    if std::env::args().any(|a| a == "--bench") {
        let median = percentile(&latencies, 0.5).as_secs_f64() * 1e6;
        record_figure("http_cycle", "median_us", &format!("{median:.0}"));
        record_figure(
            "http_cycle",
            "client_cpu_us",
            &format!("{:.0}", per_cycle(client)),
        );
        record_figure(
            "http_cycle",
            "server_cpu_us",
            &format!("{:.0}", per_cycle(server)),
        );
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let http = HttpClient::new(HttpConfig::default()).expect("client");
    let options = ReserveOptions::new(
        server.runner_url.clone(),
        Some(server.signer_url.clone()),
        PaymentType::Live,
    );
    let clock = TokioClock::new();
    let reserved = runtime
        .block_on(reserve(&http, &clock, options))
        .expect("reserved");
    let now = clock.now();
    let mut engine =
        Engine::new(&Config::new(PaymentType::Live), reserved, StatusTable::new()).expect("valid config");
    assert!(engine.is_metered(), "a priced runner");
    engine.start(now);
    let mut funded = Funded { engine, now, http };
    // Warm the keep-alive connections.
    runtime.block_on(async {
        for _ in 0..100 {
            cycle(&mut funded).await;
        }
    });

    let mut criterion = Criterion::default()
        .configure_from_args()
        .measurement_time(StdDuration::from_secs(5));
    criterion.bench_function("http/funding_cycle", |b| {
        b.iter(|| runtime.block_on(cycle(black_box(&mut funded))));
    });
    criterion.final_summary();

    timed_pass(
        &runtime,
        &mut funded,
        &server.tid,
        if full { 20_000 } else { 200 },
    );
    drop(funded);
    drop(runtime);
    server.stop();
}
