//! The `Funder` against the model served over loopback HTTP, time-scaled (500 ms server tick,
//! 1 s prepay, 300 ms client interval): many sessions funded from one task with no release by the
//! model and no lapse, the concurrency limits (per signer, per orchestrator) held, and a clean
//! close of every session.
//!
//! The two tests share the machine's cores with the served model, so they run one at a time.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use common::{RUNNER, eventually, scaled_config, speed_up};
use futures::StreamExt;
use livepay_core::engine::{ReserveOptions, Reserved};
use livepay_core::{Duration, Event, PaymentType, ReleaseReason, State};
use livepay_hyper::{
    Funder, FunderConfig, FunderHandle, FunderStats, HttpClient, HttpConfig, SessionKey, TokioClock, reserve,
};
use livepay_mock::model::orchestrator::ReleaseCause as ModelRelease;
use livepay_mock::serve::{ServeConfig, ServedModel};
use tokio::sync::mpsc;

/// One test at a time: each loads both cores with hundreds of sessions.
static SERIAL: Mutex<()> = Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The model at 1/10 scale: 500 ms ticks, 1 s prepay.
fn served_config() -> ServeConfig {
    let mut config = ServeConfig::default();
    speed_up(&mut config.model);
    config
}

/// Reserves one priced session on `clock` (the funder's: its runway counts from its mint).
async fn reserve_one(http: &HttpClient, clock: TokioClock, served: &ServedModel) -> Reserved {
    let options = ReserveOptions::new(
        served.runner_url(RUNNER),
        Some(served.signer_url()),
        PaymentType::Live,
    );
    let reserved = reserve(http, &clock, options).await.expect("reserved");
    assert!(reserved.payment.is_some(), "a priced runner");
    reserved
}

/// Reserves `n` sessions on `clock`, 32 at a time.
fn reserve_many<'a>(
    http: &'a HttpClient,
    clock: TokioClock,
    served: &'a ServedModel,
    n: usize,
) -> impl futures::Stream<Item = Reserved> + 'a {
    futures::stream::iter(0..n)
        .map(move |_| reserve_one(http, clock, served))
        .buffer_unordered(32)
}

/// Collects every event per session until the channel closes.
fn collect(
    mut events: mpsc::Receiver<(SessionKey, Event)>,
) -> tokio::task::JoinHandle<HashMap<SessionKey, Vec<Event>>> {
    tokio::spawn(async move {
        let mut seen: HashMap<SessionKey, Vec<Event>> = HashMap::new();
        while let Some((key, event)) = events.recv().await {
            seen.entry(key).or_default().push(event);
        }
        seen
    })
}

fn model_releases(served: &ServedModel) -> Vec<ModelRelease> {
    served.with_world(|w| w.orchestrator().releases().iter().map(|r| r.reason).collect())
}

fn releases_of(served: &ServedModel, session_id: &str) -> Vec<ModelRelease> {
    served.with_world(|w| {
        w.orchestrator()
            .releases()
            .iter()
            .filter(|r| r.session_id == session_id)
            .map(|r| r.reason)
            .collect()
    })
}

/// Closes everything, lets the funder finish, and checks every session ended closed by the client.
async fn close_all_and_finish(
    handle: FunderHandle,
    run: tokio::task::JoinHandle<FunderStats>,
    collector: tokio::task::JoinHandle<HashMap<SessionKey, Vec<Event>>>,
    keys: &[SessionKey],
    served: &ServedModel,
) -> (HashMap<SessionKey, Vec<Event>>, FunderStats) {
    handle.close_all().expect("funder running");
    drop(handle);
    let stats = tokio::time::timeout(StdDuration::from_secs(10), run)
        .await
        .expect("the funder finishes once every session is released")
        .expect("the funder task did not panic");
    assert_eq!(stats.sessions, 0, "{stats:?}");
    assert_eq!(stats.released, keys.len() as u64, "{stats:?}");
    assert_eq!(stats.lapses, 0, "{stats:?}");
    assert_eq!(stats.events_dropped, 0, "{stats:?}");
    let seen = collector.await.expect("collector");
    for key in keys {
        let last = seen.get(key).and_then(|e| e.last()).copied();
        assert_eq!(
            last,
            Some(Event::StateChanged {
                from: State::Reserved,
                to: State::Released {
                    reason: ReleaseReason::ClosedByClient
                }
            }),
            "{key}: {:?}",
            seen.get(key)
        );
    }
    let releases = model_releases(served);
    assert_eq!(releases.len(), keys.len());
    assert!(
        releases.iter().all(|r| *r == ModelRelease::Stopped),
        "{releases:?}"
    );
    (seen, stats)
}

#[test]
fn two_hundred_sessions_funded_from_one_task_without_a_release_or_a_lapse() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    runtime().block_on(async {
        const N: usize = 200;
        let served = ServedModel::start(served_config()).await.expect("served");
        let http = HttpClient::new(HttpConfig::default()).expect("client");
        let mut funder = Funder::new(
            http.clone(),
            FunderConfig {
                seed: 7,
                session_config: scaled_config(),
                ..FunderConfig::default()
            },
        )
        .expect("valid config");
        let handle = funder.handle();
        let collector = collect(funder.events().expect("first take"));
        let run = tokio::spawn(funder.run());

        // Each session joins the funder as soon as it is reserved.
        let keys: Vec<SessionKey> = reserve_many(&http, handle.clock(), &served, N)
            .map(|reserved| handle.add(reserved).expect("funder running"))
            .collect()
            .await;
        assert_eq!(keys.len(), N);

        tokio::time::sleep(StdDuration::from_secs(3)).await;
        let stats = handle.stats();
        assert_eq!(stats.sessions, N as u64, "{stats:?}");
        assert_eq!(stats.funding, N as u64, "{stats:?}");
        assert_eq!(stats.lapses, 0, "{stats:?}");
        assert!(stats.signer_in_flight_peak <= 64, "{stats:?}");
        // The runway is built one mint per whole second (the signer bills whole seconds, which
        // the time scale does not shrink): about three payments each in 3 s.
        assert!(stats.payments >= 2 * N as u64, "{stats:?}");
        assert_eq!(model_releases(&served), Vec::new(), "the model released nothing");

        let (seen, stats) = close_all_and_finish(handle, run, collector, &keys, &served).await;
        assert!(stats.orchestrator_in_flight_peak <= 256, "{stats:?}");
        for key in &keys {
            let paid = seen[key]
                .iter()
                .filter(|e| matches!(e, Event::PaymentAccepted { .. }))
                .count();
            assert!(paid >= 3, "{key}: {paid} payments");
        }
        served.shutdown().await;
    });
}

#[test]
fn the_concurrency_limits_hold_when_every_session_is_due_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    runtime().block_on(async {
        const N: usize = 100;
        const LIMIT: usize = 4;
        const ORCHESTRATOR_LIMIT: usize = 8;
        let served = ServedModel::start(served_config()).await.expect("served");
        let http = HttpClient::new(HttpConfig::default()).expect("client");
        let mut funder = Funder::new(
            http.clone(),
            FunderConfig {
                per_signer_concurrency: LIMIT,
                per_orchestrator_concurrency: ORCHESTRATOR_LIMIT,
                seed: 11,
                session_config: scaled_config(),
                // No phase jitter: every session pays at once, in lockstep, to load the limit.
                start_spread: Some(Duration::from_ticks(0)),
                ..FunderConfig::default()
            },
        )
        .expect("valid config");
        let handle = funder.handle();
        let collector = collect(funder.events().expect("first take"));
        let run = tokio::spawn(funder.run());

        // Reserve everything first, then add it in one burst.
        let reserved: Vec<_> = reserve_many(&http, handle.clock(), &served, N).collect().await;
        let keys: Vec<SessionKey> = reserved
            .into_iter()
            .map(|reserved| handle.add(reserved).expect("funder running"))
            .collect();

        // The in-flight peak is tracked by the funder itself: wait for every session's first
        // payment, then check the peak reached the limit and never passed it.
        eventually("every session paid once", || handle.stats().payments >= N as u64).await;
        let stats = handle.stats();
        assert_eq!(
            stats.signer_in_flight_peak, LIMIT as u64,
            "the limit was reached, never passed"
        );
        assert_eq!(stats.lapses, 0, "{stats:?}");
        assert_eq!(stats.funding, N as u64, "{stats:?}");
        assert_eq!(model_releases(&served), Vec::new(), "the model released nothing");

        // A hundred stops at once go out at most eight at a time.
        let (_, stats) = close_all_and_finish(handle, run, collector, &keys, &served).await;
        assert_eq!(
            stats.orchestrator_in_flight_peak, ORCHESTRATOR_LIMIT as u64,
            "{stats:?}"
        );
        assert_eq!(stats.signer_in_flight_peak, LIMIT as u64, "{stats:?}");
        assert_eq!(
            (stats.signer_queued, stats.orchestrator_queued),
            (0, 0),
            "{stats:?}"
        );
        served.shutdown().await;
    });
}

#[test]
fn a_stopped_session_leaves_the_funder_with_its_protocol_state_and_stays_reserved() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    runtime().block_on(async {
        let served = ServedModel::start(served_config()).await.expect("served");
        let http = HttpClient::new(HttpConfig::default()).expect("client");
        let funder = Funder::new(
            http.clone(),
            FunderConfig {
                session_config: scaled_config(),
                ..FunderConfig::default()
            },
        )
        .expect("valid config");
        let handle = funder.handle();
        let run = tokio::spawn(funder.run());
        let reserved = reserve_one(&http, handle.clock(), &served).await;
        let id = reserved.session_id.clone();
        let kept = handle.add(reserved).expect("funder running");
        let reserved = reserve_one(&http, handle.clock(), &served).await;
        let stopped = handle.add(reserved).expect("funder running");
        let stopped_id = {
            eventually("both sessions paid", || handle.stats().payments >= 2).await;
            let engine = handle
                .stop(stopped)
                .expect("funder running")
                .await
                .expect("handed back");
            assert_eq!(engine.state(), State::Reserved);
            assert_eq!(engine.in_flight(), None);
            assert_eq!(engine.protocol().manifest_id(), engine.session_id());
            engine.session_id().to_owned()
        };
        assert_ne!(stopped_id, id);
        // A stopped session is no longer held; the kept one reports the engine's counters.
        let gone = handle.session_stats(stopped).expect("funder running").await;
        assert_eq!(gone.expect("answered"), None);
        let stats = handle.stats();
        assert_eq!(
            (stats.sessions, stats.stopped, stats.released),
            (1, 1, 0),
            "{stats:?}"
        );
        assert!(stats.payments >= 2, "{stats:?}");
        // A key no longer held is ignored; the kept session still funds.
        handle.close(stopped).expect("funder running");
        let paid = handle.stats().payments;
        eventually("the kept session pays on", || handle.stats().payments > paid).await;
        let kept_stats = handle
            .session_stats(kept)
            .expect("funder running")
            .await
            .expect("answered")
            .expect("held");
        assert!(kept_stats.payments_accepted >= 1, "{kept_stats:?}");
        assert_eq!(handle.stats().sessions, 1);
        assert_eq!(
            releases_of(&served, &id),
            Vec::new(),
            "the kept session is funded"
        );
        handle.close(kept).expect("funder running");
        drop(handle);
        let stats = tokio::time::timeout(StdDuration::from_secs(10), run)
            .await
            .expect("finishes")
            .expect("no panic");
        assert_eq!(
            (stats.sessions, stats.stopped, stats.released, stats.lapses),
            (0, 1, 1, 0)
        );
        assert_eq!(releases_of(&served, &id), vec![ModelRelease::Stopped]);
        // The stopped session was never stopped on the orchestrator: only its credit ends it.
        assert!(!releases_of(&served, &stopped_id).contains(&ModelRelease::Stopped));
        served.shutdown().await;
    });
}

/// Sessions whose signer tokens live 1 s (10 s at the model's pace): the funder fetches a fresh
/// one for each session before its token expires, holding only that session's signer request,
/// and funding never falters.
#[test]
fn expiring_signer_credentials_are_renewed_per_session_without_a_lapse() {
    use livepay_mock::model::dialect::SignerAuth;
    use std::sync::Arc;
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    runtime().block_on(async {
        const N: usize = 20;
        let mut config = served_config();
        config.signer_auth = Some(SignerAuth::new(Duration::from_secs(1), None));
        let served = Arc::new(ServedModel::start(config).await.expect("served"));
        let source = common::signer_tokens(&served);
        let http = HttpClient::new(HttpConfig::default()).expect("client");
        let mut funder = Funder::new(
            http.clone(),
            FunderConfig {
                seed: 3,
                session_config: scaled_config(),
                ..FunderConfig::default()
            },
        )
        .expect("valid config");
        let handle = funder.handle();
        let collector = collect(funder.events().expect("first take"));
        let run = tokio::spawn(funder.run());
        let mut keys = Vec::new();
        for _ in 0..N {
            let (token, _) = served.issue_signer_token().expect("a token");
            let options = ReserveOptions::new(
                served.runner_url(RUNNER),
                Some(served.signer_url()),
                PaymentType::Live,
            )
            .with_signer_header("Authorization", token);
            let reserved = reserve(&http, &handle.clock(), options).await.expect("reserved");
            keys.push(
                handle
                    .add_with_credentials(reserved, source.clone())
                    .expect("running"),
            );
        }
        let issued = served.signer_tokens_issued();
        // Every session renews its token twice (1 s lives) and pays on meanwhile.
        eventually("two token renewals per session", || {
            served.signer_tokens_issued() >= issued + 2 * N as u64
        })
        .await;
        let paid = handle.stats().payments;
        eventually("payments after the renewals", || {
            handle.stats().payments >= paid + N as u64
        })
        .await;
        let stats = handle.stats();
        assert_eq!(stats.funding, N as u64, "{stats:?}");
        assert_eq!(stats.lapses, 0, "{stats:?}");
        assert_eq!(model_releases(&served), Vec::new(), "the model released nothing");
        close_all_and_finish(handle, run, collector, &keys, &served).await;
    });
}
