#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod discovery;
mod funder;
pub mod http;
mod hyper_http;
mod session;
mod tls;

pub use clock::TokioClock;
pub use discovery::discover;
pub use funder::{
    Funder, FunderClosed, FunderConfig, FunderHandle, FunderStats, Persisted, SessionKey, WriteAhead,
};
pub use http::{HttpClient, HttpConfig, HttpError, Observer};
pub use hyper_http::{HyperHttp, adopt, reserve, reserve_until};
/// Which server a request goes to, the core's ([`livepay_core::Peer`]).
pub use livepay_core::Peer;
/// The discovery types, the core's ([`livepay_core::engine`]).
pub use livepay_core::engine::{DiscoveredPrice, DiscoveredRunner, DiscoveryError};
/// A DER certificate, rustls's ([`HttpConfig::orchestrator_ca`] holds them).
pub use rustls::pki_types::CertificateDer;
pub use session::{
    CredentialSource, DEFAULT_EVENT_CAPACITY, LiveError, LiveOptions, LiveSession, WireProblem,
};
pub use tls::{TlsConfigError, TlsFailure, TlsProblem};
