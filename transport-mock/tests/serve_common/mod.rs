//! Shared by the `serve_*` tests: a bare HTTP/1.1 client on one kept-alive connection, and the
//! reservation flow of `docs/protocol.md` §2.3 done by hand.
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use livepay_mock::serve::ServedModel;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// The socket address of an `http://ip:port` origin.
pub(crate) fn addr_of(origin: &str) -> SocketAddr {
    origin
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.parse().ok())
        .unwrap_or_else(|| panic!("not an http origin: {origin}"))
}

/// The path of a URL on `origin`.
pub(crate) fn path_of<'a>(origin: &str, url: &'a str) -> &'a str {
    url.strip_prefix(origin)
        .unwrap_or_else(|| panic!("{url} is not on {origin}"))
}

/// One answer.
#[derive(Debug)]
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl RawAnswer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {}: body is not JSON ({e}): {:?}", self.status, self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One HTTP/1.1 connection: every request goes over it, one after the other.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Conn {
    pub(crate) async fn open(origin: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr_of(origin)).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender, driver })
    }

    /// Sends one request; `Err` when no HTTP answer came (closed, reset).
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<RawAnswer, hyper::Error> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "localhost");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(body.into())).expect("a valid request");
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    pub(crate) async fn post_json(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> RawAnswer {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, serde_json::to_vec(body).unwrap())
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub(crate) async fn get(&mut self, path: &str) -> RawAnswer {
        self.send("GET", path, &[], Bytes::new())
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A reserved, funded session.
pub(crate) struct Funded {
    pub(crate) payer: String,
    pub(crate) session_id: String,
    pub(crate) payment_params: String,
    pub(crate) payment_path: String,
    pub(crate) control_path: String,
    pub(crate) state: Value,
}

/// Mints tickets: `state` absent on the first call.
pub(crate) async fn mint(
    signer: &mut Conn,
    params: &str,
    manifest_id: &str,
    state: Option<&Value>,
) -> RawAnswer {
    let mut body = json!({ "orchestrator": params, "type": "live", "ManifestID": manifest_id });
    if let Some(state) = state {
        body["state"] = state.clone();
    }
    signer.post_json("/generate-live-payment", &[], &body).await
}

/// The full reservation of `runner_id` by hand: signer address, 402 challenge, first mint, paid retry.
pub(crate) async fn reserve(served: &ServedModel, runner_id: &str) -> Funded {
    let orch_url = served.orchestrator_url();
    let mut signer = Conn::open(&served.signer_url()).await.unwrap();
    let mut orch = Conn::open(&orch_url).await.unwrap();

    let info = signer.post_json("/sign-orchestrator-info", &[], &json!({})).await;
    assert_eq!(info.status, 200);
    let payer = info.json()["address"].as_str().unwrap().to_owned();

    let reserve_path = path_of(&orch_url, &served.runner_url(runner_id)).to_owned();
    let payer_header = [("Livepeer-Payer-Address", payer.as_str())];
    let challenge = orch.post_json(&reserve_path, &payer_header, &json!({})).await;
    assert_eq!(challenge.status, 402);
    assert_eq!(challenge.header("content-type"), Some("application/json"));
    let challenge = challenge.json();
    let params = challenge["payment_params"].as_str().unwrap().to_owned();
    let manifest_id = challenge["manifest_id"].as_str().unwrap().to_owned();
    let payment_url = challenge["payment_url"].as_str().unwrap();
    assert_eq!(
        payment_url,
        format!("{orch_url}/apps/{runner_id}/session/{manifest_id}/payment"),
        "the challenge names the bound orchestrator"
    );
    let payment_path = path_of(&orch_url, payment_url).to_owned();

    let minted = mint(&mut signer, &params, &manifest_id, None).await;
    assert_eq!(minted.status, 200, "{:?}", minted.body);
    let minted = minted.json();
    let paid_headers = [
        ("Livepeer-Payer-Address", payer.as_str()),
        ("Livepeer-Payment", minted["payment"].as_str().unwrap()),
        ("Livepeer-Segment", minted["segCreds"].as_str().unwrap()),
    ];
    let reserved = orch.post_json(&reserve_path, &paid_headers, &json!({})).await;
    assert_eq!(reserved.status, 200, "{:?}", reserved.body);
    let reserved = reserved.json();
    let session_id = reserved["session_id"].as_str().unwrap().to_owned();
    assert_eq!(session_id, manifest_id);
    let control_url = reserved["control_url"].as_str().unwrap();
    assert_eq!(
        control_url,
        format!("{orch_url}/apps/{runner_id}/session/{session_id}")
    );
    Funded {
        payer,
        control_path: path_of(&orch_url, control_url).to_owned(),
        session_id,
        payment_params: params,
        payment_path,
        state: minted["state"].clone(),
    }
}
