#![doc = include_str!("../README.md")]
// A command-line program prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod daemon;
mod demo;
mod duration;
mod events;
mod fund;
mod live;
mod plot;
mod serve;
mod sim;
mod spend;
mod token;

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

/// Keep Livepeer live-runner sessions funded.
#[derive(Debug, Parser)]
#[command(
    name = "livepay",
    version,
    about,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace (`RUST_LOG`, when set, wins).
    /// Never a secret, at any level.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Verb,
}

/// Logs on stderr, filtered by `RUST_LOG` or else by `-v`. A log line that cannot be written is
/// dropped, never a panic.
fn init_logs(verbose: u8) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Fund session(s) on an embedded simulated orchestrator and signer, with a live status line.
    Demo(demo::DemoArgs),
    /// Reserve a real session and keep it funded until Ctrl-C, SIGTERM or --duration.
    Fund(fund::FundArgs),
    /// The deterministic simulation report: livepay against the livepeer-gateway 1.0.0 loop.
    Sim(sim::SimArgs),
    /// Serve the simulated orchestrator and signer over HTTP, for any Livepeer client.
    ServeSim(serve::ServeArgs),
    /// A crash-safe funding service with an HTTP/JSON API, for gateways in any language.
    Daemon(daemon::DaemonArgs),
}

/// A failure, and the exit code it maps to (the table in the crate's README).
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad flags, URLs, durations, files (exit 2).
    BadInput(String),
    /// The orchestrator released the session (exit 3).
    Released(String),
    /// A terminal rejection (exit 4).
    Rejected(String),
    /// A host could not be reached, or nothing succeeded for the give-up span (exit 5).
    Unreachable(String),
    /// A peer broke the protocol: a malformed answer, a URL that is not one, a cross-origin
    /// URL (exit 6).
    Protocol(String),
    /// Standard output was closed or full; funding was stopped and the session closed (exit 7).
    OutputClosed,
    /// A second interrupt: exited at once, without waiting for the stop (exit 130).
    Interrupted,
}

impl CliError {
    fn code(&self) -> u8 {
        match self {
            Self::BadInput(_) => 2,
            Self::Released(_) => 3,
            Self::Rejected(_) => 4,
            Self::Unreachable(_) => 5,
            Self::Protocol(_) => 6,
            Self::OutputClosed => 7,
            Self::Interrupted => 130,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadInput(m) => write!(f, "bad input: {m}"),
            Self::Released(m) => write!(f, "released by the server: {m}"),
            Self::Rejected(m) => write!(f, "rejected: {m}"),
            Self::Unreachable(m) => write!(f, "unreachable: {m}"),
            Self::Protocol(m) => write!(f, "protocol violation by a peer: {m}"),
            Self::OutputClosed => f.write_str("standard output was closed; funding stopped"),
            Self::Interrupted => f.write_str("interrupted twice: exited without waiting for the stop"),
        }
    }
}

/// Completes on the first Ctrl-C, SIGTERM or SIGHUP (a closed terminal is a request to close,
/// not a crash). From then on, a second Ctrl-C exits the process at once with 130, whatever is
/// still waiting (a stop against a dead server, say).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let unix_signal = |kind: tokio::signal::unix::SignalKind| async move {
        match tokio::signal::unix::signal(kind) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(unix)]
    let (term, hup) = (
        unix_signal(tokio::signal::unix::SignalKind::terminate()),
        unix_signal(tokio::signal::unix::SignalKind::hangup()),
    );
    #[cfg(not(unix))]
    let (term, hup) = (std::future::pending::<()>(), std::future::pending::<()>());
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
        () = hup => {}
    }
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            err_line(&CliError::Interrupted.to_string());
            std::process::exit(i32::from(CliError::Interrupted.code()));
        }
    });
}

/// Set once a write to standard output failed (a closed pipe, a full disk): the commands stop
/// their work and exit 7 instead of panicking.
static OUTPUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether standard output has failed.
pub(crate) fn output_closed() -> bool {
    OUTPUT_CLOSED.load(Ordering::Relaxed)
}

/// Prints one block of output (our own text; a peer's must pass through [`terminal_safe`]).
/// Never panics: a failed write marks the output closed (see [`output_closed`]).
pub(crate) fn out(text: &str) {
    if output_closed() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", text.trim_end())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        OUTPUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Prints one line on standard error, escaped; a failed write is ignored (there is nowhere
/// left to report it).
pub(crate) fn err_line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "livepay: {}", terminal_safe(text));
}

/// `text` with every control character (ESC, CR, LF, BEL, C1 codes, …) written as a visible
/// escape (`\x1b`, `\r`, `\u{9b}`), so that text chosen by a peer can neither move the cursor
/// nor forge a line.
pub(crate) fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => safe.push_str("\\n"),
            '\r' => safe.push_str("\\r"),
            '\t' => safe.push_str("\\t"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                let _ = write!(safe, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(safe, "\\u{{{:x}}}", u32::from(c));
            }
            c => safe.push(c),
        }
    }
    Cow::Owned(safe)
}

/// A multi-threaded tokio runtime for the network commands.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::BadInput(format!("cannot start the async runtime: {e}")))
}

/// clap's error as one line (what was wrong, the valid values, and where to look), or its help
/// and version text. `livepay` alone prints the usage on stderr and exits 2.
fn parse_args() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            let _ = write!(std::io::stderr().lock(), "{}", e.render());
            return ExitCode::from(2);
        }
        let rendered = e.render().to_string();
        // clap spreads one error over several lines (the message, the missing arguments, the
        // possible values, a tip, the usage): keep what informs, on one line.
        let parts: Vec<&str> = rendered
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .map(|l| l.trim_start_matches("error: "))
            .collect();
        let line = if parts.is_empty() {
            "invalid arguments".to_owned()
        } else {
            parts.join(" ")
        };
        err_line(&format!("bad input: {line} (see `livepay --help`)"));
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_logs(cli.verbose);
    let result = match &cli.command {
        Verb::Demo(args) => runtime().and_then(|rt| rt.block_on(demo::run(args))),
        Verb::Fund(args) => runtime().and_then(|rt| rt.block_on(fund::run(args))),
        Verb::Sim(args) => sim::run(args),
        Verb::ServeSim(args) => runtime().and_then(|rt| rt.block_on(serve::run(args))),
        Verb::Daemon(args) => runtime().and_then(|rt| rt.block_on(daemon::run(args))),
    };
    let result = match result {
        Ok(()) if output_closed() => Err(CliError::OutputClosed),
        other => other,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err_line(&e.to_string());
            ExitCode::from(e.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(terminal_safe("plain · text"), "plain · text");
        assert_eq!(terminal_safe("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(terminal_safe("x\r\ny\u{7}"), "x\\r\\ny\\x07");
        assert_eq!(terminal_safe("\u{9b}31m"), "\\u{9b}31m");
        assert!(!terminal_safe("\u{1b}\u{85}\u{7f}").chars().any(char::is_control));
    }
}
