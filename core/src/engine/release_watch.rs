//! Reading a release announced outside the payment path: a job's `events_url`, or a runner app
//! that forwards the orchestrator's events. What counts as "the server released this session"
//! is decided here, once, for every adapter that watches such a URL.

/// Whether an events URL's answer announces that the session was released: a success
/// ([`Endpoint::Events`](crate::Endpoint::Events) row of the status table) whose body is a
/// JSON object, an array of them,
/// newline-delimited JSON, or Server-Sent Events `data:` lines, any of whose objects has a `type`
/// or `event` of `released`, `session_released` or `stream_released`. Anything else (other
/// events, text, malformed JSON) announces nothing.
///
/// ```
/// use livepay_core::engine::release_announced;
///
/// assert!(release_announced(200, br#"{"type":"released","session":"abcd1234"}"#));
/// assert!(release_announced(200, b"data: {\"event\":\"session_released\"}\n\n"));
/// assert!(!release_announced(200, br#"[{"type":"stream_started"}]"#));
/// assert!(!release_announced(503, br#"{"type":"released"}"#));
/// ```
pub fn release_announced(status: u16, body: &[u8]) -> bool {
    let table = crate::StatusTable::new();
    if table.verdict(crate::Endpoint::Events, crate::Reply::Status(status)) != crate::Verdict::Success {
        return false;
    }
    let text = core::str::from_utf8(body).unwrap_or_default();
    if parses_to_release(text) {
        return true;
    }
    text.lines()
        .map(|line| line.trim().strip_prefix("data:").unwrap_or(line).trim())
        .filter(|line| !line.is_empty())
        .any(parses_to_release)
}

fn parses_to_release(text: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => items.iter().any(is_release),
        Ok(value) => is_release(&value),
        Err(_) => false,
    }
}

fn is_release(value: &serde_json::Value) -> bool {
    ["type", "event"].iter().any(|key| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|kind| matches!(kind, "released" | "session_released" | "stream_released"))
    })
}

#[cfg(test)]
mod tests {
    use super::release_announced;

    #[test]
    fn only_a_release_event_announces_a_release() {
        for yes in [
            &br#"{"type":"released"}"#[..],
            br#"[{"type":"started"},{"event":"stream_released"}]"#,
            b"{\"type\":\"tick\"}\n{\"type\":\"released\"}\n",
            b"event: x\ndata: {\"type\":\"session_released\"}\n\n",
        ] {
            assert!(
                release_announced(200, yes),
                "{}",
                core::str::from_utf8(yes).unwrap()
            );
        }
        for no in [
            &b""[..],
            b"released",
            br#"{"type":"release_soon"}"#,
            b"\xff\xfe",
            br#"{"type":1}"#,
            b"[1,2]",
        ] {
            assert!(!release_announced(200, no));
        }
    }
}
