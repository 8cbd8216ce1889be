//! The [`Store`] contract as one test suite: every store (memory, SQLite, PostgreSQL) runs
//! every case, so that the daemon's guarantees (fencing, leases, atomic batches) do not depend
//! on which database holds the sessions.
//!
//! A store is handed to the suite through a [`Harness`]: a fresh empty store per case, a second
//! handle on the same database where the store allows one (for concurrent claims), and a way to
//! make the next commit fail. Time is virtual: every lease is given its `now_ms`.
//!
//! ```no_run
//! use livepay_daemon::store::conformance::{self, Harness};
//! use livepay_daemon::store::{MemoryStore, Store};
//!
//! struct Memory(MemoryStore);
//! impl Harness for Memory {
//!     fn fresh(&mut self) -> Box<dyn Store> {
//!         self.0 = MemoryStore::new();
//!         Box::new(self.0.clone())
//!     }
//!     fn second(&mut self) -> Option<Box<dyn Store>> {
//!         Some(Box::new(self.0.clone()))
//!     }
//!     fn fail_next_commit(&mut self) -> bool {
//!         self.0.fail_next_commits(1);
//!         true
//!     }
//! }
//! conformance::run_all(&mut Memory(MemoryStore::new()));
//! ```

use super::{LeaseTerms, SessionRecord, Store, StoreError, Write};

/// The PostgreSQL server the tests may use: `LIVEPAY_TEST_POSTGRES` (`.ci/postgres.sh start`
/// prints one), or `None` (the PostgreSQL tests skip).
///
/// # Panics
///
/// When `LIVEPAY_REQUIRE_POSTGRES=1` (CI) and no server is named: there, a skip would hide a
/// suite that never ran.
pub fn test_server() -> Option<String> {
    match std::env::var("LIVEPAY_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("LIVEPAY_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "LIVEPAY_REQUIRE_POSTGRES=1 but LIVEPAY_TEST_POSTGRES is not set"
            );
            None
        }
    }
}

/// How the suite gets stores.
pub trait Harness {
    /// A new, empty store (its database emptied or made anew).
    fn fresh(&mut self) -> Box<dyn Store>;
    /// Another handle on the database of the last [`fresh`](Harness::fresh) store, as a second
    /// daemon would open it; `None` if the store allows one process only (SQLite's lock).
    fn second(&mut self) -> Option<Box<dyn Store>>;
    /// Makes the next commit of the last fresh store fail (returns false if the store cannot be
    /// made to fail: the case is skipped).
    fn fail_next_commit(&mut self) -> bool;
    /// Ends what [`fail_next_commit`](Harness::fail_next_commit) set up, once its failure was
    /// seen (a lock held by another connection is released).
    fn heal(&mut self) {}
}

/// One case of the suite.
pub type Case = fn(&mut dyn Harness);

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("round_trip", round_trip),
    (
        "writes_are_fenced_by_owner_and_epoch",
        writes_are_fenced_by_owner_and_epoch,
    ),
    (
        "puts_create_reopen_or_are_fenced",
        puts_create_reopen_or_are_fenced,
    ),
    (
        "a_batch_applies_in_order_and_fenced_writes_change_nothing",
        a_batch_applies_in_order,
    ),
    (
        "a_failed_commit_changes_nothing_and_a_retry_applies_it",
        a_failed_commit_changes_nothing,
    ),
    (
        "claims_take_expired_leases_and_raise_the_epoch",
        claims_take_expired_leases,
    ),
    ("a_takeover_fences_the_old_owner", a_takeover_fences_the_old_owner),
    (
        "renewals_report_lost_sessions_requests_and_the_fleet",
        renewals_report,
    ),
    (
        "a_release_lets_another_daemon_claim_at_once",
        a_release_lets_another_claim,
    ),
    ("close_requests_and_app_leases", close_requests_and_app_leases),
    (
        "concurrent_claims_never_take_one_session_twice",
        concurrent_claims,
    ),
];

/// Runs every case on fresh stores of `harness`; panics naming the first case that fails.
pub fn run_all(harness: &mut dyn Harness) {
    for (name, case) in CASES {
        tracing::info!(case = name, "store conformance");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(harness)));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("store conformance case `{name}` failed: {why}");
        }
    }
}

const A: &str = "daemon-a";
const B: &str = "daemon-b";
const LEASE: u64 = 3_000;

fn terms(owner: &str, now_ms: u64) -> LeaseTerms<'_> {
    LeaseTerms {
        owner,
        now_ms,
        lease_ms: LEASE,
    }
}

fn put(id: &str, snapshot: &str, at_ms: u64, epoch: u64) -> Write {
    Write::Put {
        id: id.into(),
        spec: format!("{{\"spec\":\"{id}\"}}"),
        snapshot: snapshot.into(),
        at_ms,
        epoch,
        lease_until_ms: at_ms + LEASE,
        app_lease_until_ms: None,
    }
}

fn snapshot(id: &str, snapshot: &str, at_ms: u64, epoch: u64) -> Write {
    Write::Snapshot {
        id: id.into(),
        snapshot: snapshot.into(),
        at_ms,
        epoch,
    }
}

fn close(id: &str, reason: &str, at_ms: u64, epoch: u64) -> Write {
    Write::Close {
        id: id.into(),
        reason: reason.into(),
        at_ms,
        epoch,
    }
}

fn get(store: &mut dyn Store, id: &str) -> SessionRecord {
    store
        .get(id)
        .expect("get")
        .unwrap_or_else(|| panic!("no record {id}"))
}

fn fenced(store: &mut dyn Store, owner: &str, batch: &[Write]) -> Vec<usize> {
    store.commit(owner, batch).expect("commit").fenced
}

fn round_trip(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    assert_eq!(store.load().expect("load"), Vec::new());
    assert_eq!(store.get("a").expect("get"), None);
    assert!(fenced(store.as_mut(), A, &[put("b", "b0", 1, 1), put("a", "a0", 2, 1)]).is_empty());
    assert!(
        fenced(
            store.as_mut(),
            A,
            &[snapshot("a", "a1", 3, 1), close("b", "exhausted", 4, 1)]
        )
        .is_empty()
    );
    let records = store.load().expect("load");
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"], "load is in id order");
    let a = get(store.as_mut(), "a");
    assert_eq!(
        (a.snapshot.as_str(), a.updated_ms, a.closed.as_deref()),
        ("a1", 3, None)
    );
    assert_eq!(
        (a.owner.as_deref(), a.epoch, a.lease_until_ms),
        (Some(A), 1, 2 + LEASE)
    );
    assert_eq!(a.spec, "{\"spec\":\"a\"}");
    let b = get(store.as_mut(), "b");
    assert_eq!(
        (b.snapshot.as_str(), b.closed.as_deref(), b.updated_ms),
        ("b0", Some("exhausted"), 4)
    );
    // Texts are kept byte for byte, whatever they hold.
    let odd = "{\"s\":\"é ' \\\" ; -- \\u0001\"}";
    assert!(fenced(store.as_mut(), A, &[snapshot("a", odd, 5, 1)]).is_empty());
    assert_eq!(get(store.as_mut(), "a").snapshot, odd);
}

fn writes_are_fenced_by_owner_and_epoch(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    assert!(fenced(store.as_mut(), A, &[put("s", "s0", 1, 1)]).is_empty());
    // Another owner, another epoch, an unknown id: nothing written.
    assert_eq!(fenced(store.as_mut(), B, &[snapshot("s", "stolen", 2, 1)]), [0]);
    assert_eq!(fenced(store.as_mut(), A, &[snapshot("s", "stale", 2, 0)]), [0]);
    assert_eq!(fenced(store.as_mut(), A, &[snapshot("s", "future", 2, 2)]), [0]);
    assert_eq!(fenced(store.as_mut(), A, &[snapshot("nobody", "x", 2, 1)]), [0]);
    assert_eq!(fenced(store.as_mut(), B, &[close("s", "stolen", 2, 1)]), [0]);
    assert_eq!(get(store.as_mut(), "s").snapshot, "s0");
    // Closed at most once; nothing written to a closed record.
    assert!(fenced(store.as_mut(), A, &[close("s", "first", 3, 1)]).is_empty());
    assert_eq!(fenced(store.as_mut(), A, &[close("s", "second", 4, 1)]), [0]);
    assert_eq!(fenced(store.as_mut(), A, &[snapshot("s", "late", 4, 1)]), [0]);
    let s = get(store.as_mut(), "s");
    assert_eq!(
        (s.closed.as_deref(), s.snapshot.as_str(), s.updated_ms),
        (Some("first"), "s0", 3)
    );
}

fn puts_create_reopen_or_are_fenced(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    assert!(fenced(store.as_mut(), A, &[put("s", "s0", 1, 1)]).is_empty());
    // Open and A's: B cannot put over it, nor A under another epoch.
    assert_eq!(fenced(store.as_mut(), B, &[put("s", "b", 2, 2)]), [0]);
    assert_eq!(fenced(store.as_mut(), A, &[put("s", "a", 2, 2)]), [0]);
    // A may replace its own under its epoch.
    assert!(fenced(store.as_mut(), A, &[put("s", "s1", 3, 1)]).is_empty());
    assert_eq!(get(store.as_mut(), "s").snapshot, "s1");
    // Closed: adopted back only under a higher epoch, by anyone; the close is forgotten.
    assert!(fenced(store.as_mut(), A, &[close("s", "handed off", 4, 1)]).is_empty());
    assert_eq!(fenced(store.as_mut(), B, &[put("s", "replay", 5, 1)]), [0]);
    assert!(fenced(store.as_mut(), B, &[put("s", "s2", 6, 2)]).is_empty());
    let s = get(store.as_mut(), "s");
    assert_eq!(
        (s.owner.as_deref(), s.epoch, s.closed, s.snapshot.as_str()),
        (Some(B), 2, None, "s2")
    );
    assert_eq!(
        fenced(store.as_mut(), A, &[snapshot("s", "old owner", 7, 1)]),
        [0]
    );
}

fn a_batch_applies_in_order(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    let batch = [
        put("x", "x0", 1, 1),
        snapshot("x", "x1", 2, 1),
        snapshot("y", "unknown", 2, 1),
        close("x", "done", 3, 1),
        snapshot("x", "after close", 4, 1),
        put("z", "z0", 5, 1),
    ];
    assert_eq!(fenced(store.as_mut(), A, &batch), [2, 4]);
    let x = get(store.as_mut(), "x");
    assert_eq!((x.snapshot.as_str(), x.closed.as_deref()), ("x1", Some("done")));
    assert_eq!(get(store.as_mut(), "z").snapshot, "z0");
    assert_eq!(store.get("y").expect("get"), None);
}

fn a_failed_commit_changes_nothing(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    assert!(fenced(store.as_mut(), A, &[put("s", "s0", 1, 1)]).is_empty());
    if !harness.fail_next_commit() {
        return;
    }
    let batch = [snapshot("s", "s1", 2, 1), put("t", "t0", 2, 1)];
    let error = store.commit(A, &batch).expect_err("the injected failure");
    assert!(matches!(error, StoreError::Commit { .. }), "{error:?}");
    harness.heal();
    assert_eq!(
        get(store.as_mut(), "s").snapshot,
        "s0",
        "nothing of the batch applied"
    );
    assert_eq!(store.get("t").expect("get"), None);
    // The same batch again: applied whole.
    assert!(fenced(store.as_mut(), A, &batch).is_empty());
    assert_eq!(get(store.as_mut(), "s").snapshot, "s1");
    assert_eq!(get(store.as_mut(), "t").snapshot, "t0");
}

fn claims_take_expired_leases(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    // Leases until 1+LEASE, 2+LEASE, 3+LEASE; "d" closed.
    let puts = [
        put("a", "a", 1, 1),
        put("b", "b", 2, 1),
        put("c", "c", 3, 1),
        put("d", "d", 0, 1),
    ];
    assert!(fenced(store.as_mut(), A, &puts).is_empty());
    assert!(fenced(store.as_mut(), A, &[close("d", "gone", 4, 1)]).is_empty());
    // Nothing has expired yet.
    assert!(
        store
            .claim(terms(B, 1 + LEASE), 10, false)
            .expect("claim")
            .is_empty()
    );
    // "a" and "b" have; at most one, the longest-expired first.
    let claimed = store.claim(terms(B, 3 + LEASE), 1, false).expect("claim");
    assert_eq!(claimed.len(), 1);
    let a = &claimed[0];
    assert_eq!((a.id.as_str(), a.owner.as_deref(), a.epoch), ("a", Some(B), 2));
    assert_eq!((a.lease_until_ms, a.snapshot.as_str()), (3 + 2 * LEASE, "a"));
    let claimed = store.claim(terms(B, 3 + LEASE), 10, false).expect("claim");
    let ids: Vec<&str> = claimed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["b"], "a is held again, c holds, d is closed");
    // `all` takes every open session not the claimer's, whatever its lease; never a closed one.
    let claimed = store.claim(terms(A, 0), 10, true).expect("claim");
    let ids: Vec<&str> = claimed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(get(store.as_mut(), "a").epoch, 3);
    assert_eq!(get(store.as_mut(), "c").epoch, 1, "already A's: untouched");
    assert!(store.claim(terms(A, 0), 10, true).expect("claim").is_empty());
}

fn a_takeover_fences_the_old_owner(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    assert!(fenced(store.as_mut(), A, &[put("s", "s0", 0, 1)]).is_empty());
    // A stops renewing (killed, stopped, cut off); B claims after the lease.
    let claimed = store.claim(terms(B, LEASE + 1), 10, false).expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].epoch, 2);
    // A comes back: its write-ahead is refused, its renewal says lost.
    assert_eq!(
        fenced(store.as_mut(), A, &[snapshot("s", "from A", LEASE + 2, 1)]),
        [0]
    );
    let renewal = store
        .renew(terms(A, LEASE + 2), &[("s".into(), 1)])
        .expect("renew");
    assert_eq!(renewal.lost, ["s"]);
    assert_eq!(
        get(store.as_mut(), "s").lease_until_ms,
        2 * LEASE + 1,
        "A's renewal extended nothing"
    );
    // B writes under its epoch.
    assert!(fenced(store.as_mut(), B, &[snapshot("s", "from B", LEASE + 3, 2)]).is_empty());
    assert_eq!(get(store.as_mut(), "s").snapshot, "from B");
    // Nor can A close it.
    assert_eq!(fenced(store.as_mut(), A, &[close("s", "A", LEASE + 4, 1)]), [0]);
    assert_eq!(get(store.as_mut(), "s").closed, None);
}

fn renewals_report(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    let puts = [put("a", "a", 0, 1), put("b", "b", 0, 1), put("c", "c", 0, 1)];
    assert!(fenced(store.as_mut(), A, &puts).is_empty());
    assert!(fenced(store.as_mut(), A, &[close("c", "done", 1, 1)]).is_empty());
    assert!(
        store
            .request_close("b", "stopped by the API")
            .expect("request")
            .is_some()
    );
    assert!(store.renew_app("a", 9_000).expect("renew app"));
    let held = [
        ("a".to_owned(), 1),
        ("b".to_owned(), 1),
        ("c".to_owned(), 1),
        ("x".to_owned(), 1),
    ];
    let renewal = store.renew(terms(A, 1_000), &held).expect("renew");
    let mut lost = renewal.lost.clone();
    lost.sort();
    assert_eq!(lost, ["c", "x"], "closed and unknown sessions are not held");
    assert_eq!(
        renewal.close_requested,
        [("b".to_owned(), "stopped by the API".to_owned())]
    );
    assert_eq!(renewal.app_leases, [("a".to_owned(), 9_000)]);
    assert_eq!((renewal.daemons_alive, renewal.open_sessions), (1, 2));
    assert_eq!(get(store.as_mut(), "a").lease_until_ms, 1_000 + LEASE);
    // B's heartbeat too; A's expires at 1000 + LEASE.
    let renewal = store.renew(terms(B, 1_500), &[]).expect("renew");
    assert_eq!(renewal.daemons_alive, 2);
    let renewal = store.renew(terms(B, 1_001 + LEASE), &[]).expect("renew");
    assert_eq!(renewal.daemons_alive, 1, "A's heartbeat has expired");
}

fn a_release_lets_another_claim(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    assert!(fenced(store.as_mut(), A, &[put("s", "s0", 100, 1)]).is_empty());
    store.renew(terms(A, 100), &[("s".into(), 1)]).expect("renew");
    assert!(store.claim(terms(B, 101), 10, false).expect("claim").is_empty());
    store.release(A).expect("release");
    let claimed = store.claim(terms(B, 101), 10, false).expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].epoch, 2);
    assert_eq!(fenced(store.as_mut(), A, &[snapshot("s", "late", 102, 1)]), [0]);
    let renewal = store.renew(terms(B, 102), &[]).expect("renew");
    assert_eq!(renewal.daemons_alive, 1, "A's heartbeat is gone");
}

fn close_requests_and_app_leases(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    assert_eq!(store.request_close("nobody", "x").expect("request"), None);
    assert!(!store.renew_app("nobody", 5).expect("renew app"));
    assert!(fenced(store.as_mut(), A, &[put("s", "s0", 0, 1)]).is_empty());
    let record = store
        .request_close("s", "first")
        .expect("request")
        .expect("known");
    assert_eq!(record.close_requested.as_deref(), Some("first"));
    // The first reason stays.
    let record = store
        .request_close("s", "second")
        .expect("request")
        .expect("known");
    assert_eq!(record.close_requested.as_deref(), Some("first"));
    // The owner closes it; then neither a request nor an app lease changes it.
    assert!(fenced(store.as_mut(), A, &[close("s", "first", 1, 1)]).is_empty());
    assert!(!store.renew_app("s", 5).expect("renew app"));
    let record = store
        .request_close("s", "third")
        .expect("request")
        .expect("known");
    assert_eq!(
        (record.closed.as_deref(), record.close_requested.as_deref()),
        (Some("first"), Some("first"))
    );
    // A claimer sees a request made while nobody held the session.
    assert!(fenced(store.as_mut(), A, &[put("t", "t0", 0, 1)]).is_empty());
    store.request_close("t", "app gone").expect("request");
    let claimed = store.claim(terms(B, LEASE + 1), 10, false).expect("claim");
    assert_eq!(claimed[0].close_requested.as_deref(), Some("app gone"));
    // A put (adopted back) clears both.
    assert!(fenced(store.as_mut(), A, &[put("u", "u0", 0, 1)]).is_empty());
    assert!(store.renew_app("u", 77).expect("renew app"));
    assert_eq!(get(store.as_mut(), "u").app_lease_until_ms, Some(77));
}

fn concurrent_claims(harness: &mut dyn Harness) {
    let mut store = harness.fresh();
    let Some(mut other) = harness.second() else {
        return;
    };
    let puts: Vec<Write> = (0..200).map(|i| put(&format!("s{i:03}"), "x", 0, 1)).collect();
    assert!(fenced(store.as_mut(), A, &puts).is_empty());
    let now = LEASE + 1;
    let first = std::thread::spawn(move || {
        let mut mine = Vec::new();
        for _ in 0..20 {
            mine.extend(store.claim(terms(B, now), 10, false).expect("claim B"));
        }
        mine
    });
    let mut second = Vec::new();
    for _ in 0..20 {
        second.extend(other.claim(terms("daemon-c", now), 10, false).expect("claim C"));
    }
    let first = first.join().expect("the first claimer");
    let mut ids: Vec<&str> = first.iter().chain(&second).map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let claimed = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "a session was claimed twice");
    assert_eq!(claimed, 200, "every expired session was claimed");
    assert!(first.iter().chain(&second).all(|r| r.epoch == 2));
}
