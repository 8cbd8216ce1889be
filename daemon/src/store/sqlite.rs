//! The durable store: one SQLite file in WAL mode, private to its owner.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{CachedStatement, Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{
    Committed, LeaseTerms, Renewal, SCHEMA_VERSION, SessionRecord, StateLock, Store, StoreError, Write,
};

/// How long a statement waits for a lock held by another connection before failing with
/// `SQLITE_BUSY`: long enough to ride out a checkpoint or a second reader (a backup, the CLI),
/// short enough that a stuck lock surfaces as an error the writer retries.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1's tables; [`MIGRATE_TO_2`] brings them to the current schema.
const CREATE_SCHEMA_1: &str = "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        id         TEXT PRIMARY KEY NOT NULL,
        spec       TEXT NOT NULL,
        snapshot   TEXT NOT NULL,
        closed     TEXT,
        updated_ms INTEGER NOT NULL
    );";

/// Version 2: leases and epochs, close requests, the app's lease, the daemons' heartbeats.
/// A version 1 record has no owner and epoch 0: the first claim takes it.
const MIGRATE_TO_2: &str = "
    ALTER TABLE sessions ADD COLUMN owner TEXT;
    ALTER TABLE sessions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN close_requested TEXT;
    ALTER TABLE sessions ADD COLUMN app_lease_until_ms INTEGER;
    CREATE TABLE daemons (
        owner          TEXT PRIMARY KEY NOT NULL,
        alive_until_ms INTEGER NOT NULL
    );
    UPDATE meta SET value = 2 WHERE key = 'schema_version';";

const COLUMNS: &str = "id, spec, snapshot, closed, updated_ms, owner, epoch, lease_until_ms, close_requested, app_lease_until_ms";

// A new schema version needs its migration in `ensure_schema`.
const _: () = assert!(SCHEMA_VERSION == 2);

/// A put creates the record, or replaces it when it is closed under a lower epoch (adopted
/// back) or already the writer's under this epoch; otherwise it changes no row (fenced).
const PUT: &str = "
    INSERT INTO sessions (id, spec, snapshot, closed, updated_ms, owner, epoch, lease_until_ms,
                          close_requested, app_lease_until_ms)
    VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, NULL, ?8)
    ON CONFLICT (id) DO UPDATE SET
        spec = excluded.spec, snapshot = excluded.snapshot, closed = NULL,
        updated_ms = excluded.updated_ms, owner = excluded.owner, epoch = excluded.epoch,
        lease_until_ms = excluded.lease_until_ms, close_requested = NULL,
        app_lease_until_ms = excluded.app_lease_until_ms
    WHERE (sessions.closed IS NOT NULL AND sessions.epoch < excluded.epoch)
       OR (sessions.closed IS NULL AND sessions.epoch = excluded.epoch
           AND sessions.owner = excluded.owner)";
/// Conditional on the writer's ownership under its epoch: no row changed means fenced.
const SNAPSHOT: &str = "UPDATE sessions SET snapshot = ?2, updated_ms = ?3
    WHERE id = ?1 AND owner = ?4 AND epoch = ?5 AND closed IS NULL";
const CLOSE: &str = "UPDATE sessions SET closed = ?2, updated_ms = ?3
    WHERE id = ?1 AND owner = ?4 AND epoch = ?5 AND closed IS NULL";
const RENEW: &str = "UPDATE sessions SET lease_until_ms = ?4
    WHERE id = ?1 AND owner = ?2 AND epoch = ?3 AND closed IS NULL
    RETURNING close_requested, app_lease_until_ms";

/// How hard a commit pushes its data to the disk (SQLite's `PRAGMA synchronous`).
///
/// Both levels survive the death of the process (`kill -9`, a panic, the OOM killer): a
/// committed transaction is in the WAL file, which the kernel holds even if the process is
/// gone. They differ only when the whole machine stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// `synchronous=NORMAL`: no fsync per commit (only at checkpoints). Durable against process
    /// death, which is the daemon's requirement; after a power loss or a kernel crash the last
    /// commits may be rolled back (the database stays consistent). The default.
    #[default]
    Normal,
    /// `synchronous=FULL`: an fsync of the WAL per commit, so a commit also survives power
    /// loss and kernel crashes, at the cost of one disk flush per batch.
    Full,
}

impl Durability {
    fn pragma_value(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// The durable [`Store`]: one SQLite database file.
///
/// - WAL journal mode, so a commit appends to the `-wal` file instead of rewriting pages, and
///   readers (a backup, the CLI) do not block the writer;
/// - [`Durability::Normal`] by default (see there; [`Durability::Full`] for power loss);
/// - a busy timeout of a few seconds for locks held by other connections;
/// - on unix, the file is created with mode `0600` (before SQLite sees it) and any group or
///   other permission bits of an existing file, its `-wal` and its `-shm` are removed, since the
///   records hold secrets. SQLite creates the `-wal` and `-shm` files with the main file's mode,
///   so they start private too;
/// - the schema (a `sessions` table, a `daemons` table and a `meta` table with the schema
///   version) is created if missing, migrated from an older version, and a newer one is refused.
///
/// One process at a time ([`StateLock`]): the daemon claims every open session at start
/// (`claim` with `all`), since the lock proves their previous owner gone.
///
/// Statements are prepared once and cached on the connection.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    durability: Durability,
    /// One daemon per file, for the store's life.
    _lock: StateLock,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the store at `path` with [`Durability::Normal`].
    ///
    /// # Errors
    ///
    /// See [`open_with`](SqliteStore::open_with).
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, Durability::Normal)
    }

    /// Opens (creating if missing) the store at `path` with the given durability.
    ///
    /// The parent directory must exist.
    ///
    /// # Errors
    ///
    /// - [`StoreError::Open`] if the file cannot be created or opened, its permissions cannot
    ///   be restricted, or it is not a SQLite database (a corrupt or foreign file);
    /// - [`StoreError::Schema`] if the schema cannot be created or read, or the database has
    ///   tables but is not a livepay store;
    /// - [`StoreError::NewerSchema`] if a newer livepay wrote the database.
    pub fn open_with(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        let open_error = |detail: String| StoreError::Open {
            path: path.to_path_buf(),
            detail,
        };
        // First the lock: a second daemon on this file touches nothing.
        let lock = StateLock::take(path)?;
        create_private(path).map_err(|e| open_error(e.to_string()))?;
        // No URI interpretation (a path is a path), no CREATE (the file exists, private, and a
        // vanished file should be an error, not a new world-readable one).
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(e.to_string()))?;
        // The first statement that reads the file: a file that is not a database fails here.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| open_error(e.to_string()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems (network shares) cannot hold WAL's shared memory. The rollback
            // journal is still crash-safe, only slower, so this is worth a warning, not a refusal.
            tracing::warn!(path = %path.display(), journal_mode = %mode, "SQLite refused WAL mode");
        }
        conn.pragma_update(None, "synchronous", durability.pragma_value())
            .map_err(|e| open_error(e.to_string()))?;
        ensure_schema(&mut conn)?;
        restrict_sidecars(path).map_err(|e| open_error(e.to_string()))?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            durability,
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability the store was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// SQLite's `PRAGMA synchronous` of this connection (1 = NORMAL, 2 = FULL).
    #[cfg(test)]
    pub(super) fn synchronous(&self) -> rusqlite::Result<i64> {
        self.conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
    }
}

impl SqliteStore {
    fn query_records(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> rusqlite::Result<Vec<SessionRecord>> {
        let mut statement = self.conn.prepare_cached(sql)?;
        let rows = statement.query_map(params, record_of)?;
        rows.collect()
    }
}

/// A row of [`COLUMNS`].
fn record_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        spec: row.get(1)?,
        snapshot: row.get(2)?,
        closed: row.get(3)?,
        updated_ms: ms_from_sql(row.get(4)?),
        owner: row.get(5)?,
        epoch: ms_from_sql(row.get(6)?),
        lease_until_ms: ms_from_sql(row.get(7)?),
        close_requested: row.get(8)?,
        app_lease_until_ms: row.get::<_, Option<i64>>(9)?.map(ms_from_sql),
    })
}

#[allow(clippy::needless_pass_by_value)] // The shape `map_err` takes.
fn commit_error(e: rusqlite::Error) -> StoreError {
    StoreError::Commit {
        detail: e.to_string(),
    }
}

#[allow(clippy::needless_pass_by_value)] // The shape `map_err` takes.
fn load_error(e: rusqlite::Error) -> StoreError {
    StoreError::Load {
        detail: e.to_string(),
    }
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Vec<SessionRecord>, StoreError> {
        self.query_records(&format!("SELECT {COLUMNS} FROM sessions ORDER BY id"), [])
            .map_err(load_error)
    }

    fn get(&mut self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let mut records = self
            .query_records(&format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"), [id])
            .map_err(load_error)?;
        Ok(records.pop())
    }

    fn commit(&mut self, owner: &str, batch: &[Write]) -> Result<Committed, StoreError> {
        let mut committed = Committed::default();
        if batch.is_empty() {
            return Ok(committed);
        }
        // IMMEDIATE takes the write lock up front: a deferred transaction that later upgrades
        // can fail with SQLITE_BUSY without waiting for the busy timeout.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(commit_error)?;
        {
            let mut statements = Statements::new(&tx).map_err(commit_error)?;
            for (index, write) in batch.iter().enumerate() {
                if statements.apply(owner, write).map_err(commit_error)? == 0 {
                    committed.fenced.push(index);
                }
            }
        }
        // Dropping `tx` on any error above rolls the whole batch back.
        tx.commit().map_err(commit_error)?;
        Ok(committed)
    }

    fn claim(
        &mut self,
        terms: LeaseTerms<'_>,
        max: usize,
        all: bool,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(commit_error)?;
        let claimed = {
            let sql = format!(
                "UPDATE sessions SET owner = ?1, epoch = epoch + 1, lease_until_ms = ?3
                 WHERE id IN (SELECT id FROM sessions WHERE closed IS NULL AND
                     (CASE WHEN ?5 THEN owner IS NOT ?1 ELSE (owner IS NULL OR lease_until_ms < ?2) END)
                     ORDER BY lease_until_ms, id LIMIT ?4)
                 RETURNING {COLUMNS}"
            );
            let mut statement = tx.prepare_cached(&sql).map_err(commit_error)?;
            let rows = statement
                .query_map(
                    params![
                        terms.owner,
                        ms_to_sql(terms.now_ms),
                        ms_to_sql(terms.now_ms.saturating_add(terms.lease_ms)),
                        i64::try_from(max).unwrap_or(i64::MAX),
                        all,
                    ],
                    record_of,
                )
                .map_err(commit_error)?;
            let mut claimed = rows.collect::<Result<Vec<_>, _>>().map_err(commit_error)?;
            claimed.sort_by(|a, b| a.id.cmp(&b.id));
            claimed
        };
        tx.commit().map_err(commit_error)?;
        Ok(claimed)
    }

    fn renew(&mut self, terms: LeaseTerms<'_>, held: &[(String, u64)]) -> Result<Renewal, StoreError> {
        let until = ms_to_sql(terms.now_ms.saturating_add(terms.lease_ms));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(commit_error)?;
        let mut renewal = Renewal::default();
        {
            let mut renew = tx.prepare_cached(RENEW).map_err(commit_error)?;
            for (id, epoch) in held {
                let row = renew
                    .query_row(params![id, terms.owner, ms_to_sql(*epoch), until], |row| {
                        Ok((row.get::<_, Option<String>>(0)?, row.get::<_, Option<i64>>(1)?))
                    })
                    .optional()
                    .map_err(commit_error)?;
                match row {
                    None => renewal.lost.push(id.clone()),
                    Some((requested, app)) => {
                        if let Some(reason) = requested {
                            renewal.close_requested.push((id.clone(), reason));
                        }
                        if let Some(app) = app {
                            renewal.app_leases.push((id.clone(), ms_from_sql(app)));
                        }
                    }
                }
            }
            tx.prepare_cached(
                "INSERT INTO daemons (owner, alive_until_ms) VALUES (?1, ?2)
                 ON CONFLICT (owner) DO UPDATE SET alive_until_ms = excluded.alive_until_ms",
            )
            .and_then(|mut s| s.execute(params![terms.owner, until]))
            .map_err(commit_error)?;
            let count = |sql: &str, now: Option<i64>| -> rusqlite::Result<usize> {
                let n: i64 = match now {
                    Some(now) => tx.query_row(sql, [now], |row| row.get(0))?,
                    None => tx.query_row(sql, [], |row| row.get(0))?,
                };
                Ok(usize::try_from(n).unwrap_or(0))
            };
            renewal.daemons_alive = count(
                "SELECT count(*) FROM daemons WHERE alive_until_ms >= ?1",
                Some(ms_to_sql(terms.now_ms)),
            )
            .map_err(commit_error)?;
            renewal.open_sessions =
                count("SELECT count(*) FROM sessions WHERE closed IS NULL", None).map_err(commit_error)?;
        }
        tx.commit().map_err(commit_error)?;
        Ok(renewal)
    }

    fn release(&mut self, owner: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(commit_error)?;
        tx.execute("UPDATE sessions SET lease_until_ms = 0 WHERE owner = ?1", [owner])
            .map_err(commit_error)?;
        tx.execute("DELETE FROM daemons WHERE owner = ?1", [owner])
            .map_err(commit_error)?;
        tx.commit().map_err(commit_error)
    }

    fn request_close(&mut self, id: &str, reason: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.conn
            .execute(
                "UPDATE sessions SET close_requested = ?2
                 WHERE id = ?1 AND closed IS NULL AND close_requested IS NULL",
                params![id, reason],
            )
            .map_err(commit_error)?;
        self.get(id)
    }

    fn renew_app(&mut self, id: &str, until_ms: u64) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE sessions SET app_lease_until_ms = ?2 WHERE id = ?1 AND closed IS NULL",
                params![id, ms_to_sql(until_ms)],
            )
            .map_err(commit_error)?;
        Ok(changed > 0)
    }
}

/// The write statements of one commit, taken from the connection's statement cache.
struct Statements<'conn> {
    put: CachedStatement<'conn>,
    snapshot: CachedStatement<'conn>,
    close: CachedStatement<'conn>,
}

impl<'conn> Statements<'conn> {
    fn new(conn: &'conn Connection) -> rusqlite::Result<Statements<'conn>> {
        Ok(Statements {
            put: conn.prepare_cached(PUT)?,
            snapshot: conn.prepare_cached(SNAPSHOT)?,
            close: conn.prepare_cached(CLOSE)?,
        })
    }

    /// The rows changed: 0 when the write's condition failed.
    fn apply(&mut self, owner: &str, write: &Write) -> rusqlite::Result<usize> {
        match write {
            Write::Put {
                id,
                spec,
                snapshot,
                at_ms,
                epoch,
                lease_until_ms,
                app_lease_until_ms,
            } => self.put.execute(params![
                id,
                spec,
                snapshot,
                ms_to_sql(*at_ms),
                owner,
                ms_to_sql(*epoch),
                ms_to_sql(*lease_until_ms),
                app_lease_until_ms.map(ms_to_sql),
            ]),
            Write::Snapshot {
                id,
                snapshot,
                at_ms,
                epoch,
            } => self
                .snapshot
                .execute(params![id, snapshot, ms_to_sql(*at_ms), owner, ms_to_sql(*epoch)]),
            Write::Close {
                id,
                reason,
                at_ms,
                epoch,
            } => self
                .close
                .execute(params![id, reason, ms_to_sql(*at_ms), owner, ms_to_sql(*epoch)]),
        }
    }
}

/// Creates the schema of a new database, or checks the version of an existing one, in one
/// IMMEDIATE transaction so two daemons opening the same new file cannot both create it.
fn ensure_schema(conn: &mut Connection) -> Result<(), StoreError> {
    let schema_error = |e: rusqlite::Error| StoreError::Schema {
        detail: e.to_string(),
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(schema_error)?;
    let table_exists = |name: &str| -> rusqlite::Result<bool> {
        tx.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .map(|count| count > 0)
    };
    if table_exists("meta").map_err(schema_error)? {
        let version: Option<i64> = tx
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(schema_error)?;
        match version {
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(found) if found < 1 => {
                return Err(StoreError::Schema {
                    detail: format!("invalid schema version {found}"),
                });
            }
            Some(1) => {
                if !table_exists("sessions").map_err(schema_error)? {
                    return Err(StoreError::Schema {
                        detail: "the sessions table is missing".into(),
                    });
                }
                tx.execute_batch(MIGRATE_TO_2).map_err(schema_error)?;
            }
            Some(_) => {}
            None => {
                return Err(StoreError::Schema {
                    detail: "the meta table has no schema_version: not a livepay session store".into(),
                });
            }
        }
        if !table_exists("sessions").map_err(schema_error)? {
            // Recreating it would silently forget every session: refuse instead.
            return Err(StoreError::Schema {
                detail: "the sessions table is missing".into(),
            });
        }
    } else {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                [],
                |row| row.get(0),
            )
            .map_err(schema_error)?;
        if tables > 0 {
            // Another application's database: writing our tables into it would be a surprise.
            return Err(StoreError::Schema {
                detail: "the database has tables but no meta table: not a livepay session store".into(),
            });
        }
        tx.execute_batch(CREATE_SCHEMA_1).map_err(schema_error)?;
        tx.execute("INSERT INTO meta (key, value) VALUES ('schema_version', 1)", [])
            .map_err(schema_error)?;
        tx.execute_batch(MIGRATE_TO_2).map_err(schema_error)?;
    }
    tx.commit().map_err(schema_error)
}

/// Creates `path` if missing, with mode `0600` on unix, and removes group and other permission
/// bits of an existing file: the records hold secrets.
fn create_private(path: &Path) -> std::io::Result<()> {
    // Never through a symlink: the permission change below would change its target's.
    drop(super::lock::open_private(path)?);
    restrict_to_owner(path)
}

/// Removes group and other permission bits of the `-wal` and `-shm` files, if they exist.
fn restrict_sidecars(path: &Path) -> std::io::Result<()> {
    for suffix in ["-wal", "-shm"] {
        let mut sidecar = OsString::from(path.as_os_str());
        sidecar.push(suffix);
        match restrict_to_owner(Path::new(&sidecar)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> std::io::Result<()> {
    // No portable mode bits: the file inherits the directory's ACL.
    Ok(())
}

/// SQLite integers are `i64`; a timestamp past `i64::MAX` ms (year 292 million) saturates.
fn ms_to_sql(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// A negative timestamp (written by hand, not by the store) reads as 0.
fn ms_from_sql(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}
