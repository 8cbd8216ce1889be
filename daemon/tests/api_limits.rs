//! Issue 17, item 6: idle sockets and half-sent request heads cannot stop funding or keep a
//! stopping daemon alive: the API closes a connection that sends no head within its header
//! timeout, holds at most its cap of connections (more wait in the backlog, the descriptors
//! the funding client needs stay free), and a shutdown closes what is still open at its deadline.

mod common;

use std::time::Duration;

use common::{Events, Running, create, options, request};
use livepay_daemon::listen::ApiLimits;
use livepay_mock::serve::{ServeConfig, ServedModel};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

const GUARD: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_neither_stop_funding_nor_hang_a_shutdown() {
    let model = ServedModel::start(ServeConfig::default()).await.expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(&dir.path().join("s.db"));
    opts.api_limits = ApiLimits {
        header_timeout: Duration::from_millis(300),
        max_connections: Some(4),
        shutdown_deadline: Duration::from_millis(500),
    };
    let daemon = Running::start_with(opts).await;
    let id = create(&daemon, &model).await;

    // Twenty sockets that never speak, and ten heads never finished.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(daemon.addr).await.expect("connect"));
    }
    for _ in 0..10 {
        let mut half = TcpStream::connect(daemon.addr).await.expect("connect");
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a head");
        idle.push(half);
    }
    // Each is closed at its header timeout, four at a time: the API answers well within the guard.
    let health = tokio::time::timeout(GUARD, request(daemon.addr, "GET", "/healthz", None, None))
        .await
        .expect("the API answers once the idle connections are closed");
    assert_eq!(health.status, 200);
    // Funding never depended on the API's sockets.
    let mut events = Events::open(daemon.addr, &daemon.token, &format!("/v1/sessions/{id}/events")).await;
    events.until("payment_accepted", GUARD).await;
    drop(events);

    // A half-sent head open at shutdown does not keep the daemon alive.
    let mut half = TcpStream::connect(daemon.addr).await.expect("connect");
    half.write_all(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a head");
    tokio::time::timeout(Duration::from_secs(5), daemon.stop())
        .await
        .expect("the daemon stops within its shutdown deadline");
    drop(idle);
}
