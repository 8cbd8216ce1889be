//! [`LiveError`]: why a [`LiveSession`](super::LiveSession) call failed, and [`WireProblem`]:
//! the last thing that went wrong on the wire.

use std::fmt;

use livepay_core::engine::{ProtocolError, ReserveError};
use livepay_core::{ConfigError, Endpoint, PaymentType, ReleaseReason, Reply};

use crate::http::HttpError;

/// The last thing that went wrong on the wire, for logs and error reports (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireProblem {
    /// A request got no usable HTTP answer: the adapter's error.
    Http {
        /// Which request ([`Request::endpoint`](livepay_core::engine::Request::endpoint)).
        endpoint: Endpoint,
        /// What failed.
        error: HttpError,
    },
    /// An HTTP answer the core's engine found wrong: an error status with its reason, or a
    /// malformed body ([`Engine::last_problem`](livepay_core::engine::Engine::last_problem)).
    Protocol(ProtocolError),
}

impl WireProblem {
    /// Whether it concerns the stop request.
    pub fn is_stop(&self) -> bool {
        match self {
            Self::Http { endpoint, .. } => *endpoint == Endpoint::Stop,
            Self::Protocol(
                ProtocolError::Status { endpoint, .. } | ProtocolError::Malformed { endpoint, .. },
            ) => *endpoint == Endpoint::Stop,
            Self::Protocol(_) => false,
        }
    }
}

impl fmt::Display for WireProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http { endpoint, error } => write!(f, "{endpoint}: {error}"),
            Self::Protocol(error) => fmt::Display::fmt(error, f),
        }
    }
}

/// Why a [`LiveSession`](super::LiveSession) call (or [`reserve`](crate::reserve)) failed.
/// Messages hold no secret: no signer header value, payment, segment credentials or signer
/// state, and URLs only without user-info and query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveError {
    /// The reservation was refused or its answers were unusable (signer 481, orchestrator 404,
    /// malformed bodies, a cross-origin `payment_url`, …).
    Reserve(ReserveError),
    /// A reservation request got no usable HTTP answer (timeout, refused connection, TLS
    /// failure, body over the cap, not HTTP).
    Unreachable {
        /// Which request.
        endpoint: Endpoint,
        /// What went wrong.
        error: HttpError,
    },
    /// The HTTP client could not be built.
    Http(HttpError),
    /// The funding configuration is invalid (checked before any request is sent).
    Config(ConfigError),
    /// [`LiveOptions::config`](super::LiveOptions::config)'s payment type differs from the
    /// reservation's (checked before any request is sent).
    PaymentTypeMismatch {
        /// The reservation's payment type.
        reserve: PaymentType,
        /// The configuration's.
        config: PaymentType,
    },
    /// Called outside a tokio runtime: the session's requests and its funding task need one.
    NoRuntime,
    /// The orchestrator did not acknowledge the stop ([`Event::StopFailed`]). Funding is stopped
    /// all the same, and the session is reported released; the runner may keep running until its
    /// credit runs out.
    ///
    /// [`Event::StopFailed`]: livepay_core::Event::StopFailed
    StopFailed {
        /// What came back.
        reply: Reply,
        /// Details of the failure, when known.
        problem: Option<WireProblem>,
    },
    /// The session is already released; nothing can be started.
    AlreadyClosed {
        /// Why it was released.
        reason: ReleaseReason,
    },
    /// The funding task ended abnormally (it panicked); the session's funding state is lost.
    TaskLost,
    /// The reservation was cancelled before its payment left: nothing was reserved or paid
    /// ([`LiveSession::reserve_until`](super::LiveSession::reserve_until)).
    Cancelled,
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reserve(error) => fmt::Display::fmt(error, f),
            Self::Unreachable { endpoint, error } => {
                write!(
                    f,
                    "reservation: {} got no usable answer: {error}",
                    endpoint.as_str()
                )
            }
            Self::Http(error) => write!(f, "HTTP client: {error}"),
            Self::Config(error) => fmt::Display::fmt(error, f),
            Self::PaymentTypeMismatch { reserve, config } => write!(
                f,
                "config: payment type `{}` differs from the reservation's `{}`",
                config.as_str(),
                reserve.as_str()
            ),
            Self::NoRuntime => f.write_str("not called inside a tokio runtime"),
            Self::StopFailed { reply, problem } => {
                write!(f, "stop failed ({reply}); funding is stopped")?;
                match problem {
                    Some(WireProblem::Http { error, .. }) => write!(f, ": {error}"),
                    Some(WireProblem::Protocol(error)) => write!(f, ": {error}"),
                    None => Ok(()),
                }
            }
            Self::AlreadyClosed { reason } => write!(f, "the session is already released ({reason})"),
            Self::TaskLost => f.write_str("the funding task ended abnormally"),
            Self::Cancelled => f.write_str("reservation cancelled before its payment left: nothing was paid"),
        }
    }
}

impl std::error::Error for LiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Reserve(error) => Some(error),
            Self::Unreachable { error, .. } | Self::Http(error) => Some(error),
            Self::Config(error) => Some(error),
            Self::StopFailed {
                problem: Some(WireProblem::Http { error, .. }),
                ..
            } => Some(error),
            Self::StopFailed {
                problem: Some(WireProblem::Protocol(error)),
                ..
            } => Some(error),
            _ => None,
        }
    }
}

impl From<ReserveError> for LiveError {
    fn from(error: ReserveError) -> Self {
        Self::Reserve(error)
    }
}

impl From<ConfigError> for LiveError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}
