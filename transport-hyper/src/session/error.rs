//! [`LiveError`]: why a [`LiveSession`](super::LiveSession) call failed.

use std::fmt;

use livepay_core::client::{ReserveEndpoint, ReserveError};
use livepay_core::{ConfigError, PaymentType, ReleaseReason, Reply};

use crate::http::HttpError;
use crate::transport::WireProblem;

/// Why a [`LiveSession`](super::LiveSession) call failed. Messages hold no secret: no signer
/// header value, payment, segment credentials or signer state, and URLs only without user-info
/// and query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveError {
    /// The reservation was refused or its answers were unusable (signer 481, orchestrator 404,
    /// malformed bodies, a cross-origin `payment_url`, …).
    Reserve(ReserveError),
    /// A reservation request got no usable HTTP answer (timeout, refused connection, body over
    /// the cap, not HTTP).
    Unreachable {
        /// Which request.
        endpoint: ReserveEndpoint,
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
    /// The orchestrator did not acknowledge the stop. Funding is stopped all the same, and the
    /// session is reported released; the runner may keep running until its credit runs out.
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
                    Some(WireProblem::Protocol { message, .. }) => write!(f, ": {message}"),
                    None => Ok(()),
                }
            }
            Self::AlreadyClosed { reason } => write!(f, "the session is already released ({reason})"),
            Self::TaskLost => f.write_str("the funding task ended abnormally"),
        }
    }
}

impl std::error::Error for LiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Reserve(error) => Some(error),
            Self::Unreachable { error, .. } | Self::Http(error) => Some(error),
            Self::Config(error) => Some(error),
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
