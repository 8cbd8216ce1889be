//! Secrets (the signer's Authorization header, minted payments, segment credentials, the signer
//! state) never appear in `Debug` output, error messages or `tracing` logs, at any level.

mod common;

use std::fmt::{Debug, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{
    RUNNER, collect_until, count, fast_config, fast_model, guarded, is_accepted, live_pricing, quick_http,
    serve,
};
use livepay_core::engine::{Engine, ReserveOptions, header};
use livepay_core::{Clock as _, Config, FirstPayment, PaymentType, Peer, StatusTable};
use livepay_hyper::{HttpClient, HyperHttp, LiveError, LiveOptions, LiveSession, TokioClock};
use livepay_mock::faults::FaultPlan;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};

const AUTH: &str = "Bearer sk-signer-5ecret-7f3a9c2e1b";
const WRONG_AUTH: &str = "Bearer sk-wrong-5ecret-0d4e8a6f2c";

/// Records every span field and event at every level, as text.
#[derive(Clone, Default)]
struct Capture {
    log: Arc<Mutex<String>>,
    ids: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Capture {
    fn text(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn append(&self, line: impl FnOnce(&mut String)) {
        if let Ok(mut log) = self.log.lock() {
            line(&mut log);
            log.push('\n');
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.append(|log| {
            let _ = write!(log, "span {}", span.metadata().name());
            span.record(&mut Fields(log));
        });
        Id::from_u64(self.ids.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        self.append(|log| values.record(&mut Fields(log)));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        self.append(|log| {
            let meta = event.metadata();
            let _ = write!(log, "{} {}", meta.level(), meta.target());
            event.record(&mut Fields(log));
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// The string value of `"key":"…"` in a JSON body (the signer state's fields).
fn json_string(body: &[u8], key: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let start = text
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("no {key} in the body"))
        + key.len()
        + 4;
    let len = text[start..].find('"').expect("closing quote");
    text[start..start + len].to_owned()
}

#[track_caller]
fn assert_hidden(secrets: &[String], what: &str, text: &str) {
    for secret in secrets {
        assert!(secret.len() >= 16, "a weak probe: {secret}");
        assert!(!text.contains(secret.as_str()), "{what} leaks a secret: {text}");
    }
}

#[track_caller]
fn assert_debug_hidden(secrets: &[String], what: &str, value: &impl Debug) {
    assert_hidden(secrets, what, &format!("{value:?}"));
    assert_hidden(secrets, what, &format!("{value:#?}"));
}

#[tokio::test]
async fn secrets_stay_out_of_debug_errors_and_logs() {
    let capture = Capture::default();
    // The test runs on one thread (current-thread runtime): the model, the client and hyper's
    // connection tasks all log here.
    let _guard = tracing::subscriber::set_default(capture.clone());

    let mut model = fast_model(live_pricing());
    model.signer.required_auth = Some(("Authorization".into(), AUTH.into()));
    let served = serve(model, FaultPlan::clean(), 30).await;
    let mut secrets = vec![AUTH.to_owned(), WRONG_AUTH.to_owned()];

    let reserve = ReserveOptions::new(
        served.runner_url(RUNNER),
        Some(served.signer_url()),
        PaymentType::Live,
    )
    .with_signer_header("Authorization", AUTH);
    assert_debug_hidden(&secrets, "ReserveOptions", &reserve);

    // The protocol state after a reservation, and one funding cycle of an engine driven by hand
    // over the hyper client and adapter.
    let http = HttpClient::new(quick_http()).expect("client");
    let clock = TokioClock::new();
    let reserved = guarded(
        "the reservation",
        livepay_hyper::reserve(&http, &clock, reserve.clone()),
    )
    .await
    .expect("reservation");
    let config = Config {
        first_payment: FirstPayment::Immediately,
        ..fast_config()
    };
    let mut engine = Engine::new(&config, reserved.clone(), StatusTable::new()).expect("engine");
    engine.start(clock.now());
    let signer_request = transmit(&mut engine, clock.now()).expect("the first mint");
    assert_eq!(signer_request.peer(), Peer::Signer);
    secrets.push(json_string(&signer_request.body, "State"));
    secrets.push(json_string(&signer_request.body, "Sig"));
    assert_debug_hidden(&secrets, "Reserved", &reserved);
    assert_debug_hidden(&secrets, "ProtocolState", engine.protocol());
    assert_debug_hidden(&secrets, "Engine", &engine);
    assert_debug_hidden(&secrets, "signer Request", &signer_request);

    let adapter = HyperHttp::new(http.clone(), clock);
    let minted = adapter.exchange(signer_request.clone()).await;
    let response = minted.result.as_ref().expect("the signer answers");
    assert_eq!(response.status, 200);
    let headers = response.header_pairs();
    engine
        .handle_response(clock.now(), signer_request.id, &response.as_response(&headers))
        .expect("in flight");
    let with_mint = engine.clone();
    let payment_request = transmit(&mut engine, clock.now()).expect("the payment POST");
    secrets.push(
        payment_request
            .header(header::PAYMENT)
            .expect("payment")
            .to_owned(),
    );
    secrets.push(
        payment_request
            .header(header::SEGMENT)
            .expect("segCreds")
            .to_owned(),
    );
    // The signer's new state, as the next signer request would carry it.
    let next_signer_request = engine.protocol().signer_request(payment_request.id);
    secrets.push(json_string(&next_signer_request.body, "State"));
    secrets.push(json_string(&next_signer_request.body, "Sig"));
    assert_debug_hidden(&secrets, "signer Exchange", &minted);
    assert_debug_hidden(&secrets, "ProtocolState with a mint", with_mint.protocol());
    assert_debug_hidden(&secrets, "Engine with a mint", &with_mint);
    assert_debug_hidden(&secrets, "payment Request", &payment_request);
    assert_debug_hidden(&secrets, "HyperHttp", &adapter);
    let paid = adapter.exchange(payment_request.clone()).await;
    assert_debug_hidden(&secrets, "payment Exchange", &paid);
    let response = paid.result.as_ref().expect("the orchestrator answers");
    assert_eq!(response.status, 200);
    let headers = response.header_pairs();
    engine
        .handle_response(clock.now(), payment_request.id, &response.as_response(&headers))
        .expect("in flight");
    assert_eq!(engine.stats().payments_accepted, 1);
    assert_eq!(engine.last_problem(), None);

    let mut handmade = payment_request.clone();
    handmade.url = "https://user:pa55word-hidden-9x@orch.example/apps/r/session/x/payment".to_owned();
    handmade.headers = vec![
        (header::AUTHORIZATION.into(), AUTH.to_owned()),
        (
            header::PAYMENT.into(),
            "cGF5bWVudC1zZWNyZXQtdGlja2V0cw==".to_owned(),
        ),
        (
            header::SEGMENT.into(),
            "c2VnLWNyZWRzLXNlY3JldC12YWx1ZQ==".to_owned(),
        ),
    ];
    handmade.body =
        br#"{"state":{"State":"c3RhdGUtc2VjcmV0LWJsb2I=","Sig":"c2lnLXNlY3JldC1ibG9i"}}"#.to_vec();
    let handmade_secrets: Vec<String> = [
        AUTH,
        "pa55word-hidden-9x",
        "cGF5bWVudC1zZWNyZXQtdGlja2V0cw==",
        "c2VnLWNyZWRzLXNlY3JldC12YWx1ZQ==",
        "c3RhdGUtc2VjcmV0LWJsb2I=",
        "c2lnLXNlY3JldC1ibG9i",
    ]
    .map(String::from)
    .to_vec();
    assert_debug_hidden(&handmade_secrets, "handmade Request", &handmade);

    // A funded LiveSession, its options and its events.
    let options = LiveOptions::new(reserve.clone())
        .with_config(fast_config())
        .with_client(http.clone());
    assert_debug_hidden(&secrets, "LiveOptions", &options);
    let session = guarded("the live reservation", LiveSession::reserve(options))
        .await
        .expect("reservation");
    assert_debug_hidden(&secrets, "LiveSession", &session);
    let mut events = session.events();
    let seen = collect_until(&mut events, "three payments", |seen| {
        count(seen, is_accepted) >= 3
    })
    .await;
    for event in &seen {
        assert_hidden(&secrets, "an event", &event.to_string());
    }
    assert_debug_hidden(&secrets, "LiveSession (funding)", &session);
    assert_debug_hidden(&secrets, "a wire problem", &session.last_problem());
    assert_debug_hidden(&secrets, "the session's counters", &session.stats());
    guarded("close", session.close()).await.expect("close");

    // A refused reservation: the error names no header value.
    let wrong = ReserveOptions::new(
        served.runner_url(RUNNER),
        Some(served.signer_url()),
        PaymentType::Live,
    )
    .with_signer_header("Authorization", WRONG_AUTH);
    let error = guarded(
        "the refused reservation",
        LiveSession::reserve(
            LiveOptions::new(wrong)
                .with_config(fast_config())
                .with_client(http),
        ),
    )
    .await
    .expect_err("401");
    assert!(matches!(&error, LiveError::Reserve(_)), "{error:?}");
    assert_debug_hidden(&secrets, "LiveError", &error);
    assert_hidden(&secrets, "LiveError's message", &error.to_string());

    served.shutdown().await;
    let log = capture.text();
    assert!(log.contains("livepay: event"), "the capture saw nothing: {log}");
    assert!(
        log.contains("livepay: answer"),
        "the capture saw no answer: {log}"
    );
    assert_hidden(&secrets, "the tracing log", &log);
    assert_hidden(&handmade_secrets, "the tracing log", &log);
}

/// The next request `engine` produces at `now`, past its events.
fn transmit(engine: &mut Engine, now: livepay_core::Instant) -> Option<livepay_core::engine::Request> {
    loop {
        match engine.poll_output(now)? {
            livepay_core::engine::Output::Transmit(request) => return Some(request),
            livepay_core::engine::Output::Timeout(_) => return None,
            _ => {}
        }
    }
}
