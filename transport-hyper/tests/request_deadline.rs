//! A request's own deadline (the engine puts the stop's on it) holds on every send path of the
//! client, the Funder's `execute_owned` included, however long the client's own timeout is.

use std::time::Duration;

use livepay_core::Endpoint;
use livepay_core::engine::Request;
use livepay_hyper::{HttpClient, HttpConfig, HttpError};

#[tokio::test]
async fn a_silent_server_is_given_up_at_the_requests_deadline_not_the_clients_timeout() {
    // A server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let client = HttpClient::new(HttpConfig {
        request_timeout: Duration::from_secs(600),
        ..HttpConfig::default()
    })
    .expect("client");
    let mut stop = Request::get(Endpoint::Stop, format!("http://{addr}/stop"));
    stop.deadline = Some(livepay_core::Duration::from_millis(200));
    // A guard of 10 s, far below the client's 600 s: only the request's deadline can end them.
    let guard = Duration::from_secs(10);
    let owned = tokio::time::timeout(guard, client.execute_owned(stop.clone())).await;
    assert!(
        matches!(owned, Ok(Err(HttpError::Timeout))),
        "execute_owned: {owned:?}"
    );
    let borrowed = tokio::time::timeout(guard, client.execute(&stop)).await;
    assert!(
        matches!(borrowed, Ok(Err(HttpError::Timeout))),
        "execute: {borrowed:?}"
    );
}
