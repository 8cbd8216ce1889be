//! The bytes an adapter moves: a [`Request`] out, a [`Response`] (or a
//! [`Failure`](crate::Failure)) back.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::classify::{Endpoint, Peer};
use crate::redact::{self, Len, Redacted};
use crate::sequencer::RequestId;

/// Header names of the protocol (`docs/protocol.md` §2).
pub mod header {
    /// The payer address on a reservation (§2.3).
    pub const PAYER_ADDRESS: &str = "Livepeer-Payer-Address";
    /// Base64 tickets (secret).
    pub const PAYMENT: &str = "Livepeer-Payment";
    /// Base64 segment credentials (secret).
    pub const SEGMENT: &str = "Livepeer-Segment";
    /// `Content-Type`.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// `Authorization` (secret).
    pub const AUTHORIZATION: &str = "Authorization";
    /// The media type of every JSON body.
    pub const JSON: &str = "application/json";
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The method name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// One request for an adapter to send, and to answer with exactly one `handle_response` or
/// `handle_failure` naming its [`id`](Self::id).
///
/// Header names are `Cow` because caller-supplied signer headers have names only known at run
/// time. `Debug` shows the values of only a few public headers (`Content-Type`,
/// `Livepeer-Payer-Address`, …) and redacts every other value, caller-supplied ones included; it
/// shows the body's length, never the body (a signer request carries the secret `state`), and
/// shows the URL without user-info or query.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Names the request in the answer.
    pub id: RequestId,
    /// Which request it is: for logs and metric labels, and its [`peer`](Self::peer). Never a
    /// reason for an adapter to treat it differently, beyond its peer's TLS policy.
    pub endpoint: Endpoint,
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
    /// The longest this request may take, when the engine wants it shorter than the adapter's
    /// own timeout (the stop: [`Config::stop_timeout`](crate::Config::stop_timeout)). The
    /// adapter applies the smaller of the two; past it, the request is a
    /// [`Failure::Timeout`](crate::Failure::Timeout).
    pub deadline: Option<embassy_time::Duration>,
}

impl Request {
    /// A `GET` of `url` at `endpoint`, without headers: for reads outside the payment path
    /// (discovery, an events URL), which no engine is waiting on (its id is 0, never an
    /// engine's).
    pub fn get(endpoint: Endpoint, url: impl Into<String>) -> Self {
        Self {
            method: Method::Get,
            ..Self::post(RequestId::new(0), endpoint, url)
        }
    }

    /// A `POST` to `url` without headers or body.
    pub(crate) fn post(id: RequestId, endpoint: Endpoint, url: impl Into<String>) -> Self {
        Self {
            id,
            endpoint,
            method: Method::Post,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            deadline: None,
        }
    }

    /// This request with one more header.
    #[must_use]
    pub(crate) fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// This request with a JSON body and its `Content-Type`.
    #[must_use]
    pub(crate) fn with_json(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self.with_header(header::CONTENT_TYPE, header::JSON)
    }

    /// The server it goes to (each has its own TLS policy).
    pub const fn peer(&self) -> Peer {
        self.endpoint.peer()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Headers whose values `Debug` may show; every other value is redacted.
const PUBLIC_HEADERS: [&str; 6] = [
    header::CONTENT_TYPE,
    header::PAYER_ADDRESS,
    "Accept",
    "Content-Length",
    "Host",
    "User-Agent",
];

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct ShownHeaders<'a>(&'a [(Cow<'static, str>, String)]);
        impl fmt::Debug for ShownHeaders<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_map();
                for (name, value) in self.0 {
                    if PUBLIC_HEADERS.iter().any(|p| p.eq_ignore_ascii_case(name)) {
                        list.entry(name, value);
                    } else {
                        list.entry(name, &Redacted(value.len()));
                    }
                }
                list.finish()
            }
        }
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .field("method", &self.method)
            .field("url", &redact::url(&self.url))
            .field("headers", &ShownHeaders(&self.headers))
            .field("body", &Len(self.body.len()))
            .finish()
    }
}

/// An HTTP answer as the adapter received it: the status, the headers (any order, names in any
/// case) and the whole body (under the adapter's cap).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The HTTP status.
    pub status: u16,
    /// The headers, as `(name, value)`; may be empty when the adapter does not keep them.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

impl<'a> Response<'a> {
    /// An answer with `status` and `body`, without headers.
    pub const fn new(status: u16, body: &'a [u8]) -> Self {
        Self {
            status,
            headers: &[],
            body,
        }
    }

    /// This answer with `headers`.
    #[must_use]
    pub const fn with_headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }
}

/// Bodies may carry signer state or tickets: `Debug` shows only their size.
impl fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body", &Len(self.body.len()))
            .finish()
    }
}
