//! The one set of redaction helpers: what a secret looks like in `Debug`, and what a URL looks
//! like anywhere it is shown (logs, errors, `Debug`).
//!
//! Secrets are tickets (`Livepeer-Payment`), segment credentials, the signer's `state`, and
//! caller-supplied header values (auth tokens). They are shown as their length only. URLs are
//! shown without user-info (`user:password@`), query and fragment, where tokens travel.
//!
//! ```
//! use livepay_core::redact;
//!
//! let shown = format!("{}", redact::url("https://user:secret@signer.example:8935/p?token=abc#x"));
//! assert_eq!(shown, "https://signer.example:8935/p");
//! assert_eq!(format!("{:?}", redact::Redacted(12)), "<redacted 12 bytes>");
//! ```

use core::fmt;

/// `Debug` and `Display` stand-in for a secret: its length only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Redacted(pub usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0)
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `Debug` stand-in for a long public value (a base64 blob): its length only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Len(pub usize);

impl fmt::Debug for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// A URL as it may be shown: without user-info, query and fragment. `Display` writes it bare,
/// `Debug` quoted. Text that is not a URL is shown up to its first `?` or `#`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SafeUrl<'a>(&'a str);

/// `url` as it may be shown (see [`SafeUrl`]).
pub const fn url(url: &str) -> SafeUrl<'_> {
    SafeUrl(url)
}

impl SafeUrl<'_> {
    /// The parts to show: everything before the authority, the host part of the authority, and
    /// the path (each possibly empty).
    fn parts(&self) -> (&str, &str, &str) {
        let bare = self.0.split(['?', '#']).next().unwrap_or_default();
        match bare.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find('/').unwrap_or(rest.len());
                let authority = &rest[..end];
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                (scheme, host, &rest[end..])
            }
            None => ("", bare, ""),
        }
    }
}

impl fmt::Display for SafeUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parts() {
            ("", text, "") if !self.0.contains("://") => f.write_str(text),
            (scheme, host, path) => write!(f, "{scheme}://{host}{path}"),
        }
    }
}

impl fmt::Debug for SafeUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Caller-supplied headers: names shown, values redacted.
#[derive(Clone, Copy)]
pub struct Headers<'a, N, V>(pub &'a [(N, V)]);

impl<N: AsRef<str>, V: AsRef<str>> fmt::Debug for Headers<'_, N, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(n, v)| (n.as_ref(), Redacted(v.as_ref().len()))),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn urls_lose_credentials_queries_and_fragments() {
        let shown = |u: &str| format!("{}", url(u));
        assert_eq!(
            shown("https://user:secret@signer.example:8935/path?token=abc"),
            "https://signer.example:8935/path"
        );
        assert_eq!(shown("http://127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(shown("http://h/p#frag"), "http://h/p");
        assert_eq!(shown("not a url?x"), "not a url");
        assert_eq!(shown("http://a@b@host/x"), "http://host/x");
        assert_eq!(format!("{:?}", url("http://u:p@h/")), "\"http://h/\"");
    }

    #[test]
    fn secrets_show_their_length_only() {
        assert_eq!(format!("{:?}", Redacted(3)), "<redacted 3 bytes>");
        assert_eq!(format!("{:?}", Len(9)), "<9 bytes>");
        let headers = [("Authorization", "Bearer hunter2")];
        let shown = format!("{:?}", Headers(&headers));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Authorization"), "{shown}");
    }
}
