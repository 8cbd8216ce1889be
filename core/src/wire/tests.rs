use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::json::BAD_ESCAPE;
use super::*;

const CHALLENGE: &[u8] = br#"{"payment_params":"CgQxMjM0","orchestrator":"https://o.example:8935","manifest_id":"0a1b2c3d","payment_url":"https://o.example:8935/apps/r1/session/0a1b2c3d/payment"}"#;
const SIGNER_STATE: SignerState<'static> = SignerState {
    state: "U1RBVEUtU0VDUkVU",
    sig: "U0lHLVNFQ1JFVA==",
};
const STATE: RawObject<'static> = RawObject(r#"{"State":"U1RBVEUtU0VDUkVU","Sig":"U0lHLVNFQ1JFVA=="}"#);

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
    let body = br#"{"note":"\u0026\ud83d\ude00","payment_params":"p","manifest_id":"m","payment_url":"u"}"#;
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
    let out = write_vec(|o| SIGNER_STATE.write(o));
    assert_eq!(out, br#"{"State":"U1RBVEUtU0VDUkVU","Sig":"U0lHLVNFQ1JFVA=="}"#);
    assert_eq!(SignerState::parse(&out, &mut []), Ok(SIGNER_STATE));
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
            br#"{"orchestrator":"o","type":"live","ManifestID":"m","state":"s"}"#,
            WireError::Malformed("field has the wrong JSON type"),
        ),
    ];
    for (body, err) in cases {
        assert_eq!(PaymentRequest::parse(body, &mut []), Err(*err));
    }
    // Currency may be left out.
    let ok =
        br#"{"orchestrator":"o","type":"fixed","ManifestID":"m","maxPrice":{"price":"7","unit":"fixed"}}"#;
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
        assert!(text.contains("<redacted 53 bytes>"), "{text}");
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
    // livepeer/node's flat shape.
    assert_eq!(error_message(br#"{"error":"flat"}"#), "flat");
    assert_eq!(
        error_message(br#"{"error":" runner price changed "}"#),
        "runner price changed"
    );
    // Other JSON shapes come back as text.
    assert_eq!(error_message(br#"{"error":3}"#), r#"{"error":3}"#);
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
        // An id is printable and bounded; any other is an invalid value, never a panic.
        if url.chars().any(char::is_control) {
            prop_assert_eq!(Challenge::parse(&out, &mut scratch), Err(WireError::InvalidValue("manifest_id")));
        } else {
            prop_assert_eq!(Challenge::parse(&out, &mut scratch), Ok(c));
        }

        // The payment and the segment credentials travel in headers: visible ASCII round-trips,
        // anything else is an invalid value, never a header that splits.
        let state_json = format!(r#"{{"State":{},"Sig":"g"}}"#, json_string(&state));
        let r = PaymentResponse { payment: &params, seg_creds: &seg, state: RawObject::new(&state_json).unwrap() };
        let out = write_vec(|o| r.write(o));
        let mut scratch = vec![0; out.len()];
        let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if visible(&params) && visible(&seg) {
            prop_assert_eq!(PaymentResponse::parse(&out, &mut scratch), Ok(r));
        } else {
            let field = if visible(&params) { "segCreds" } else { "payment" };
            prop_assert_eq!(PaymentResponse::parse(&out, &mut scratch), Err(WireError::InvalidValue(field)));
        }
    }
}

#[test]
fn the_signer_state_is_kept_verbatim_whatever_its_keys() {
    // go-livepeer's keys, livepeer/node's lowercase ones, extra members, nesting, spacing and
    // escapes: all round-trip byte for byte.
    for state in [
        r#"{"State":"U1Q=","Sig":"U0k="}"#,
        r#"{"state":"c3Q=","sig":"c2k="}"#,
        r#"{ "state" : "a\u00e9b", "sig":"x", "v": 2, "n": {"deep": [1, {"k": "}"}]} }"#,
        "{}",
    ] {
        let body = format!(r#"{{"payment":"p","segCreds":"c","state":{state},"extra":1}}"#);
        let r = PaymentResponse::parse(body.as_bytes(), &mut []).expect("parses");
        assert_eq!(r.state.as_str(), state);
        let req = PaymentRequest {
            state: Some(r.state),
            ..first_request()
        };
        let out = write_vec(|o| req.write(o));
        let text = core::str::from_utf8(&out).unwrap();
        assert!(text.ends_with(&format!(r#","state":{state}}}"#)), "{text}");
        let back = PaymentRequest::parse(&out, &mut []).expect("parses back");
        assert_eq!(back.state.map(|s| s.as_str()), Some(state));
        assert!(format!("{:?}", r.state).starts_with("<redacted"), "{:?}", r.state);
    }
    assert_eq!(RawObject::new("[1]"), Err(WireError::NotAnObject));
    assert!(RawObject::new("{").is_err());
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn ids_of_any_printable_form_are_accepted_up_to_the_bound() {
    for id in ["0a1b2c3d", "session_Ab3xYz9QwE", "a-b.c~d_é"] {
        let body = format!(r#"{{"payment_params":"p","manifest_id":"{id}","payment_url":"http://o/p"}}"#);
        assert_eq!(
            Challenge::parse(body.as_bytes(), &mut vec![0; body.len()]).map(|c| c.manifest_id),
            Ok(id)
        );
    }
    let long = "x".repeat(MAX_ID_LEN + 1);
    for id in [long.as_str(), "a\\u001bb", "a\\nb"] {
        let body = format!(r#"{{"session_id":"{id}","app_url":"a","control_url":"http://o/c"}}"#);
        assert_eq!(
            Reservation::parse(body.as_bytes(), &mut vec![0; body.len()]),
            Err(WireError::InvalidValue("session_id")),
            "{id}"
        );
    }
}
