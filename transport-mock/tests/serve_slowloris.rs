//! Slowloris over real HTTP: clients that open connections and send only part of a request (or
//! nothing) are closed by the header timeout, a stalled body by the body timeout, and past the
//! per-listener connection cap a well-behaved client waits for a slot, never forever.
//!
//! No sleeps synchronise these tests: each waits on what the server does (an answer, an EOF, a
//! reset); the 10 s [`GUARD`] only turns a hang into a failure.

#![cfg(feature = "http")]

mod serve_common;

use std::io::ErrorKind;
use std::time::Duration;

use livepay_mock::serve::{ServeConfig, ServeLimits, ServedModel};
use serve_common::addr_of;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The upper bound on any wait: a failure guard, never a synchronisation.
const GUARD: Duration = Duration::from_secs(10);

/// The partial requests a slowloris client sends, in turn: nothing, part of a request line, a
/// request line and part of the headers.
const PARTIAL: [&[u8]; 3] = [
    b"",
    b"GE",
    b"POST /refresh-payment HTTP/1.1\r\nHost: x\r\nContent-Type: appl",
];

fn limits(header_timeout: Duration, max_connections: usize) -> ServeLimits {
    ServeLimits {
        header_timeout: Some(header_timeout),
        body_timeout: Some(header_timeout),
        max_connections,
    }
}

async fn serve(limits: ServeLimits) -> ServedModel {
    ServedModel::start_limited(ServeConfig::default(), limits)
        .await
        .expect("served")
}

/// Opens a connection to `origin` and sends the `i`-th kind of partial request.
async fn slowloris(origin: &str, i: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr_of(origin)).await.expect("connect");
    let partial = PARTIAL[i % PARTIAL.len()];
    if !partial.is_empty() {
        stream.write_all(partial).await.expect("partial request");
    }
    stream
}

/// Waits for the server to close `stream` (EOF or reset), bounded by [`GUARD`]; returns what it wrote,
/// or why not (to be reported by the test, not by a spawned reader).
async fn closed_by_server(mut stream: TcpStream) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match tokio::time::timeout(GUARD, stream.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Ok(out),
        Ok(Err(error)) if error.kind() == ErrorKind::ConnectionReset => Ok(out),
        Ok(Err(error)) => Err(format!("reading a slowloris connection: {error}")),
        Err(_) => Err(format!("the server kept a half-sent request open for {GUARD:?}")),
    }
}

/// Waits for the server to close every one of `conns`; what each wrote, in the order they closed,
/// with the instant each closed.
async fn all_closed_by_server(conns: Vec<TcpStream>) -> Vec<(Vec<u8>, Instant)> {
    let mut closing = JoinSet::new();
    for conn in conns {
        closing.spawn(async move { closed_by_server(conn).await.map(|w| (w, Instant::now())) });
    }
    let mut closed = Vec::new();
    while let Some(done) = closing.join_next().await {
        match done.expect("a reader task") {
            Ok(one) => closed.push(one),
            Err(why) => panic!("{why}"),
        }
    }
    closed
}

/// A complete `GET /discovery` (orchestrator) or `POST /sign-orchestrator-info` (signer) on a fresh
/// connection, read to the server's close: the status line.
async fn well_behaved(origin: &str, signer: bool) -> String {
    let request = if signer {
        "POST /sign-orchestrator-info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    } else {
        "GET /discovery HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    };
    let exchange = async {
        let mut stream = TcpStream::connect(addr_of(origin)).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let answer = match tokio::time::timeout(GUARD, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => panic!("a well-behaved request to {origin} failed: {error}"),
        Err(_) => panic!("a well-behaved request to {origin} was not answered within {GUARD:?}"),
    };
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

/// `true` while the server has neither closed nor written to `stream`.
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_within_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let served = serve(limits(timeout, 1024)).await;
    let started = Instant::now();
    let mut conns = Vec::new();
    for i in 0..60 {
        let origin = if i % 2 == 0 {
            served.orchestrator_url()
        } else {
            served.signer_url()
        };
        conns.push(slowloris(&origin, i).await);
    }
    for (written, _) in all_closed_by_server(conns).await {
        let text = String::from_utf8_lossy(&written);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 4"),
            "closed with an error answer or none: {text}"
        );
    }
    // Timers never fire early: a connection closed before its timeout was closed by something else.
    assert!(
        started.elapsed() >= timeout,
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(
        well_behaved(&served.orchestrator_url(), false).await,
        "HTTP/1.1 200 OK"
    );
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_client_is_answered_while_slowloris_connections_are_open_and_after() {
    // Long enough that the good requests (milliseconds on loopback) finish while all are open.
    let timeout = Duration::from_secs(3);
    let served = serve(limits(timeout, 1024)).await;
    let (orch, signer) = (served.orchestrator_url(), served.signer_url());
    let mut conns = Vec::new();
    for i in 0..100 {
        conns.push(slowloris(if i % 2 == 0 { &orch } else { &signer }, i).await);
    }
    assert_eq!(well_behaved(&orch, false).await, "HTTP/1.1 200 OK");
    assert_eq!(well_behaved(&signer, true).await, "HTTP/1.1 200 OK");
    let open = conns.iter().filter(|c| still_open(c)).count();
    assert_eq!(open, conns.len(), "the slowloris connections were open meanwhile");

    all_closed_by_server(conns).await;
    assert_eq!(well_behaved(&orch, false).await, "HTTP/1.1 200 OK");
    assert_eq!(well_behaved(&signer, true).await, "HTTP/1.1 200 OK");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_well_behaved_client_is_served_once_the_timeouts_free_a_slot() {
    let (timeout, cap) = (Duration::from_millis(300), 8);
    let served = serve(limits(timeout, cap)).await;
    let orch = served.orchestrator_url();
    let started = Instant::now();
    let mut conns = Vec::new();
    for i in 0..3 * cap {
        conns.push(slowloris(&orch, i).await);
    }
    // The orchestrator listener is full; the signer's has its own cap and answers at once.
    assert_eq!(well_behaved(&served.signer_url(), true).await, "HTTP/1.1 200 OK");
    // Queued behind 24 slowloris connections, 8 at a time: served after about three timeouts.
    let good = tokio::spawn({
        let orch = orch.clone();
        async move { well_behaved(&orch, false).await }
    });

    let closed_at: Vec<Duration> = all_closed_by_server(conns)
        .await
        .into_iter()
        .map(|(_, at)| at - started)
        .collect();
    // A connection is accepted only once a slot is free, and the first slot frees one timeout after
    // the first accept: no more than `cap` connections can be closed within two timeouts.
    let early = closed_at.iter().filter(|at| **at < 2 * timeout).count();
    assert!(
        early <= cap,
        "{early} connections closed within {:?}: the cap of {cap} was not applied",
        2 * timeout
    );
    assert_eq!(good.await.expect("the good client"), "HTTP/1.1 200 OK");
    assert_eq!(well_behaved(&orch, false).await, "HTTP/1.1 200 OK");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_408_and_closed_within_the_body_timeout() {
    let timeout = Duration::from_millis(300);
    let served = serve(limits(timeout, 1024)).await;
    let mut stream = TcpStream::connect(addr_of(&served.signer_url()))
        .await
        .expect("connect");
    stream
        .write_all(b"POST /generate-live-payment HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"orch")
        .await
        .expect("headers and part of the body");
    let written = closed_by_server(stream)
        .await
        .unwrap_or_else(|why| panic!("{why}"));
    let text = String::from_utf8_lossy(&written);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(well_behaved(&served.signer_url(), true).await, "HTTP/1.1 200 OK");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limits_close_a_half_sent_request() {
    let defaults = ServeLimits::default();
    assert_eq!(defaults.header_timeout, Some(Duration::from_secs(5)));
    assert_eq!(defaults.body_timeout, Some(Duration::from_secs(10)));
    assert_eq!(defaults.max_connections, 1024);
    // `ServedModel::start` (what `livepay demo` and `serve-sim` use) applies them.
    let served = ServedModel::start(ServeConfig::default()).await.expect("served");
    let started = Instant::now();
    let conn = slowloris(&served.orchestrator_url(), 2).await;
    if let Err(why) = closed_by_server(conn).await {
        panic!("{why}");
    }
    assert!(started.elapsed() >= Duration::from_secs(5));
    served.shutdown().await;
}
