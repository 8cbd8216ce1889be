//! `livepay daemon`: a long-running, crash-safe funding service on the core engine and the
//! [`Funder`](livepay_hyper::Funder), for gateways in any language.
//!
//! - [`run`]: [`Daemon::start`](run::Daemon::start) opens the store, reads or makes the API
//!   token, resumes every session not closed and binds; [`Daemon::serve`](run::Daemon::serve)
//!   serves the API until shutdown;
//! - [`api`]: the HTTP/JSON API (axum), bearer-token guarded;
//! - [`service`]: the sessions on one funder, written ahead of every POST, resumed on restart;
//! - [`spec`]: request bodies, stored specs and the views the API shows;
//! - [`store`]: the [`Store`](store::Store) trait, SQLite behind it, and the batching writer
//!   that makes every signer state durable before the payment carrying it is posted;
//! - [`listen`]: the API's accept loop with a header-read timeout, a connection cap and a
//!   shutdown deadline;
//! - [`health`]: a panic in a funding task fails `/healthz` and stops the daemon non-zero;
//! - [`metrics`]: Prometheus series of sessions, payments, latencies, runway, releases and spend.
//!
//! The run loop, in short:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use livepay_daemon::run::{Daemon, DaemonOptions};
//!
//! let daemon = Daemon::start(DaemonOptions {
//!     listen: "127.0.0.1:7878".parse()?,
//!     state: livepay_daemon::run::StateLocation::parse("livepay.db"),
//!     api_token_file: None, // made beside the state at first start, mode 0600
//!     allow_remote: false,
//!     http: livepay_hyper::HttpConfig::default(),
//!     service: livepay_daemon::service::ServiceConfig::default(),
//!     api_limits: livepay_daemon::listen::ApiLimits::default(),
//! })
//! .await?;
//! println!("API on http://{}, token in {}", daemon.addr, daemon.token_path.display());
//! daemon.serve(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod health;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod run;
pub mod service;
pub mod spec;
pub mod store;
