//! What a minted payment is worth: the tickets inside a `Livepeer-Payment` header value.
//!
//! The signer's payment is a base64 [`net.Payment`] protobuf, the message every orchestrator
//! parses. It carries one set of ticket params (face value and winning probability, so each
//! ticket's expected value), one entry per ticket, and the price the payer expects. go-livepeer
//! credits each ticket's expected value, `face_value × win_prob / (2^256 − 1)`, when it accepts
//! the payment ([GL `core/orchestrator.go` L113-233]), and debits a live session at the price of
//! its reservation's payment per second ([GL `server/ai_http.go` L340-362]). So a client that
//! reads the payments it delivers knows the orchestrator's credit *exactly*, however the signer's
//! ledger and the orchestrator's drift apart, and whatever the ticket is worth: that is what the
//! session machine's "valued credit" is ([`Session::handle_ticket_value`](crate::Session::handle_ticket_value)).
//!
//! Reading is total, allocation-free and bounded by the input: anything that is not a well-formed
//! payment with tickets is a [`TicketsError`], and the caller falls back to what the signer billed.
//!
//! ```
//! use livepay_core::tickets::{MintedTickets, UnitPrice};
//! // Three tickets of face value 1000 wei that always win, expecting 10 wei per second.
//! let header = "CiYSAgPoGiD//////////////////////////////////////////xIUEREREREREREREREREREREREREREiAggHIgIICCICCAkqBAgKEAE=";
//! let tickets = MintedTickets::read(header)?;
//! assert_eq!((tickets.count, tickets.ticket_value), (3, 1000));
//! let price = tickets.price.expect("the payment names its price");
//! assert_eq!(price, UnitPrice { per_unit: 10, pixels_per_unit: 1 });
//! let value = tickets.value_at(price).expect("a ticket buys some time");
//! assert_eq!((value.each.as_secs(), value.total().as_secs()), (100, 300));
//! # Ok::<(), livepay_core::tickets::TicketsError>(())
//! ```
//!
//! [`net.Payment`]: https://github.com/livepeer/go-livepeer/blob/176aa415ccea4f9861e0dd44e981cda17fb36f52/net/lp_rpc.proto#L494-L509
//! [GL `core/orchestrator.go` L113-233]: https://github.com/livepeer/go-livepeer/blob/176aa415ccea4f9861e0dd44e981cda17fb36f52/core/orchestrator.go#L113-L233
//! [GL `server/ai_http.go` L340-362]: https://github.com/livepeer/go-livepeer/blob/176aa415ccea4f9861e0dd44e981cda17fb36f52/server/ai_http.go#L340-L362

use core::fmt;

use embassy_time::Duration;

/// A price as an orchestrator states it (`net.PriceInfo`): `per_unit` wei for every
/// `pixels_per_unit` units; a live session's unit is one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPrice {
    /// Wei per `pixels_per_unit` units; positive.
    pub per_unit: u64,
    /// Units the price covers; positive.
    pub pixels_per_unit: u64,
}

impl UnitPrice {
    /// The wei `span` of service costs at this price (per second; rounded down, saturating).
    pub fn wei_for(&self, span: Duration) -> u128 {
        u128::from(span.as_micros()).saturating_mul(u128::from(self.per_unit))
            / (u128::from(self.pixels_per_unit.max(1)) * 1_000_000)
    }
}

/// What one minted payment carries, read from its header value ([`MintedTickets::read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MintedTickets {
    /// Tickets in the payment (at least one).
    pub count: u32,
    /// Expected value of each ticket, wei, rounded down (the orchestrator credits the exact
    /// rational; rounding down keeps every estimate built on it below the truth).
    pub ticket_value: u128,
    /// The price the payment expects, when it names a usable one (positive on both sides).
    pub price: Option<UnitPrice>,
}

/// The service time a payment buys at a session's price: `count` tickets of `each`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketValue {
    /// Tickets.
    pub count: u32,
    /// Service time one ticket buys, rounded down.
    pub each: Duration,
}

impl TicketValue {
    /// The time all the tickets buy (saturating).
    pub fn total(&self) -> Duration {
        Duration::from_ticks(self.each.as_ticks().saturating_mul(u64::from(self.count)))
    }
}

/// Why a header value could not be read as a payment with tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketsError {
    /// Not base64.
    Base64,
    /// Not a well-formed protobuf message (truncated, a bad varint, a group, an oversized field).
    Protobuf,
    /// No ticket params, or no tickets: nothing whose value is known.
    NoTickets,
}

impl fmt::Display for TicketsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Base64 => "payment: not base64",
            Self::Protobuf => "payment: not a well-formed protobuf message",
            Self::NoTickets => "payment: no tickets",
        })
    }
}

impl core::error::Error for TicketsError {}

impl MintedTickets {
    /// Reads a `Livepeer-Payment` header value: base64 (standard or URL-safe alphabet, padding
    /// optional) of a `net.Payment` message.
    ///
    /// # Errors
    ///
    /// [`TicketsError`] when the value is not base64, not a well-formed message, or carries no
    /// tickets.
    pub fn read(header: &str) -> Result<Self, TicketsError> {
        let mut input = Reader::new(header.as_bytes());
        let mut count: u32 = 0;
        let mut params: Option<(U256, U256)> = None;
        let mut price = None;
        while !input.at_end()? {
            let (field, wire) = input.key()?;
            match (field, wire) {
                (1, LEN) => params = Some(read_ticket_params(&mut input)?),
                (4, LEN) => {
                    let len = input.length()?;
                    input.skip(len)?;
                    count = count.saturating_add(1);
                }
                (5, LEN) => price = read_price(&mut input)?,
                _ => input.skip_value(wire)?,
            }
        }
        let (face, win_prob) = params.ok_or(TicketsError::NoTickets)?;
        if count == 0 {
            return Err(TicketsError::NoTickets);
        }
        Ok(Self {
            count,
            ticket_value: expected_value(face, win_prob),
            price,
        })
    }

    /// The service time these tickets buy at `price` (per second), rounded down; `None` when a
    /// ticket buys nothing measurable.
    pub fn value_at(&self, price: UnitPrice) -> Option<TicketValue> {
        // wei × units-per-price ÷ wei-per-price = seconds; in microseconds, rounded down.
        let micros = self
            .ticket_value
            .checked_mul(u128::from(price.pixels_per_unit))
            .and_then(|v| v.checked_mul(1_000_000))
            .map_or(u128::MAX, |v| v / u128::from(price.per_unit.max(1)));
        let micros = u64::try_from(micros).unwrap_or(u64::MAX / 2);
        (micros > 0).then(|| TicketValue {
            count: self.count,
            each: Duration::from_micros(micros),
        })
    }
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

fn read_ticket_params(input: &mut Reader<'_>) -> Result<(U256, U256), TicketsError> {
    let end = input.nested_end()?;
    let (mut face, mut win_prob) = (U256::ZERO, U256::ZERO);
    while input.position < end {
        let (field, wire) = input.key()?;
        match (field, wire) {
            (2, LEN) => face = input.big_endian()?,
            (3, LEN) => win_prob = input.big_endian()?,
            _ => input.skip_value(wire)?,
        }
    }
    input.close_nested(end)?;
    Ok((face, win_prob))
}

fn read_price(input: &mut Reader<'_>) -> Result<Option<UnitPrice>, TicketsError> {
    let end = input.nested_end()?;
    let (mut per_unit, mut pixels) = (0_u64, 0_u64);
    while input.position < end {
        let (field, wire) = input.key()?;
        match (field, wire) {
            // int64 fields: a negative value is a 10-byte varint, read as huge and refused below.
            (1, VARINT) => per_unit = input.varint()?,
            (2, VARINT) => pixels = input.varint()?,
            _ => input.skip_value(wire)?,
        }
    }
    input.close_nested(end)?;
    let positive = |v: u64| v > 0 && v <= i64::MAX as u64;
    Ok((positive(per_unit) && positive(pixels)).then_some(UnitPrice {
        per_unit,
        pixels_per_unit: pixels,
    }))
}

/// `floor(face × win_prob / (2^256 − 1))`, saturated to `u128`.
fn expected_value(face: U256, win_prob: U256) -> u128 {
    let [lo, hi] = face.widening_mul(win_prob);
    // x = hi·2^256 + lo = hi·M + (hi + lo) with M = 2^256 − 1, and hi + lo < 2M because x < M².
    let (sum, carry) = hi.overflowing_add(lo);
    let ev = if carry || sum == U256::MAX {
        hi.overflowing_add(U256::ONE).0
    } else {
        hi
    };
    ev.saturating_u128()
}

/// An unsigned 256-bit integer, little-endian 64-bit limbs: just what ticket values need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct U256([u64; 4]);

impl U256 {
    const ZERO: Self = Self([0; 4]);
    const ONE: Self = Self([1, 0, 0, 0]);
    const MAX: Self = Self([u64::MAX; 4]);

    /// The full 512-bit product, as `[low, high]` halves.
    fn widening_mul(self, other: Self) -> [Self; 2] {
        let mut out = [0_u64; 8];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0_u128;
            for (j, &b) in other.0.iter().enumerate() {
                let t = u128::from(a) * u128::from(b) + u128::from(out[i + j]) + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
            }
            out[i + 4] = carry as u64;
        }
        [
            Self([out[0], out[1], out[2], out[3]]),
            Self([out[4], out[5], out[6], out[7]]),
        ]
    }

    fn overflowing_add(self, other: Self) -> (Self, bool) {
        let mut out = [0_u64; 4];
        let mut carry = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let (s1, c1) = self.0[i].overflowing_add(other.0[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *limb = s2;
            carry = c1 || c2;
        }
        (Self(out), carry)
    }

    fn saturating_u128(self) -> u128 {
        if self.0[2] != 0 || self.0[3] != 0 {
            u128::MAX
        } else {
            (u128::from(self.0[1]) << 64) | u128::from(self.0[0])
        }
    }
}

/// A protobuf reader over base64 text, decoding as it goes (nothing is buffered).
struct Reader<'a> {
    text: &'a [u8],
    /// Next unread text byte.
    cursor: usize,
    /// Decoded bits not yet returned, and how many.
    bits: u32,
    bit_count: u8,
    /// Decoded bytes returned so far.
    position: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            cursor: 0,
            bits: 0,
            bit_count: 0,
            position: 0,
        }
    }

    /// The next decoded byte, `None` at the end of the text.
    fn next_byte(&mut self) -> Result<Option<u8>, TicketsError> {
        while self.bit_count < 8 {
            let Some(&c) = self.text.get(self.cursor) else {
                // Leftover bits of a final partial group must be zero padding.
                return if self.bits & ((1 << self.bit_count) - 1) == 0 {
                    Ok(None)
                } else {
                    Err(TicketsError::Base64)
                };
            };
            self.cursor += 1;
            if c == b'=' {
                return if self.text[self.cursor..].iter().all(|&p| p == b'=') {
                    self.cursor = self.text.len();
                    self.bits &= (1 << self.bit_count) - 1;
                    if self.bits == 0 {
                        Ok(None)
                    } else {
                        Err(TicketsError::Base64)
                    }
                } else {
                    Err(TicketsError::Base64)
                };
            }
            let sextet = sextet(c).ok_or(TicketsError::Base64)?;
            self.bits = (self.bits << 6) | u32::from(sextet);
            self.bit_count += 6;
        }
        self.bit_count -= 8;
        let byte = (self.bits >> self.bit_count) as u8;
        self.bits &= (1 << self.bit_count) - 1;
        self.position += 1;
        Ok(Some(byte))
    }

    fn byte(&mut self) -> Result<u8, TicketsError> {
        self.next_byte()?.ok_or(TicketsError::Protobuf)
    }

    /// Whether the message ended here (checking the text's tail is well-formed).
    fn at_end(&mut self) -> Result<bool, TicketsError> {
        // Peek by decoding into the bit buffer without consuming a byte.
        if self.bit_count >= 8 {
            return Ok(false);
        }
        let saved = (self.cursor, self.bits, self.bit_count, self.position);
        match self.next_byte()? {
            None => Ok(true),
            Some(_) => {
                // Put the byte back: its bits are still derivable from the saved state.
                (self.cursor, self.bits, self.bit_count, self.position) = saved;
                Ok(false)
            }
        }
    }

    fn varint(&mut self) -> Result<u64, TicketsError> {
        let mut value = 0_u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(TicketsError::Protobuf);
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(TicketsError::Protobuf)
    }

    fn key(&mut self) -> Result<(u64, u8), TicketsError> {
        let key = self.varint()?;
        Ok((key >> 3, (key & 7) as u8))
    }

    fn length(&mut self) -> Result<usize, TicketsError> {
        let len = usize::try_from(self.varint()?).map_err(|_| TicketsError::Protobuf)?;
        // No field is longer than what is left of the text.
        if len > self.text.len() {
            return Err(TicketsError::Protobuf);
        }
        Ok(len)
    }

    fn skip(&mut self, len: usize) -> Result<(), TicketsError> {
        for _ in 0..len {
            self.byte()?;
        }
        Ok(())
    }

    fn skip_value(&mut self, wire: u8) -> Result<(), TicketsError> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.skip(8),
            LEN => {
                let len = self.length()?;
                self.skip(len)
            }
            I32 => self.skip(4),
            _ => Err(TicketsError::Protobuf),
        }
    }

    /// Reads a nested message's length: the position where it ends.
    fn nested_end(&mut self) -> Result<usize, TicketsError> {
        let len = self.length()?;
        Ok(self.position + len)
    }

    /// A nested message must end exactly where its length said.
    fn close_nested(&self, end: usize) -> Result<(), TicketsError> {
        if self.position == end {
            Ok(())
        } else {
            Err(TicketsError::Protobuf)
        }
    }

    /// A big-endian unsigned integer of at most 32 bytes.
    fn big_endian(&mut self) -> Result<U256, TicketsError> {
        let len = self.length()?;
        if len > 32 {
            return Err(TicketsError::Protobuf);
        }
        let mut limbs = [0_u64; 4];
        for i in (0..len).rev() {
            let b = self.byte()?;
            limbs[i / 8] |= u64::from(b) << ((i % 8) * 8);
        }
        Ok(U256(limbs))
    }
}

fn sextet(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
