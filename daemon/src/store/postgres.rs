//! The fleet's store: one PostgreSQL database shared by every daemon of a fleet.
//!
//! Built on `tokio-postgres`, driven from the store's own thread through a current-thread
//! runtime: the [`Store`] contract is blocking (the writer thread owns the store), and every
//! operation is bounded by [`PgOptions::op_timeout`], so a cut network or a stopped server is an
//! error the writer retries, never a hang. One connection per store is enough: the writer
//! batches every write of the daemon into one transaction, pipelined (the statements of a batch
//! are sent without waiting for each answer). A lost connection is reopened by the next
//! operation.
//!
//! Leases are read on the server's clock by default ([`PgOptions::server_clock`]), so that the
//! daemons of a fleet need not agree on the time.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use futures::future::try_join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::{Committed, LeaseTerms, Renewal, SCHEMA_VERSION, SessionRecord, Store, StoreError, Write};

/// How a [`PgStore`] connects and reads time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// The deadline of each operation, connecting included. Default 3 s: well inside the
    /// shortest runway, so a daemon cut off from the database learns it while it can still
    /// stop in time.
    pub op_timeout: Duration,
    /// Read leases on the server's clock (`clock_timestamp()`) rather than the caller's
    /// `now_ms`. Default true: daemons on several hosts then need no clock agreement. The
    /// conformance suite turns it off to run on virtual time.
    pub server_clock: bool,
    /// The PostgreSQL schema of the tables (`search_path`), created if missing. Default none:
    /// the user's default (`public`). Tests give each run its own.
    pub schema: Option<String>,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            op_timeout: Duration::from_secs(3),
            server_clock: true,
            schema: None,
        }
    }
}

/// The [`Store`] on PostgreSQL (`--state postgres://USER@HOST:PORT/DB`).
///
/// Tables `livepay_meta` (the schema version), `livepay_sessions` and `livepay_daemons`, created
/// and migrated at open under an advisory lock (two daemons starting together create them once);
/// a newer schema is refused. Plain TCP (no TLS): run it on a private network or a local socket
/// proxy.
pub struct PgStore {
    config: tokio_postgres::Config,
    /// `user@host:port/db`, never the password.
    shown: String,
    options: PgOptions,
    runtime: tokio::runtime::Runtime,
    connection: Option<Connection>,
}

/// A live connection and its prepared statements.
struct Connection {
    client: Client,
    /// Prepared at the first commit (the tables exist by then).
    statements: Option<[Statement; 3]>,
}

impl Connection {
    async fn statements(&mut self) -> Result<[Statement; 3], Failed> {
        if let Some(statements) = &self.statements {
            return Ok(statements.clone());
        }
        let statements = [
            self.client.prepare(PUT).await?,
            self.client.prepare(SNAPSHOT).await?,
            self.client.prepare(CLOSE).await?,
        ];
        self.statements = Some(statements.clone());
        Ok(statements)
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.shown)
            .field("options", &self.options)
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

const COLUMNS: &str = "id, spec, snapshot, closed, updated_ms, owner, epoch, lease_until_ms, close_requested, app_lease_until_ms";

/// Unix milliseconds: the caller's (`$n` not null) or the server's.
fn now_sql(param: usize) -> String {
    format!("COALESCE(${param}::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint)")
}

const CREATE_SCHEMA: &str = "
    CREATE TABLE livepay_meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value BIGINT NOT NULL
    );
    CREATE TABLE livepay_sessions (
        id                 TEXT PRIMARY KEY NOT NULL,
        spec               TEXT NOT NULL,
        snapshot           TEXT NOT NULL,
        closed             TEXT,
        updated_ms         BIGINT NOT NULL,
        owner              TEXT,
        epoch              BIGINT NOT NULL DEFAULT 0,
        lease_until_ms     BIGINT NOT NULL DEFAULT 0,
        close_requested    TEXT,
        app_lease_until_ms BIGINT
    );
    CREATE INDEX livepay_sessions_open ON livepay_sessions (lease_until_ms) WHERE closed IS NULL;
    CREATE TABLE livepay_daemons (
        owner          TEXT PRIMARY KEY NOT NULL,
        alive_until_ms BIGINT NOT NULL
    );";

/// See `sqlite.rs`'s `PUT`: created, or replaced when closed under a lower epoch or already
/// the writer's under this one; otherwise no row (fenced).
const PUT: &str = "
    INSERT INTO livepay_sessions (id, spec, snapshot, closed, updated_ms, owner, epoch,
                                  lease_until_ms, close_requested, app_lease_until_ms)
    VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, NULL, $8)
    ON CONFLICT (id) DO UPDATE SET
        spec = excluded.spec, snapshot = excluded.snapshot, closed = NULL,
        updated_ms = excluded.updated_ms, owner = excluded.owner, epoch = excluded.epoch,
        lease_until_ms = excluded.lease_until_ms, close_requested = NULL,
        app_lease_until_ms = excluded.app_lease_until_ms
    WHERE (livepay_sessions.closed IS NOT NULL AND livepay_sessions.epoch < excluded.epoch)
       OR (livepay_sessions.closed IS NULL AND livepay_sessions.epoch = excluded.epoch
           AND livepay_sessions.owner = excluded.owner)";
const SNAPSHOT: &str = "UPDATE livepay_sessions SET snapshot = $2, updated_ms = $3
    WHERE id = $1 AND owner = $4 AND epoch = $5 AND closed IS NULL";
const CLOSE: &str = "UPDATE livepay_sessions SET closed = $2, updated_ms = $3
    WHERE id = $1 AND owner = $4 AND epoch = $5 AND closed IS NULL";

fn sql_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn sql_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn record_of(row: &Row) -> Result<SessionRecord, tokio_postgres::Error> {
    Ok(SessionRecord {
        id: row.try_get(0)?,
        spec: row.try_get(1)?,
        snapshot: row.try_get(2)?,
        closed: row.try_get(3)?,
        updated_ms: sql_u64(row.try_get(4)?),
        owner: row.try_get(5)?,
        epoch: sql_u64(row.try_get(6)?),
        lease_until_ms: sql_u64(row.try_get(7)?),
        close_requested: row.try_get(8)?,
        app_lease_until_ms: row.try_get::<_, Option<i64>>(9)?.map(sql_u64),
    })
}

/// What went wrong, for an error: PostgreSQL's message (never a bound value).
fn detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// An operation's failure: its message, and whether the connection must be reopened.
struct Failed {
    detail: String,
    reconnect: bool,
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Failed {
        Failed {
            detail: detail(&e),
            // A server error leaves the connection usable; anything else (I/O, a closed
            // connection, a protocol error) does not.
            reconnect: e.as_db_error().is_none() || e.is_closed(),
        }
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`), creates or migrates the schema,
    /// and refuses a newer one.
    ///
    /// # Errors
    ///
    /// - [`StoreError::Open`] if the URL is invalid or the server cannot be reached in time
    ///   (the error shows the URL without its password);
    /// - [`StoreError::Schema`] / [`StoreError::NewerSchema`] as for SQLite.
    pub fn open(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Open {
            path: PathBuf::from("postgres://…"),
            detail: format!("not a PostgreSQL URL: {}", detail(&e)),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.op_timeout);
        }
        config.application_name("livepay");
        if let Some(schema) = &options.schema {
            if !schema.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || schema.is_empty() {
                return Err(StoreError::Open {
                    path: PathBuf::from("postgres://…"),
                    detail: "a schema name is letters, digits and underscores".into(),
                });
            }
            config.options(format!("-c search_path={schema}"));
        }
        let shown = shown(&config);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Open {
                path: PathBuf::from(&shown),
                detail: e.to_string(),
            })?;
        let mut store = PgStore {
            config,
            shown,
            options,
            runtime,
            connection: None,
        };
        store.ensure_schema()?;
        Ok(store)
    }

    /// `user@host:port/db`: how errors and logs name the database.
    pub fn database(&self) -> &str {
        &self.shown
    }

    fn now_param(&self, now_ms: u64) -> Option<i64> {
        (!self.options.server_clock).then(|| sql_i64(now_ms))
    }

    /// Runs `op` on a connection (opened if needed) within the deadline.
    fn run<T>(&mut self, op: impl AsyncFnOnce(&mut Connection) -> Result<T, Failed>) -> Result<T, Failed> {
        let deadline = self.options.op_timeout;
        let config = self.config.clone();
        let schema = self.options.schema.clone();
        let mut slot = self.connection.take();
        let result = self.runtime.block_on(async {
            tokio::time::timeout(deadline, async {
                if slot.is_none() {
                    slot = Some(connect(&config, schema.as_deref()).await?);
                }
                let connection = slot.as_mut().ok_or_else(|| Failed {
                    detail: "no connection".into(),
                    reconnect: true,
                })?;
                op(connection).await
            })
            .await
            .unwrap_or_else(|_| {
                Err(Failed {
                    detail: format!("no answer from the database within {deadline:?}"),
                    reconnect: true,
                })
            })
        });
        match &result {
            Err(failed) if failed.reconnect => {}
            _ => self.connection = slot,
        }
        result
    }

    fn ensure_schema(&mut self) -> Result<(), StoreError> {
        let shown = self.shown.clone();
        self.run(async |c| {
            let tx = c.client.transaction().await?;
            // One creator at a time, across the fleet; released at commit.
            tx.execute("SELECT pg_advisory_xact_lock(7466507900)", &[])
                .await?;
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_tables
                     WHERE schemaname = current_schema() AND tablename = 'livepay_meta')",
                    &[],
                )
                .await?
                .try_get(0)?;
            if exists {
                let version: Option<i64> = tx
                    .query_opt("SELECT value FROM livepay_meta WHERE key = 'schema_version'", &[])
                    .await?
                    .map(|row| row.try_get(0))
                    .transpose()?;
                tx.commit().await?;
                return Ok(version);
            }
            tx.batch_execute(CREATE_SCHEMA).await?;
            tx.execute(
                "INSERT INTO livepay_meta (key, value) VALUES ('schema_version', $1)",
                &[&SCHEMA_VERSION],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(SCHEMA_VERSION))
        })
        .map_err(|f| StoreError::Open {
            path: PathBuf::from(&shown),
            detail: f.detail,
        })
        .and_then(|version| match version {
            Some(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
                found,
                supported: SCHEMA_VERSION,
            }),
            Some(found) if found == SCHEMA_VERSION => Ok(()),
            Some(found) => Err(StoreError::Schema {
                detail: format!("unknown schema version {found}"),
            }),
            None => Err(StoreError::Schema {
                detail: "livepay_meta has no schema_version: not a livepay session store".into(),
            }),
        })
    }
}

/// `user@host:port/db` of `config`, without the password.
fn shown(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

async fn connect(config: &tokio_postgres::Config, schema: Option<&str>) -> Result<Connection, Failed> {
    let (client, connection) = config.connect(NoTls).await?;
    // The connection's I/O runs on this runtime while an operation is under way.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %detail(&e), "livepay: the PostgreSQL connection ended");
        }
    });
    if let Some(schema) = schema {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    Ok(Connection {
        client,
        statements: None,
    })
}

fn commit_error(f: Failed) -> StoreError {
    StoreError::Commit { detail: f.detail }
}

fn load_error(f: Failed) -> StoreError {
    StoreError::Load { detail: f.detail }
}

impl Store for PgStore {
    fn load(&mut self) -> Result<Vec<SessionRecord>, StoreError> {
        self.run(async |c| {
            let rows = c
                .client
                .query(
                    &format!("SELECT {COLUMNS} FROM livepay_sessions ORDER BY id COLLATE \"C\""),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(record_of).collect::<Result<Vec<_>, _>>()?)
        })
        .map_err(load_error)
    }

    fn get(&mut self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.run(async |c| {
            let row = c
                .client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM livepay_sessions WHERE id = $1"),
                    &[&id],
                )
                .await?;
            Ok(row.as_ref().map(record_of).transpose()?)
        })
        .map_err(load_error)
    }

    fn commit(&mut self, owner: &str, batch: &[Write]) -> Result<Committed, StoreError> {
        if batch.is_empty() {
            return Ok(Committed::default());
        }
        self.run(async |c| {
            let [put, snapshot, close] = c.statements().await?;
            let tx = c.client.transaction().await?;
            // Every write is sent before the first answer is read (tokio-postgres pipelines
            // concurrent queries on one connection), and applied in order by the server.
            let changed = try_join_all(batch.iter().map(|write| async {
                match write {
                    Write::Put {
                        id,
                        spec,
                        snapshot: text,
                        at_ms,
                        epoch,
                        lease_until_ms,
                        app_lease_until_ms,
                    } => {
                        tx.execute(
                            &put,
                            &[
                                id,
                                spec,
                                text,
                                &sql_i64(*at_ms),
                                &owner,
                                &sql_i64(*epoch),
                                &sql_i64(*lease_until_ms),
                                &app_lease_until_ms.map(sql_i64),
                            ],
                        )
                        .await
                    }
                    Write::Snapshot {
                        id,
                        snapshot: text,
                        at_ms,
                        epoch,
                    } => {
                        tx.execute(&snapshot, &[id, text, &sql_i64(*at_ms), &owner, &sql_i64(*epoch)])
                            .await
                    }
                    Write::Close {
                        id,
                        reason,
                        at_ms,
                        epoch,
                    } => {
                        tx.execute(&close, &[id, reason, &sql_i64(*at_ms), &owner, &sql_i64(*epoch)])
                            .await
                    }
                }
            }))
            .await?;
            tx.commit().await?;
            Ok(Committed {
                fenced: changed
                    .iter()
                    .enumerate()
                    .filter(|(_, rows)| **rows == 0)
                    .map(|(index, _)| index)
                    .collect(),
            })
        })
        .map_err(commit_error)
    }

    fn claim(
        &mut self,
        terms: LeaseTerms<'_>,
        max: usize,
        all: bool,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let now = self.now_param(terms.now_ms);
        let sql = format!(
            "WITH picked AS (
                 SELECT id FROM livepay_sessions
                 WHERE closed IS NULL AND (CASE WHEN $5 THEN owner IS DISTINCT FROM $1
                                           ELSE (owner IS NULL OR lease_until_ms < {now2}) END)
                 ORDER BY lease_until_ms, id LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             UPDATE livepay_sessions s
             SET owner = $1, epoch = s.epoch + 1, lease_until_ms = {now2} + $3
             FROM picked WHERE s.id = picked.id
             RETURNING {columns}",
            now2 = now_sql(2),
            columns = COLUMNS
                .split(", ")
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let max = sql_i64(u64::try_from(max).unwrap_or(u64::MAX));
        let lease = sql_i64(terms.lease_ms);
        self.run(async |c| {
            let rows = c
                .client
                .query(&sql, &[&terms.owner, &now, &lease, &max, &all])
                .await?;
            let mut claimed = rows.iter().map(record_of).collect::<Result<Vec<_>, _>>()?;
            claimed.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(claimed)
        })
        .map_err(commit_error)
    }

    fn renew(&mut self, terms: LeaseTerms<'_>, held: &[(String, u64)]) -> Result<Renewal, StoreError> {
        let now = self.now_param(terms.now_ms);
        let lease = sql_i64(terms.lease_ms);
        let ids: Vec<&str> = held.iter().map(|(id, _)| id.as_str()).collect();
        let epochs: Vec<i64> = held.iter().map(|(_, epoch)| sql_i64(*epoch)).collect();
        let renew = format!(
            "UPDATE livepay_sessions s SET lease_until_ms = {now} + $3
             FROM unnest($2::text[], $4::bigint[]) AS h(id, epoch)
             WHERE s.id = h.id AND s.epoch = h.epoch AND s.owner = $1 AND s.closed IS NULL
             RETURNING s.id, s.close_requested, s.app_lease_until_ms",
            now = now_sql(5)
        );
        let heartbeat = format!(
            "INSERT INTO livepay_daemons (owner, alive_until_ms) VALUES ($1, {now} + $2)
             ON CONFLICT (owner) DO UPDATE SET alive_until_ms = excluded.alive_until_ms",
            now = now_sql(3)
        );
        let counts = format!(
            "SELECT (SELECT count(*) FROM livepay_daemons WHERE alive_until_ms >= {now}),
                    (SELECT count(*) FROM livepay_sessions WHERE closed IS NULL)",
            now = now_sql(1)
        );
        self.run(async |c| {
            let tx = c.client.transaction().await?;
            let params: [&(dyn ToSql + Sync); 5] = [&terms.owner, &ids, &lease, &epochs, &now];
            let rows = tx.query(&renew, &params).await?;
            tx.execute(&heartbeat, &[&terms.owner, &lease, &now]).await?;
            let row = tx.query_one(&counts, &[&now]).await?;
            tx.commit().await?;
            let mut renewal = Renewal {
                daemons_alive: usize::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
                open_sessions: usize::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
                ..Renewal::default()
            };
            let mut kept = std::collections::HashSet::with_capacity(rows.len());
            for row in &rows {
                let id: String = row.try_get(0)?;
                if let Some(reason) = row.try_get::<_, Option<String>>(1)? {
                    renewal.close_requested.push((id.clone(), reason));
                }
                if let Some(app) = row.try_get::<_, Option<i64>>(2)? {
                    renewal.app_leases.push((id.clone(), sql_u64(app)));
                }
                kept.insert(id);
            }
            renewal.lost = held
                .iter()
                .filter(|(id, _)| !kept.contains(id))
                .map(|(id, _)| id.clone())
                .collect();
            Ok(renewal)
        })
        .map_err(commit_error)
    }

    fn release(&mut self, owner: &str) -> Result<(), StoreError> {
        self.run(async |c| {
            let tx = c.client.transaction().await?;
            tx.execute(
                "UPDATE livepay_sessions SET lease_until_ms = 0 WHERE owner = $1",
                &[&owner],
            )
            .await?;
            tx.execute("DELETE FROM livepay_daemons WHERE owner = $1", &[&owner])
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .map_err(commit_error)
    }

    fn request_close(&mut self, id: &str, reason: &str) -> Result<Option<SessionRecord>, StoreError> {
        let get = format!("SELECT {COLUMNS} FROM livepay_sessions WHERE id = $1");
        self.run(async |c| {
            c.client
                .execute(
                    "UPDATE livepay_sessions SET close_requested = $2
                     WHERE id = $1 AND closed IS NULL AND close_requested IS NULL",
                    &[&id, &reason],
                )
                .await?;
            let row = c.client.query_opt(&get, &[&id]).await?;
            Ok(row.as_ref().map(record_of).transpose()?)
        })
        .map_err(commit_error)
    }

    fn renew_app(&mut self, id: &str, until_ms: u64) -> Result<bool, StoreError> {
        let until = sql_i64(until_ms);
        self.run(async |c| {
            let changed = c
                .client
                .execute(
                    "UPDATE livepay_sessions SET app_lease_until_ms = $2 WHERE id = $1 AND closed IS NULL",
                    &[&id, &until],
                )
                .await?;
            Ok(changed > 0)
        })
        .map_err(commit_error)
    }
}
