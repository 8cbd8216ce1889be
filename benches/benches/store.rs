//! The daemon's session store, on SQLite in a temporary directory (WAL, `synchronous=NORMAL`),
//! 1,000 sessions with ~600-byte snapshots. Criterion's element throughput is writes per second.
//!
//! - `store/sqlite_commit/{1,100,1000}`: one `Store::commit` of a batch of 1, 100 or 1,000
//!   `Snapshot` writes of distinct sessions (the windows walk over all 1,000 sessions): the
//!   cost of one transaction against the number of writes it carries;
//! - `store/writer_flush/1000`: the batching writer end to end: submit a snapshot of each of the
//!   1,000 sessions, then `flush` (the writer's thread batches, commits and publishes the
//!   durable ticket; the clone of each write is part of the submitting side's cost).

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use livepay_daemon::store::{SqliteStore, Store, Write, WriterConfig, spawn_writer};

const SESSIONS: usize = 1_000;
const SNAPSHOT_BYTES: usize = 600;

fn session_id(index: usize) -> String {
    format!("session-{index:04}")
}

/// An engine snapshot's shape: counters and a base64 signer state, padded to ~600 bytes.
fn snapshot_json(index: usize, round: u64) -> String {
    let head =
        format!("{{\"round\":{round},\"session\":{index},\"balance\":\"123456789\",\"state\":{{\"State\":\"");
    let tail = "\",\"Sig\":\"c2lnbmF0dXJl\"}}";
    let padding = SNAPSHOT_BYTES.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "QUJD".repeat(padding / 4))
}

/// A store at `path` holding the 1,000 sessions, so every snapshot updates a row.
fn seeded_store(path: &Path) -> SqliteStore {
    let mut store = SqliteStore::open(path).expect("open the bench store");
    let puts: Vec<Write> = (0..SESSIONS)
        .map(|index| Write::Put {
            id: session_id(index),
            spec: format!("{{\"orchestrator\":\"https://o{index}.example\",\"price\":\"1000\"}}"),
            snapshot: snapshot_json(index, 0),
            at_ms: 0,
            epoch: 1,
            lease_until_ms: 0,
            app_lease_until_ms: None,
        })
        .collect();
    store.commit("local", &puts).expect("seed the bench store");
    store
}

fn snapshots(round: u64) -> Vec<Write> {
    (0..SESSIONS)
        .map(|index| Write::Snapshot {
            id: session_id(index),
            snapshot: snapshot_json(index, round),
            at_ms: round,
            epoch: 1,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = snapshots(1);
    let mut group = c.benchmark_group("store");

    let mut store = seeded_store(&dir.path().join("commit.db"));
    for batch in [1_usize, 100, 1_000] {
        group.throughput(Throughput::Elements(batch as u64));
        let mut start = 0;
        group.bench_with_input(BenchmarkId::new("sqlite_commit", batch), &batch, |b, &batch| {
            b.iter(|| {
                // SESSIONS is a multiple of every batch size: the windows tile the sessions.
                let end = start + batch;
                store
                    .commit("local", black_box(&writes[start..end]))
                    .expect("commit");
                start = end % SESSIONS;
            });
        });
    }
    drop(store);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let writer = spawn_writer(
        Box::new(seeded_store(&dir.path().join("writer.db"))),
        WriterConfig::default(),
    );
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group.bench_function(BenchmarkId::new("writer_flush", SESSIONS), |b| {
        b.iter(|| {
            for write in &writes {
                writer.submit(write.clone());
            }
            runtime.block_on(writer.flush()).expect("flush");
        });
    });
    group.finish();
    runtime.block_on(writer.close()).expect("close the writer");
}

criterion_group!(benches, bench);
criterion_main!(benches);
