//! The [`conformance`](super::conformance) suite on every store, and what only one store has:
//! SQLite's migration from schema 1, PostgreSQL's schema checks, the writer's fencing.
//!
//! PostgreSQL runs when `LIVEPAY_TEST_POSTGRES` holds a server's URL (`.ci/postgres.sh start`
//! prints one); with `LIVEPAY_REQUIRE_POSTGRES=1` (CI) its absence is a failure, not a skip.

use std::path::PathBuf;
use std::time::Duration;

use super::conformance::{self, Harness};
use super::*;

struct Memory(MemoryStore);

impl Harness for Memory {
    fn fresh(&mut self) -> Box<dyn Store> {
        self.0 = MemoryStore::new();
        Box::new(self.0.clone())
    }

    fn second(&mut self) -> Option<Box<dyn Store>> {
        Some(Box::new(self.0.clone()))
    }

    fn fail_next_commit(&mut self) -> bool {
        self.0.fail_next_commits(1);
        true
    }
}

#[test]
fn conformance_memory() {
    conformance::run_all(&mut Memory(MemoryStore::new()));
}

struct Sqlite {
    dir: tempfile::TempDir,
    made: u32,
}

impl Harness for Sqlite {
    fn fresh(&mut self) -> Box<dyn Store> {
        self.made += 1;
        let path = self.dir.path().join(format!("store-{}.db", self.made));
        Box::new(SqliteStore::open(&path).expect("open a fresh SQLite store"))
    }

    fn second(&mut self) -> Option<Box<dyn Store>> {
        // One process per file: the lock refuses a second store (tested in `tests.rs`).
        None
    }

    fn fail_next_commit(&mut self) -> bool {
        false
    }
}

#[test]
fn conformance_sqlite() {
    conformance::run_all(&mut Sqlite {
        dir: tempfile::tempdir().expect("tempdir"),
        made: 0,
    });
}

/// A schema name no other test run uses.
fn unique_schema(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t_{tag}_{}_{}_{}",
        std::process::id(),
        crate::service::unix_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn pg_options(schema: &str) -> PgOptions {
    PgOptions {
        op_timeout: Duration::from_millis(800),
        server_clock: false,
        schema: Some(schema.to_owned()),
    }
}

struct Postgres {
    url: String,
    schema: String,
    /// The connection holding the lock of `fail_next_commit`, and how to release it.
    holder: Option<(tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Harness for Postgres {
    fn fresh(&mut self) -> Box<dyn Store> {
        self.schema = unique_schema("conf");
        Box::new(PgStore::open(&self.url, pg_options(&self.schema)).expect("open a PostgreSQL store"))
    }

    fn second(&mut self) -> Option<Box<dyn Store>> {
        Some(Box::new(
            PgStore::open(&self.url, pg_options(&self.schema)).expect("open a second handle"),
        ))
    }

    fn fail_next_commit(&mut self) -> bool {
        // Another connection holds the table's lock past the store's deadline, until `heal`.
        let url = self.url.clone();
        let schema = self.schema.clone();
        let (locked, wait) = std::sync::mpsc::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let holder = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(connection);
                let tx = client.transaction().await.expect("begin");
                tx.batch_execute(&format!(
                    "LOCK TABLE {schema}.livepay_sessions IN ACCESS EXCLUSIVE MODE"
                ))
                .await
                .expect("lock");
                let _ = locked.send(());
                let _ = released.await;
                tx.rollback().await.expect("unlock");
            });
        });
        wait.recv().expect("the lock is taken");
        self.holder = Some((release, holder));
        true
    }

    fn heal(&mut self) {
        if let Some((release, holder)) = self.holder.take() {
            let _ = release.send(());
            holder.join().expect("the lock holder");
        }
    }
}

#[test]
fn conformance_postgres() {
    let Some(url) = conformance::test_server() else {
        return;
    };
    conformance::run_all(&mut Postgres {
        url,
        schema: String::new(),
        holder: None,
    });
}

#[test]
fn postgres_refuses_a_newer_schema_and_hides_the_password() {
    let Some(url) = conformance::test_server() else {
        return;
    };
    let schema = unique_schema("newer");
    drop(PgStore::open(&url, pg_options(&schema)).expect("create"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "UPDATE {schema}.livepay_meta SET value = 99 WHERE key = 'schema_version'"
            ))
            .await
            .expect("bump the version");
    });
    let error = PgStore::open(&url, pg_options(&schema)).expect_err("a newer schema");
    assert_eq!(
        error,
        StoreError::NewerSchema {
            found: 99,
            supported: SCHEMA_VERSION
        }
    );
    // A server that is not there: an error naming the URL without its password, in time.
    let error = PgStore::open(
        "postgres://livepay:hunter2-secret@127.0.0.1:9/livepay",
        pg_options("t_none"),
    )
    .expect_err("nothing listens on port 9");
    let text = error.to_string();
    assert!(text.contains("127.0.0.1:9"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{error:?}").contains("hunter2"));
    let error = PgStore::open("postgres://a:hunter2@[nope", PgOptions::default()).expect_err("bad URL");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn sqlite_migrates_a_version_1_file_and_keeps_its_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("v1.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("create a version 1 file");
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
             CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL, spec TEXT NOT NULL,
                 snapshot TEXT NOT NULL, closed TEXT, updated_ms INTEGER NOT NULL);
             INSERT INTO meta VALUES ('schema_version', 1);
             INSERT INTO sessions VALUES ('open', '{}', 's1', NULL, 10);
             INSERT INTO sessions VALUES ('done', '{}', 's2', 'released', 20);",
        )
        .expect("version 1 schema");
    }
    let mut store = SqliteStore::open(&path).expect("migrate");
    let records = store.load().expect("load");
    assert_eq!(records.len(), 2);
    let open = store.get("open").expect("get").expect("kept");
    assert_eq!(
        (open.snapshot.as_str(), open.owner.as_deref(), open.epoch),
        ("s1", None, 0)
    );
    // The restarted daemon claims it (epoch 1) and writes under that epoch.
    let claimed = store
        .claim(
            LeaseTerms {
                owner: "d",
                now_ms: 100,
                lease_ms: 10,
            },
            10,
            true,
        )
        .expect("claim");
    assert_eq!(
        claimed
            .iter()
            .map(|r| (r.id.as_str(), r.epoch))
            .collect::<Vec<_>>(),
        [("open", 1)]
    );
    let version: i64 = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| {
            r.get(0)
        })
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
}

#[tokio::test]
async fn writer_reports_fenced_writes_to_their_waiters_and_the_callback() {
    let store = MemoryStore::new();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = std::sync::Arc::clone(&heard);
    let writer = try_spawn_fenced_writer(
        Box::new(store.clone()),
        WriterConfig {
            max_delay: Duration::from_secs(3600),
            ..WriterConfig::default()
        },
        "me",
        Some(Box::new(move |ids: &[String]| {
            sink.lock().expect("sink").extend_from_slice(ids);
        })),
    )
    .expect("spawn");
    let put = |id: &str, epoch| Write::Put {
        id: id.into(),
        spec: "{}".into(),
        snapshot: "p".into(),
        at_ms: 1,
        epoch,
        lease_until_ms: 0,
        app_lease_until_ms: None,
    };
    let snapshot = |id: &str, text: &str, epoch| Write::Snapshot {
        id: id.into(),
        snapshot: text.into(),
        at_ms: 2,
        epoch,
    };
    let mine = writer.submit(put("mine", 1));
    writer.flush().await.expect("flush");
    writer.durable(mine).await.expect("mine is stored");
    // Another daemon took "mine" (epoch 2) meanwhile.
    let mut other = store.clone();
    other
        .claim(
            LeaseTerms {
                owner: "other",
                now_ms: 1,
                lease_ms: 1,
            },
            10,
            true,
        )
        .expect("take over");
    // Two coalesced write-aheads, both fenced; a write of another session, not.
    let first = writer.submit(snapshot("mine", "s1", 1));
    let second = writer.submit(snapshot("mine", "s2", 1));
    let fine = writer.submit(put("fine", 1));
    writer.flush().await.expect("flush");
    for ticket in [first, second] {
        assert_eq!(
            writer.durable(ticket).await,
            Err(StoreError::Fenced { id: "mine".into() })
        );
    }
    writer.durable(fine).await.expect("fine is stored");
    assert_eq!(*heard.lock().expect("heard"), ["mine"]);
    assert_eq!(store.record("mine").map(|r| r.snapshot), Some("p".into()));
    // Reads and claims run on the writer's thread.
    let owner = writer
        .with_store(|store| Ok(store.get("mine")?.and_then(|r| r.owner)))
        .await
        .expect("read");
    assert_eq!(owner.as_deref(), Some("other"));
    writer.close().await.expect("close");
}
