//! What the machine reports: [`Event`]s, drained with [`Session::poll_event`](crate::Session::poll_event).

use core::fmt;

use embassy_time::{Duration, Instant};

use crate::classify::{Endpoint, Reply};

/// Where a session is in its funding lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The reservation is paid; the machine is not funding (before `start`, after `stop`, or
    /// while closing).
    Reserved,
    /// Paying on schedule; the last cycle minted a payment (or none has run yet).
    Funding,
    /// Funding, and the last cycle was a signer 482: the balance was current.
    Skipped,
    /// Terminal: no action follows.
    Released {
        /// Why.
        reason: ReleaseReason,
    },
}

impl State {
    /// `Funding` or `Skipped`.
    pub const fn is_funding(self) -> bool {
        matches!(self, Self::Funding | Self::Skipped)
    }

    /// `Released { .. }`.
    pub const fn is_released(self) -> bool {
        matches!(self, Self::Released { .. })
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The client closed it ([`Session::close`](crate::Session::close)).
    ClosedByClient,
    /// The orchestrator answered 404: it had released the session (its balance ran out).
    Gone,
    /// A terminal answer made funding impossible.
    Rejected {
        /// Which request saw it.
        endpoint: Endpoint,
        /// What came back: a status, or an unusable answer.
        reply: Reply,
    },
    /// The configured [`Budget`](crate::Budget) was used up; the session was stopped when the
    /// credit already bought was about to run out.
    BudgetExhausted,
    /// The session was closed after it had lapsed ([`Event::Lapsed`]) with no payment credited
    /// since: the orchestrator has most likely released it already, for lack of funds.
    Lapsed,
    /// Nothing was credited for [`Config::give_up_after_lapse`](crate::Config::give_up_after_lapse)
    /// after the session lapsed: the peers are unreachable or refuse every payment, and the
    /// orchestrator has released the session. The stop was tried on the way out.
    GaveUp,
    /// The orchestrator refused a payment because the runner's price changed (livepeer/node's
    /// 409 "runner price changed; request a new payment challenge"): reserve again to go on at
    /// the new price. The stop was sent first.
    PriceChanged,
    /// The signer's account has no credit left (pymthouse's 483): nothing more can be minted
    /// until it is topped up. The stop was sent first.
    SignerCreditExhausted,
    /// Something outside the payment path said the server released the session (the
    /// application, or a job's events URL): funding stopped at once; no stop was sent.
    ReleasedByServer,
}

/// Why [`Session::start`](crate::Session::start) did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFunded {
    /// No signer: unpriced or offchain runner.
    Offchain,
    /// Fixed price: the reservation paid for everything.
    FixedPrice,
}

/// Something the application may want to log, count or react to. `Copy`, 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The [`State`] changed.
    StateChanged {
        /// Before.
        from: State,
        /// After.
        to: State,
    },
    /// A payment was credited by the orchestrator.
    PaymentAccepted {
        /// The cycle that paid.
        cycle: u32,
        /// From sending the signer request to the orchestrator's 200, on the adapter's clock.
        latency: Duration,
    },
    /// The signer answered 482: balance current, nothing sent.
    CycleSkipped {
        /// The cycle that was skipped.
        cycle: u32,
    },
    /// A transient failure; funding goes on.
    PaymentFailed {
        /// The request that failed.
        endpoint: Endpoint,
        /// What came back.
        reply: Reply,
        /// Failures in a row, this one included.
        consecutive: u16,
        /// When the retry goes out.
        next_retry: Instant,
    },
    /// A request failed after funding had stopped (a `stop`, a close, a budget drain): nothing
    /// is retried.
    PaymentAbandoned {
        /// The request that failed.
        endpoint: Endpoint,
        /// What came back.
        reply: Reply,
    },
    /// The signer asked for fresh payment params (480); a refresh is under way.
    RefreshRequired {
        /// Refreshes in this cycle, this one included.
        attempt: u8,
    },
    /// Fresh payment params arrived; the cycle's payment is retried at once.
    Refreshed {
        /// Refreshes in this cycle.
        attempt: u8,
    },
    /// The estimated runway fell under one server tick without a success.
    AtRisk {
        /// Estimated time until the credit runs out.
        runway: Duration,
    },
    /// The deadline for a success passed: the orchestrator has probably released the session,
    /// or will at its next tick. Funding keeps retrying so a release is confirmed (404) or averted.
    Lapsed {
        /// The deadline that passed.
        deadline: Instant,
    },
    /// The budget is used up: no more payments; the session is stopped at `closes_at`, when the
    /// credit already bought is about to run out.
    BudgetExhausted {
        /// When the stop goes out.
        closes_at: Instant,
    },
    /// A minted payment was given up undelivered (every repost failed, or a replay was refused):
    /// the signer's ledger may count credit the orchestrator never received, so a fresh signer
    /// ledger is started on fresh params.
    MintLost {
        /// The cycle that minted it.
        cycle: u32,
    },
    /// `start` had nothing to fund.
    FundingNotRequired {
        /// Why.
        why: NotFunded,
    },
    /// The stop request failed; funding stays stopped and the session is reported released.
    StopFailed {
        /// What came back.
        reply: Reply,
    },
}

/// Seconds with millisecond precision, e.g. `12.345s`.
struct Secs(u64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1_000, self.0 % 1_000)
    }
}

impl fmt::Display for ReleaseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClosedByClient => f.write_str("closed by the client"),
            Self::Gone => f.write_str("gone: the orchestrator released the session (404)"),
            Self::Rejected {
                endpoint,
                reply: Reply::Status(status),
            } => write!(f, "rejected: {} answered {status}", endpoint.as_str()),
            Self::Rejected { endpoint, reply } => write!(f, "rejected: {}: {reply}", endpoint.as_str()),
            Self::BudgetExhausted => f.write_str("budget exhausted"),
            Self::Lapsed => f.write_str(
                "lapsed: no payment was credited in time; the orchestrator has most likely released the session",
            ),
            Self::PriceChanged => {
                f.write_str("price changed: the runner's price changed; reserve again to go on at the new price")
            }
            Self::SignerCreditExhausted => f.write_str("signer credit exhausted: the signer's account has no credit left"),
            Self::ReleasedByServer => f.write_str("released by the server (signalled outside the payment path)"),
            Self::GaveUp => f.write_str(
                "gave up: nothing was credited for the give-up span after the lapse; the orchestrator has released the session",
            ),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reserved => f.write_str("reserved"),
            Self::Funding => f.write_str("funding"),
            Self::Skipped => f.write_str("skipped (balance current)"),
            Self::Released { reason } => write!(f, "released ({reason})"),
        }
    }
}

/// One line, no secrets (events carry none): `payment accepted: cycle 3 in 0.031s`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::StateChanged { from, to } => write!(f, "state: {from} -> {to}"),
            Self::PaymentAccepted { cycle, latency } => {
                write!(
                    f,
                    "payment accepted: cycle {cycle} in {}",
                    Secs(latency.as_millis())
                )
            }
            Self::CycleSkipped { cycle } => write!(f, "cycle {cycle} skipped: balance current (482)"),
            Self::PaymentFailed {
                endpoint,
                reply,
                consecutive,
                next_retry,
            } => write!(
                f,
                "{} failed ({reply}), {consecutive} in a row; retry at {}",
                endpoint.as_str(),
                Secs(next_retry.as_millis())
            ),
            Self::PaymentAbandoned { endpoint, reply } => {
                write!(f, "{} failed ({reply}) after funding stopped", endpoint.as_str())
            }
            Self::RefreshRequired { attempt } => write!(f, "refresh required (480), attempt {attempt}"),
            Self::Refreshed { attempt } => write!(f, "payment params refreshed, attempt {attempt}"),
            Self::AtRisk { runway } => write!(f, "at risk: runway {}", Secs(runway.as_millis())),
            Self::Lapsed { deadline } => {
                write!(
                    f,
                    "lapsed: no success by {}; the orchestrator has likely released",
                    Secs(deadline.as_millis())
                )
            }
            Self::BudgetExhausted { closes_at } => {
                write!(f, "budget exhausted: stopping at {}", Secs(closes_at.as_millis()))
            }
            Self::MintLost { cycle } => write!(
                f,
                "payment of cycle {cycle} given up undelivered; starting a fresh signer ledger"
            ),
            Self::FundingNotRequired { why } => match why {
                NotFunded::Offchain => f.write_str("nothing to fund: offchain"),
                NotFunded::FixedPrice => f.write_str("nothing to fund: fixed price"),
            },
            Self::StopFailed { reply } => write!(f, "stop failed ({reply}); funding stays stopped"),
        }
    }
}

/// How many events fit between two drains. One input produces at most four.
pub(crate) const EVENT_CAPACITY: usize = 4;

/// A fixed ring of events; when full, the oldest is dropped (and counted by the caller).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventQueue {
    slots: [Option<Event>; EVENT_CAPACITY],
    head: u8,
    len: u8,
}

impl EventQueue {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [None; EVENT_CAPACITY],
            head: 0,
            len: 0,
        }
    }

    /// Appends `event`; returns `true` when the oldest event had to be dropped.
    pub(crate) fn push(&mut self, event: Event) -> bool {
        let cap = EVENT_CAPACITY as u8;
        let dropped = self.len == cap;
        if dropped {
            self.head = (self.head + 1) % cap;
            self.len -= 1;
        }
        let tail = (self.head + self.len) % cap;
        self.slots[usize::from(tail)] = Some(event);
        self.len += 1;
        dropped
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        if self.len == 0 {
            return None;
        }
        let event = self.slots[usize::from(self.head)].take();
        self.head = (self.head + 1) % EVENT_CAPACITY as u8;
        self.len -= 1;
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_stay_small() {
        assert!(
            core::mem::size_of::<Event>() <= 16,
            "{}",
            core::mem::size_of::<Event>()
        );
    }

    #[test]
    fn events_read_as_one_line_each() {
        use std::string::ToString;
        let failed = Event::PaymentFailed {
            endpoint: Endpoint::Payment,
            reply: Reply::Status(503),
            consecutive: 2,
            next_retry: Instant::from_millis(12_345),
        };
        assert_eq!(
            failed.to_string(),
            "payment failed (HTTP 503), 2 in a row; retry at 12.345s"
        );
        let released = Event::StateChanged {
            from: State::Funding,
            to: State::Released {
                reason: ReleaseReason::Gone,
            },
        };
        assert_eq!(
            released.to_string(),
            "state: funding -> released (gone: the orchestrator released the session (404))"
        );
        let accepted = Event::PaymentAccepted {
            cycle: 3,
            latency: Duration::from_millis(31),
        };
        assert_eq!(accepted.to_string(), "payment accepted: cycle 3 in 0.031s");
    }

    #[test]
    fn ring_is_fifo_and_drops_the_oldest_when_full() {
        let mut q = EventQueue::new();
        let ev = |cycle| Event::CycleSkipped { cycle };
        for c in 0..EVENT_CAPACITY as u32 {
            assert!(!q.push(ev(c)));
        }
        assert!(q.push(ev(99)));
        assert_eq!(q.pop(), Some(ev(1)));
        assert_eq!(q.pop(), Some(ev(2)));
        assert_eq!(q.pop(), Some(ev(3)));
        assert_eq!(q.pop(), Some(ev(99)));
        assert_eq!(q.pop(), None);
        q.push(ev(5));
        assert_eq!(q.pop(), Some(ev(5)));
    }
}
