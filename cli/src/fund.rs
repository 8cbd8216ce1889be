//! `livepay fund`: reserve a real session and keep it funded until Ctrl-C, SIGTERM or
//! `--duration`, then close it (stop funding, then stop the session).
//!
//! Exit codes: 0 closed by the user or the duration; 2 bad input; 3 released by the server;
//! 4 terminal rejection; 5 unreachable.

use std::time::Duration;

use clap::{Args, ValueEnum};
use futures::StreamExt as _;
use livepay_core::engine::ReserveOptions;
use livepay_core::{Config, PaymentType};
use livepay_hyper::{HttpConfig, LiveOptions, LiveSession};

use crate::live::{live_error, release_result};
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

/// `livepay fund` options.
#[derive(Debug, Args)]
pub(crate) struct FundArgs {
    /// The reservation URL: `{orchestrator}/apps/{runner_id}/session`.
    #[arg(long, value_parser = http_url, env = "LIVEPAY_RUNNER_URL")]
    runner_url: String,
    /// The remote signer's URL (omit for an unpriced runner).
    #[arg(long, value_parser = http_url, env = "LIVEPAY_SIGNER_URL")]
    signer: Option<String>,
    /// A header for every signer request, `Name: value` (repeatable).
    #[arg(long = "signer-header", value_parser = header, env = "LIVEPAY_SIGNER_HEADER", value_delimiter = '\n')]
    signer_headers: Vec<(String, String)>,
    /// The runner's app name, sent to the signer.
    #[arg(long, env = "LIVEPAY_APP")]
    app: Option<String>,
    /// The signer payment type.
    #[arg(long = "type", value_enum, default_value_t = TypeArg::Live, env = "LIVEPAY_TYPE")]
    payment_type: TypeArg,
    /// Nominal spacing between payments.
    #[arg(long, default_value = "3s", value_parser = duration::parse, env = "LIVEPAY_INTERVAL")]
    interval: Duration,
    /// Close after this long (default: until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = duration::parse, env = "LIVEPAY_DURATION")]
    duration: Option<Duration>,
    /// Per-request timeout.
    #[arg(long, default_value = "5s", value_parser = duration::parse, env = "LIVEPAY_TIMEOUT")]
    timeout: Duration,
    /// Accept self-signed orchestrator certificates (the signer is always verified).
    #[arg(long, env = "LIVEPAY_INSECURE_ORCHESTRATOR_TLS")]
    insecure_orchestrator_tls: bool,
    /// Print one JSON event per line.
    #[arg(long, env = "LIVEPAY_JSON")]
    json: bool,
}

fn http_url(text: &str) -> Result<String, String> {
    let ok = (text.starts_with("http://") || text.starts_with("https://"))
        && text
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if ok {
        Ok(text.trim_end_matches('/').to_owned())
    } else {
        Err(format!("`{text}` is not an http(s) URL"))
    }
}

fn header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| "expected `Name: value`".to_owned())?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("`{name}` is not a header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

fn to_core(d: Duration) -> livepay_core::Duration {
    livepay_core::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

pub(crate) async fn run(args: &FundArgs) -> Result<(), CliError> {
    let payment_type = PaymentType::from(args.payment_type);
    let mut config = Config::new(payment_type);
    config.interval = to_core(args.interval);
    config
        .validate()
        .map_err(|e| CliError::BadInput(format!("--interval: {e}")))?;
    let mut reserve = ReserveOptions::new(args.runner_url.clone(), args.signer.clone(), payment_type);
    for (name, value) in &args.signer_headers {
        reserve = reserve.with_signer_header(name.clone(), value.clone());
    }
    if let Some(app) = &args.app {
        reserve = reserve.with_app(app.clone());
    }
    let http = HttpConfig {
        request_timeout: args.timeout,
        insecure_orchestrator_tls: args.insecure_orchestrator_tls,
        ..HttpConfig::default()
    };
    let options = LiveOptions::new(reserve).with_config(config).with_http(http);
    let session = LiveSession::reserve(options).await.map_err(live_error)?;
    let id = session.session_id().to_owned();
    if !args.json {
        crate::out(&format!(
            "reserved session {id} · app {} · {}",
            session.app_url(),
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
    let mut events = session.events();
    let until = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    let released = loop {
        tokio::select! {
            () = &mut until => break None,
            () = crate::shutdown_signal() => break None,
            reason = session.wait_released() => break Some(reason),
            Some(event) = events.next() => print_event(args.json, &id, started, &event),
        }
    };
    // Drain what is already queued, so the last events are printed.
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(20), events.next()).await {
        print_event(args.json, &id, started, &event);
    }
    let reason = match released {
        Some(reason) => reason,
        None => session.close().await.map_err(live_error)?,
    };
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(20), events.next()).await {
        print_event(args.json, &id, started, &event);
    }
    if args.json {
        let line = serde_json::json!({ "t_s": started.elapsed().as_secs_f64(), "session": id, "event": "exit", "release": crate::events::reason(reason) });
        crate::out(&line.to_string());
    } else {
        crate::out(&format!("session {id}: {reason}"));
    }
    release_result(reason)
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
    fn urls_and_headers_are_checked() {
        assert_eq!(
            http_url("https://o.example:8935/apps/r/session/"),
            Ok("https://o.example:8935/apps/r/session".into())
        );
        assert!(http_url("ftp://x").is_err());
        assert!(http_url("http://").is_err());
        assert!(http_url("orch:8935").is_err());
        assert_eq!(
            header("Authorization: Bearer x"),
            Ok(("Authorization".into(), "Bearer x".into()))
        );
        assert!(header("no colon").is_err());
        assert!(header("bad name: v").is_err());
    }
}
