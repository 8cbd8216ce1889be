//! `livepay fund`: reserve a real session and keep it funded until Ctrl-C, SIGTERM or
//! `--duration`, then close it (stop funding, then stop the session).
//!
//! Exit codes (the crate README's table): 0 closed by the user or the duration; 2 bad input;
//! 3 released by the server; 4 terminal rejection; 5 unreachable (or nothing credited for the
//! give-up span after a lapse); 6 a protocol violation by a peer; 7 standard output closed;
//! 130 a second interrupt.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};
use futures::StreamExt as _;
use livepay_core::engine::{
    HeaderProblem, ReserveOptions, UrlProblem, check_signer_header, check_url, origin,
};
use livepay_core::{Config, ConfigError, Event, PaymentType, Stats, redact};
use livepay_daemon::metrics::{Metrics, SessionCounts, serve_metrics};
use livepay_hyper::{HttpClient, HttpConfig, LiveOptions, LiveSession};

use crate::live::{live_error, release_result};
use crate::spend::{Pricing, RunnerPrice, Spend};
use crate::{CliError, duration};

/// The signer `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TypeArg {
    /// Per second.
    Live,
    /// Per 720p pixel-second.
    Lv2v,
    /// Per request (nothing to fund after the reservation).
    Fixed,
}

impl From<TypeArg> for PaymentType {
    fn from(t: TypeArg) -> Self {
        match t {
            TypeArg::Live => Self::Live,
            TypeArg::Lv2v => Self::Lv2v,
            TypeArg::Fixed => Self::Fixed,
        }
    }
}

/// `livepay fund` options. Values that may hold secrets (URLs, headers) are taken as text and
/// checked in [`run`], so that no error message and no `--help` line ever quotes them.
#[derive(Debug, Args)]
pub(crate) struct FundArgs {
    /// The reservation URL: `{orchestrator}/apps/{runner_id}/session`.
    #[arg(long, env = "LIVEPAY_RUNNER_URL", hide_env_values = true)]
    runner_url: String,
    /// The remote signer's URL (omit for an unpriced runner).
    #[arg(long, env = "LIVEPAY_SIGNER_URL", hide_env_values = true)]
    signer: Option<String>,
    /// A header for every signer request, `Name: value` (repeatable; the environment variable
    /// holds one).
    #[arg(long = "signer-header", env = "LIVEPAY_SIGNER_HEADER", hide_env_values = true)]
    signer_headers: Vec<String>,
    /// The runner's app name, sent to the signer.
    #[arg(long, env = "LIVEPAY_APP", hide_env_values = true)]
    app: Option<String>,
    /// The signer payment type; it must match the runner's discovered price unit.
    #[arg(long = "type", value_enum, default_value_t = TypeArg::Live, env = "LIVEPAY_TYPE")]
    payment_type: TypeArg,
    /// Nominal spacing between payments.
    #[arg(long, default_value = "3s", value_parser = duration::parse, env = "LIVEPAY_INTERVAL")]
    interval: Duration,
    /// Close after this long (default: until Ctrl-C, SIGTERM or SIGHUP).
    #[arg(long, value_parser = duration::parse, env = "LIVEPAY_DURATION")]
    duration: Option<Duration>,
    /// Per-request timeout (above zero).
    #[arg(long, default_value = "5s", value_parser = positive_duration, env = "LIVEPAY_TIMEOUT")]
    timeout: Duration,
    /// Give up this long after a lapse with nothing credited since (then exit 5); `0s` never
    /// gives up.
    #[arg(long, default_value = "60s", value_parser = duration::parse, env = "LIVEPAY_GIVE_UP_AFTER")]
    give_up_after: Duration,
    /// A command printing a fresh signer credential: `Name: value` on its first line, optionally
    /// its lifetime in seconds on the second. Run before the reservation, before each credential
    /// expires, and when the signer refuses one (401, 403). Its output is never shown.
    #[arg(
        long,
        value_name = "CMD",
        env = "LIVEPAY_SIGNER_TOKEN_COMMAND",
        hide_env_values = true
    )]
    signer_token_command: Option<String>,
    /// Trust the CA certificate(s) in this PEM file for the orchestrator, on top of the system's
    /// roots (a self-signed orchestrator stays verified). The signer is not affected.
    #[arg(long, value_name = "FILE", env = "LIVEPAY_ORCHESTRATOR_CA")]
    orchestrator_ca: Option<PathBuf>,
    /// Accept ANY orchestrator certificate: no verification at all (prefer --orchestrator-ca).
    /// The signer is always verified.
    #[arg(long, env = "LIVEPAY_INSECURE_ORCHESTRATOR_TLS", value_parser = BoolishValueParser::new(), action = ArgAction::SetTrue)]
    insecure_orchestrator_tls: bool,
    /// ETH in US dollars (a positive number, e.g. 2000): the summary shows the spend in USD too,
    /// when discovery gives no USD price.
    #[arg(long, value_name = "RATE", env = "LIVEPAY_ETH_USD", value_parser = crate::spend::eth_usd, allow_negative_numbers = true)]
    eth_usd: Option<f64>,
    /// Print one JSON event per line.
    #[arg(long, env = "LIVEPAY_JSON", value_parser = BoolishValueParser::new(), action = ArgAction::SetTrue)]
    json: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9100 (port 0 picks a free
    /// one; the address is printed on stderr). Bound before the reservation.
    #[arg(long, value_name = "ADDR", env = "LIVEPAY_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

/// A duration above zero (a zero timeout would fail every request).
fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = duration::parse(text)?;
    if d.is_zero() {
        return Err("must be above zero".to_owned());
    }
    Ok(d)
}

/// `url`, checked as the core will check it, with a message that names `flag` and never quotes
/// the URL (its user-info or query may be secret).
fn checked_url(flag: &str, url: &str) -> Result<String, CliError> {
    match check_url(url) {
        Ok(_) => Ok(url.trim_end_matches('/').to_owned()),
        Err(UrlProblem::UserInfo) => Err(CliError::BadInput(format!(
            "{flag}: user-info (`user:password@`) in a URL is refused; pass credentials with --signer-header"
        ))),
        Err(problem) => Err(CliError::BadInput(format!("{flag}: the URL {problem}"))),
    }
}

/// One `--signer-header`, checked; errors name the flag and the header, never the value.
fn signer_header(text: &str) -> Result<(String, String), CliError> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(CliError::BadInput(
            "--signer-header: expected `Name: value` (the value is not shown)".to_owned(),
        ));
    };
    let (name, value) = (name.trim(), value.trim());
    match check_signer_header(name, value) {
        Ok(()) => Ok((name.to_owned(), value.to_owned())),
        Err(HeaderProblem::BadName) => Err(CliError::BadInput(format!(
            "--signer-header: {}",
            HeaderProblem::BadName
        ))),
        Err(problem) => Err(CliError::BadInput(format!(
            "--signer-header `{}`: {problem}",
            crate::terminal_safe(name)
        ))),
    }
}

fn to_core(d: Duration) -> livepay_core::Duration {
    livepay_core::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Everything checked before any request: the funding configuration, the reservation options
/// and the HTTP client's.
/// The funding configuration of `--interval` and `--give-up-after` (`0s`: never), checked;
/// errors name the flag. Shared by `fund` and `daemon`.
pub(crate) fn session_config(
    payment_type: PaymentType,
    interval: Duration,
    give_up_after: Duration,
) -> Result<Config, CliError> {
    let mut config = Config::new(payment_type);
    config.interval = to_core(interval);
    config.give_up_after_lapse = (!give_up_after.is_zero()).then(|| to_core(give_up_after));
    config.validate().map_err(|e| match e {
        ConfigError::IntervalNotBelowPrepay { limit } => CliError::BadInput(format!(
            "--interval {interval:?} is too long: it must stay under {:?} (the prepay less the safety margin)",
            Duration::from_micros(limit.as_micros())
        )),
        other => CliError::BadInput(format!("--interval: {other}")),
    })?;
    Ok(config)
}

fn prepare(args: &FundArgs) -> Result<(Config, ReserveOptions, HttpConfig), CliError> {
    let payment_type = PaymentType::from(args.payment_type);
    let config = session_config(payment_type, args.interval, args.give_up_after)?;
    let runner_url = checked_url("--runner-url", &args.runner_url)?;
    let signer = args
        .signer
        .as_deref()
        .map(|s| checked_url("--signer", s))
        .transpose()?;
    let mut reserve = ReserveOptions::new(runner_url, signer, payment_type);
    for text in &args.signer_headers {
        let (name, value) = signer_header(text)?;
        reserve = reserve.with_signer_header(name, value);
    }
    if let Some(app) = &args.app {
        reserve = reserve.with_app(app.clone());
    }
    let mut http = HttpConfig {
        request_timeout: args.timeout,
        insecure_orchestrator_tls: args.insecure_orchestrator_tls,
        ..HttpConfig::default()
    };
    if let Some(path) = &args.orchestrator_ca {
        let pem = std::fs::read(path)
            .map_err(|e| CliError::BadInput(format!("--orchestrator-ca {}: {e}", path.display())))?;
        http = http
            .with_orchestrator_ca_pem(&pem)
            .map_err(|e| CliError::BadInput(format!("--orchestrator-ca {}: {e}", path.display())))?;
    }
    Ok((config, reserve, http))
}

/// The runner's discovered price unit must agree with `--type`: a `fixed` reservation of a
/// per-second runner is released after its first debit while the client thinks it paid for
/// everything. A runner that discovery does not list (or an orchestrator without discovery)
/// is not checked. Returns the runner's discovered price per second, to price the spend when
/// the payments cannot be read (nothing when it is not listed or priced in another unit).
async fn check_type_against_discovery(
    client: &HttpClient,
    runner_url: &str,
    payment_type: PaymentType,
) -> Result<RunnerPrice, CliError> {
    let Some(orchestrator) = origin(runner_url) else {
        return Ok(RunnerPrice::default());
    };
    let runners = match livepay_hyper::discover(client, &orchestrator, None).await {
        Ok(runners) => runners,
        Err(e) => {
            tracing::debug!(error = %e, "livepay: discovery unavailable; --type not checked");
            return Ok(RunnerPrice::default());
        }
    };
    let Some(listed) = runners
        .iter()
        .find(|r| r.url.trim_end_matches('/') == runner_url.trim_end_matches('/'))
    else {
        return Ok(RunnerPrice::default());
    };
    match listed.payment_type() {
        Some(discovered) if discovered != payment_type => Err(CliError::BadInput(format!(
            "--type {} contradicts the runner's discovered price unit (use --type {})",
            payment_type.as_str(),
            discovered.as_str()
        ))),
        _ => Ok(RunnerPrice::discovered(listed)),
    }
}

/// Binds `addr` and serves the metrics there from a task of their own; prints the bound address
/// (port 0 becomes the real port) on stderr, so that `--json` output stays JSON.
async fn start_metrics(addr: SocketAddr) -> Result<Arc<Metrics>, CliError> {
    let cannot =
        |e: std::io::Error| CliError::BadInput(format!("--metrics-addr {addr}: cannot listen there: {e}"));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(cannot)?;
    let bound = listener.local_addr().map_err(cannot)?;
    let metrics = Arc::new(Metrics::new());
    crate::err_line(&format!("metrics http://{bound}/metrics"));
    let served = Arc::clone(&metrics);
    tokio::spawn(async move {
        if let Err(e) = serve_metrics(listener, served).await {
            tracing::warn!(error = %e, "livepay: the metrics server stopped");
        }
    });
    Ok(metrics)
}

/// What `--metrics-addr` is fed: the session's state, the growth of its counters (the core's
/// `Stats`, never events), its release, and after each accepted payment the engine's runway and
/// the growth of the spend.
struct Feed {
    metrics: Arc<Metrics>,
    /// The counters as last fed, for their growth.
    stats: Stats,
    /// How the spend is priced.
    pricing: Pricing,
    /// The spend as last fed, for its growth.
    spent: Spend,
}

impl Feed {
    /// Counts `event`; with the live `session`, also its counters' growth, and after a payment
    /// its runway and spend.
    fn event(&mut self, event: &Event, session: Option<&LiveSession>) {
        if let Some(session) = session {
            self.sync(session.stats());
            if matches!(event, Event::PaymentAccepted { .. }) {
                // The runway and spend are published with the counters, before the event: they
                // include this payment.
                let runway = Duration::from_micros(session.runway().as_micros());
                self.metrics.observe_runway(runway.as_secs_f64());
                self.spend(session);
            }
        }
        if let Event::StateChanged { to, .. } = *event {
            self.metrics.set_sessions(SessionCounts::of([to]));
        }
    }

    /// Adds the growth of the counters since the last call.
    fn sync(&mut self, stats: Stats) {
        self.metrics.observe_stats_growth(&self.stats, &stats);
        self.stats = stats;
    }

    /// Adds the growth of `session`'s spend since the last call.
    fn spend(&mut self, session: &LiveSession) {
        let spend = spend_of(&self.pricing, session);
        self.add_spend(spend);
    }

    /// Adds the growth of the spend up to `spend`.
    fn add_spend(&mut self, spend: Spend) {
        let (wei, usd) = spend.growth_since(&self.spent);
        if wei > 0 {
            self.metrics.add_spend_wei(wei);
        }
        if usd > 0.0 {
            self.metrics.add_spend_usd(usd);
        }
        self.spent = spend;
    }
}

/// `session`'s spend now, priced by `pricing`.
fn spend_of(pricing: &Pricing, session: &LiveSession) -> Spend {
    pricing.spend(session.spend_wei(), session.stats().billed, session.is_metered())
}

pub(crate) async fn run(args: &FundArgs) -> Result<(), CliError> {
    let (config, reserve, http) = prepare(args)?;
    // Bound before anything is reserved: an address in use is bad input, not a funded session
    // left without its metrics.
    let metrics = match args.metrics_addr {
        Some(addr) => Some(start_metrics(addr).await?),
        None => None,
    };
    let mut client = HttpClient::new(http).map_err(|e| CliError::BadInput(format!("HTTP client: {e}")))?;
    if let Some(metrics) = &metrics {
        client = client.with_observer(Arc::clone(metrics) as Arc<dyn livepay_hyper::Observer>);
    }
    // Discovery is asked once: for the --type check, and for the price of the spend.
    let runner_price = if reserve.signer_url.is_some() {
        check_type_against_discovery(&client, &reserve.runner_url, reserve.payment_type).await?
    } else {
        RunnerPrice::default()
    };
    let pricing = Pricing {
        runner: runner_price,
        eth_usd: args.eth_usd,
        prepay: config.prepay,
    };
    let mut options = LiveOptions::new(reserve).with_config(config).with_client(client);
    if let Some(command) = &args.signer_token_command {
        // Checked once now, so that a broken command is bad input rather than a 401 later.
        crate::token::fetch(command)
            .await
            .map_err(|why| CliError::BadInput(format!("--signer-token-command: {why}")))?;
        options = options.with_credentials(crate::token::source(command.clone()));
    }
    // An interrupt before the paid reservation leaves cancels it (nothing is paid); after, the
    // reservation finishes and the session is stopped at once (its prepay is spent either way,
    // and a dropped one would run on it unfunded and unstopped).
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cancel = {
        let interrupted = std::sync::Arc::clone(&interrupted);
        async move {
            crate::shutdown_signal().await;
            interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let session = match LiveSession::reserve_until(options, cancel).await {
        Ok(session) => session,
        Err(livepay_hyper::LiveError::Cancelled) => {
            crate::err_line("interrupted before any payment left: nothing was reserved");
            return Ok(());
        }
        Err(e) => return Err(live_error(e)),
    };
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        crate::err_line("interrupted while the paid reservation was under way: stopping the session");
        let reason = session.close().await.map_err(live_error)?;
        crate::err_line(&format!("stopped: {reason}"));
        return Ok(());
    }
    let id = session.session_id().to_owned();
    // Subscribed before anything is printed: `events` hands its first caller every event since
    // the reservation.
    let mut events = session.events();
    let mut feed = metrics.map(|metrics| {
        metrics.set_sessions(SessionCounts::of([session.state()]));
        let mut feed = Feed {
            metrics,
            stats: Stats::default(),
            pricing,
            spent: Spend::default(),
        };
        // The reservation's prepay is spent already.
        feed.spend(&session);
        feed
    });
    if !args.json {
        crate::out(&format!(
            "reserved session {} · app {} · {}",
            crate::terminal_safe(&id),
            crate::terminal_safe(&redact::url(session.app_url()).to_string()),
            if session.is_metered() {
                "funding"
            } else {
                "nothing to fund"
            }
        ));
    }
    if let Some(d) = args.duration {
        // The close is planned: no runway is bought past it.
        session.plan_end(d);
    }
    let started = tokio::time::Instant::now();
    let until = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    let shutdown = crate::shutdown_signal();
    tokio::pin!(shutdown);
    let released = loop {
        if crate::output_closed() {
            break None;
        }
        tokio::select! {
            () = &mut until => break None,
            () = &mut shutdown => break None,
            reason = session.wait_released() => break Some(reason),
            Some(event) = events.next() => {
                print_event(args.json, &id, started, &event);
                if let Some(feed) = &mut feed {
                    feed.event(&event, Some(&session));
                }
            }
        }
    };
    // Drain what is already queued, so the last events are printed.
    drain(args.json, &id, started, &mut events, &mut feed, Some(&session)).await;
    let problem = session.last_problem();
    let stats = session.stats();
    // As of the close: what a payment still in flight buys is not counted.
    let spend = spend_of(&pricing, &session);
    let metered = session.is_metered();
    if let Some(feed) = &mut feed {
        feed.sync(stats);
        feed.add_spend(spend);
    }
    let reason = match released {
        Some(reason) => reason,
        None => session.close().await.map_err(live_error)?,
    };
    // The release is counted from its one lossless source, once; the counters from the
    // session's own.
    if let Some(feed) = &mut feed {
        feed.metrics.observe_release(reason);
        feed.metrics
            .set_sessions(SessionCounts::of([livepay_core::State::Released { reason }]));
    }
    // The session is gone: its last events (the release) still count.
    drain(args.json, &id, started, &mut events, &mut feed, None).await;
    if crate::output_closed() {
        return Err(CliError::OutputClosed);
    }
    if args.json {
        let mut line = serde_json::json!({ "t_s": started.elapsed().as_secs_f64(), "session": id, "event": "exit", "release": crate::events::reason(reason) });
        if let (Some(line), serde_json::Value::Object(spend)) =
            (line.as_object_mut(), crate::spend::json_fields(&spend))
        {
            line.extend(spend);
        }
        crate::out(&line.to_string());
    } else {
        crate::out(&format!("session {}: {reason}", crate::terminal_safe(&id)));
        if metered {
            crate::out(&crate::spend::line(&spend));
        }
    }
    release_result(reason, problem.as_ref(), &stats)
}

async fn drain(
    json: bool,
    id: &str,
    started: tokio::time::Instant,
    events: &mut (impl futures::Stream<Item = livepay_core::Event> + Unpin),
    feed: &mut Option<Feed>,
    session: Option<&LiveSession>,
) {
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(20), events.next()).await {
        print_event(json, id, started, &event);
        if let Some(feed) = feed {
            feed.event(&event, session);
        }
    }
}

fn print_event(json: bool, id: &str, started: tokio::time::Instant, event: &livepay_core::Event) {
    let t = started.elapsed().as_secs_f64();
    if json {
        crate::out(&crate::events::to_json(id, (t * 1e3).round() / 1e3, event).to_string());
    } else {
        crate::out(&format!("{t:>8.3}s  {event}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_headers_are_checked_without_quoting_them() {
        assert_eq!(
            checked_url("--runner-url", "https://o.example:8935/apps/r/session/").ok(),
            Some("https://o.example:8935/apps/r/session".into())
        );
        for bad in ["ftp://x", "http://", "orch:8935", "http://o/a b"] {
            assert!(checked_url("--runner-url", bad).is_err(), "{bad}");
        }
        let e = checked_url("--signer", "https://tok3n@s.example")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--signer-header") && !e.contains("tok3n"), "{e}");
        assert_eq!(
            signer_header("Authorization: Bearer x").ok(),
            Some(("Authorization".into(), "Bearer x".into()))
        );
        for bad in [
            "no colon s3cret",
            "bad name: s3cret",
            "Host: s3cret",
            "X-A: s3cret\r\nX-B: 1",
        ] {
            let e = signer_header(bad).unwrap_err().to_string();
            assert!(e.contains("--signer-header") && !e.contains("s3cret"), "{e}");
        }
        assert!(positive_duration("0s").is_err() && positive_duration("1ms").is_ok());
    }
}
