//! A counting global allocator proves that a long run of the machine allocates nothing.
//!
//! This file is its own test binary, so the allocator sees only this test; the test harness's
//! own allocations happen before and after the measured section.

// A global allocator cannot be written without `unsafe`; it only delegates to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use livepay_core::{Action, Config, Duration, Endpoint, Instant, Reply, Sequencer, Session, StatusTable};

struct Counting;

thread_local! {
    /// Only the measuring thread counts (the test harness allocates on its other threads), and
    /// each test thread has its own count.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: delegates every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if MEASURING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_day_of_funding_with_failures_allocates_nothing() {
    let config = Config::default();
    let mut now = Instant::from_millis(0);
    let mut calls = Sequencer::new(Session::new(&config, now).unwrap(), StatusTable::new());
    let mut cycles = 0u32;
    let mut events = 0u64;

    let before = allocations();
    MEASURING.with(|m| m.set(true));
    calls.machine_mut().start(now);
    while now < Instant::from_secs(24 * 3600) {
        while let Some(call) = calls.poll_call() {
            now += Duration::from_millis(15);
            if call.endpoint == Endpoint::Signer {
                cycles += 1;
            }
            // Every 7th cycle fails transiently, every 11th is a 482, every 13th needs a refresh.
            let reply = match (call.action, call.endpoint, cycles % 7, cycles % 11, cycles % 13) {
                (Action::Pay { .. }, Endpoint::Signer, 0, _, _) => Reply::Status(503),
                (Action::Pay { .. }, Endpoint::Signer, _, 0, _) => Reply::Status(482),
                (Action::Pay { .. }, Endpoint::Signer, _, _, 0) => Reply::Status(480),
                _ => Reply::Status(200),
            };
            calls.handle_reply(now, call.id, reply).unwrap();
        }
        let session = calls.machine_mut();
        while session.poll_event().is_some() {
            events += 1;
        }
        now = session.poll_timeout().unwrap();
        session.handle_timeout(now);
    }
    calls.machine_mut().close(now);
    MEASURING.with(|m| m.set(false));
    let after = allocations();
    let session = calls.machine();

    assert_eq!(after - before, 0, "the machine allocated");
    // A day at one payment every ~15 s once the runway is built, with the injected failures.
    assert!(session.stats().payments_accepted > 2_000);
    assert!(session.stats().failures > 400);
    assert_eq!(session.stats().lapses, 0);
    assert!(events > 4_000);
}

#[test]
fn the_counter_sees_allocations() {
    MEASURING.with(|m| m.set(true));
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 16]);
    let after = allocations();
    MEASURING.with(|m| m.set(false));
    drop(v);
    assert!(after > before, "the counting allocator is not installed");
}

#[test]
fn session_fits_in_384_bytes() {
    assert!(std::mem::size_of::<Session>() <= 384);
}
