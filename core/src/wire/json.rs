//! The JSON underneath the wire types: a non-recursive validator, raw-string reading through
//! serde-json-core, and unescaping into a caller's scratch buffer (see the [parent
//! module](super) for why values are read raw).

use serde::{Deserialize, Serialize};
use serde_json_core::str::EscapedStr;

use super::WireError;

/// A string value as written between its quotes, escapes intact; `None` when absent or `null`.
pub(super) type RawStr<'a> = Option<EscapedStr<'a>>;

/// Validates `body`, then reads it into a raw (unchecked) struct.
pub(super) fn parse_raw<'a, R: Deserialize<'a>>(body: &'a [u8]) -> Result<R, WireError> {
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
pub(super) fn write_json<T: Serialize>(value: &T, out: &mut [u8]) -> Result<usize, WireError> {
    // serde-json-core's only serialisation error is a full buffer.
    serde_json_core::to_slice(value, out).map_err(|_| WireError::BufferTooSmall)
}

/// Whether `s` is digits with an optional fraction (`123`, `123.45`).
pub(super) fn is_decimal(s: &str) -> bool {
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('.') {
        Some((int, frac)) => all_digits(int) && all_digits(frac),
        None => all_digits(s),
    }
}

/// Checks raw strings and unescapes them, each into its own region of the scratch buffer.
pub(super) struct Strings<'a> {
    scratch: &'a mut [u8],
}

impl<'a> Strings<'a> {
    pub(super) fn new(scratch: &'a mut [u8]) -> Self {
        Self { scratch }
    }

    /// A required, non-empty string.
    pub(super) fn required(&mut self, raw: RawStr<'a>, field: &'static str) -> Result<&'a str, WireError> {
        match raw {
            None => Err(WireError::MissingField(field)),
            Some(EscapedStr("")) => Err(WireError::EmptyField(field)),
            Some(EscapedStr(raw)) => self.unescape(raw),
        }
    }

    /// An optional string; `""` counts as absent.
    pub(super) fn optional(&mut self, raw: RawStr<'a>) -> Result<Option<&'a str>, WireError> {
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

pub(super) const BAD_ESCAPE: &str = "invalid escape sequence";

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

pub(super) const fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Checks that `body` is exactly one RFC 8259 JSON value, nested at most [`MAX_NESTING`] deep.
///
/// Iterative, with the open containers kept as bits, so hostile input cannot exhaust the stack;
/// and strict, so that serde-json-core (lenient about junk in skipped values) only ever sees
/// JSON whose structure this check has bounded.
pub(super) fn validate(body: &[u8]) -> Result<(), WireError> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Expect {
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
    let mut next = Expect::Value;
    let mut i = 0;
    loop {
        while body.get(i).is_some_and(|&b| is_whitespace(b)) {
            i += 1;
        }
        let Some(&b) = body.get(i) else {
            return if depth == 0 && next == Expect::CommaOrClose {
                Ok(())
            } else {
                Err(TRUNCATED)
            };
        };
        let in_object = objects & 1 == 1;
        next = match (next, b) {
            (Expect::CommaOrClose, _) if depth == 0 => {
                return Err(WireError::Malformed("trailing characters"));
            }
            (Expect::ValueOrClose, b']') | (Expect::KeyOrClose, b'}') => {
                i += 1;
                depth -= 1;
                objects >>= 1;
                Expect::CommaOrClose
            }
            (Expect::CommaOrClose, b'}') if in_object => {
                i += 1;
                depth -= 1;
                objects >>= 1;
                Expect::CommaOrClose
            }
            (Expect::CommaOrClose, b']') if !in_object => {
                i += 1;
                depth -= 1;
                objects >>= 1;
                Expect::CommaOrClose
            }
            (Expect::CommaOrClose, b',') => {
                i += 1;
                if in_object { Expect::Key } else { Expect::Value }
            }
            (Expect::KeyOrClose | Expect::Key, b'"') => {
                i = skip_string(body, i)?;
                Expect::Colon
            }
            (Expect::Colon, b':') => {
                i += 1;
                Expect::Value
            }
            (Expect::Value | Expect::ValueOrClose, b'{' | b'[') => {
                if depth == MAX_NESTING {
                    return Err(WireError::Malformed("nesting too deep"));
                }
                depth += 1;
                objects = (objects << 1) | u64::from(b == b'{');
                i += 1;
                if b == b'{' {
                    Expect::KeyOrClose
                } else {
                    Expect::ValueOrClose
                }
            }
            (Expect::Value | Expect::ValueOrClose, b'"') => {
                i = skip_string(body, i)?;
                Expect::CommaOrClose
            }
            (Expect::Value | Expect::ValueOrClose, _) => {
                i = skip_literal_or_number(body, i)?;
                Expect::CommaOrClose
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

/// The text of top-level member `key` of a JSON object `body` that [`validate`] accepted, value
/// verbatim (escapes, spacing and nested keys as the server wrote them); `None` when absent.
/// Keys are compared as written, so `key` must be plain ASCII, as every key of this protocol is.
pub(super) fn member<'a>(body: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut at = skip_ws(body, 0);
    if body.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        at = skip_ws(body, at);
        if body.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(body, at)?;
        let name = &body[at + 1..key_end - 1];
        at = skip_ws(body, key_end);
        if body.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(body, at + 1);
        let value_end = value_end(body, at)?;
        if name == key.as_bytes() {
            return Some(&body[at..value_end]);
        }
        at = skip_ws(body, value_end);
        match body.get(at) {
            Some(b',') => at += 1,
            _ => return None,
        }
    }
}

fn skip_ws(body: &[u8], mut at: usize) -> usize {
    while body.get(at).is_some_and(|b| is_whitespace(*b)) {
        at += 1;
    }
    at
}

/// The index just past the string that starts (with its quote) at `at`.
fn string_end(body: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match body.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The index just past the value that starts at `at` (a validated body: brackets balance).
fn value_end(body: &[u8], at: usize) -> Option<usize> {
    match body.get(at)? {
        b'"' => string_end(body, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match body.get(i)? {
                    b'"' => {
                        i = string_end(body, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while body
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !is_whitespace(*b))
            {
                i += 1;
            }
            Some(i)
        }
    }
}
