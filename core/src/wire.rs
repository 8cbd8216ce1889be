//! JSON wire types of the live-runner payment protocol (protocol.md §2), parsed and written
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
use serde_json_core::str::EscapedStr;

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

/// How the signer prices a session: the `type` field of generate-live-payment (protocol.md §2.2).
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

/// A priced runner's 402 challenge (protocol.md §2.3), also the shape of the refresh-payment 200
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
            manifest_id: s.required(raw.manifest_id, "manifest_id")?,
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

/// The sign-orchestrator-info 200 body (protocol.md §2.1).
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
            address: s.required(raw.address, "address")?,
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

/// The generate-live-payment request body (protocol.md §2.2).
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
    /// The previous answer's state; `None` on the first call, when the key must be absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SignerState<'a>>,
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
            #[serde(default, borrow)]
            state: Option<RawSignerState<'a>>,
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
        let state = match raw.state {
            None => None,
            Some(st) => Some(SignerState::from_raw(st, &mut s, ["state.State", "state.Sig"])?),
        };
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
        write_json(self, out)
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

/// The generate-live-payment 200 body (protocol.md §2.2). Every field is secret: `Debug` shows
/// lengths only.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PaymentResponse<'a> {
    /// Base64 payment tickets, for the `Livepeer-Payment` header.
    pub payment: &'a str,
    /// Base64 segment credentials, for the `Livepeer-Segment` header.
    #[serde(rename = "segCreds")]
    pub seg_creds: &'a str,
    /// The new state, replacing the previous one.
    pub state: SignerState<'a>,
}

impl<'a> PaymentResponse<'a> {
    /// Parses the body: `payment` and `segCreds` required non-empty, `state` a required object
    /// (`state.State`, `state.Sig` required non-empty).
    pub fn parse(body: &'a [u8], scratch: &'a mut [u8]) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default, borrow)]
            payment: RawStr<'a>,
            #[serde(default, borrow, rename = "segCreds")]
            seg_creds: RawStr<'a>,
            #[serde(default, borrow)]
            state: Option<RawSignerState<'a>>,
        }
        let raw: Raw<'a> = parse_raw(body)?;
        let mut s = Strings::new(scratch);
        let payment = s.required(raw.payment, "payment")?;
        let seg_creds = s.required(raw.seg_creds, "segCreds")?;
        let state = raw.state.ok_or(WireError::MissingField("state"))?;
        Ok(Self {
            payment,
            seg_creds,
            state: SignerState::from_raw(state, &mut s, ["state.State", "state.Sig"])?,
        })
    }

    /// Writes the JSON body into `out`, returning its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_json(self, out)
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

/// The paid-retry 200 body of a reservation (protocol.md §2.3).
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
            session_id: s.required(raw.session_id, "session_id")?,
            app_url: s.required(raw.app_url, "app_url")?,
            control_url: s.required(raw.control_url, "control_url")?,
        })
    }

    /// Writes the JSON body into `out`, returning its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_json(self, out)
    }
}

/// The refresh-payment request body (protocol.md §2.6). Its 200 answer is a [`Challenge`].
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
            manifest_id: s.required(raw.manifest_id, "manifest_id")?,
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
/// go-livepeer answers either `{"error":{"message":"…"}}` or plain text. For the JSON shape this
/// is the message as written (escape sequences left in place: unescaping would need a buffer, and
/// the text is only a diagnostic); otherwise it is the body's longest valid UTF-8 prefix. Either
/// way it is trimmed and cut at a char boundary to at most [`MAX_ERROR_MESSAGE_LEN`] bytes.
pub fn error_message(body: &[u8]) -> &str {
    #[derive(Deserialize)]
    struct Outer<'a> {
        #[serde(default, borrow)]
        error: Option<Inner<'a>>,
    }
    #[derive(Deserialize)]
    struct Inner<'a> {
        #[serde(default, borrow)]
        message: RawStr<'a>,
    }
    parse_raw::<Outer<'_>>(body)
        .ok()
        .and_then(|outer| outer.error?.message)
        .map(|message| clip(message.0))
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

/// A string value as written between its quotes, escapes intact; `None` when absent or `null`.
type RawStr<'a> = Option<EscapedStr<'a>>;

/// Validates `body`, then reads it into a raw (unchecked) struct.
fn parse_raw<'a, R: Deserialize<'a>>(body: &'a [u8]) -> Result<R, WireError> {
    validate(body)?;
    if body.iter().find(|b| !is_whitespace(**b)) != Some(&b'{') {
        return Err(WireError::NotAnObject);
    }
    // No unescape buffer: keys of this protocol are plain ASCII that no encoder escapes, and
    // without one serde-json-core skips unknown strings without decoding them (it would reject
    // a surrogate pair such as "\ud83d\ude00" in a field we do not even read).
    serde_json_core::from_slice(body)
        .map(|(raw, _)| raw)
        .map_err(|e| {
            use serde_json_core::de::Error;
            // `validate` already rejected malformed JSON; what is left is about the fields.
            WireError::Malformed(match e {
                Error::InvalidType => "field has the wrong JSON type",
                // With every field optional, the derived visitors' only custom error is this.
                Error::CustomError => "duplicate field",
                _ => "invalid JSON",
            })
        })
}

/// Serialises `value` into `out`.
fn write_json<T: Serialize>(value: &T, out: &mut [u8]) -> Result<usize, WireError> {
    // serde-json-core's only serialisation error is a full buffer.
    serde_json_core::to_slice(value, out).map_err(|_| WireError::BufferTooSmall)
}

/// Whether `s` is digits with an optional fraction (`123`, `123.45`).
fn is_decimal(s: &str) -> bool {
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('.') {
        Some((int, frac)) => all_digits(int) && all_digits(frac),
        None => all_digits(s),
    }
}

/// Checks raw strings and unescapes them, each into its own region of the scratch buffer.
struct Strings<'a> {
    scratch: &'a mut [u8],
}

impl<'a> Strings<'a> {
    fn new(scratch: &'a mut [u8]) -> Self {
        Self { scratch }
    }

    /// A required, non-empty string.
    fn required(&mut self, raw: RawStr<'a>, field: &'static str) -> Result<&'a str, WireError> {
        match raw {
            None => Err(WireError::MissingField(field)),
            Some(EscapedStr("")) => Err(WireError::EmptyField(field)),
            Some(EscapedStr(raw)) => self.unescape(raw),
        }
    }

    /// An optional string; `""` counts as absent.
    fn optional(&mut self, raw: RawStr<'a>) -> Result<Option<&'a str>, WireError> {
        match raw {
            None | Some(EscapedStr("")) => Ok(None),
            Some(EscapedStr(raw)) => self.unescape(raw).map(Some),
        }
    }

    fn unescape(&mut self, raw: &'a str) -> Result<&'a str, WireError> {
        if !raw.contains('\\') {
            return Ok(raw);
        }
        // Carve the string's region off the front so later strings cannot overwrite it.
        let buf = core::mem::take(&mut self.scratch);
        let len = unescape_into(raw, buf)?;
        let (done, rest) = buf.split_at_mut(len);
        self.scratch = rest;
        let done: &'a [u8] = done;
        // Built from whole chars, so always UTF-8; checked because unsafe is forbidden.
        core::str::from_utf8(done).map_err(|_| WireError::Malformed(BAD_ESCAPE))
    }
}

const BAD_ESCAPE: &str = "invalid escape sequence";

/// Unescapes JSON string contents into `out`, returning the length written.
fn unescape_into(raw: &str, out: &mut [u8]) -> Result<usize, WireError> {
    let mut len = 0;
    let mut rest = raw;
    while let Some(at) = rest.find('\\') {
        push(out, &mut len, &rest.as_bytes()[..at])?;
        let (c, after) = unescape_one(&rest[at + 1..]).ok_or(WireError::Malformed(BAD_ESCAPE))?;
        push(out, &mut len, c.encode_utf8(&mut [0; 4]).as_bytes())?;
        rest = after;
    }
    push(out, &mut len, rest.as_bytes())?;
    Ok(len)
}

/// Decodes the escape that `s` starts with (the text after a backslash) and returns the rest.
fn unescape_one(s: &str) -> Option<(char, &str)> {
    let c = match s.as_bytes().first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex4(s.get(1..5)?)?;
            let after = s.get(5..)?;
            if !(0xD800..0xDC00).contains(&high) {
                // A lone low surrogate fails here: it is no char.
                return Some((char::from_u32(high)?, after));
            }
            // UTF-16 surrogate pair, as written by ASCII-only encoders for chars past U+FFFF.
            let low = hex4(after.strip_prefix("\\u")?.get(..4)?)?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?;
            return Some((c, after.get(6..)?));
        }
        _ => return None,
    };
    Some((c, s.get(1..)?))
}

/// Four hex digits (`u32::from_str_radix` alone would also take a sign).
fn hex4(s: &str) -> Option<u32> {
    if s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

fn push(out: &mut [u8], len: &mut usize, bytes: &[u8]) -> Result<(), WireError> {
    let end = *len + bytes.len();
    out.get_mut(*len..end)
        .ok_or(WireError::ScratchTooSmall)?
        .copy_from_slice(bytes);
    *len = end;
    Ok(())
}

/// Deepest nesting accepted; the protocol needs 2, go-livepeer error bodies 2.
const MAX_NESTING: u32 = 32;

const fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Checks that `body` is exactly one RFC 8259 JSON value, nested at most [`MAX_NESTING`] deep.
///
/// Iterative, with the open containers kept as bits, so hostile input cannot exhaust the stack;
/// and strict, so that serde-json-core (lenient about junk in skipped values) only ever sees
/// JSON whose structure this check has bounded.
fn validate(body: &[u8]) -> Result<(), WireError> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Next {
        /// A value (top level, after `:`, after `,` in an array).
        Value,
        /// A value or `]`, just after `[`.
        ValueOrClose,
        /// A key or `}`, just after `{`.
        KeyOrClose,
        /// A key, after `,` in an object.
        Key,
        /// `:` after a key.
        Colon,
        /// `,` or the closing bracket after a value; the end at top level.
        CommaOrClose,
    }
    const TRUNCATED: WireError = WireError::Malformed("truncated JSON");
    const UNEXPECTED: WireError = WireError::Malformed("unexpected character");

    if core::str::from_utf8(body).is_err() {
        return Err(WireError::Malformed("not UTF-8"));
    }
    // Bit i is set when the container i levels below the innermost is an object.
    let mut objects: u64 = 0;
    let mut depth: u32 = 0;
    let mut next = Next::Value;
    let mut i = 0;
    loop {
        while body.get(i).is_some_and(|&b| is_whitespace(b)) {
            i += 1;
        }
        let Some(&b) = body.get(i) else {
            return if depth == 0 && next == Next::CommaOrClose {
                Ok(())
            } else {
                Err(TRUNCATED)
            };
        };
        let in_object = objects & 1 == 1;
        next = match (next, b) {
            (Next::CommaOrClose, _) if depth == 0 => {
                return Err(WireError::Malformed("trailing characters"));
            }
            (Next::ValueOrClose, b']') | (Next::KeyOrClose, b'}') => {
                i += 1;
                depth -= 1;
                objects >>= 1;
                Next::CommaOrClose
            }
            (Next::CommaOrClose, b'}') if in_object => {
                i += 1;
                depth -= 1;
                objects >>= 1;
                Next::CommaOrClose
            }
            (Next::CommaOrClose, b']') if !in_object => {
                i += 1;
                depth -= 1;
                objects >>= 1;
                Next::CommaOrClose
            }
            (Next::CommaOrClose, b',') => {
                i += 1;
                if in_object { Next::Key } else { Next::Value }
            }
            (Next::KeyOrClose | Next::Key, b'"') => {
                i = skip_string(body, i)?;
                Next::Colon
            }
            (Next::Colon, b':') => {
                i += 1;
                Next::Value
            }
            (Next::Value | Next::ValueOrClose, b'{' | b'[') => {
                if depth == MAX_NESTING {
                    return Err(WireError::Malformed("nesting too deep"));
                }
                depth += 1;
                objects = (objects << 1) | u64::from(b == b'{');
                i += 1;
                if b == b'{' {
                    Next::KeyOrClose
                } else {
                    Next::ValueOrClose
                }
            }
            (Next::Value | Next::ValueOrClose, b'"') => {
                i = skip_string(body, i)?;
                Next::CommaOrClose
            }
            (Next::Value | Next::ValueOrClose, _) => {
                i = skip_literal_or_number(body, i)?;
                Next::CommaOrClose
            }
            _ => return Err(UNEXPECTED),
        };
    }
}

/// Skips the string whose opening quote is at `start`, returning the index after its close.
fn skip_string(body: &[u8], start: usize) -> Result<usize, WireError> {
    let mut i = start + 1;
    loop {
        match body.get(i) {
            None => return Err(WireError::Malformed("truncated JSON")),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match body.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u')
                    if body
                        .get(i + 2..i + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    i += 6;
                }
                _ => return Err(WireError::Malformed(BAD_ESCAPE)),
            },
            Some(&c) if c < 0x20 => {
                return Err(WireError::Malformed("control character in string"));
            }
            Some(_) => i += 1,
        }
    }
}

/// Skips `true`, `false`, `null` or a number starting at `start`.
fn skip_literal_or_number(body: &[u8], start: usize) -> Result<usize, WireError> {
    const BAD_VALUE: WireError = WireError::Malformed("invalid value");
    let rest = &body[start..];
    for literal in [&b"true"[..], b"false", b"null"] {
        if rest.starts_with(literal) {
            return Ok(start + literal.len());
        }
    }
    let digits = |from: usize| from + body[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = start;
    if body.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match body.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digits(i),
        _ => return Err(BAD_VALUE),
    };
    if body.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return Err(BAD_VALUE);
        }
        i = end;
    }
    if matches!(body.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(body.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return Err(BAD_VALUE);
        }
        i = end;
    }
    Ok(i)
}

/// `Debug` stand-in for a long public value: its length.
struct Len(usize);

impl fmt::Debug for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// `Debug` stand-in for a secret: its length only.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    const CHALLENGE: &[u8] = br#"{"payment_params":"CgQxMjM0","orchestrator":"https://o.example:8935","manifest_id":"0a1b2c3d","payment_url":"https://o.example:8935/apps/r1/session/0a1b2c3d/payment"}"#;
    const STATE: SignerState<'static> = SignerState {
        state: "U1RBVEUtU0VDUkVU",
        sig: "U0lHLVNFQ1JFVA==",
    };

    fn write_vec(write: impl Fn(&mut [u8]) -> Result<usize, WireError>) -> Vec<u8> {
        let mut out = vec![0; 4096];
        let n = write(&mut out).expect("fits");
        out.truncate(n);
        out
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Replaces `key` (with its value) in CHALLENGE-like bodies by an unknown key.
    fn without(body: &str, key: &str) -> String {
        body.replace(&format!("\"{key}\""), "\"unrelated\"")
    }

    #[test]
    fn challenge_parses_and_round_trips() {
        let mut scratch = [0; 256];
        let c = Challenge::parse(CHALLENGE, &mut scratch).unwrap();
        assert_eq!(c.payment_params, "CgQxMjM0");
        assert_eq!(c.manifest_id, "0a1b2c3d");
        assert_eq!(c.orchestrator, Some("https://o.example:8935"));
        let out = write_vec(|o| c.write(o));
        let mut scratch2 = [0; 256];
        assert_eq!(Challenge::parse(&out, &mut scratch2), Ok(c));

        let bare = Challenge {
            orchestrator: None,
            ..c
        };
        let out = write_vec(|o| bare.write(o));
        assert!(!contains(&out, "orchestrator"));
        assert_eq!(Challenge::parse(&out, &mut []), Ok(bare));
    }

    #[test]
    fn challenge_missing_fields_are_named() {
        let body = core::str::from_utf8(CHALLENGE).unwrap();
        for field in ["payment_params", "manifest_id", "payment_url"] {
            let b = without(body, field);
            assert_eq!(
                Challenge::parse(b.as_bytes(), &mut []),
                Err(WireError::MissingField(field)),
            );
            let b = body.replacen(
                &format!("\"{field}\":\""),
                &format!("\"{field}\":null,\"x\":\""),
                1,
            );
            assert_eq!(
                Challenge::parse(b.as_bytes(), &mut []),
                Err(WireError::MissingField(field)),
                "null {field}"
            );
        }
        // A go-livepeer error body answered with 402 is no challenge.
        assert_eq!(
            Challenge::parse(br#"{"error":{"message":"invalid payer"}}"#, &mut []),
            Err(WireError::MissingField("payment_params")),
        );
    }

    #[test]
    fn challenge_empty_fields_are_named_and_optional_empty_is_none() {
        let body = core::str::from_utf8(CHALLENGE).unwrap();
        for field in ["payment_params", "manifest_id", "payment_url"] {
            let b = body.replacen(
                &format!("\"{field}\":\""),
                &format!("\"{field}\":\"\",\"x\":\""),
                1,
            );
            assert_eq!(
                Challenge::parse(b.as_bytes(), &mut []),
                Err(WireError::EmptyField(field)),
            );
        }
        for orch in ["\"\"", "null"] {
            let b = body.replace("\"https://o.example:8935\"", orch);
            let c = Challenge::parse(b.as_bytes(), &mut []).unwrap();
            assert_eq!(c.orchestrator, None);
        }
        let b = without(body, "orchestrator");
        assert_eq!(
            Challenge::parse(b.as_bytes(), &mut []).unwrap().orchestrator,
            None
        );
    }

    #[test]
    fn malformed_json_is_rejected() {
        let cases: &[&[u8]] = &[
            b"",
            b"   ",
            b"{",
            b"Bad Request",
            br#"{"payment_params":}"#,
            br#"{"payment_params":"a",}"#,
            br#"{"payment_params":"a"} x"#,
            br#"{"payment_params":"a""manifest_id":"b"}"#,
            br#"{"payment_params" "a"}"#,
            br#"{"payment_params":"unterminated}"#,
            br#"{"payment_params":"bad \x escape"}"#,
            br#"{"payment_params":"bad \u12G4 escape"}"#,
            b"{\"payment_params\":\"raw\ncontrol\"}",
            br#"{"x":tru}"#,
            br#"{"x":01}"#,
            br#"{"x":1.}"#,
            br#"{"x":-}"#,
            br#"{"x":1e}"#,
            br#"{"x":[1,]}"#,
            br#"{"x":[1}"#,
            br#"{"x":{"a":1]}"#,
            br#"{"x":a"[[[", "payment_params":"p"}"#,
            b"{\"x\":\"\xff\"}",
            br#"{1:2}"#,
        ];
        for &body in cases {
            let err = Challenge::parse(body, &mut [0; 64]).unwrap_err();
            assert!(
                matches!(err, WireError::Malformed(_)),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(body)
            );
        }
        // Valid JSON of every scalar kind in unknown fields is fine.
        let ok = br#" {"a":true,"b":false,"c":null,"d":-0.5e+3,"e":[],"f":{},"g":[1,{"h":"\ud83d\ude00"}],
            "payment_params":"p","manifest_id":"m","payment_url":"u"} 
"#;
        assert!(Challenge::parse(ok, &mut []).is_ok());
    }

    #[test]
    fn non_objects_are_rejected() {
        for body in [
            &b"[]"[..],
            b"[1,2]",
            br#""payment_params""#,
            b"42",
            b"null",
            b" true ",
        ] {
            assert_eq!(Challenge::parse(body, &mut []), Err(WireError::NotAnObject));
            assert_eq!(PaymentResponse::parse(body, &mut []), Err(WireError::NotAnObject));
        }
    }

    #[test]
    fn wrong_types_and_duplicates_are_errors() {
        let wrong = br#"{"payment_params":5,"manifest_id":"m","payment_url":"u"}"#;
        assert_eq!(
            Challenge::parse(wrong, &mut []),
            Err(WireError::Malformed("field has the wrong JSON type"))
        );
        let wrong = br#"{"payment_params":{"a":"b"},"manifest_id":"m","payment_url":"u"}"#;
        assert!(matches!(
            Challenge::parse(wrong, &mut []),
            Err(WireError::Malformed(_))
        ));
        let dup = br#"{"payment_params":"p","manifest_id":"m","payment_url":"u","manifest_id":"n"}"#;
        assert_eq!(
            Challenge::parse(dup, &mut []),
            Err(WireError::Malformed("duplicate field"))
        );
    }

    #[test]
    fn escaped_strings_are_unescaped_into_scratch() {
        let body = br#"{"payment_params":"a\/b\u002Bc","manifest_id":"0a1b2c3d","payment_url":"https:\/\/o.example\/pay?a=1\u0026b=\u003cx\u003e","orchestrator":"q\"\\\ud83d\ude00\u00e9\n"}"#;
        let mut scratch = [0; 256];
        let c = Challenge::parse(body, &mut scratch).unwrap();
        assert_eq!(c.payment_params, "a/b+c");
        assert_eq!(c.manifest_id, "0a1b2c3d");
        assert_eq!(c.payment_url, "https://o.example/pay?a=1&b=<x>");
        assert_eq!(c.orchestrator, Some("q\"\\\u{1F600}\u{e9}\n"));

        // Any scratch as long as the body suffices; much less does not.
        let mut exact = vec![0; body.len()];
        assert!(Challenge::parse(body, &mut exact).is_ok());
        assert_eq!(
            Challenge::parse(body, &mut [0; 8]),
            Err(WireError::ScratchTooSmall)
        );
        assert_eq!(Challenge::parse(body, &mut []), Err(WireError::ScratchTooSmall));

        // Escapes in fields we do not read need no scratch.
        let body =
            br#"{"note":"\u0026\ud83d\ude00","payment_params":"p","manifest_id":"m","payment_url":"u"}"#;
        assert!(Challenge::parse(body, &mut []).is_ok());
    }

    #[test]
    fn lone_surrogates_are_rejected() {
        for esc in [r"\ud83d", r"\ud83dx", r"\ude00", r"\ud83d\u0041"] {
            let body = format!(r#"{{"payment_params":"{esc}","manifest_id":"m","payment_url":"u"}}"#);
            assert_eq!(
                Challenge::parse(body.as_bytes(), &mut [0; 64]),
                Err(WireError::Malformed(BAD_ESCAPE)),
                "{esc}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_rejected_without_recursion() {
        let mut body = String::from(r#"{"payment_params":"p","manifest_id":"m","payment_url":"u","x":"#);
        body.push_str(&"[".repeat(200_000));
        body.push_str(&"]".repeat(200_000));
        body.push('}');
        assert_eq!(
            Challenge::parse(body.as_bytes(), &mut []),
            Err(WireError::Malformed("nesting too deep"))
        );
        // 32 levels in all are accepted.
        let ok = format!(
            r#"{{"payment_params":"p","manifest_id":"m","payment_url":"u","x":{}{}}}"#,
            "[".repeat(31),
            "]".repeat(31)
        );
        assert!(Challenge::parse(ok.as_bytes(), &mut []).is_ok());
    }

    #[test]
    fn orchestrator_info_signature() {
        let body = br#"{"address":"0xabc","signature":"0xdef","extra":1}"#;
        let s = OrchestratorInfoSignature::parse(body, &mut []).unwrap();
        assert_eq!((s.address, s.signature), ("0xabc", "0xdef"));
        let out = write_vec(|o| s.write(o));
        assert_eq!(out, br#"{"address":"0xabc","signature":"0xdef"}"#);
        assert_eq!(
            OrchestratorInfoSignature::parse(br#"{"address":"0xabc"}"#, &mut []),
            Err(WireError::MissingField("signature"))
        );
        assert_eq!(
            OrchestratorInfoSignature::parse(br#"{"signature":"0xdef"}"#, &mut []),
            Err(WireError::MissingField("address"))
        );
        assert_eq!(
            OrchestratorInfoSignature::parse(br#"{"address":"","signature":"0xdef"}"#, &mut []),
            Err(WireError::EmptyField("address"))
        );
    }

    #[test]
    fn signer_state_uses_capitalised_keys() {
        let out = write_vec(|o| STATE.write(o));
        assert_eq!(out, br#"{"State":"U1RBVEUtU0VDUkVU","Sig":"U0lHLVNFQ1JFVA=="}"#);
        assert_eq!(SignerState::parse(&out, &mut []), Ok(STATE));
        assert_eq!(
            SignerState::parse(br#"{"state":"a","sig":"b"}"#, &mut []),
            Err(WireError::MissingField("State"))
        );
        assert_eq!(
            SignerState::parse(br#"{"State":"a","Sig":""}"#, &mut []),
            Err(WireError::EmptyField("Sig"))
        );
    }

    #[test]
    fn payment_type_and_unit_spellings() {
        for (t, s) in [
            (PaymentType::Live, "live"),
            (PaymentType::Lv2v, "lv2v"),
            (PaymentType::Fixed, "fixed"),
        ] {
            assert_eq!(t.as_str(), s);
            assert_eq!(s.parse(), Ok(t));
            let out = write_vec(|o| write_json(&t, o));
            assert_eq!(out, format!("\"{s}\"").as_bytes());
            let (back, _): (PaymentType, usize) = serde_json_core::from_slice(&out).unwrap();
            assert_eq!(back, t);
            let unit = t.price_unit();
            assert_eq!(unit.as_str().parse(), Ok(unit));
            let out = write_vec(|o| write_json(&unit, o));
            assert_eq!(out, format!("\"{}\"", unit.as_str()).as_bytes());
        }
        assert_eq!(PaymentType::Lv2v.price_unit().as_str(), "720p-pixel-seconds");
        assert_eq!(
            "Live".parse::<PaymentType>(),
            Err(WireError::InvalidValue("type"))
        );
        assert_eq!(
            "hour".parse::<PriceUnit>(),
            Err(WireError::InvalidValue("maxPrice.unit"))
        );
    }

    fn first_request() -> PaymentRequest<'static> {
        PaymentRequest {
            orchestrator: "CgQxMjM0",
            payment_type: PaymentType::Live,
            manifest_id: "0a1b2c3d",
            app: None,
            max_price: None,
            state: None,
        }
    }

    #[test]
    fn first_payment_request_has_no_state_key() {
        let req = first_request();
        let out = write_vec(|o| req.write(o));
        assert_eq!(
            out,
            br#"{"orchestrator":"CgQxMjM0","type":"live","ManifestID":"0a1b2c3d"}"#
        );
        assert!(!contains(&out, "state") && !contains(&out, "null"));
        assert_eq!(PaymentRequest::parse(&out, &mut []), Ok(req));
    }

    #[test]
    fn full_payment_request_round_trips() {
        let req = PaymentRequest {
            payment_type: PaymentType::Lv2v,
            app: Some("live-video-to-video"),
            max_price: Some(MaxPrice {
                price: "1234567890123456789.5",
                unit: PriceUnit::PixelSeconds720p,
            }),
            state: Some(STATE),
            ..first_request()
        };
        let out = write_vec(|o| req.write(o));
        assert!(contains(&out, r#""ManifestID":"0a1b2c3d""#));
        assert!(contains(
            &out,
            r#""maxPrice":{"price":"1234567890123456789.5","currency":"wei","unit":"720p-pixel-seconds"}"#
        ));
        assert!(contains(
            &out,
            r#""state":{"State":"U1RBVEUtU0VDUkVU","Sig":"U0lHLVNFQ1JFVA=="}"#
        ));
        assert_eq!(PaymentRequest::parse(&out, &mut []), Ok(req));
    }

    #[test]
    fn payment_request_values_are_checked() {
        let bad_price = PaymentRequest {
            max_price: Some(MaxPrice {
                price: "1e9",
                unit: PriceUnit::Seconds,
            }),
            ..first_request()
        };
        assert_eq!(
            bad_price.write(&mut [0; 512]),
            Err(WireError::InvalidValue("maxPrice.price"))
        );
        for price in ["", ".5", "5.", "1.2.3", "-1", "+1", " 1"] {
            assert!(!is_decimal(price), "{price:?}");
        }
        for price in ["0", "10", "1.25"] {
            assert!(is_decimal(price), "{price:?}");
        }
        let cases: &[(&[u8], WireError)] = &[
            (
                br#"{"orchestrator":"o","type":"hourly","ManifestID":"m"}"#,
                WireError::InvalidValue("type"),
            ),
            (
                br#"{"orchestrator":"o","ManifestID":"m"}"#,
                WireError::MissingField("type"),
            ),
            (
                br#"{"orchestrator":"o","type":"live","manifestID":"m"}"#,
                WireError::MissingField("ManifestID"),
            ),
            (
                br#"{"type":"live","ManifestID":"m"}"#,
                WireError::MissingField("orchestrator"),
            ),
            (
                br#"{"orchestrator":"o","type":"live","ManifestID":"m","maxPrice":{"price":"1","currency":"eth","unit":"seconds"}}"#,
                WireError::InvalidValue("maxPrice.currency"),
            ),
            (
                br#"{"orchestrator":"o","type":"live","ManifestID":"m","maxPrice":{"price":"1","unit":"hour"}}"#,
                WireError::InvalidValue("maxPrice.unit"),
            ),
            (
                br#"{"orchestrator":"o","type":"live","ManifestID":"m","maxPrice":{"price":"x","unit":"seconds"}}"#,
                WireError::InvalidValue("maxPrice.price"),
            ),
            (
                br#"{"orchestrator":"o","type":"live","ManifestID":"m","maxPrice":{"unit":"seconds"}}"#,
                WireError::MissingField("maxPrice.price"),
            ),
            (
                br#"{"orchestrator":"o","type":"live","ManifestID":"m","state":{"State":"s"}}"#,
                WireError::MissingField("state.Sig"),
            ),
        ];
        for (body, err) in cases {
            assert_eq!(PaymentRequest::parse(body, &mut []), Err(*err));
        }
        // Currency may be left out.
        let ok = br#"{"orchestrator":"o","type":"fixed","ManifestID":"m","maxPrice":{"price":"7","unit":"fixed"}}"#;
        assert!(PaymentRequest::parse(ok, &mut []).is_ok());
    }

    fn response() -> PaymentResponse<'static> {
        PaymentResponse {
            payment: "UEFZTUVOVC1TRUNSRVQ=",
            seg_creds: "U0VHQ1JFRFMtU0VDUkVU",
            state: STATE,
        }
    }

    #[test]
    fn payment_response_round_trips() {
        let r = response();
        let out = write_vec(|o| r.write(o));
        assert!(contains(&out, r#""segCreds":"U0VHQ1JFRFMtU0VDUkVU""#));
        assert!(contains(&out, r#""state":{"State":"#));
        assert_eq!(PaymentResponse::parse(&out, &mut []), Ok(r));
    }

    #[test]
    fn payment_response_checks() {
        let cases: &[(&[u8], WireError)] = &[
            (
                br#"{"segCreds":"c","state":{"State":"s","Sig":"g"}}"#,
                WireError::MissingField("payment"),
            ),
            (
                br#"{"payment":"","segCreds":"c","state":{"State":"s","Sig":"g"}}"#,
                WireError::EmptyField("payment"),
            ),
            (
                br#"{"payment":"p","state":{"State":"s","Sig":"g"}}"#,
                WireError::MissingField("segCreds"),
            ),
            (
                br#"{"payment":"p","segCreds":"","state":{"State":"s","Sig":"g"}}"#,
                WireError::EmptyField("segCreds"),
            ),
            (
                br#"{"payment":"p","segCreds":"c"}"#,
                WireError::MissingField("state"),
            ),
            (
                br#"{"payment":"p","segCreds":"c","state":null}"#,
                WireError::MissingField("state"),
            ),
            (
                br#"{"payment":"p","segCreds":"c","state":{"State":"s"}}"#,
                WireError::MissingField("state.Sig"),
            ),
            (
                br#"{"payment":"p","segCreds":"c","state":{"State":"","Sig":"g"}}"#,
                WireError::EmptyField("state.State"),
            ),
            (
                br#"{"payment":"p","segCreds":"c","state":"s"}"#,
                WireError::Malformed("field has the wrong JSON type"),
            ),
            (
                br#"{"payment":"p","segCreds":"c","state":["s","g"]}"#,
                WireError::Malformed("field has the wrong JSON type"),
            ),
        ];
        for (body, err) in cases {
            assert_eq!(PaymentResponse::parse(body, &mut []), Err(*err));
        }
    }

    #[test]
    fn reservation_round_trips_and_checks() {
        let r = Reservation {
            session_id: "0a1b2c3d",
            app_url: "https://o.example/app",
            control_url: "https://o.example/apps/r1/session/0a1b2c3d",
        };
        let out = write_vec(|o| r.write(o));
        assert_eq!(Reservation::parse(&out, &mut []), Ok(r));
        let body = core::str::from_utf8(&out).unwrap();
        for field in ["session_id", "app_url", "control_url"] {
            let b = without(body, field);
            assert_eq!(
                Reservation::parse(b.as_bytes(), &mut []),
                Err(WireError::MissingField(field))
            );
        }
        assert_eq!(
            Reservation::parse(br#"{"session_id":"s","app_url":"","control_url":"c"}"#, &mut []),
            Err(WireError::EmptyField("app_url"))
        );
    }

    #[test]
    fn refresh_request_round_trips_and_its_answer_is_a_challenge() {
        let r = RefreshRequest {
            sender: "0xabc",
            manifest_id: "0a1b2c3d",
        };
        let out = write_vec(|o| r.write(o));
        assert_eq!(out, br#"{"sender":"0xabc","manifest_id":"0a1b2c3d"}"#);
        assert_eq!(RefreshRequest::parse(&out, &mut []), Ok(r));
        assert_eq!(
            RefreshRequest::parse(br#"{"sender":"0xabc"}"#, &mut []),
            Err(WireError::MissingField("manifest_id"))
        );
        let answer = br#"{"payment_params":"new","orchestrator":"https://o","manifest_id":"0a1b2c3d","payment_url":"https://o/payment"}"#;
        assert_eq!(Challenge::parse(answer, &mut []).unwrap().payment_params, "new");
    }

    #[test]
    fn short_buffers_are_reported() {
        let req = PaymentRequest {
            state: Some(STATE),
            ..first_request()
        };
        let full = write_vec(|o| req.write(o));
        for len in 0..full.len() {
            assert_eq!(req.write(&mut vec![0; len]), Err(WireError::BufferTooSmall));
        }
        let mut exact = vec![0; full.len()];
        assert_eq!(req.write(&mut exact), Ok(full.len()));
        assert_eq!(exact, full);
        assert_eq!(response().write(&mut [0; 10]), Err(WireError::BufferTooSmall));
    }

    #[test]
    fn debug_redacts_secrets() {
        let secrets = [
            "UEFZTUVOVC1TRUNSRVQ=",
            "U0VHQ1JFRFMtU0VDUkVU",
            "U1RBVEUtU0VDUkVU",
            "U0lHLVNFQ1JFVA==",
        ];
        let r = format!("{:?}", response());
        let req = format!(
            "{:?}",
            PaymentRequest {
                state: Some(STATE),
                ..first_request()
            }
        );
        for text in [&r, &req] {
            for secret in secrets {
                assert!(!text.contains(secret), "{text}");
            }
            assert!(text.contains("<redacted 16 bytes>"), "{text}");
        }
        assert!(r.contains("payment: <redacted 20 bytes>"), "{r}");
        // payment_params is shown by length only.
        assert!(req.contains("orchestrator: <8 bytes>"), "{req}");
        assert!(req.contains("0a1b2c3d"), "{req}");
        let c = format!("{:?}", Challenge::parse(CHALLENGE, &mut []).unwrap());
        assert!(
            c.contains("payment_params: <8 bytes>") && !c.contains("CgQxMjM0"),
            "{c}"
        );
    }

    #[test]
    fn error_message_shapes() {
        assert_eq!(
            error_message(br#"{"error":{"message":"insufficient balance"}}"#),
            "insufficient balance"
        );
        assert_eq!(
            error_message(br#" {"code":3,"error":{"message":"  padded  ","x":[1]}} "#),
            "padded"
        );
        // Escapes are left as written.
        assert_eq!(
            error_message(br#"{"error":{"message":"a \u0026 b"}}"#),
            r"a \u0026 b"
        );
        assert_eq!(error_message(b"Bad payment header\n"), "Bad payment header");
        assert_eq!(error_message(b""), "");
        // Other JSON shapes come back as text.
        assert_eq!(error_message(br#"{"error":"flat"}"#), r#"{"error":"flat"}"#);
        assert_eq!(
            error_message(br#"{"error":{"message":""}}"#),
            r#"{"error":{"message":""}}"#
        );
        // Invalid UTF-8: the valid prefix.
        assert_eq!(error_message(b"no capacity \xff\xfe tail"), "no capacity");
        assert_eq!(error_message(b"\xc3"), "");
    }

    #[test]
    fn error_message_is_cut_at_a_char_boundary() {
        let long = "é".repeat(150); // 300 bytes, 2 per char
        let m = error_message(long.as_bytes());
        assert_eq!(m.len(), MAX_ERROR_MESSAGE_LEN);
        let long = format!("x{}", "€".repeat(100)); // 1 + 3 per char
        let m = error_message(long.as_bytes());
        assert!(m.len() <= MAX_ERROR_MESSAGE_LEN && m.len() > MAX_ERROR_MESSAGE_LEN - 3);
        assert!(long.starts_with(m));
        let json = format!(r#"{{"error":{{"message":"{}"}}}}"#, "m".repeat(500));
        assert_eq!(error_message(json.as_bytes()), "m".repeat(MAX_ERROR_MESSAGE_LEN));
        let spaced = format!("{}{}", "a".repeat(199), "  bbb");
        assert_eq!(error_message(spaced.as_bytes()), "a".repeat(199));
    }

    #[test]
    fn wire_error_displays() {
        assert_eq!(
            format!("{}", WireError::MissingField("payment_url")),
            "missing field `payment_url`"
        );
        let e: &dyn core::error::Error = &WireError::BufferTooSmall;
        assert_eq!(format!("{e}"), "output buffer too small");
    }

    /// Runs every parser on `body`; none may panic.
    fn parse_all(body: &[u8]) {
        let mut scratch = vec![0; body.len()];
        let _ = Challenge::parse(body, &mut scratch);
        let _ = OrchestratorInfoSignature::parse(body, &mut scratch);
        let _ = SignerState::parse(body, &mut scratch);
        let _ = PaymentRequest::parse(body, &mut scratch);
        let _ = PaymentResponse::parse(body, &mut scratch);
        let _ = Reservation::parse(body, &mut scratch);
        let _ = RefreshRequest::parse(body, &mut scratch);
        let m = error_message(body);
        assert!(m.len() <= MAX_ERROR_MESSAGE_LEN);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            parse_all(&body);
        }

        #[test]
        fn json_like_text_never_panics(body in r#"\{("[a-zA-Z_]{0,14}"|[\[\]{}:,"\\/u0-9a-fA-F .eE+-]|true|null){0,40}\}?"#) {
            parse_all(body.as_bytes());
        }

        #[test]
        fn any_strings_round_trip(
            params in "\\PC{1,40}",
            url in ".{1,40}",
            seg in any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
            state in "[\\x00-\\x7f]{1,20}",
        ) {
            let c = Challenge { payment_params: &params, manifest_id: &url, payment_url: &url, orchestrator: Some(&seg) };
            let out = write_vec(|o| c.write(o));
            let mut scratch = vec![0; out.len()];
            prop_assert_eq!(Challenge::parse(&out, &mut scratch), Ok(c));

            let r = PaymentResponse { payment: &params, seg_creds: &seg, state: SignerState { state: &state, sig: &url } };
            let out = write_vec(|o| r.write(o));
            let mut scratch = vec![0; out.len()];
            prop_assert_eq!(PaymentResponse::parse(&out, &mut scratch), Ok(r));
        }
    }
}
