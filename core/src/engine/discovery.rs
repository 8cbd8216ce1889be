//! Discovery (`docs/protocol.md` §2.4): which runners an orchestrator offers, at what price,
//! as a sans-IO query: [`DiscoveryQuery::request`] out, [`DiscoveryQuery::parse`] of the answer.
//!
//! The answer is read defensively: unknown fields are ignored, a runner without a usable
//! reservation URL is skipped, and no body (non-JSON, an object instead of an array, absurd
//! numbers) makes it panic.
//!
//! ```
//! use livepay_core::engine::{DiscoveryQuery, Response};
//! use livepay_core::PaymentType;
//!
//! let query = DiscoveryQuery::new("https://orch.example:8935", Some("live-app"));
//! let request = query.request();
//! assert_eq!(request.url, "https://orch.example:8935/discovery?app=live-app");
//! let body = br#"[{"address":"https://orch.example:8935","runners":[{"url":"https://orch.example:8935/apps/r1/session","app":"live-app","price_info":{"price":1000000000,"currency":"wei","unit":"seconds"}}]}]"#;
//! let runners = query.parse(&Response::new(200, body))?;
//! assert_eq!(runners[0].runner_id, "r1");
//! assert_eq!(runners[0].payment_type(), Some(PaymentType::Live));
//! assert_eq!(runners[0].max_price(1.2).map(|m| m.price).as_deref(), Some("1012000000"));
//! # Ok::<(), livepay_core::engine::DiscoveryError>(())
//! ```

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use serde_json::{Map, Value};

use super::protocol::{MaxPrice, is_decimal, origin};
use super::request::{Method, Request, Response};
use crate::classify::{Endpoint, Failure, Reply, StatusTable, Verdict};
use crate::config::PaymentType;
use crate::sequencer::RequestId;

/// Longest price kept, in characters; a longer one is not a price (it is dropped).
const MAX_PRICE_CHARS: usize = 128;
/// Longest part of an error body quoted in [`DiscoveryError::Status`].
const MAX_MESSAGE_CHARS: usize = 200;

/// A runner's advertised price (`price_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredPrice {
    /// Wei per unit, as a decimal (digits, optionally `.` and more digits): a JSON number or a
    /// decimal string on the wire. An integer beyond `u64` sent as a JSON number is only as
    /// precise as an `f64`.
    pub price: String,
    /// The currency (`"wei"`); empty when not given.
    pub currency: String,
    /// What the price is per (`seconds`, `720p-pixel-seconds`, `fixed`, …); empty when not given.
    pub unit: String,
}

/// One runner of a discovery answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredRunner {
    /// The orchestrator that lists it (the entry's `address`; the queried URL when absent).
    pub orchestrator: String,
    /// The reservation URL, `{orch}/apps/{runner_id}/session`: the
    /// [`ReserveOptions::runner_url`](super::ReserveOptions::runner_url).
    pub url: String,
    /// The runner id: the path segment of [`url`](Self::url) between `apps` and `session`.
    pub runner_id: String,
    /// The app it serves.
    pub app: Option<String>,
    /// Its mode (`"live"`); absent for runners of the default mode.
    pub mode: Option<String>,
    /// Concurrent sessions it accepts.
    pub capacity: Option<u64>,
    /// Free slots at the time of the answer.
    pub capacity_available: Option<u64>,
    /// Its price; `None` when absent (an unpriced runner) or unreadable.
    pub price: Option<DiscoveredPrice>,
    /// Its price in US dollars per the price's unit, when the orchestrator states one
    /// (livepeer/node prices in USD): `price_usd` on the runner or in its `price_info`, a JSON
    /// number or decimal string. For spend reports only; payments are always in wei.
    pub price_usd: Option<String>,
}

impl DiscoveredRunner {
    /// The signer `type` its price unit calls for ([`PaymentType::from_price_unit`]); `None`
    /// for no price or an unknown unit.
    pub fn payment_type(&self) -> Option<PaymentType> {
        PaymentType::from_price_unit(&self.price.as_ref()?.unit)
    }

    /// A `maxPrice` ceiling for the signer: the discovered price raised by `pad_percent` percent
    /// (the upstream SDK pads by 1.2), computed exactly in decimal, per the
    /// [`payment_type`](Self::payment_type)'s unit. `None` without a price or a known unit, or
    /// for a negative or non-finite `pad_percent`.
    pub fn max_price(&self, pad_percent: f64) -> Option<MaxPrice> {
        let payment_type = self.payment_type()?;
        let price = pad_decimal(&self.price.as_ref()?.price, pad_percent)?;
        Some(MaxPrice::new(price, payment_type.price_unit()))
    }
}

/// Why discovery gave no list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// No usable HTTP answer; `detail` is the adapter's description (never a secret).
    Unreachable {
        /// What kind of failure.
        failure: Failure,
        /// The adapter's words for it.
        detail: String,
    },
    /// An answer other than 2xx: the status and the start of its body, control characters
    /// replaced.
    Status(u16, String),
    /// A 2xx answer that is not a JSON array.
    Malformed(String),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { detail, .. } => write!(f, "discovery: {detail}"),
            Self::Status(status, message) if message.is_empty() => {
                write!(f, "discovery answered {status}")
            }
            Self::Status(status, message) => write!(f, "discovery answered {status}: {message}"),
            Self::Malformed(why) => write!(f, "discovery answer unusable: {why}"),
        }
    }
}

impl core::error::Error for DiscoveryError {}

/// One `GET {orchestrator}/discovery`, optionally for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryQuery {
    base: String,
    app: Option<String>,
}

impl DiscoveryQuery {
    /// A query of `orchestrator_url`'s runners; with `app`, the request carries `?app=…` (which
    /// the orchestrator ignores) and only that app's runners are kept.
    pub fn new(orchestrator_url: &str, app: Option<&str>) -> Self {
        Self {
            base: orchestrator_url.trim_end_matches('/').to_string(),
            app: app.map(ToString::to_string),
        }
    }

    /// The request to send (to the orchestrator, with its TLS policy).
    pub fn request(&self) -> Request {
        let mut url = format!("{}/discovery", self.base);
        if let Some(app) = &self.app {
            url.push_str("?app=");
            url.push_str(&percent_encode(app));
        }
        Request {
            id: RequestId::new(1),
            endpoint: Endpoint::Discovery,
            method: Method::Get,
            url,
            headers: vec![(Cow::Borrowed("Accept"), String::from("application/json"))],
            body: Vec::new(),
            deadline: None,
        }
    }

    /// The runners of the answer.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::Status`] for an answer other than 2xx; [`DiscoveryError::Malformed`]
    /// when the body is not a JSON array.
    pub fn parse(&self, response: &Response<'_>) -> Result<Vec<DiscoveredRunner>, DiscoveryError> {
        let verdict = StatusTable::new().verdict(Endpoint::Discovery, Reply::Status(response.status));
        if verdict != Verdict::Success {
            return Err(DiscoveryError::Status(response.status, message_of(response.body)));
        }
        let runners = parse(response.body, &self.base)?;
        Ok(match &self.app {
            Some(app) => runners
                .into_iter()
                .filter(|r| r.app.as_deref() == Some(app.as_str()))
                .collect(),
            None => runners,
        })
    }
}

/// The runners of a discovery body; `fallback` names the orchestrator of an entry without
/// `address`.
fn parse(body: &[u8], fallback: &str) -> Result<Vec<DiscoveredRunner>, DiscoveryError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DiscoveryError::Malformed(format!("not JSON: {e}")))?;
    let Value::Array(entries) = value else {
        return Err(DiscoveryError::Malformed(format!(
            "expected an array, got {}",
            kind(&value)
        )));
    };
    let mut out = Vec::new();
    for entry in &entries {
        // An entry that is not an object, or a runner without a usable url, is skipped: one odd
        // entry must not hide the others.
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let orchestrator = string(entry, "address").unwrap_or_else(|| fallback.to_string());
        let Some(runners) = entry.get("runners").and_then(Value::as_array) else {
            continue;
        };
        for runner in runners {
            if let Some(runner) = runner.as_object().and_then(|r| parse_runner(r, &orchestrator)) {
                out.push(runner);
            }
        }
    }
    Ok(out)
}

fn parse_runner(runner: &Map<String, Value>, orchestrator: &str) -> Option<DiscoveredRunner> {
    let url = string(runner, "url")?;
    let runner_id = runner_id_of(&url)?;
    let price = runner
        .get("price_info")
        .and_then(Value::as_object)
        .and_then(|info| {
            Some(DiscoveredPrice {
                price: price_of(info.get("price")?)?,
                currency: string(info, "currency").unwrap_or_default(),
                unit: string(info, "unit").unwrap_or_default(),
            })
        });
    Some(DiscoveredRunner {
        orchestrator: orchestrator.to_string(),
        url,
        runner_id,
        app: string(runner, "app"),
        mode: string(runner, "mode"),
        capacity: runner.get("capacity").and_then(Value::as_u64),
        capacity_available: runner.get("capacity_available").and_then(Value::as_u64),
        price_usd: runner
            .get("price_usd")
            .or_else(|| runner.get("price_info")?.get("price_usd"))
            .and_then(price_of),
        price,
    })
}

/// A non-empty string field.
fn string(object: &Map<String, Value>, field: &str) -> Option<String> {
    object
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(ToString::to_string)
}

/// `{runner_id}` of an absolute `http(s)://host/…/apps/{runner_id}/session` URL.
fn runner_id_of(url: &str) -> Option<String> {
    origin(url)?;
    let (_, rest) = url.split_once("://")?;
    let path = rest.split(['?', '#']).next()?;
    let (_, path) = path.split_once('/')?;
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        [.., "apps", id, "session"] if !id.is_empty() => Some((*id).to_string()),
        _ => None,
    }
}

/// A price as a decimal string: a non-negative JSON number or a decimal string.
fn price_of(value: &Value) -> Option<String> {
    let text = match value {
        Value::Number(n) => match n.as_u64() {
            Some(u) => u.to_string(),
            None if n.as_i64().is_some() => return None,
            None => {
                let f = n.as_f64()?;
                if !f.is_finite() || f < 0.0 {
                    return None;
                }
                // `Display` of an `f64` never uses an exponent: the shortest digits that read
                // back to `f`, as a plain decimal.
                format!("{f}")
            }
        },
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    (text.len() <= MAX_PRICE_CHARS && is_decimal(&text)).then_some(text)
}

/// `price × (1 + pad_percent / 100)`, exactly, as a decimal string.
fn pad_decimal(price: &str, pad_percent: f64) -> Option<String> {
    if !pad_percent.is_finite() || pad_percent < 0.0 {
        return None;
    }
    let price = Decimal::parse(price)?;
    // `Display` of an `f64` is a plain decimal (no exponent).
    let pad = Decimal::parse(&format!("{pad_percent}"))?;
    let factor = pad.add(&Decimal::parse("100")?);
    let mut product = price.mul(&factor);
    product.scale += 2;
    Some(product.to_string())
}

/// An unsigned decimal: `digits × 10^-scale`, most significant digit first.
#[derive(Debug, Clone)]
struct Decimal {
    digits: Vec<u8>,
    scale: usize,
}

impl Decimal {
    fn parse(s: &str) -> Option<Self> {
        if !is_decimal(s) {
            return None;
        }
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        Some(Self {
            digits,
            scale: frac.len(),
        })
    }

    /// The digits with `extra` zeros appended (the same value at `scale + extra`).
    fn widened(&self, extra: usize) -> Vec<u8> {
        let mut digits = self.digits.clone();
        digits.resize(digits.len() + extra, 0);
        digits
    }

    fn add(&self, other: &Self) -> Self {
        let scale = self.scale.max(other.scale);
        let a = self.widened(scale - self.scale);
        let b = other.widened(scale - other.scale);
        let mut sum = Vec::with_capacity(a.len().max(b.len()) + 1);
        let mut carry = 0;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 || j > 0 || carry > 0 {
            let mut d = carry;
            if i > 0 {
                i -= 1;
                d += a[i];
            }
            if j > 0 {
                j -= 1;
                d += b[j];
            }
            sum.push(d % 10);
            carry = d / 10;
        }
        sum.reverse();
        Self { digits: sum, scale }
    }

    fn mul(&self, other: &Self) -> Self {
        let (a, b) = (&self.digits, &other.digits);
        let mut acc = vec![0_u32; a.len() + b.len()];
        for (i, &x) in a.iter().enumerate().rev() {
            for (j, &y) in b.iter().enumerate().rev() {
                acc[i + j + 1] += u32::from(x) * u32::from(y);
            }
        }
        for k in (1..acc.len()).rev() {
            let carry = acc[k] / 10;
            acc[k] %= 10;
            acc[k - 1] += carry;
        }
        // Every cell is now a digit: the top one cannot exceed 9 (the product has at most
        // `a.len() + b.len()` digits).
        let digits = acc.into_iter().map(|d| u8::try_from(d).unwrap_or(9)).collect();
        Self {
            digits,
            scale: self.scale + other.scale,
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = self.digits.clone();
        if digits.len() <= self.scale {
            let missing = self.scale + 1 - digits.len();
            digits.splice(0..0, core::iter::repeat_n(0, missing));
        }
        let (int, frac) = digits.split_at(digits.len() - self.scale);
        let int_start = int.iter().position(|&d| d != 0).unwrap_or(int.len() - 1);
        let frac_end = frac.iter().rposition(|&d| d != 0).map_or(0, |p| p + 1);
        for d in &int[int_start..] {
            write!(f, "{d}")?;
        }
        if frac_end > 0 {
            f.write_str(".")?;
            for d in &frac[..frac_end] {
                write!(f, "{d}")?;
            }
        }
        Ok(())
    }
}

/// `s` for a query value: unreserved characters as they are, every other byte `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The start of an error body, one line, for [`DiscoveryError::Status`].
fn message_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut message: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS + 1)
        .collect();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        message = message.chars().take(MAX_MESSAGE_CHARS).collect();
        message.push('…');
    }
    message
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::{pad_decimal, parse, percent_encode, price_of, runner_id_of};
    use serde_json::json;
    use std::vec::Vec;

    #[test]
    fn prices_pad_exactly() {
        assert_eq!(pad_decimal("1000000000", 1.2).as_deref(), Some("1012000000"));
        assert_eq!(pad_decimal("1000000001", 1.2).as_deref(), Some("1012000001.012"));
        assert_eq!(pad_decimal("0.0000361", 1.2).as_deref(), Some("0.0000365332"));
        assert_eq!(pad_decimal("0", 1.2).as_deref(), Some("0"));
        assert_eq!(pad_decimal("007.50", 0.0).as_deref(), Some("7.5"));
        assert_eq!(pad_decimal("5", 100.0).as_deref(), Some("10"));
        assert_eq!(pad_decimal("5", -1.0), None);
        assert_eq!(pad_decimal("5", f64::NAN), None);
        assert_eq!(pad_decimal("1e9", 1.2), None);
    }

    #[test]
    fn prices_are_decimal_strings() {
        assert_eq!(price_of(&json!(1_000_000_000_u64)).as_deref(), Some("1000000000"));
        assert_eq!(price_of(&json!(0.0000361)).as_deref(), Some("0.0000361"));
        assert_eq!(
            price_of(&json!(1e30)).as_deref(),
            Some("1000000000000000000000000000000")
        );
        assert_eq!(price_of(&json!(" 12.5 ")).as_deref(), Some("12.5"));
        assert_eq!(price_of(&json!(-3)), None);
        assert_eq!(price_of(&json!(-0.5)), None);
        assert_eq!(price_of(&json!("abc")), None);
        assert_eq!(price_of(&json!(1e300)), None);
        assert_eq!(price_of(&json!(null)), None);
    }

    #[test]
    fn runner_ids_come_from_the_url() {
        assert_eq!(
            runner_id_of("https://o.example:8935/apps/live-runner/session").as_deref(),
            Some("live-runner")
        );
        assert_eq!(
            runner_id_of("http://o.example/prefix/apps/x/session/?q=1").as_deref(),
            Some("x")
        );
        assert_eq!(runner_id_of("http://o.example/apps//session"), None);
        assert_eq!(runner_id_of("http://o.example/other"), None);
        assert_eq!(runner_id_of("/apps/x/session"), None);
    }

    #[test]
    fn odd_bodies_do_not_fail_the_list() {
        let body = br#"[1, {"runners": "no"}, {"address": "http://o", "runners": [
            {"app": "no-url"}, 7,
            {"url": "http://o/apps/a/session", "capacity": -1, "price_info": {"price": "x"}},
            {"url": "http://o/apps/b/session", "extra": {}, "price_info": {"price": 3, "unit": "fixed"}}
        ]}, {"runners": [{"url": "http://p/apps/c/session"}]}]"#;
        let runners = parse(body, "http://fallback").unwrap_or_default();
        let ids: Vec<&str> = runners.iter().map(|r| r.runner_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(runners[0].capacity, None);
        assert_eq!(runners[0].price, None);
        assert_eq!(runners[1].price.as_ref().map(|p| p.price.as_str()), Some("3"));
        assert_eq!(runners[2].orchestrator, "http://fallback");
        assert!(parse(b"{}", "o").is_err());
        assert!(parse(b"not json", "o").is_err());
        assert!(parse(b"[1e999999]", "o").is_err());
    }

    #[test]
    fn apps_are_percent_encoded() {
        assert_eq!(percent_encode("a b&c=d/é~"), "a%20b%26c%3Dd%2F%C3%A9~");
    }
}
