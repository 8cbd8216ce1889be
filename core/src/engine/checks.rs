//! What the caller hands the engine, checked before any request: URLs and signer headers. A
//! value that would change the request's framing, or that a server could be tricked by, is
//! refused here, with the problem named and the value never quoted (it may be secret).

use core::fmt;

use super::protocol::origin;

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlProblem {
    /// Not `http`/`https` with a valid host and port.
    NotHttp,
    /// A space or a control character: the request line would be malformed or split.
    BadCharacter,
    /// `user:password@`: credentials in a URL end up in logs and proxies; signer credentials go
    /// in a signer header instead.
    UserInfo,
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotHttp => "is not an http(s) URL with a host",
            Self::BadCharacter => "contains a space or a control character",
            Self::UserInfo => "carries user-info (`user:password@`); pass credentials as a signer header",
        })
    }
}

/// The origin of `url` (see [`origin`]) after checking that it can be sent as it is.
///
/// # Errors
///
/// The first [`UrlProblem`] found.
///
/// ```
/// use livepay_core::engine::{UrlProblem, check_url};
///
/// assert_eq!(check_url("http://o.example:8935/apps/r/session").as_deref(), Ok("http://o.example:8935"));
/// assert_eq!(check_url("http://o.example/a b"), Err(UrlProblem::BadCharacter));
/// assert_eq!(check_url("https://token@signer.example"), Err(UrlProblem::UserInfo));
/// assert_eq!(check_url("ftp://o.example"), Err(UrlProblem::NotHttp));
/// ```
pub fn check_url(url: &str) -> Result<alloc::string::String, UrlProblem> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlProblem::BadCharacter);
    }
    let origin = origin(url).ok_or(UrlProblem::NotHttp)?;
    let authority = url.split_once("://").map_or("", |(_, rest)| {
        &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())]
    });
    if authority.contains('@') {
        return Err(UrlProblem::UserInfo);
    }
    Ok(origin)
}

/// Why a signer header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The name is empty or not an HTTP token.
    BadName,
    /// A framing or hop-by-hop header (`Content-Length`, `Host`, `Transfer-Encoding`,
    /// `Connection`, …): the transport owns these, and a caller's value would hang, redirect or
    /// split the request.
    Reserved,
    /// The value holds a control character (a line break would start a second header).
    ControlCharacter,
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadName => "expected `Name: value` with a header name of letters, digits and `-`",
            Self::Reserved => "is a framing or hop-by-hop header, which the transport sets itself",
            Self::ControlCharacter => "has a control character in its value",
        })
    }
}

/// Headers the transport owns: framing, routing, hop-by-hop (RFC 9110 §7.6.1) and the ones
/// livepay sets on signer requests.
const RESERVED: [&str; 13] = [
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
];

/// Checks one signer header (`name`, `value`) before it is ever sent.
///
/// # Errors
///
/// The [`HeaderProblem`].
///
/// ```
/// use livepay_core::engine::{HeaderProblem, check_signer_header};
///
/// assert_eq!(check_signer_header("Authorization", "Bearer x"), Ok(()));
/// assert_eq!(check_signer_header("Content-Length", "99"), Err(HeaderProblem::Reserved));
/// assert_eq!(check_signer_header("X-A", "1\nX-B: 2"), Err(HeaderProblem::ControlCharacter));
/// ```
pub fn check_signer_header(name: &str, value: &str) -> Result<(), HeaderProblem> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(HeaderProblem::BadName);
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(HeaderProblem::Reserved);
    }
    // Tabs are legal in field values; every other control character is not.
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(HeaderProblem::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reserved_header_is_refused_in_any_case() {
        for name in RESERVED {
            assert_eq!(check_signer_header(name, "x"), Err(HeaderProblem::Reserved));
            let upper = name.to_ascii_uppercase();
            assert_eq!(check_signer_header(&upper, "x"), Err(HeaderProblem::Reserved));
        }
        assert_eq!(check_signer_header("bad name", "x"), Err(HeaderProblem::BadName));
        assert_eq!(check_signer_header("", "x"), Err(HeaderProblem::BadName));
        assert_eq!(
            check_signer_header("X-A", "a\rb"),
            Err(HeaderProblem::ControlCharacter)
        );
        assert_eq!(
            check_signer_header("X-A", "a\u{1b}b"),
            Err(HeaderProblem::ControlCharacter)
        );
        assert_eq!(check_signer_header("X-A", "a\tb"), Ok(()));
    }

    #[test]
    fn urls_with_spaces_controls_or_userinfo_are_refused() {
        for (url, problem) in [
            ("http://o.example/a b", UrlProblem::BadCharacter),
            ("http://o.example/\u{7}", UrlProblem::BadCharacter),
            ("http://o.example/\r\nHost: x", UrlProblem::BadCharacter),
            ("http://u:p@o.example/", UrlProblem::UserInfo),
            ("http://u@o.example", UrlProblem::UserInfo),
            ("ftp://o.example", UrlProblem::NotHttp),
            ("/relative", UrlProblem::NotHttp),
        ] {
            assert_eq!(check_url(url), Err(problem), "{url}");
        }
        // An `@` after the authority is a path or query character.
        assert!(check_url("http://o.example/a@b?c=d@e").is_ok());
    }
}
