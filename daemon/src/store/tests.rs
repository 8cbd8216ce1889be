//! Tests of the stores and the writer: deterministic, no sleeps, no clock assertions. Writer
//! tests that depend on batch boundaries use a huge `max_delay` or backoff, so only an explicit
//! `flush` (or `close`) ends a batch or triggers a retry.

use std::path::Path;
use std::time::Duration;

use super::*;

const SECRET: &str = "SECRET-STATE";

/// The owner a writer spawned by `spawn_writer` commits as.
const OWNER: &str = "local";

fn put(id: &str, snapshot: &str, at_ms: u64) -> Write {
    Write::Put {
        id: id.into(),
        spec: format!("{{\"spec\":\"{id}\"}}"),
        snapshot: snapshot.into(),
        at_ms,
        epoch: 1,
        lease_until_ms: 0,
        app_lease_until_ms: None,
    }
}

fn snapshot(id: &str, snapshot: &str, at_ms: u64) -> Write {
    Write::Snapshot {
        id: id.into(),
        snapshot: snapshot.into(),
        at_ms,
        epoch: 1,
    }
}

fn close(id: &str, reason: &str, at_ms: u64) -> Write {
    Write::Close {
        id: id.into(),
        reason: reason.into(),
        at_ms,
        epoch: 1,
    }
}

fn record(id: &str, snapshot: &str, closed: Option<&str>, updated_ms: u64) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        spec: format!("{{\"spec\":\"{id}\"}}"),
        snapshot: snapshot.into(),
        closed: closed.map(Into::into),
        updated_ms,
        owner: Some(OWNER.into()),
        epoch: 1,
        lease_until_ms: 0,
        close_requested: None,
        app_lease_until_ms: None,
    }
}

/// Only an explicit flush or close ends a batch; a failed batch is retried only on a flush.
fn manual_config() -> WriterConfig {
    WriterConfig {
        max_delay: Duration::from_secs(3600),
        min_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        ..WriterConfig::default()
    }
}

fn raw_connection(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open the test database directly")
}

// ---- SqliteStore ----------------------------------------------------------------------------

#[test]
fn sqlite_round_trip_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    let mut store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.load().expect("load"), Vec::new());
    store
        .commit(OWNER, &[put("b", "b0", 1), put("a", "a0", 2)])
        .expect("commit puts");
    store
        .commit(OWNER, &[snapshot("a", "a1", 3), close("b", "exhausted", 4)])
        .expect("commit updates");
    drop(store);

    let mut reopened = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        reopened.load().expect("load"),
        vec![
            record("a", "a1", None, 3),
            record("b", "b0", Some("exhausted"), 4)
        ]
    );
    // A put of a closed session (re-adopted, under the next epoch) replaces it and reopens it.
    let mut again = put("b", "b9", 5);
    if let Write::Put { epoch, .. } = &mut again {
        *epoch = 2;
    }
    reopened.commit(OWNER, &[again]).expect("re-put");
    let mut expected = record("b", "b9", None, 5);
    expected.epoch = 2;
    assert_eq!(reopened.load().expect("load")[1], expected);
}

#[test]
fn sqlite_uses_wal_and_the_requested_durability() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.durability(), Durability::Normal);
    assert_eq!(store.synchronous().expect("pragma"), 1, "NORMAL");
    // WAL is persistent: a second connection sees it in the file itself.
    let mode: String = raw_connection(&path)
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    drop(store);

    let full = SqliteStore::open_with(&path, Durability::Full).expect("open FULL");
    assert_eq!(full.synchronous().expect("pragma"), 2, "FULL");
}

#[cfg(unix)]
#[test]
fn sqlite_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    let mut store = SqliteStore::open(&path).expect("open");
    store.commit(OWNER, &[put("a", SECRET, 1)]).expect("commit");
    assert_eq!(mode(&path), 0o600);
    for sidecar in ["sessions.db-wal", "sessions.db-shm"] {
        let sidecar = dir.path().join(sidecar);
        if sidecar.exists() {
            assert_eq!(mode(&sidecar) & 0o077, 0, "{}", sidecar.display());
        }
    }

    // An existing file readable by others is tightened on open.
    let loose = dir.path().join("loose.db");
    std::fs::write(&loose, b"").expect("create");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    SqliteStore::open(&loose).expect("open");
    assert_eq!(mode(&loose), 0o600);
}

#[test]
fn sqlite_ignores_snapshots_and_closes_of_unknown_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(&dir.path().join("sessions.db")).expect("open");
    store
        .commit(OWNER, &[snapshot("ghost", "s", 1), close("ghost", "gone", 2)])
        .expect("ignored");
    assert_eq!(store.load().expect("load"), Vec::new());
    store
        .commit(
            OWNER,
            &[
                put("a", "a0", 1),
                snapshot("ghost", "s", 2),
                snapshot("a", "a1", 3),
            ],
        )
        .expect("mixed");
    assert_eq!(store.load().expect("load"), vec![record("a", "a1", None, 3)]);
    store.commit(OWNER, &[]).expect("an empty batch is a no-op");
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    drop(SqliteStore::open(&path).expect("create"));
    raw_connection(&path)
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [SCHEMA_VERSION + 1],
        )
        .expect("bump the version");

    let error = SqliteStore::open(&path).expect_err("newer schema");
    assert_eq!(
        error,
        StoreError::NewerSchema {
            found: SCHEMA_VERSION + 1,
            supported: SCHEMA_VERSION
        }
    );
    assert!(
        error
            .to_string()
            .contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{error}"
    );
}

#[test]
fn sqlite_rejects_garbage_and_foreign_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "this is not a database, just text. ".repeat(200)).expect("write");
    let error = SqliteStore::open(&garbage).expect_err("garbage");
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");

    let foreign = dir.path().join("foreign.db");
    raw_connection(&foreign)
        .execute_batch("CREATE TABLE songs (title TEXT);")
        .expect("foreign db");
    let error = SqliteStore::open(&foreign).expect_err("foreign");
    assert!(matches!(error, StoreError::Schema { .. }), "{error:?}");

    let missing_dir = dir.path().join("no-such-dir").join("sessions.db");
    let error = SqliteStore::open(&missing_dir).expect_err("missing directory");
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
}

#[test]
fn sqlite_commit_is_all_or_nothing_and_its_error_holds_no_contents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    let mut store = SqliteStore::open(&path).expect("open");
    // A trigger makes the second write of the batch fail after the first one was applied.
    raw_connection(&path)
        .execute_batch(
            "CREATE TRIGGER reject BEFORE INSERT ON sessions WHEN NEW.id = 'bad'
             BEGIN SELECT RAISE(ABORT, 'rejected by test trigger'); END;",
        )
        .expect("trigger");

    let error = store
        .commit(OWNER, &[put("good", SECRET, 1), put("bad", SECRET, 2)])
        .expect_err("aborted");
    assert!(matches!(error, StoreError::Commit { .. }), "{error:?}");
    assert!(error.to_string().contains("rejected by test trigger"), "{error}");
    assert!(!error.to_string().contains(SECRET) && !format!("{error:?}").contains(SECRET));
    assert_eq!(
        store.load().expect("load"),
        Vec::new(),
        "the first write was rolled back"
    );
}

// ---- MemoryStore ----------------------------------------------------------------------------

#[test]
fn memory_store_fails_on_request_and_shares_state_between_clones() {
    let observer = MemoryStore::new();
    let mut store = observer.clone();
    observer.fail_next_commits(1);
    let error = store.commit(OWNER, &[put("a", "a0", 1)]).expect_err("injected");
    assert!(matches!(error, StoreError::Commit { .. }));
    assert_eq!((observer.commits(), observer.failed_commits()), (0, 1));
    assert_eq!(observer.records(), Vec::new(), "a failed commit applies nothing");

    store
        .commit(
            OWNER,
            &[put("b", "b0", 1), put("a", "a0", 2), snapshot("ghost", "g", 3)],
        )
        .expect("commit");
    store
        .commit(OWNER, &[snapshot("a", "a1", 4), close("b", "done", 5)])
        .expect("commit");
    assert_eq!(
        store.load().expect("load"),
        vec![record("a", "a1", None, 4), record("b", "b0", Some("done"), 5)]
    );
    assert_eq!(observer.record("a"), Some(record("a", "a1", None, 4)));
    assert_eq!((observer.commits(), observer.failed_commits()), (2, 1));
}

// ---- Writer ---------------------------------------------------------------------------------

#[tokio::test]
async fn writer_durable_resolves_once_committed() {
    let store = MemoryStore::new();
    let writer = spawn_writer(Box::new(store.clone()), WriterConfig::default());
    let first = writer.submit(put("a", "a0", 1));
    let second = writer.submit(snapshot("a", "a1", 2));
    assert!(first < second);
    writer.durable(second).await.expect("durable");
    writer
        .durable(first)
        .await
        .expect("an earlier ticket is durable too");
    assert_eq!(store.record("a"), Some(record("a", "a1", None, 2)));
    let stats = writer.stats();
    assert_eq!((stats.writes_submitted, stats.durable_ticket), (2, 2));
    assert!(stats.commits >= 1 && stats.commits == store.commits());
    writer.close().await.expect("close");
}

#[tokio::test]
async fn writer_coalesces_snapshots_of_one_session() {
    let store = MemoryStore::new();
    let writer = spawn_writer(Box::new(store.clone()), manual_config());
    writer.submit(put("a", "a0", 0));
    writer.flush().await.expect("flush the put");
    let before = writer.stats();

    for at in 1..=100 {
        writer.submit(snapshot("a", &format!("a{at}"), at));
    }
    writer.flush().await.expect("flush the snapshots");
    let after = writer.stats();
    assert_eq!(after.commits - before.commits, 1, "one transaction");
    assert_eq!(after.rows_written - before.rows_written, 1, "one row written");
    assert_eq!(after.coalesced - before.coalesced, 99);
    assert_eq!(store.record("a"), Some(record("a", "a100", None, 100)));
    writer.close().await.expect("close");
}

/// A deterministic stand-in for a property test: whatever the mix of writes, the writer's
/// coalesced batches leave the store exactly as applying every write one by one would.
#[tokio::test]
async fn writer_coalescing_never_changes_the_outcome() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: u64| {
        // xorshift64: enough variety for write mixes, identical on every run.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    for round in 0..20 {
        let mut reference = MemoryStore::new();
        let batched = MemoryStore::new();
        let writer = spawn_writer(Box::new(batched.clone()), manual_config());
        let count = 1 + next(200);
        for at in 0..count {
            let id = format!("s{}", next(4));
            let write = match next(10) {
                0 => put(&id, &format!("put{round}-{at}"), at),
                1 => close(&id, &format!("reason{at}"), at),
                _ => snapshot(&id, &format!("snap{round}-{at}"), at),
            };
            reference
                .commit(OWNER, std::slice::from_ref(&write))
                .expect("reference");
            writer.submit(write);
            if next(50) == 0 {
                writer.flush().await.expect("flush mid-way");
            }
        }
        writer.flush().await.expect("flush");
        assert_eq!(batched.records(), reference.records(), "round {round}");
        let stats = writer.stats();
        assert_eq!(stats.rows_written + stats.coalesced, count, "round {round}");
        writer.close().await.expect("close");
    }
}

#[tokio::test]
async fn writer_reports_a_failed_commit_then_retries_without_loss() {
    let store = MemoryStore::new();
    store.fail_next_commits(1);
    let config = WriterConfig {
        max_delay: Duration::ZERO,
        ..manual_config()
    };
    let writer = spawn_writer(Box::new(store.clone()), config);

    let ticket = writer.submit(put("a", SECRET, 1));
    let error = writer.durable(ticket).await.expect_err("the first commit fails");
    assert!(matches!(error, StoreError::Commit { .. }), "{error:?}");
    assert_eq!(store.record("a"), None);
    // Reported promptly and repeatably while the retry waits for its (hour-long) backoff.
    writer.durable(ticket).await.expect_err("still failed");

    // The flush retries at once; the kept batch commits; the same ticket is now durable.
    writer.flush().await.expect("the retry commits");
    writer.durable(ticket).await.expect("durable after the retry");
    assert_eq!(store.record("a").map(|r| r.snapshot), Some(SECRET.to_owned()));
    let stats = writer.stats();
    assert_eq!(
        (stats.failed_commits, stats.commits, stats.rows_written),
        (1, 1, 1)
    );
    writer.close().await.expect("close");
}

#[tokio::test]
async fn writer_flush_reports_only_failures_after_it() {
    let store = MemoryStore::new();
    store.fail_next_commits(2);
    let config = WriterConfig {
        max_delay: Duration::ZERO,
        ..manual_config()
    };
    let writer = spawn_writer(Box::new(store.clone()), config);
    let ticket = writer.submit(put("a", "a0", 1));
    writer.durable(ticket).await.expect_err("first attempt fails");
    writer
        .flush()
        .await
        .expect_err("the retry the flush triggers fails too");
    writer.flush().await.expect("the next retry commits");
    assert_eq!(store.failed_commits(), 2);
    assert_eq!(store.record("a"), Some(record("a", "a0", None, 1)));
    writer.close().await.expect("close");
}

#[tokio::test]
async fn writer_after_close_answers_err_instead_of_hanging() {
    let store = MemoryStore::new();
    let writer = spawn_writer(Box::new(store.clone()), manual_config());
    let survivor = writer.clone();
    let committed = writer.submit(put("a", "a0", 1));
    writer.close().await.expect("close commits what is queued");
    assert_eq!(store.record("a"), Some(record("a", "a0", None, 1)));
    survivor
        .durable(committed)
        .await
        .expect("committed before the close");

    let late = survivor.submit(snapshot("a", "a1", 2));
    assert_eq!(survivor.durable(late).await, Err(StoreError::WriterStopped));
    assert_eq!(survivor.flush().await, Err(StoreError::WriterStopped));
    assert_eq!(survivor.clone().close().await, Err(StoreError::WriterStopped));
    assert_eq!(store.record("a").map(|r| r.snapshot), Some("a0".to_owned()));
}

#[tokio::test]
async fn writer_close_reports_writes_it_could_not_commit() {
    let store = MemoryStore::new();
    store.fail_next_commits(usize::MAX);
    let config = WriterConfig {
        max_delay: Duration::from_secs(3600),
        min_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        ..WriterConfig::default()
    };
    let writer = spawn_writer(Box::new(store.clone()), config);
    let survivor = writer.clone();
    let ticket = writer.submit(put("a", "a0", 1));
    let error = writer.close().await.expect_err("every attempt fails");
    assert!(matches!(error, StoreError::Commit { .. }), "{error:?}");
    assert!(survivor.durable(ticket).await.is_err());
    assert_eq!(store.failed_commits(), 3, "the final attempts are bounded");
}

/// A store that panics on commit, standing in for a writer thread that dies.
struct PanickingStore(MemoryStore);

impl Store for PanickingStore {
    fn load(&mut self) -> Result<Vec<SessionRecord>, StoreError> {
        self.0.load()
    }

    fn get(&mut self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.0.get(id)
    }

    fn commit(&mut self, _owner: &str, _batch: &[Write]) -> Result<Committed, StoreError> {
        panic!("store failure injected by the test (expected in the output)");
    }

    fn claim(
        &mut self,
        terms: LeaseTerms<'_>,
        max: usize,
        all: bool,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.0.claim(terms, max, all)
    }

    fn renew(&mut self, terms: LeaseTerms<'_>, held: &[(String, u64)]) -> Result<Renewal, StoreError> {
        self.0.renew(terms, held)
    }

    fn release(&mut self, owner: &str) -> Result<(), StoreError> {
        self.0.release(owner)
    }

    fn request_close(&mut self, id: &str, reason: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.0.request_close(id, reason)
    }

    fn renew_app(&mut self, id: &str, until_ms: u64) -> Result<bool, StoreError> {
        self.0.renew_app(id, until_ms)
    }
}

#[tokio::test]
async fn writer_thread_death_is_an_error_not_a_hang() {
    let writer = spawn_writer(
        Box::new(PanickingStore(MemoryStore::new())),
        WriterConfig::default(),
    );
    let ticket = writer.submit(put("a", "a0", 1));
    assert_eq!(writer.durable(ticket).await, Err(StoreError::WriterStopped));
    assert_eq!(writer.close().await, Err(StoreError::WriterStopped));
}

#[tokio::test]
async fn writer_on_sqlite_persists_across_close_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    let writer = spawn_writer(
        Box::new(SqliteStore::open(&path).expect("open")),
        WriterConfig::default(),
    );
    for id in ["a", "b", "c"] {
        writer.submit(put(id, &format!("{id}0"), 1));
    }
    let ticket = writer.submit(snapshot("b", "b1", 2));
    writer.durable(ticket).await.expect("durable");
    writer.submit(close("c", "released", 3));
    writer.close().await.expect("close commits the close");

    let mut reopened = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        reopened.load().expect("load"),
        vec![
            record("a", "a0", None, 1),
            record("b", "b1", None, 2),
            record("c", "c0", Some("released"), 3)
        ]
    );
}

// ---- Secrets --------------------------------------------------------------------------------

#[tokio::test]
async fn debug_output_never_shows_record_contents() {
    let writes = [
        put("a", SECRET, 1),
        Write::Put {
            id: "a".into(),
            spec: SECRET.into(),
            snapshot: "s".into(),
            at_ms: 1,
            epoch: 1,
            lease_until_ms: 0,
            app_lease_until_ms: None,
        },
        snapshot("a", SECRET, 2),
        close("a", SECRET, 3),
    ];
    for write in &writes {
        let shown = format!("{write:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("\"a\""), "ids are shown: {shown}");
    }
    let mut record = SessionRecord::new("a", SECRET, SECRET, 1);
    record.closed = Some(SECRET.into());
    record.close_requested = Some(SECRET.into());
    assert!(!format!("{record:?}").contains(SECRET));
    assert!(format!("{record:?}").contains("snapshot_len: 12"), "{record:?}");

    let store = MemoryStore::new();
    store.fail_next_commits(1);
    let writer = spawn_writer(
        Box::new(store.clone()),
        WriterConfig {
            max_delay: Duration::ZERO,
            ..manual_config()
        },
    );
    let ticket = writer.submit(put("a", SECRET, 1));
    let error = writer.durable(ticket).await.expect_err("injected");
    for shown in [
        format!("{error:?}"),
        error.to_string(),
        format!("{writer:?}"),
        format!("{store:?}"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    writer.close().await.expect("close retries and commits");
}
