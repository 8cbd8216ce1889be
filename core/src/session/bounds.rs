//! What a real session can reach: the bounds a [`ResumePoint`] from outside is checked against
//! ([`ResumePoint::check`]), so that no impossible number reaches the machine's arithmetic.

use super::ResumePoint;

/// The longest span a session's runway, a ticket's value, a fee or a held mint reaches, ms: a
/// day (a real ticket buys seconds to minutes, a call at most 100 tickets).
pub const MAX_SPAN_MS: u32 = 86_400_000;
/// The most service time a snapshot may have billed, ms: ten years.
pub const MAX_BILLED_MS: u64 = 10 * 365 * 86_400_000;
/// The largest counter a snapshot may carry: a payment a second for three years.
pub const MAX_COUNT: u32 = 100_000_000;
/// Why a snapshot field is out of range (`engine::ResumeError::OutOfRange`, with the `alloc` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// Empty where a value is required.
    Empty,
    /// Longer than its bound.
    TooLong,
    /// A character an id or URL never holds (a space, a control character, non-ASCII).
    BadCharacter,
    /// A number beyond what a real session reaches.
    TooLarge,
    /// A number below what a real session has (a version 0, a zero price).
    TooSmall,
    /// Not an `http(s)` URL that can be sent as it is.
    BadUrl,
    /// An origin other than the one it must share (the control and payment URLs).
    CrossOrigin,
    /// Not what the field holds (a decimal price, a JSON object).
    Malformed,
}

impl core::fmt::Display for Range {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Empty => "is empty",
            Self::TooLong => "is longer than any real session's",
            Self::BadCharacter => "holds a space, a control or a non-ASCII character",
            Self::TooLarge => "is larger than any real session reaches",
            Self::TooSmall => "is smaller than any real session has",
            Self::BadUrl => "is not an http(s) URL without user-info or control characters",
            Self::CrossOrigin => "is not on the orchestrator's origin (the control URL's)",
            Self::Malformed => "is not well-formed",
        })
    }
}

type Checked = Result<(), (&'static str, Range)>;

fn span(field: &'static str, ms: u32) -> Checked {
    if ms > MAX_SPAN_MS {
        Err((field, Range::TooLarge))
    } else {
        Ok(())
    }
}

fn count(field: &'static str, n: u32) -> Checked {
    if n > MAX_COUNT {
        Err((field, Range::TooLarge))
    } else {
        Ok(())
    }
}

impl ResumePoint {
    /// Checks every number against what a real session reaches ([`MAX_SPAN_MS`],
    /// [`MAX_BILLED_MS`], [`MAX_COUNT`]).
    ///
    /// # Errors
    ///
    /// The first field out of range (its path in the snapshot's JSON) and why.
    pub fn check(&self) -> Result<(), (&'static str, Range)> {
        span("funding.runway_ms", self.runway_ms)?;
        span("funding.ev_floor_ms", self.ev_floor_ms)?;
        span("funding.ticket_ms", self.ticket_ms)?;
        span("funding.last_fee_ms", self.last_fee_ms)?;
        count("funding.cycle", self.cycle)?;
        if let Some(held) = &self.held {
            span("funding.held.billed_ms", held.billed_ms)?;
            span("funding.held.value_ms", held.value_ms.unwrap_or(0))?;
        }
        let s = &self.stats;
        for (field, n) in [
            ("funding.stats.payments_sent", s.payments_sent),
            ("funding.stats.payments_accepted", s.payments_accepted),
            ("funding.stats.cycles_skipped", s.cycles_skipped),
            ("funding.stats.failures", s.failures),
            ("funding.stats.lost_mints", s.lost_mints),
            ("funding.stats.reposts", s.reposts),
            ("funding.stats.reposts_credited", s.reposts_credited),
            ("funding.stats.replays_refused", s.replays_refused),
            ("funding.stats.resyncs", s.resyncs),
            ("funding.stats.refreshes", s.refreshes),
            ("funding.stats.at_risk", s.at_risk),
            ("funding.stats.lapses", s.lapses),
        ] {
            count(field, n)?;
        }
        for (field, ms) in [
            ("funding.stats.billed_ms", s.billed_ms),
            ("funding.stats.surplus_ms", s.surplus_ms),
        ] {
            if ms > MAX_BILLED_MS {
                return Err((field, Range::TooLarge));
            }
        }
        Ok(())
    }
}
