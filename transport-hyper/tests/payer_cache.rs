//! The payer address is cached per signer in the `HttpClient` (`docs/protocol.md` §2.1): two
//! reservations over one client ask `sign-orchestrator-info` once; a fresh client asks again.
//!
//! The signer model counts no `sign-orchestrator-info` calls, so the test puts a counting
//! forwarder in front of the served signer.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{
    RawRequest, bare_request, bind, fast_model, guarded, http_response, live_options, live_pricing,
    origin_of, quick_http, read_request, serve,
};
use livepay_core::engine::Method;
use livepay_hyper::{HttpClient, LiveSession, Peer};
use livepay_mock::faults::FaultPlan;
use livepay_mock::serve::ServedModel;
use tokio::io::AsyncWriteExt;

/// Requests seen by the forwarder, by path.
#[derive(Debug, Default)]
struct Counts {
    orchestrator_info: AtomicU64,
    generate: AtomicU64,
}

/// A loopback forwarder to `signer` (one request per connection) counting what it forwards.
/// Returns its origin.
async fn counting_signer(signer: String, counts: Arc<Counts>) -> String {
    let listener = bind().await;
    let origin = origin_of(&listener);
    let upstream = match HttpClient::new(quick_http()) {
        Ok(client) => client,
        Err(error) => panic!("cannot build the HTTP client: {error}"),
    };
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (signer, counts, upstream) = (signer.clone(), Arc::clone(&counts), upstream.clone());
            tokio::spawn(async move {
                let Some(RawRequest { path, headers, body }) = read_request(&mut stream).await else {
                    return;
                };
                match path.as_str() {
                    "/sign-orchestrator-info" => counts.orchestrator_info.fetch_add(1, Ordering::SeqCst),
                    "/generate-live-payment" => counts.generate.fetch_add(1, Ordering::SeqCst),
                    _ => 0,
                };
                let mut request = bare_request(Peer::Signer, Method::Post, &format!("{signer}{path}"));
                request.body = body;
                for (name, value) in headers {
                    if !matches!(name.as_str(), "host" | "content-length" | "connection") {
                        request.headers.push((name.into(), value));
                    }
                }
                let response = match upstream.execute_owned(request).await {
                    Ok(r) => http_response(r.status, "application/json", &r.body),
                    Err(_) => http_response(502, "text/plain", b"upstream failed"),
                };
                let _ = stream.write_all(&response).await;
            });
        }
    });
    origin
}

/// Reserves a `live` session on `served` through the signer at `signer`, over `client`, without
/// funding it.
async fn reserve(served: &ServedModel, signer: &str, client: &HttpClient) -> LiveSession {
    let mut options = live_options(served)
        .with_client(client.clone())
        .with_start_payments(false);
    options.reserve.signer_url = Some(signer.to_owned());
    match guarded("the reservation", LiveSession::reserve(options)).await {
        Ok(session) => session,
        Err(error) => panic!("reservation failed: {error}"),
    }
}

#[tokio::test]
async fn one_client_asks_for_the_payer_once_per_signer() {
    let model = fast_model(live_pricing());
    let payer = model.signer.address.clone();
    let served = serve(model, FaultPlan::clean(), 1).await;
    let counts = Arc::new(Counts::default());
    let signer = counting_signer(served.signer_url(), Arc::clone(&counts)).await;
    let info_calls = || counts.orchestrator_info.load(Ordering::SeqCst);

    let shared = match HttpClient::new(quick_http()) {
        Ok(client) => client,
        Err(error) => panic!("cannot build the HTTP client: {error}"),
    };
    assert_eq!(shared.cached_payer(&signer), None);

    let first = reserve(&served, &signer, &shared).await;
    assert_eq!(info_calls(), 1);
    assert_eq!(shared.cached_payer(&signer).as_deref(), Some(payer.as_str()));
    assert_eq!(
        shared.cached_payer(&served.signer_url()),
        None,
        "cached per signer URL"
    );

    // A clone shares the cache: the second reservation skips sign-orchestrator-info but still
    // mints and pays.
    let second = reserve(&served, &signer, &shared.clone()).await;
    assert_eq!(info_calls(), 1, "the cached payer was not used");
    assert_ne!(first.session_id(), second.session_id());
    assert!(second.is_metered());
    assert_eq!(counts.generate.load(Ordering::SeqCst), 2);
    let created = served.with_world(|w| w.orchestrator().stats().sessions_created);
    assert_eq!(created, 2);

    // Another client has its own cache.
    let other = match HttpClient::new(quick_http()) {
        Ok(client) => client,
        Err(error) => panic!("cannot build the HTTP client: {error}"),
    };
    let third = reserve(&served, &signer, &other).await;
    assert_eq!(info_calls(), 2);

    for session in [first, second, third] {
        if let Err(error) = guarded("close", session.close()).await {
            panic!("close failed: {error}");
        }
    }
    served.shutdown().await;
}

#[tokio::test]
async fn a_seeded_cache_skips_sign_orchestrator_info() {
    let model = fast_model(live_pricing());
    let payer = model.signer.address.clone();
    let served = serve(model, FaultPlan::clean(), 1).await;
    let counts = Arc::new(Counts::default());
    let signer = counting_signer(served.signer_url(), Arc::clone(&counts)).await;

    let client = match HttpClient::new(quick_http()) {
        Ok(client) => client,
        Err(error) => panic!("cannot build the HTTP client: {error}"),
    };
    client.cache_payer(&signer, &payer);
    let session = reserve(&served, &signer, &client).await;
    assert_eq!(counts.orchestrator_info.load(Ordering::SeqCst), 0);
    assert_eq!(client.cached_payer(&signer).as_deref(), Some(payer.as_str()));
    if let Err(error) = guarded("close", session.close()).await {
        panic!("close failed: {error}");
    }
    served.shutdown().await;
}
