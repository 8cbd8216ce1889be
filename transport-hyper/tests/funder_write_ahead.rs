//! Issue 16: the `Funder` is a pump. Whether an answer minted (write ahead) or credited
//! (checkpoint) is the core's decision, never a status the funder reads: a new signer state is
//! durable before the POST that shows its tickets, a credited payment is checkpointed, and a
//! refresh 200 or a malformed signer 200 is neither.
//!
//! One scripted loopback server plays the signer and the orchestrator; a recording store plays
//! the daemon's.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use common::{GUARD, bind, guarded, http_response, origin_of, read_request};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use livepay_core::engine::{ReserveOptions, Snapshot};
use livepay_core::{Config, Duration, Endpoint, Exit, PaymentType, ReleaseReason, Reply};
use livepay_hyper::{
    Funder, FunderConfig, HttpClient, HttpConfig, Persisted, SessionKey, WriteAhead, reserve,
};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Notify;

const MINTED: &[u8] = br#"{"payment":"UEFZ","segCreds":"U0VH","state":{"State":"U1Q=","Sig":"U0c="}}"#;

/// What the scripted server saw and what the store was given, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// A request to this path.
    Request(String),
    /// The store was asked to persist (write ahead) a snapshot holding a minted payment or not.
    Persist { holds_mint: bool },
    /// The store was given a checkpoint.
    Checkpoint { holds_mint: bool },
}

#[derive(Default)]
struct Log(Mutex<Vec<Seen>>);

impl Log {
    fn push(&self, seen: Seen) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(seen);
    }
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A store that records, and holds each persist until `release` is notified.
struct Recorder {
    log: Arc<Log>,
    release: Arc<Notify>,
}

impl WriteAhead for Recorder {
    fn persist(&self, _key: SessionKey, snapshot: Snapshot) -> BoxFuture<'static, Persisted> {
        self.log.push(Seen::Persist {
            holds_mint: snapshot.payment.as_ref().is_some_and(|p| p.minted.is_some()),
        });
        let release = Arc::clone(&self.release);
        async move {
            release.notified().await;
            Persisted::Durable
        }
        .boxed()
    }

    fn checkpoint(&self, _key: SessionKey, snapshot: Snapshot) {
        self.log.push(Seen::Checkpoint {
            holds_mint: snapshot.payment.as_ref().is_some_and(|p| p.minted.is_some()),
        });
    }
}

/// Serves the reservation, then answers each `generate-live-payment` from `mints` in turn (the
/// reservation's own mint first), every refresh with a fresh challenge, every payment with 200
/// and every stop with 204. Returns the origin.
async fn scripted(log: Arc<Log>, mints: Vec<(u16, &'static [u8])>) -> String {
    let listener = bind().await;
    let origin = origin_of(&listener);
    let mints = Arc::new(Mutex::new(VecDeque::from(mints)));
    let base = origin.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (log, mints, base) = (Arc::clone(&log), Arc::clone(&mints), base.clone());
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                log.push(Seen::Request(request.path.clone()));
                let challenge = format!(
                    r#"{{"payment_params":"cA==","manifest_id":"0a1b2c3d","payment_url":"{base}/apps/live-runner/session/0a1b2c3d/payment"}}"#
                );
                let paid = request.headers.iter().any(|(n, _)| n == "livepeer-payment");
                let (status, body): (u16, Vec<u8>) = match request.path.as_str() {
                    "/sign-orchestrator-info" => (
                        200,
                        br#"{"address":"0x0000000000000000000000000000000000000001","signature":"0x01"}"#.to_vec(),
                    ),
                    "/apps/live-runner/session" if paid => (
                        200,
                        format!(
                            r#"{{"session_id":"0a1b2c3d","app_url":"{base}/app","control_url":"{base}/apps/live-runner/session/0a1b2c3d"}}"#
                        )
                        .into_bytes(),
                    ),
                    "/apps/live-runner/session" => (402, challenge.into_bytes()),
                    "/generate-live-payment" => {
                        let next = mints.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
                        let (status, body) = next.unwrap_or((482, b""));
                        (status, body.to_vec())
                    }
                    "/refresh-payment" => (200, challenge.into_bytes()),
                    path if path.ends_with("/payment") => (200, Vec::new()),
                    path if path.ends_with("/stop") => (204, Vec::new()),
                    _ => (404, Vec::new()),
                };
                let _ = stream
                    .write_all(&http_response(status, "application/json", &body))
                    .await;
            });
        }
    });
    origin
}

/// Reserves on the scripted server and funds the session from a funder with a recording store;
/// returns how the session ended and what was seen, in order. Each persist is held until the
/// log shows that no payment POST went out behind it.
async fn fund(mints: Vec<(u16, &'static [u8])>) -> (Exit, Vec<Seen>) {
    let log = Arc::new(Log::default());
    let origin = scripted(Arc::clone(&log), mints).await;
    let http = HttpClient::new(HttpConfig::default()).expect("client");
    let release = Arc::new(Notify::new());
    let config = FunderConfig {
        session_config: Config {
            interval: Duration::from_millis(300),
            ..Config::new(PaymentType::Live)
        },
        start_spread: Some(Duration::from_ticks(0)),
        ..FunderConfig::default()
    };
    let mut funder = Funder::new(http.clone(), config)
        .expect("funder")
        .with_write_ahead(Arc::new(Recorder {
            log: Arc::clone(&log),
            release: Arc::clone(&release),
        }));
    let handle = funder.handle();
    let mut exits = funder.exits().expect("taken once");
    tokio::spawn(funder.run());
    let options = ReserveOptions::new(
        format!("{origin}/apps/live-runner/session"),
        Some(origin.clone()),
        PaymentType::Live,
    );
    let reserved = reserve(&http, &handle.clock(), options).await.expect("reserved");
    let key = handle.add(reserved).expect("added");
    // Persists are held until the log is read: nothing may have been posted behind one.
    let mut released = 0;
    let exit = guarded("the session's end", async {
        loop {
            tokio::select! {
                exit = exits.recv() => break exit,
                () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                    let seen = log.all();
                    let persists = seen.iter().filter(|s| matches!(s, Seen::Persist { .. })).count();
                    if persists > released {
                        let at = seen.iter().rposition(|s| matches!(s, Seen::Persist { .. })).unwrap_or(0);
                        assert!(
                            !seen[at..].iter().any(|s| matches!(s, Seen::Request(p) if p.ends_with("/payment"))),
                            "a payment POST went out before its state was durable: {seen:?}"
                        );
                        released = persists;
                        release.notify_one();
                    }
                }
            }
        }
    })
    .await;
    let (ended, exit) = exit.expect("every session's end is reported");
    assert_eq!(ended, key);
    (exit, log.all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_200_and_a_malformed_signer_200_are_neither_checkpointed_nor_written_ahead() {
    let (exit, seen) = fund(vec![
        // The reservation's mint.
        (200, MINTED),
        // Funding: a refresh is asked for, then the signer answers 200 with no payment.
        (480, b""),
        (200, br#"{"not":"a payment"}"#),
    ])
    .await;
    assert_eq!(
        exit.reason(),
        Some(ReleaseReason::Rejected {
            endpoint: Endpoint::Signer,
            reply: Reply::Malformed
        }),
        "{seen:?}"
    );
    assert_eq!(exit.stats().refreshes, 1, "{seen:?}");
    assert!(
        seen.contains(&Seen::Request("/refresh-payment".into())),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, Seen::Persist { .. } | Seen::Checkpoint { .. })),
        "nothing was minted or credited, so nothing is stored: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_state_is_durable_before_its_post_and_a_credit_is_checkpointed() {
    let (exit, seen) = fund(vec![(200, MINTED), (200, MINTED), (400, b"stop here")]).await;
    assert_eq!(exit.stats().payments_accepted, 1, "{seen:?}");
    let stored: Vec<&Seen> = seen
        .iter()
        .filter(|s| !matches!(s, Seen::Request(p) if !p.ends_with("/payment")))
        .collect();
    assert_eq!(
        stored,
        [
            &Seen::Persist { holds_mint: true },
            &Seen::Request("/apps/live-runner/session/0a1b2c3d/payment".into()),
            &Seen::Checkpoint { holds_mint: false },
        ],
        "{seen:?}"
    );
    let _ = GUARD;
}

/// A store that refuses every state: another process owns the session.
struct Refuser(Arc<Log>);

impl WriteAhead for Refuser {
    fn persist(&self, _key: SessionKey, snapshot: Snapshot) -> BoxFuture<'static, Persisted> {
        self.0.push(Seen::Persist {
            holds_mint: snapshot.payment.as_ref().is_some_and(|p| p.minted.is_some()),
        });
        async { Persisted::Refused }.boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_state_is_never_posted() {
    let log = Arc::new(Log::default());
    let origin = scripted(
        Arc::clone(&log),
        vec![(200, MINTED), (200, MINTED), (200, MINTED)],
    )
    .await;
    let http = HttpClient::new(HttpConfig::default()).expect("client");
    let config = FunderConfig {
        session_config: Config {
            interval: Duration::from_millis(300),
            ..Config::new(PaymentType::Live)
        },
        start_spread: Some(Duration::from_ticks(0)),
        ..FunderConfig::default()
    };
    let funder = Funder::new(http.clone(), config)
        .expect("funder")
        .with_write_ahead(Arc::new(Refuser(Arc::clone(&log))));
    let handle = funder.handle();
    tokio::spawn(funder.run());
    let options = ReserveOptions::new(
        format!("{origin}/apps/live-runner/session"),
        Some(origin.clone()),
        PaymentType::Live,
    );
    let reserved = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        reserve(&http, &handle.clock(), options),
    )
    .await
    .expect("reserved in time")
    .expect("reserved");
    let key = handle.add(reserved).expect("added");
    for _ in 0..250 {
        if handle.stats().write_aheads_refused > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        handle.stats().write_aheads_refused,
        1,
        "{:?} {:?}",
        log.all(),
        handle.stats()
    );
    let stats = handle.stats();
    assert_eq!((stats.write_aheads_refused, stats.write_ahead_failures), (1, 0));
    // Handed back at once, its minted payment never posted: had the refusal let the POST go,
    // the stop would have waited for its answer and the payment would be credited.
    let engine = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        handle.stop(key).expect("the funder runs"),
    )
    .await
    .expect("stopped in time")
    .expect("the session is handed back, unstopped");
    assert_eq!(engine.stats().payments_accepted, 0);
    let held = engine.snapshot(livepay_core::Clock::now(&handle.clock())).payment;
    assert!(
        held.is_some_and(|p| p.minted.is_some()),
        "the refused payment is still held"
    );
    let seen = log.all();
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, Seen::Request(p) if p.ends_with("/payment"))),
        "a refused state was posted: {seen:?}"
    );
    assert!(
        !log.all()
            .iter()
            .any(|s| matches!(s, Seen::Request(p) if p.ends_with("/stop")))
    );
}
