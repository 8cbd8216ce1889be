//! The label values of every series: closed enums, so that the label set is fixed at compile
//! time and nothing a peer or a caller chose (a URL, a header, a message) can reach a scrape.

use std::fmt::{self, Write as _};

use livepay_core::{Endpoint, ReleaseReason, State};
use prometheus_client::encoding::{
    EncodeLabel as _, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder,
};

/// A closed label: its key, its variants and their text, and a one-label [`EncodeLabelSet`]
/// (`{key="text"}`) so that the enum itself is a family's label set.
macro_rules! label {
    (
        $(#[$doc:meta])*
        $name:ident, $key:literal {
            $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(super) enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// The label key.
            pub(super) const KEY: &'static str = $key;
            /// Every value, in declaration order.
            #[allow(dead_code, reason = "the endpoints' is read by the tests only")]
            pub(super) const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The label value.
            pub(super) const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl EncodeLabelSet for $name {
            fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), fmt::Error> {
                (Self::KEY, self.as_str()).encode(encoder.encode_label())
            }
        }
    };
}

label! {
    /// `livepay_sessions{state}`: the core's [`State`], without the release reason.
    SessionState, "state" {
        /// [`State::Reserved`].
        Reserved => "reserved",
        /// [`State::Funding`].
        Funding => "funding",
        /// [`State::Skipped`].
        Skipped => "skipped",
        /// [`State::Released`].
        Released => "released",
    }
}

impl SessionState {
    pub(super) const fn of(state: State) -> Self {
        match state {
            State::Reserved => Self::Reserved,
            State::Funding => Self::Funding,
            State::Skipped => Self::Skipped,
            State::Released { .. } => Self::Released,
        }
    }
}

label! {
    /// `livepay_payments_total{outcome}`: how a payment cycle ended.
    Outcome, "outcome" {
        /// The orchestrator credited the payment.
        Accepted => "accepted",
        /// The signer answered 482: the balance was current, nothing was sent.
        Skipped => "skipped",
        /// A transient failure; funding went on.
        Failed => "failed",
    }
}

label! {
    /// `livepay_replays_total{result}`: reposts of a payment already minted.
    Replay, "result" {
        /// A repost went out.
        Sent => "sent",
        /// The orchestrator credited a repost.
        Credited => "credited",
        /// The orchestrator refused a repost (most likely credited already).
        Refused => "refused",
    }
}

label! {
    /// `livepay_releases_total{reason}`: the [`ReleaseReason`] of a release, without its fields
    /// (a `Rejected`'s endpoint and reply would multiply the series; logs have them).
    Release, "reason" {
        /// [`ReleaseReason::ClosedByClient`].
        ClosedByClient => "closed_by_client",
        /// [`ReleaseReason::Gone`].
        Gone => "gone",
        /// [`ReleaseReason::Rejected`].
        Rejected => "rejected",
        /// [`ReleaseReason::BudgetExhausted`].
        BudgetExhausted => "budget_exhausted",
        /// [`ReleaseReason::Lapsed`].
        Lapsed => "lapsed",
        /// [`ReleaseReason::GaveUp`].
        GaveUp => "gave_up",
        /// [`ReleaseReason::PriceChanged`].
        PriceChanged => "price_changed",
        /// [`ReleaseReason::SignerCreditExhausted`].
        SignerCreditExhausted => "signer_credit_exhausted",
        /// [`ReleaseReason::ReleasedByServer`].
        ReleasedByServer => "released_by_server",
    }
}

impl Release {
    /// Exhaustive on purpose: a new reason fails to compile here until it has a label. The
    /// texts are the CLI's `--json` reason names, so that dashboards and logs agree.
    pub(super) const fn of(reason: ReleaseReason) -> Self {
        match reason {
            ReleaseReason::ClosedByClient => Self::ClosedByClient,
            ReleaseReason::Gone => Self::Gone,
            ReleaseReason::Rejected { .. } => Self::Rejected,
            ReleaseReason::BudgetExhausted => Self::BudgetExhausted,
            ReleaseReason::Lapsed => Self::Lapsed,
            ReleaseReason::GaveUp => Self::GaveUp,
            ReleaseReason::PriceChanged => Self::PriceChanged,
            ReleaseReason::SignerCreditExhausted => Self::SignerCreditExhausted,
            ReleaseReason::ReleasedByServer => Self::ReleasedByServer,
        }
    }
}

label! {
    /// `endpoint` of the request series: the core's request kind ([`Request::what`]), spelt as
    /// the core spells it (and so as the debug logs do), except `paid reservation`, whose space
    /// becomes a hyphen like its siblings'.
    ///
    /// [`Request::what`]: livepay_core::engine::Request::what
    EndpointLabel, "endpoint" {
        /// The signer's `generate-live-payment` of a funding cycle.
        Signer => "signer",
        /// A payment POST.
        Payment => "payment",
        /// A payment POST again, with the same minted payment.
        Repost => "repost",
        /// `POST /refresh-payment`.
        Refresh => "refresh",
        /// `POST {control_url}/stop`.
        Stop => "stop",
        /// The reservation's signer `sign-orchestrator-info`.
        SignOrchestratorInfo => "sign-orchestrator-info",
        /// The unpaid reservation POST (the 402 challenge).
        Reservation => "reservation",
        /// The paid reservation retry.
        PaidReservation => "paid-reservation",
        /// The orchestrator's runner discovery.
        Discovery => "discovery",
        /// A job's events URL, watched for a release.
        Events => "events",
    }
}

impl EndpointLabel {
    /// The label of a request to `endpoint` (the core's enum: nothing is parsed back from text,
    /// and a new endpoint fails to compile until it has a label).
    pub(super) const fn of(endpoint: Endpoint) -> Self {
        match endpoint {
            Endpoint::Signer => Self::Signer,
            Endpoint::Payment => Self::Payment,
            Endpoint::Repost => Self::Repost,
            Endpoint::Refresh => Self::Refresh,
            Endpoint::Stop => Self::Stop,
            Endpoint::OrchestratorInfo => Self::SignOrchestratorInfo,
            Endpoint::Reservation => Self::Reservation,
            Endpoint::PaidReservation => Self::PaidReservation,
            Endpoint::Discovery => Self::Discovery,
            Endpoint::Events => Self::Events,
        }
    }
}

/// `status` of `livepay_requests_total`: the HTTP status code, or `none` when no answer came
/// (refused, timed out, reset, TLS). A number is all an answer contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum StatusLabel {
    /// An HTTP answer with this status.
    Code(u16),
    /// No HTTP answer.
    None,
}

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        match self {
            Self::Code(code) => write!(encoder, "{code}"),
            Self::None => encoder.write_str("none"),
        }
    }
}

/// The label set of `livepay_requests_total`: `{endpoint, status}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Exchange {
    pub(super) endpoint: EndpointLabel,
    pub(super) status: StatusLabel,
}

impl EncodeLabelSet for Exchange {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), fmt::Error> {
        (EndpointLabel::KEY, self.endpoint.as_str()).encode(encoder.encode_label())?;
        ("status", self.status).encode(encoder.encode_label())
    }
}
