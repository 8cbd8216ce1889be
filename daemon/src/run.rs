//! [`Daemon`]: the store opened, the token read or made, the sessions resumed, the API bound.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use livepay_hyper::{HttpClient, HttpConfig, HttpError};

use crate::metrics::Metrics;
use crate::service::{Service, ServiceConfig};
use crate::store::{SqliteStore, Store, StoreError, WriterConfig, WriterHandle, try_spawn_writer};

/// What `livepay daemon` is given.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Where the API listens (loopback unless `allow_remote`).
    pub listen: SocketAddr,
    /// The SQLite file of the sessions (created, mode 0600).
    pub state: PathBuf,
    /// A file holding the API token; `None`: `<state>.token`, made at first start.
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
    /// Sessions resumed from the store.
    pub resumed: usize,
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
        let (token_path, create) = match &options.api_token_file {
            Some(path) => (path.clone(), false),
            None => {
                let mut name = options.state.clone().into_os_string();
                name.push(".token");
                (PathBuf::from(name), true)
            }
        };
        let (token, token_created) = token_at(&token_path, create)?;
        let mut store = SqliteStore::open(&options.state).map_err(DaemonError::Store)?;
        let records = store.load().map_err(DaemonError::Store)?;
        let writer =
            try_spawn_writer(Box::new(store), WriterConfig::default()).map_err(DaemonError::Writer)?;
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
        let (service, resumed) = Service::start(http, writer.clone(), metrics, &options.service, records)
            .map_err(DaemonError::Config)?;
        Ok(Self {
            listener,
            service,
            writer,
            token,
            token_path,
            token_created,
            resumed,
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
        if let Err(e) = self.writer.close().await {
            tracing::warn!(%e, "livepay daemon: the last writes could not be flushed");
        }
        match self.service.health().failed() {
            Some(why) => Err(io::Error::other(format!("{why}: funding stopped"))),
            None => Ok(()),
        }
    }
}
