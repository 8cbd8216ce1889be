//! Every failure of the package, raised as one of `livepay.errors`' exceptions (all under
//! `livepay.Error`), with the core's reasons as attributes rather than only a message. Messages
//! come from the core's `Display`, which quotes no secret and no URL query.

use livepay_core::engine::ReserveError;
use livepay_hyper::LiveError;
use pyo3::prelude::*;

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum Problem {
    /// Used in a child of `fork`: the funder's threads stayed in the parent.
    Forked,
    /// The client or the configuration cannot be built.
    Config(String),
    /// The funder stopped (the interpreter is shutting down).
    Closed,
    /// An argument is unusable; names it.
    Invalid { field: String, message: String },
    /// The reservation or adoption failed.
    Reserve(LiveError),
    /// Funding was stopped here and its snapshot handed to the caller.
    HandedOff,
    /// The session is released already.
    Released(String),
}

impl From<LiveError> for Problem {
    fn from(error: LiveError) -> Self {
        match error {
            LiveError::Reserve(ReserveError::BadAdoption { field, problem }) => Self::Invalid {
                field: field.to_owned(),
                message: format!("`{field}` {problem}"),
            },
            LiveError::Reserve(ReserveError::BadUrl { field })
                if matches!(field, "runner_url" | "signer_url") =>
            {
                Self::Invalid {
                    field: field.to_owned(),
                    message: format!("`{field}` is not an http(s) URL with a host"),
                }
            }
            LiveError::Reserve(ReserveError::UserInfoInUrl { field }) => Self::Invalid {
                field: field.to_owned(),
                message: format!(
                    "`{field}` must not carry user:password@ (send credentials as signer headers)"
                ),
            },
            LiveError::Reserve(e @ ReserveError::BadSignerHeader { .. }) => Self::Invalid {
                field: "signer_headers".to_owned(),
                message: e.to_string(),
            },
            LiveError::Reserve(ReserveError::BadMaxPrice) => Self::Invalid {
                field: "max_price".to_owned(),
                message: "max price is not a decimal in the payment type's unit".to_owned(),
            },
            other => Self::Reserve(other),
        }
    }
}

/// The kind, status and endpoint of a reservation failure, for the exception's attributes.
fn reserve_parts(error: &LiveError) -> (&'static str, Option<u16>, Option<&'static str>) {
    match error {
        LiveError::Reserve(e) => match e {
            ReserveError::Signer { status, .. } => ("signer_refused", Some(*status), Some("signer")),
            ReserveError::Orchestrator { status, .. } => {
                ("orchestrator_refused", Some(*status), Some("reservation"))
            }
            ReserveError::NotAChallenge { status, .. } => {
                ("not_a_challenge", Some(*status), Some("reservation"))
            }
            ReserveError::Unreachable { endpoint, .. } => ("unreachable", None, Some(endpoint.as_str())),
            ReserveError::Malformed { endpoint, .. } => ("malformed_answer", None, Some(endpoint.as_str())),
            ReserveError::TooManyAttempts { .. } => ("too_many_attempts", None, None),
            ReserveError::PaymentRequired => ("payment_required", Some(402), None),
            ReserveError::CrossOriginPaymentUrl | ReserveError::CrossOriginControlUrl => {
                ("cross_origin", None, None)
            }
            _ => ("invalid", None, None),
        },
        LiveError::Unreachable { endpoint, .. } => ("unreachable", None, Some(endpoint.as_str())),
        LiveError::Cancelled => ("cancelled", None, None),
        _ => ("failed", None, None),
    }
}

fn raise(py: Python<'_>, class: &str, message: &str, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let made = py
        .import("livepay.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((message,)));
    match made {
        Ok(instance) => {
            for (name, value) in attrs {
                if let Err(e) = instance.setattr(*name, value) {
                    return e;
                }
            }
            PyErr::from_value(instance)
        }
        Err(e) => e,
    }
}

impl Problem {
    pub(crate) fn into_py_err(self) -> PyErr {
        Python::attach(|py| {
            let none = || py.None();
            match self {
                Self::Forked => raise(
                    py,
                    "Error",
                    "livepay: used in a child of fork(); its funder runs in the parent (import livepay after forking, or use a fresh process)",
                    &[],
                ),
                Self::Config(why) => raise(py, "Error", &format!("livepay: {why}"), &[]),
                Self::Closed => raise(py, "Error", "livepay: the funder has stopped", &[]),
                Self::Invalid { field, message } => raise(
                    py,
                    "InvalidArgument",
                    &format!("livepay: {message}"),
                    &[(
                        "field",
                        field
                            .into_pyobject(py)
                            .map_or_else(|_| none(), |v| v.into_any().unbind()),
                    )],
                ),
                Self::Reserve(error) => {
                    let (kind, status, endpoint) = reserve_parts(&error);
                    let to = |v: Option<u16>| {
                        v.map_or_else(none, |s| {
                            s.into_pyobject(py)
                                .map_or_else(|_| none(), |v| v.into_any().unbind())
                        })
                    };
                    let text = |v: Option<&str>| {
                        v.map_or_else(none, |s| {
                            s.into_pyobject(py)
                                .map_or_else(|_| none(), |v| v.into_any().unbind())
                        })
                    };
                    raise(
                        py,
                        "ReservationError",
                        &format!("livepay: {error}"),
                        &[
                            ("reason", text(Some(kind))),
                            ("status", to(status)),
                            ("endpoint", text(endpoint)),
                        ],
                    )
                }
                Self::HandedOff => raise(
                    py,
                    "HandedOff",
                    "livepay: funding was stopped here and the session handed off (adopt its snapshot to fund it again)",
                    &[],
                ),
                Self::Released(reason) => raise(
                    py,
                    "Released",
                    &format!("livepay: the session is released: {reason}"),
                    &[(
                        "reason",
                        reason
                            .into_pyobject(py)
                            .map_or_else(|_| none(), |v| v.into_any().unbind()),
                    )],
                ),
            }
        })
    }
}

impl From<Problem> for PyErr {
    fn from(problem: Problem) -> Self {
        problem.into_py_err()
    }
}

/// An [`Problem::Invalid`] naming `field`.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Problem {
    Problem::Invalid {
        field: field.to_owned(),
        message: format!("`{field}` {}", message.into()),
    }
}
