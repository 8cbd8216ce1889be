//! JSON wire types of the live-runner payment protocol (`docs/protocol.md` §2), parsed and written
//! without allocation.
//!
//! # Borrowing and escapes
//!
//! Parsed values borrow their strings, because payment tickets and `payment_params` are base64
//! blobs of many KB: no fixed capacity is safe to guess. A string without escape sequences
//! borrows straight from the body. A string with escapes (Go's `encoding/json` writes `&`, `<`,
//! `>` as `\u0026`, `\u003c`, `\u003e`, inside URLs too; some encoders write `/` as `\/`) is
//! unescaped into the caller's `scratch` buffer, each string into its own region, so every field
//! stays valid for the whole borrow. Unescaping never lengthens a string, so **a scratch buffer as
//! long as the body always suffices**; a shorter one may yield [`WireError::ScratchTooSmall`].
//!
//! serde-json-core 0.7's `from_slice_escaped` is not used for values: it unescapes every string
//! into the start of one shared buffer and hands it over as a transient `&str`, which a borrowed
//! `&'a str` field rejects. Values are therefore read as raw (still escaped) text and unescaped
//! here, surrogate pairs included.
//!
//! # Strictness
//!
//! Every body is first checked to be one well-formed JSON value (RFC 8259, UTF-8) nested at most
//! 32 deep, without recursion: serde-json-core recurses once per nesting level, and a hostile
//! body must not exhaust the stack. Unknown fields are ignored; duplicate fields, fields of the
//! wrong JSON type, and trailing non-whitespace are errors.

use core::fmt;
use core::str::FromStr;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use crate::redact::{Len, Redacted};

mod json;
#[cfg(test)]
mod tests;

use json::{RawStr, Strings, is_decimal, parse_raw, write_json};

/// Why a body could not be parsed, or a value not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Not well-formed JSON, a field of the wrong JSON type, or a duplicate field; the text says
    /// which.
    Malformed(&'static str),
    /// Well-formed JSON, but not an object (an array, a string, a number…).
    NotAnObject,
    /// A required field is absent (or `null`); names the field as it is spelt on the wire.
    MissingField(&'static str),
    /// A required string field is `""`.
    EmptyField(&'static str),
    /// A field has the right JSON type but a value outside the contract (an unknown `type` or
    /// `unit`, a `currency` other than `wei`, a `price` that is not a decimal).
    InvalidValue(&'static str),
    /// The scratch buffer cannot hold the unescaped strings; one as long as the body always can.
    ScratchTooSmall,
    /// The output buffer cannot hold the serialised JSON.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed JSON: {why}"),
            Self::NotAnObject => f.write_str("JSON body is not an object"),
            Self::MissingField(field) => write!(f, "missing field `{field}`"),
            Self::EmptyField(field) => write!(f, "empty field `{field}`"),
            Self::InvalidValue(field) => write!(f, "invalid value in field `{field}`"),
            Self::ScratchTooSmall => f.write_str("scratch buffer too small to unescape strings"),
            Self::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl core::error::Error for WireError {}

/// `value`, a field that travels in a request header (`Livepeer-Payer-Address`,
/// `Livepeer-Payment`, `Livepeer-Segment`), if it is visible ASCII only: a space, a line break or
/// any other control character would split or corrupt the header, so it is an invalid value.
fn header_field<'a>(value: &'a str, field: &'static str) -> Result<&'a str, WireError> {
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value)
    } else {
        Err(WireError::InvalidValue(field))
    }
}

/// The longest session or manifest id accepted, bytes: go-livepeer's are 8 hex characters,
/// livepeer/node's `session_` plus 10 random characters; ids are echoed in logs and URLs, so the
/// bound keeps a hostile server from making them huge.
pub const MAX_ID_LEN: usize = 128;

/// `value`, a session or manifest id, if it is printable (no control character) and at most
/// [`MAX_ID_LEN`] bytes; any other form (`0a1b2c3d`, `session_Ab3xYz9QwE`) is accepted.
fn id_field<'a>(value: &'a str, field: &'static str) -> Result<&'a str, WireError> {
    if value.len() <= MAX_ID_LEN && !value.chars().any(char::is_control) {
        Ok(value)
    } else {
        Err(WireError::InvalidValue(field))
    }
}

/// How the signer prices a session: the `type` field of generate-live-payment (`docs/protocol.md` §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentType {
    /// `"live"`: billed per second of elapsed time.
    Live,
    /// `"lv2v"`: billed per 720p pixel-second.
    Lv2v,
    /// `"fixed"`: billed once per request.
    Fixed,
}

impl PaymentType {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Lv2v => "lv2v",
            Self::Fixed => "fixed",
        }
    }

    /// The signer `type` a discovered `price_info.unit` calls for (`docs/protocol.md` §2.4):
    /// `seconds`/`hour` → `live`, `720p-pixel-seconds`/`720p` → `lv2v`, `fixed` → `fixed`;
    /// `None` for any other unit. The one place units map to types.
    pub fn from_price_unit(unit: &str) -> Option<Self> {
        match unit {
            "seconds" | "hour" => Some(Self::Live),
            "720p-pixel-seconds" | "720p" => Some(Self::Lv2v),
            "fixed" => Some(Self::Fixed),
            _ => None,
        }
    }

    /// The `maxPrice.unit` that goes with this type.
    pub const fn price_unit(self) -> PriceUnit {
        match self {
            Self::Live => PriceUnit::Seconds,
            Self::Lv2v => PriceUnit::PixelSeconds720p,
            Self::Fixed => PriceUnit::Fixed,
        }
    }
}

impl FromStr for PaymentType {
    type Err = WireError;

    /// Parses the exact wire spelling; anything else is [`WireError::InvalidValue`]`("type")`.
    fn from_str(s: &str) -> Result<Self, WireError> {
        match s {
            "live" => Ok(Self::Live),
            "lv2v" => Ok(Self::Lv2v),
            "fixed" => Ok(Self::Fixed),
            _ => Err(WireError::InvalidValue("type")),
        }
    }
}

/// The unit of a [`MaxPrice`] (`maxPrice.unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriceUnit {
    /// `"seconds"`.
    #[serde(rename = "seconds")]
    Seconds,
    /// `"720p-pixel-seconds"`.
    #[serde(rename = "720p-pixel-seconds")]
    PixelSeconds720p,
    /// `"fixed"`.
    #[serde(rename = "fixed")]
    Fixed,
}

impl PriceUnit {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "seconds",
            Self::PixelSeconds720p => "720p-pixel-seconds",
            Self::Fixed => "fixed",
        }
    }
}

impl FromStr for PriceUnit {
    type Err = WireError;

    /// Parses the exact wire spelling; anything else is
    /// [`WireError::InvalidValue`]`("maxPrice.unit")`.
    fn from_str(s: &str) -> Result<Self, WireError> {
        match s {
            "seconds" => Ok(Self::Seconds),
            "720p-pixel-seconds" => Ok(Self::PixelSeconds720p),
            "fixed" => Ok(Self::Fixed),
            _ => Err(WireError::InvalidValue("maxPrice.unit")),
        }
    }
}

/// A priced runner's 402 challenge (`docs/protocol.md` §2.3), also the shape of the refresh-payment 200
/// answer (§2.6).
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Challenge<'a> {
    /// Base64 protobuf `OrchestratorInfo`; opaque, passed verbatim to the signer.
    pub payment_params: &'a str,
    /// The session id to be.
    pub manifest_id: &'a str,
    /// The session-scoped payment URL.
    pub payment_url: &'a str,
    /// The orchestrator's public service URI; `None` when absent, `null` or `""`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<&'a str>,
}

impl<'a> Challenge<'a> {
    /// Parses a 402 (or refresh-payment 200) body; a body lacking `payment_params`,
    /// `manifest_id` or `payment_url` is not a challenge ([`WireError::MissingField`]).
    ///
    /// Escaped strings are unescaped into `scratch` (see the [module docs](self)).
    pub fn parse(body: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default, borrow)]
            payment_params: RawStr<'a>,
            #[serde(default, borrow)]
            manifest_id: RawStr<'a>,
            #[serde(default, borrow)]
            payment_url: RawStr<'a>,
            #[serde(default, borrow)]
            orchestrator: RawStr<'a>,
        }
        let raw: Raw<'a> = parse_raw(body)?;
        let mut s = Strings::new(scratch);
        Ok(Self {
            payment_params: s.required(raw.payment_params, "payment_params")?,
            manifest_id: id_field(s.required(raw.manifest_id, "manifest_id")?, "manifest_id")?,
            payment_url: s.required(raw.payment_url, "payment_url")?,
            orchestrator: s.optional(raw.orchestrator)?,
        })
    }

    /// Writes the JSON body into `out`, returning its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_json(self, out)
    }
}

impl fmt::Debug for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // payment_params is public but several KB: its length is all a log needs.
        f.debug_struct("Challenge")
            .field("payment_params", &Len(self.payment_params.len()))
            .field("manifest_id", &self.manifest_id)
            .field("payment_url", &self.payment_url)
            .field("orchestrator", &self.orchestrator)
            .finish()
    }
}

/// The sign-orchestrator-info 200 body (`docs/protocol.md` §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrchestratorInfoSignature<'a> {
    /// The payer's address (`0x…`).
    pub address: &'a str,
    /// The signature (`0x…`).
    pub signature: &'a str,
}

impl<'a> OrchestratorInfoSignature<'a> {
    /// Parses the body; both fields are required and non-empty.
    pub fn parse(body: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default, borrow)]
            address: RawStr<'a>,
            #[serde(default, borrow)]
            signature: RawStr<'a>,
        }
        let raw: Raw<'a> = parse_raw(body)?;
        let mut s = Strings::new(scratch);
        Ok(Self {
            address: header_field(s.required(raw.address, "address")?, "address")?,
            signature: s.required(raw.signature, "signature")?,
        })
    }

    /// Writes the JSON body into `out`, returning its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_json(self, out)
    }
}

/// The signer's opaque session state `{"State", "Sig"}`: secret, redacted in `Debug`.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SignerState<'a> {
    /// Base64 state (`State`).
    #[serde(rename = "State")]
    pub state: &'a str,
    /// Base64 signature over the state (`Sig`).
    #[serde(rename = "Sig")]
    pub sig: &'a str,
}

/// [`SignerState`] as read, before checks.
#[derive(Clone, Copy, Deserialize)]
struct RawSignerState<'a> {
    #[serde(default, borrow, rename = "State")]
    state: RawStr<'a>,
    #[serde(default, borrow, rename = "Sig")]
    sig: RawStr<'a>,
}

impl<'a> SignerState<'a> {
    /// Parses a bare state object; both fields are required and non-empty.
    pub fn parse(body: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, WireError> {
        let raw: RawSignerState<'a> = parse_raw(body)?;
        Self::from_raw(raw, &mut Strings::new(scratch), ["State", "Sig"])
    }

    /// Checks a raw state; `names` are the field names to report, which differ when nested.
    fn from_raw(
        raw: RawSignerState<'a>,
        s: &mut Strings<'a>,
        names: [&'static str; 2],
    ) -> Result<Self, WireError> {
        Ok(Self {
            state: s.required(raw.state, names[0])?,
            sig: s.required(raw.sig, names[1])?,
        })
    }

    /// Writes the JSON object into `out`, returning its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_json(self, out)
    }
}

impl fmt::Debug for SignerState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerState")
            .field("state", &Redacted(self.state.len()))
            .field("sig", &Redacted(self.sig.len()))
            .finish()
    }
}

/// The `maxPrice` ceiling of a [`PaymentRequest`]; `currency` is always `"wei"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPrice<'a> {
    /// Price per unit in wei, as a decimal (`123` or `123.45`). Sent as a JSON string, which the
    /// signer accepts alongside a number, so no precision is lost to a float.
    pub price: &'a str,
    /// What the price is per.
    pub unit: PriceUnit,
}

impl Serialize for MaxPrice<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut st = serializer.serialize_struct("MaxPrice", 3)?;
        st.serialize_field("price", self.price)?;
        st.serialize_field("currency", "wei")?;
        st.serialize_field("unit", &self.unit)?;
        st.end()
    }
}

/// The signer's `state` as it sent it: a JSON object, opaque and secret, kept and sent back
/// byte for byte whatever its keys (go-livepeer writes `{"State", "Sig"}`, livepeer/node
/// `{"state", "sig"}`; a client that rebuilt it would break one of them). `Debug` shows its length.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawObject<'a>(&'a str);

impl<'a> RawObject<'a> {
    /// `{}`.
    pub const EMPTY: RawObject<'static> = RawObject("{}");

    /// `text` if it is one well-formed JSON object (`{…}`, surrounding spaces trimmed).
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] for text that is not JSON, [`WireError::NotAnObject`] for
    /// another JSON value.
    pub fn new(text: &'a str) -> Result<Self, WireError> {
        json::validate(text.as_bytes())?;
        let trimmed = text.trim_matches(|c: char| c.is_ascii() && json::is_whitespace(c as u8));
        if !trimmed.starts_with('{') {
            return Err(WireError::NotAnObject);
        }
        Ok(Self(trimmed))
    }

    /// The object's text, verbatim.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// The required object member `field` of `body` (a validated JSON object).
    fn member(body: &'a [u8], field: &'static str) -> Result<Option<Self>, WireError> {
        let Some(raw) = json::member(body, field) else {
            return Ok(None);
        };
        if raw == b"null" {
            return Ok(None);
        }
        if raw.first() != Some(&b'{') {
            return Err(WireError::Malformed("field has the wrong JSON type"));
        }
        // A member of a validated UTF-8 body is UTF-8; checked because unsafe is forbidden.
        let text = core::str::from_utf8(raw).map_err(|_| WireError::Malformed("invalid UTF-8"))?;
        Ok(Some(Self(text)))
    }
}

impl fmt::Debug for RawObject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Redacted(self.0.len()), f)
    }
}

/// `body`, a JSON object just written into `out[..len]`, with `"key":raw` appended as its
/// last member; the new length.
fn append_member(out: &mut [u8], len: usize, key: &str, raw: &str) -> Result<usize, WireError> {
    // The object ends with `}`; an empty one (`{}`) takes no comma.
    let close = len
        .checked_sub(1)
        .filter(|&i| out.get(i) == Some(&b'}'))
        .ok_or(WireError::BufferTooSmall)?;
    let empty = close > 0 && out.get(close - 1) == Some(&b'{');
    let mut at = close;
    let mut push = |bytes: &[u8]| -> Result<(), WireError> {
        let end = at + bytes.len();
        out.get_mut(at..end)
            .ok_or(WireError::BufferTooSmall)?
            .copy_from_slice(bytes);
        at = end;
        Ok(())
    };
    if !empty {
        push(b",")?;
    }
    push(b"\"")?;
    push(key.as_bytes())?;
    push(b"\":")?;
    push(raw.as_bytes())?;
    push(b"}")?;
    Ok(at)
}

/// The generate-live-payment request body (`docs/protocol.md` §2.2).
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PaymentRequest<'a> {
    /// The challenge's `payment_params`, verbatim.
    pub orchestrator: &'a str,
    /// The pricing type (`type`).
    #[serde(rename = "type")]
    pub payment_type: PaymentType,
    /// The challenge's `manifest_id`, sent as `ManifestID` (a Go field without a json tag).
    #[serde(rename = "ManifestID")]
    pub manifest_id: &'a str,
    /// The runner's app name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<&'a str>,
    /// A price ceiling, if any.
    #[serde(rename = "maxPrice", skip_serializing_if = "Option::is_none")]
    pub max_price: Option<MaxPrice<'a>>,
    /// The previous answer's state, verbatim; `None` on the first call, when the key must be
    /// absent.
    #[serde(skip)]
    pub state: Option<RawObject<'a>>,
}

impl<'a> PaymentRequest<'a> {
    /// Parses a request body (for fakes of the signer). `orchestrator`, `type` and `ManifestID`
    /// are required; `maxPrice.price` must be a decimal *string* (serde-json-core cannot borrow
    /// a number's text), `maxPrice.currency` `"wei"` or absent, `maxPrice.unit` present.
    pub fn parse(body: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct RawMaxPrice<'a> {
            #[serde(default, borrow)]
            price: RawStr<'a>,
            #[serde(default, borrow)]
            currency: RawStr<'a>,
            #[serde(default, borrow)]
            unit: RawStr<'a>,
        }
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default, borrow)]
            orchestrator: RawStr<'a>,
            #[serde(default, borrow, rename = "type")]
            payment_type: RawStr<'a>,
            #[serde(default, borrow, rename = "ManifestID")]
            manifest_id: RawStr<'a>,
            #[serde(default, borrow)]
            app: RawStr<'a>,
            #[serde(default, borrow, rename = "maxPrice")]
            max_price: Option<RawMaxPrice<'a>>,
        }
        let raw: Raw<'a> = parse_raw(body)?;
        let mut s = Strings::new(scratch);
        let orchestrator = s.required(raw.orchestrator, "orchestrator")?;
        let payment_type = s.required(raw.payment_type, "type")?.parse()?;
        let manifest_id = s.required(raw.manifest_id, "ManifestID")?;
        let app = s.optional(raw.app)?;
        let max_price = match raw.max_price {
            None => None,
            Some(mp) => {
                let price = s.required(mp.price, "maxPrice.price")?;
                if !is_decimal(price) {
                    return Err(WireError::InvalidValue("maxPrice.price"));
                }
                if s.optional(mp.currency)?.is_some_and(|c| c != "wei") {
                    return Err(WireError::InvalidValue("maxPrice.currency"));
                }
                let unit = s.required(mp.unit, "maxPrice.unit")?.parse()?;
                Some(MaxPrice { price, unit })
            }
        };
        let state = RawObject::member(body, "state")?;
        Ok(Self {
            orchestrator,
            payment_type,
            manifest_id,
            app,
            max_price,
            state,
        })
    }

    /// Writes the JSON body into `out`, returning its length. `None` fields are left out, so the
    /// first call carries no `state` key.
    ///
    /// A `maxPrice.price` that is not a decimal is [`WireError::InvalidValue`] rather than
    /// something the signer would reject as a terminal 400.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        if self.max_price.is_some_and(|mp| !is_decimal(mp.price)) {
            return Err(WireError::InvalidValue("maxPrice.price"));
        }
        let len = write_json(self, out)?;
        match self.state {
            None => Ok(len),
            Some(state) => append_member(out, len, "state", state.as_str()),
        }
    }
}

impl fmt::Debug for PaymentRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentRequest")
            .field("orchestrator", &Len(self.orchestrator.len()))
            .field("payment_type", &self.payment_type)
            .field("manifest_id", &self.manifest_id)
            .field("app", &self.app)
            .field("max_price", &self.max_price)
            .field("state", &self.state)
            .finish()
    }
}

/// The generate-live-payment 200 body (`docs/protocol.md` §2.2). Every field is secret: `Debug` shows
/// lengths only.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PaymentResponse<'a> {
    /// Base64 payment tickets, for the `Livepeer-Payment` header.
    pub payment: &'a str,
    /// Base64 segment credentials, for the `Livepeer-Segment` header.
    #[serde(rename = "segCreds")]
    pub seg_creds: &'a str,
    /// The new state, verbatim, replacing the previous one.
    #[serde(skip)]
    pub state: RawObject<'a>,
}

impl<'a> PaymentResponse<'a> {
    /// Parses the body: `payment` and `segCreds` required non-empty, `state` a required JSON
    /// object, kept verbatim (any keys).
    pub fn parse(body: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default, borrow)]
            payment: RawStr<'a>,
            #[serde(default, borrow, rename = "segCreds")]
            seg_creds: RawStr<'a>,
        }
        let raw: Raw<'a> = parse_raw(body)?;
        let mut s = Strings::new(scratch);
        let payment = header_field(s.required(raw.payment, "payment")?, "payment")?;
        let seg_creds = header_field(s.required(raw.seg_creds, "segCreds")?, "segCreds")?;
        let state = RawObject::member(body, "state")?.ok_or(WireError::MissingField("state"))?;
        Ok(Self {
            payment,
            seg_creds,
            state,
        })
    }

    /// Writes the JSON body into `out`, returning its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let len = write_json(self, out)?;
        append_member(out, len, "state", self.state.as_str())
    }
}

impl fmt::Debug for PaymentResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentResponse")
            .field("payment", &Redacted(self.payment.len()))
            .field("seg_creds", &Redacted(self.seg_creds.len()))
            .field("state", &self.state)
            .finish()
    }
}

/// The paid-retry 200 body of a reservation (`docs/protocol.md` §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reservation<'a> {
    /// The session id (the challenge's `manifest_id`).
    pub session_id: &'a str,
    /// Where the app is served.
    pub app_url: &'a str,
    /// The session's control URL; `POST {control_url}/stop` releases it.
    pub control_url: &'a str,
}

impl<'a> Reservation<'a> {
    /// Parses the body; all three fields are required and non-empty.
    pub fn parse(body: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default, borrow)]
            session_id: RawStr<'a>,
            #[serde(default, borrow)]
            app_url: RawStr<'a>,
            #[serde(default, borrow)]
            control_url: RawStr<'a>,
        }
        let raw: Raw<'a> = parse_raw(body)?;
        let mut s = Strings::new(scratch);
        Ok(Self {
            session_id: id_field(s.required(raw.session_id, "session_id")?, "session_id")?,
            app_url: s.required(raw.app_url, "app_url")?,
            control_url: s.required(raw.control_url, "control_url")?,
        })
    }

    /// Writes the JSON body into `out`, returning its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_json(self, out)
    }
}

/// The refresh-payment request body (`docs/protocol.md` §2.6). Its 200 answer is a [`Challenge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RefreshRequest<'a> {
    /// The signer's address.
    pub sender: &'a str,
    /// The session id.
    pub manifest_id: &'a str,
}

impl<'a> RefreshRequest<'a> {
    /// Parses the body (for fakes of the orchestrator); both fields required and non-empty.
    pub fn parse(body: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default, borrow)]
            sender: RawStr<'a>,
            #[serde(default, borrow)]
            manifest_id: RawStr<'a>,
        }
        let raw: Raw<'a> = parse_raw(body)?;
        let mut s = Strings::new(scratch);
        Ok(Self {
            sender: s.required(raw.sender, "sender")?,
            manifest_id: id_field(s.required(raw.manifest_id, "manifest_id")?, "manifest_id")?,
        })
    }

    /// Writes the JSON body into `out`, returning its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_json(self, out)
    }
}

/// The most bytes [`error_message`] returns.
pub const MAX_ERROR_MESSAGE_LEN: usize = 200;

/// A short, printable reason from an error answer's body.
///
/// Three shapes are read: go-livepeer's `{"error":{"message":"…"}}`, livepeer/node's
/// `{"error":"…"}`, and plain text. For the JSON shapes this is the message as written (escape sequences left in place: unescaping would need a buffer, and
/// the text is only a diagnostic); otherwise it is the body's longest valid UTF-8 prefix. Either
/// way it is trimmed and cut at a char boundary to at most [`MAX_ERROR_MESSAGE_LEN`] bytes.
pub fn error_message(body: &[u8]) -> &str {
    // A JSON string's contents, escapes as written.
    fn contents(raw: &[u8]) -> Option<&[u8]> {
        raw.strip_prefix(b"\"")?.strip_suffix(b"\"")
    }
    let from_json = || -> Option<&[u8]> {
        json::validate(body).ok()?;
        let error = json::member(body, "error")?;
        match error.first()? {
            // go-livepeer: `{"error":{"message":"…"}}`.
            b'{' => contents(json::member(error, "message")?),
            // livepeer/node: `{"error":"…"}`.
            b'"' => contents(error),
            _ => None,
        }
    };
    from_json()
        .and_then(|message| core::str::from_utf8(message).ok())
        .map(clip)
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| {
            let text = match core::str::from_utf8(body) {
                Ok(text) => text,
                // The prefix up to valid_up_to is valid UTF-8 by definition.
                Err(e) => core::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default(),
            };
            clip(text)
        })
}

/// Trims `text` and cuts it to at most [`MAX_ERROR_MESSAGE_LEN`] bytes at a char boundary.
fn clip(text: &str) -> &str {
    let text = text.trim();
    if text.len() <= MAX_ERROR_MESSAGE_LEN {
        return text;
    }
    // A char is at most 4 bytes, so a boundary lies within the last 4 positions; 0 always is one.
    let cut = (0..=MAX_ERROR_MESSAGE_LEN)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[..cut].trim_end()
}
