//! A counting global allocator proves that a long run of the machine allocates nothing.
//!
//! This file is its own test binary, so the allocator sees only this test; the test harness's
//! own allocations happen before and after the measured section.

// A global allocator cannot be written without `unsafe`; it only delegates to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use livepay_core::{Action, Config, Duration, Endpoint, Instant, Outcome, Reply, Session, StatusTable, Step};

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
    let table = StatusTable::new();
    let config = Config::default();
    let mut now = Instant::from_millis(0);
    let mut session = Session::new(&config, now).unwrap();
    let mut cycles = 0u32;
    let mut events = 0u64;

    let before = allocations();
    MEASURING.with(|m| m.set(true));
    session.start(now);
    while now < Instant::from_secs(24 * 3600) {
        while let Some(action) = session.poll_action() {
            now += Duration::from_millis(15);
            cycles += 1;
            // Every 7th cycle fails transiently, every 11th is a 482, every 13th needs a refresh.
            let reply = match (action, cycles % 7, cycles % 11, cycles % 13) {
                (Action::Pay { .. }, 0, _, _) => Reply::Status(503),
                (Action::Pay { .. }, _, 0, _) => Reply::Status(482),
                (Action::Pay { .. }, _, _, 0) => Reply::Status(480),
                _ => Reply::Status(200),
            };
            let endpoint = match action {
                Action::Pay { .. } => Endpoint::Signer,
                Action::Refresh => Endpoint::Refresh,
                Action::Stop => Endpoint::Stop,
            };
            let outcome = match table.classify(endpoint, reply) {
                Step::Continue => match table.classify(Endpoint::Payment, Reply::Status(200)) {
                    Step::Done(o) => o,
                    Step::Continue => Outcome::Paid,
                },
                Step::Done(o) => o,
            };
            session.handle_outcome(now, outcome).unwrap();
        }
        while session.poll_event().is_some() {
            events += 1;
        }
        now = session.poll_timeout().unwrap();
        session.handle_timeout(now);
    }
    session.close(now);
    MEASURING.with(|m| m.set(false));
    let after = allocations();

    assert_eq!(after - before, 0, "the machine allocated");
    assert!(session.stats().payments_accepted > 20_000);
    assert!(session.stats().failures > 1_000);
    assert_eq!(session.stats().lapses, 0);
    assert!(events > 20_000);
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
fn session_fits_in_256_bytes() {
    assert!(std::mem::size_of::<Session>() <= 256);
}
