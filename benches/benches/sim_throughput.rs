//! Simulation throughput: 100 sessions × 1 simulated hour per iteration, livepay and the baseline
//! side by side, with tickets worth one second of price and worth a minute (where most cycles are
//! 482s). Criterion's element throughput is simulated session-hours per second.
//!
//! After the timings it prints the memory a simulated session needs: the per-session working
//! set (its structures' sizes) and the heap retained per additional session, measured with a
//! counting allocator.

// A global allocator cannot be written without `unsafe`; it only delegates to `System`.
#![allow(unsafe_code, clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group};
use livepay_benches::record_figure;
use livepay_core::Duration;
use livepay_mock::faults::FaultPlan;
use livepay_mock::sim::{PolicyKind, SimConfig, session_footprint, simulate};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator unchanged; it only counts live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(live.max(0) as usize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SESSIONS: u32 = 100;

fn config(sessions: u32) -> SimConfig {
    SimConfig {
        sessions,
        duration: Duration::from_secs(3_600),
        plan: FaultPlan::profile("flaky").unwrap_or_default(),
        ..SimConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(u64::from(SESSIONS)));
    group.sample_size(20);
    let cfg = config(SESSIONS);
    if let Err(e) = cfg.validate() {
        panic!("the benchmark's configuration: {e}");
    }
    let ev60 = config(SESSIONS).with_ev_seconds(60.0);
    for policy in [PolicyKind::Livepay, PolicyKind::Sdk10] {
        group.bench_function(format!("{}_100_session_hours_flaky", policy.name()), |b| {
            b.iter(|| simulate(&cfg, policy));
        });
        group.bench_function(format!("{}_100_session_hours_flaky_ev60", policy.name()), |b| {
            b.iter(|| simulate(&ev60, policy));
        });
    }
    group.finish();
}

/// Peak heap of one simulation run, bytes.
fn peak_heap(sessions: u32) -> usize {
    let cfg = config(sessions);
    let base = LIVE.load(Ordering::Relaxed).max(0) as usize;
    PEAK.store(base, Ordering::Relaxed);
    let _ = std::hint::black_box(simulate(&cfg, PolicyKind::Livepay));
    PEAK.load(Ordering::Relaxed) - base
}

fn memory() {
    let small = peak_heap(10);
    let large = peak_heap(1_000);
    let per_session = (large.saturating_sub(small)) as f64 / 990.0;
    println!("\nmemory per simulated session:");
    println!(
        "  working set (structures of the session being simulated): {} bytes",
        session_footprint()
    );
    println!("  peak heap, 10 sessions: {small} bytes; 1,000 sessions: {large} bytes");
    println!("  heap retained per additional session: {per_session:.1} bytes");
    if std::env::args().any(|a| a == "--bench") {
        record_figure(
            "sim_throughput",
            "working_set_bytes",
            &session_footprint().to_string(),
        );
        record_figure("sim_throughput", "retained_bytes", &format!("{per_session:.0}"));
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    memory();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
