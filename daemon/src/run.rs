//! [`Daemon`]: the store opened, the token read or made, the sessions resumed, the API bound.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use livepay_hyper::{HttpClient, HttpConfig, HttpError};

use crate::metrics::Metrics;
use crate::service::{Service, ServiceConfig};
use crate::store::{
    PgOptions, PgStore, SqliteStore, Store, StoreError, WriterConfig, WriterHandle, try_spawn_fenced_writer,
};

/// Where the sessions live: a SQLite file (one daemon), or a PostgreSQL database (a fleet).
#[derive(Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A SQLite file (created, mode 0600).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`). Its password is never shown.
    Postgres(String),
}

impl StateLocation {
    /// `postgres://…` and `postgresql://…` are databases; anything else is a file path.
    pub fn parse(text: &str) -> StateLocation {
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            StateLocation::Postgres(text.to_owned())
        } else {
            StateLocation::Sqlite(PathBuf::from(text))
        }
    }
}

impl From<PathBuf> for StateLocation {
    fn from(path: PathBuf) -> StateLocation {
        StateLocation::Sqlite(path)
    }
}

impl From<&Path> for StateLocation {
    fn from(path: &Path) -> StateLocation {
        StateLocation::Sqlite(path.to_owned())
    }
}

impl std::fmt::Display for StateLocation {
    /// The path, or the URL without its password (and without its query, which may hold one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::Sqlite(path) => write!(f, "{}", path.display()),
            StateLocation::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                let rest = rest.split(['?', '#']).next().unwrap_or("");
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let host = match authority.rsplit_once('@') {
                    Some((user, host)) => {
                        let user = user.split(':').next().unwrap_or("");
                        format!("{user}@{host}")
                    }
                    None => authority.to_owned(),
                };
                write!(f, "{scheme}://{host}/{path}")
            }
        }
    }
}

impl std::fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateLocation({self})")
    }
}

/// What `livepay daemon` is given.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Where the API listens (loopback unless `allow_remote`).
    pub listen: SocketAddr,
    /// Where the sessions live.
    pub state: StateLocation,
    /// A file holding the API token; `None`: `<state>.token` beside a SQLite file, made at
    /// first start (a PostgreSQL fleet needs one file, shared by its daemons).
    pub api_token_file: Option<PathBuf>,
    /// Allow a non-loopback `listen` (the API has no TLS: put a TLS proxy in front).
    pub allow_remote: bool,
    /// The HTTP client's configuration (timeouts, TLS).
    pub http: HttpConfig,
    /// How sessions are funded.
    pub service: ServiceConfig,
    /// The API's connection limits.
    pub api_limits: crate::listen::ApiLimits,
}

/// Why the daemon could not start.
#[derive(Debug)]
pub enum DaemonError {
    /// A non-loopback address without `allow_remote`.
    Remote(SocketAddr),
    /// The token file could not be read or made.
    Token(PathBuf, io::Error),
    /// The token file is empty.
    EmptyToken(PathBuf),
    /// The token file or its token is unsafe or unusable (why).
    BadToken(PathBuf, &'static str),
    /// The store could not be opened or read.
    Store(StoreError),
    /// The writer thread could not start.
    Writer(io::Error),
    /// The HTTP client could not be built.
    Http(HttpError),
    /// The session configuration is invalid.
    Config(livepay_core::ConfigError),
    /// The listen address could not be bound.
    Bind(SocketAddr, io::Error),
    /// The lease settings cannot take a session over in time (why).
    Fleet(String),
    /// A PostgreSQL state needs `api_token_file`: the fleet's daemons share one token.
    TokenFileNeeded,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Remote(addr) => write!(
                f,
                "--listen {addr} is not a loopback address: pass --allow-remote (the API has no TLS; put a TLS proxy in front)"
            ),
            Self::Token(path, e) => write!(f, "API token file {}: {e}", path.display()),
            Self::EmptyToken(path) => write!(f, "API token file {} is empty", path.display()),
            Self::BadToken(path, why) => write!(f, "API token file {}: {why}", path.display()),
            Self::Store(e) => write!(f, "state: {e}"),
            Self::Writer(e) => write!(f, "state: the writer thread could not start: {e}"),
            Self::Http(e) => write!(f, "HTTP client: {e}"),
            Self::Config(e) => write!(f, "session configuration: {e}"),
            Self::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Self::Fleet(why) => write!(f, "leases: {why}"),
            Self::TokenFileNeeded => f.write_str(
                "a PostgreSQL --state needs --api-token-file (one token shared by the fleet's daemons)",
            ),
        }
    }
}

impl std::error::Error for DaemonError {}

/// A started daemon: call [`serve`](Self::serve).
#[derive(Debug)]
pub struct Daemon {
    listener: tokio::net::TcpListener,
    service: Service,
    writer: WriterHandle,
    token: String,
    /// Where the API token is.
    pub token_path: PathBuf,
    /// Whether the token was made now (first start).
    pub token_created: bool,
    /// Sessions resumed from the store (claimed at start).
    pub resumed: usize,
    /// This daemon's owner id in the store's leases.
    pub owner: String,
    /// The address bound.
    pub addr: SocketAddr,
    api_limits: crate::listen::ApiLimits,
}

/// Reads the token at `path`, or makes one there (mode 0600) when `create` and it is missing.
fn token_at(path: &Path, create: bool) -> Result<(String, bool), DaemonError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            if token.is_empty() {
                return Err(DaemonError::EmptyToken(path.to_owned()));
            }
            check_token(path, &token)?;
            Ok((token, false))
        }
        Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
            let token = new_token().map_err(|e| DaemonError::Token(path.to_owned(), e))?;
            write_private(path, &token).map_err(|e| DaemonError::Token(path.to_owned(), e))?;
            Ok((token, true))
        }
        Err(e) => Err(DaemonError::Token(path.to_owned(), e)),
    }
}

/// The shortest token accepted: 16 characters (a guessable token guards nothing).
pub const MIN_TOKEN_LEN: usize = 16;

/// Refuses a token file anyone may rewrite, and a token that is short or could never match
/// (a bearer token is printable ASCII: anything else never arrives in an `Authorization` header).
fn check_token(path: &Path, token: &str) -> Result<(), DaemonError> {
    let bad = |why| Err(DaemonError::BadToken(path.to_owned(), why));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| DaemonError::Token(path.to_owned(), e))?
            .permissions()
            .mode();
        if mode & 0o002 != 0 {
            return bad("is writable by every user (anyone could set the token): chmod o-w it");
        }
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return bad(
            "the token holds a space, a control or a non-ASCII character, so no request could ever match it",
        );
    }
    if token.len() < MIN_TOKEN_LEN {
        return bad("the token is shorter than 16 characters");
    }
    Ok(())
}

/// This process's owner id in the leases: the host, the pid, and 8 random bytes (a restarted
/// daemon is a new owner: it claims its sessions like any other daemon would).
fn owner_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(40)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "livepay".to_owned());
    let random = new_token().map_or_else(
        |_| format!("{:x}", crate::service::unix_ms()),
        |t| t[..16].to_owned(),
    );
    format!("{host}-{}-{random}", std::process::id())
}

/// 32 random bytes from the operating system, in hex.
fn new_token() -> io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

impl Daemon {
    /// Opens the store, reads (or makes) the token, resumes every session not closed, binds.
    /// Call inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`DaemonError`], naming what failed.
    pub async fn start(options: DaemonOptions) -> Result<Self, DaemonError> {
        if !options.listen.ip().is_loopback() && !options.allow_remote {
            return Err(DaemonError::Remote(options.listen));
        }
        let mut fleet = options.service.fleet;
        fleet.single_process = matches!(options.state, StateLocation::Sqlite(_));
        fleet.check().map_err(DaemonError::Fleet)?;
        let (token_path, create) = match (&options.api_token_file, &options.state) {
            (Some(path), _) => (path.clone(), false),
            (None, StateLocation::Sqlite(state)) => {
                let mut name = state.clone().into_os_string();
                name.push(".token");
                (PathBuf::from(name), true)
            }
            (None, StateLocation::Postgres(_)) => return Err(DaemonError::TokenFileNeeded),
        };
        let (token, token_created) = token_at(&token_path, create)?;
        // Opened and read on a blocking thread: SQLite blocks, and PostgreSQL's client runs a
        // runtime of its own.
        let state = options.state.clone();
        let opened = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let mut store: Box<dyn Store> = match &state {
                StateLocation::Sqlite(path) => Box::new(SqliteStore::open(path)?),
                StateLocation::Postgres(url) => Box::new(PgStore::open(url, PgOptions::default())?),
            };
            let records = store.load()?;
            Ok((store, records))
        })
        .await
        .map_err(|e| DaemonError::Writer(io::Error::other(e.to_string())))?;
        let (store, records) = opened.map_err(DaemonError::Store)?;
        let owner = owner_id();
        let (fenced_tx, fenced) = tokio::sync::mpsc::unbounded_channel();
        let writer = try_spawn_fenced_writer(
            store,
            WriterConfig::default(),
            &owner,
            Some(Box::new(move |ids: &[String]| {
                for id in ids {
                    // The service is gone only at shutdown: nothing left to stop then.
                    let _ = fenced_tx.send(id.clone());
                }
            })),
        )
        .map_err(DaemonError::Writer)?;
        let metrics = Arc::new(Metrics::new());
        let http = HttpClient::new(options.http)
            .map_err(DaemonError::Http)?
            .with_observer(Arc::clone(&metrics) as Arc<dyn livepay_hyper::Observer>);
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| DaemonError::Bind(options.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DaemonError::Bind(options.listen, e))?;
        let mut service_config = options.service.clone();
        service_config.fleet = fleet;
        let service = Service::start(http, writer.clone(), metrics, &service_config, records, &owner)
            .map_err(DaemonError::Config)?;
        let resumed = service.start_fleet(fenced).await;
        Ok(Self {
            listener,
            service,
            writer,
            token,
            token_path,
            token_created,
            resumed,
            owner,
            addr,
            api_limits: options.api_limits,
        })
    }

    /// The service (for tests and embedding).
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The store's writer (its [`stats`](WriterHandle::stats): commits, rows written).
    pub fn writer(&self) -> WriterHandle {
        self.writer.clone()
    }

    /// Serves the API until `shutdown` resolves (or a funding task fails), then stops funding
    /// and flushes and closes the store. Sessions are not closed: a restart within their runway
    /// resumes them.
    ///
    /// # Errors
    ///
    /// The listener failed, or a funding task panicked ([`Health`](crate::health::Health)):
    /// the caller should exit non-zero.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let router = crate::api::router(self.service.clone(), &self.token);
        let service = self.service.clone();
        let health = Arc::clone(self.service.health());
        let shutdown = async move {
            // A failed funding task stops the daemon too: a supervisor restarts it.
            tokio::select! {
                () = shutdown => {}
                () = health.failure() => {}
            }
            service.end_streams();
        };
        let (stop, stopped) = tokio::sync::watch::channel(());
        let stopper = tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(());
        });
        crate::listen::serve(self.listener, router, self.api_limits, stopped).await;
        stopper.abort();
        // Funding stops with the API (a restart within the runway resumes every session), then
        // the store is flushed and closed: its file and its lock are free when `serve` returns.
        self.service.stop_funding().await;
        // Every write made durable, then the leases given up: another daemon of the fleet takes
        // the sessions over at once (a rolling deploy), and a restart here claims them back.
        if self.writer.flush().await.is_ok() {
            self.service.release_leases().await;
        }
        if let Err(e) = self.writer.close().await {
            tracing::warn!(%e, "livepay daemon: the last writes could not be flushed");
        }
        match self.service.health().failed() {
            Some(why) => Err(io::Error::other(format!("{why}: funding stopped"))),
            None => Ok(()),
        }
    }
}
