//! Bad input over real HTTP: garbage JSON, oversized bodies, unknown paths, malformed HTTP.

mod serve_common;

use std::time::Duration;

use livepay_mock::serve::{ServeConfig, ServedModel};
use serde_json::json;
use serve_common::{Conn, addr_of};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn bad_requests_get_answers_and_the_connection_survives() {
    let served = ServedModel::start(ServeConfig::default()).await.unwrap();
    let mut orch = Conn::open(&served.orchestrator_url()).await.unwrap();
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    for _ in 0..3 {
        let garbage = orch
            .send(
                "POST",
                "/refresh-payment",
                &[("Content-Type", "application/json")],
                "{not json",
            )
            .await
            .unwrap();
        assert_eq!(garbage.status, 400, "the model's own 400");
        assert_eq!(orch.get("/no/such/path?x=1").await.status, 404);
        assert_eq!(orch.get("/discovery").await.status, 200);
        let garbage = signer
            .send("POST", "/generate-live-payment", &[], "\u{0}\u{ff}")
            .await
            .unwrap();
        assert_eq!(garbage.status, 400);
        assert_eq!(
            signer.get("/discovery").await.status,
            404,
            "the signer has no discovery"
        );
    }
    // Known paths with the wrong method.
    assert_eq!(orch.get("/refresh-payment").await.status, 405);
    assert_eq!(orch.post_json("/discovery", &[], &json!({})).await.status, 405);
    served.shutdown().await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let served = ServedModel::start(ServeConfig::default()).await.unwrap();
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let huge = vec![b'x'; (1 << 20) + 1];
    let answer = signer
        .send("POST", "/generate-live-payment", &[], huge)
        .await
        .unwrap();
    assert_eq!(answer.status, 413);
    // Exactly the cap is fine (and garbage to the model).
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let answer = signer
        .send("POST", "/generate-live-payment", &[], vec![b' '; 1 << 20])
        .await
        .unwrap();
    assert_eq!(answer.status, 400);

    // A declared length far above the cap is refused before any of it is sent.
    let mut raw = TcpStream::connect(addr_of(&served.orchestrator_url()))
        .await
        .unwrap();
    raw.write_all(b"POST /refresh-payment HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
        .await
        .unwrap();
    let text = read_answer(&mut raw).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    served.shutdown().await;
}

#[tokio::test]
async fn malformed_http_is_refused_and_the_server_keeps_serving() {
    let served = ServedModel::start(ServeConfig::default()).await.unwrap();
    let origin = served.orchestrator_url();
    for junk in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
    ] {
        let mut raw = TcpStream::connect(addr_of(&origin)).await.unwrap();
        raw.write_all(junk).await.unwrap();
        let text = read_answer(&mut raw).await;
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    let mut orch = Conn::open(&origin).await.unwrap();
    assert_eq!(orch.get("/discovery").await.status, 200);
    served.shutdown().await;
}

/// Everything the server writes until it closes the connection (bounded in time).
async fn read_answer(raw: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1), raw.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}
