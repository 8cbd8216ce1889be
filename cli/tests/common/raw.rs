//! A raw-socket HTTP server for the hardening tests: it answers each request with whatever bytes
//! a handler chooses (control characters, wrong fields, nothing at all), and records every
//! request it saw, so that a test can wait on what the client sent instead of sleeping.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub(crate) struct RawRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

/// What the handler does with a request.
pub(crate) enum RawReply {
    /// Writes these bytes, then closes the connection.
    Bytes(Vec<u8>),
    /// Never answers: holds the connection until the server is dropped.
    Hang,
}

/// `HTTP/1.1 {status}` with a JSON `body`, `Connection: close`.
pub(crate) fn json(status: u16, body: &str) -> RawReply {
    RawReply::Bytes(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

type Handler = dyn Fn(&RawRequest) -> RawReply + Send + Sync;

/// The server: a listener on loopback, one thread per connection.
pub(crate) struct RawServer {
    pub(crate) base: String,
    seen: Receiver<RawRequest>,
    log: Arc<Mutex<Vec<RawRequest>>>,
    _hung: Sender<()>,
}

impl RawServer {
    pub(crate) fn start(handler: impl Fn(&RawRequest) -> RawReply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (seen_tx, seen) = channel();
        let (hung_tx, hung_rx) = channel::<()>();
        let hung_rx = Arc::new(Mutex::new(hung_rx));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let handler = Arc::clone(&handler);
                let seen_tx = seen_tx.clone();
                let log = Arc::clone(&thread_log);
                let hung_rx = Arc::clone(&hung_rx);
                std::thread::spawn(move || serve(stream, &*handler, &seen_tx, &log, &hung_rx));
            }
        });
        Self {
            base,
            seen,
            log,
            _hung: hung_tx,
        }
    }

    /// Waits (at most 20 s, a failure guard) for the next request whose path contains `path`.
    pub(crate) fn wait_for(&self, path: &str) -> RawRequest {
        loop {
            match self.seen.recv_timeout(Duration::from_secs(20)) {
                Ok(request) if request.path.contains(path) => return request,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no request to {path} within 20 s; saw {:?}", self.paths())
                }
            }
        }
    }

    /// The paths of every request seen so far.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.log
            .lock()
            .expect("log")
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }
}

fn serve(
    stream: TcpStream,
    handler: &Handler,
    seen: &Sender<RawRequest>,
    log: &Mutex<Vec<RawRequest>>,
    hung: &Mutex<Receiver<()>>,
) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut words = head.split_whitespace();
    let request = RawRequest {
        method: words.next().unwrap_or_default().to_owned(),
        path: words.next().unwrap_or_default().to_owned(),
        head: head.clone(),
        body,
    };
    log.lock().expect("log").push(request.clone());
    let reply = handler(&request);
    let _ = seen.send(request);
    match reply {
        RawReply::Bytes(bytes) => {
            let mut stream = reader.into_inner();
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
        }
        // Blocks until the server (its sender) is dropped.
        RawReply::Hang => {
            let _ = hung.lock().map(|rx| rx.recv());
        }
    }
}

/// The answers of a healthy paid live runner and its signer, both on `base` (one raw server):
/// payer address, 402 challenge, first mint, paid reservation, payments 200, stop 200. `custom`
/// answers first; where it returns `None`, the healthy answer is given.
pub(crate) fn fake_runner(
    custom: impl Fn(&RawRequest, &str) -> Option<RawReply> + Send + Sync + 'static,
) -> RawServer {
    let base = Arc::new(Mutex::new(String::new()));
    let handler_base = Arc::clone(&base);
    let server = RawServer::start(move |request| {
        let base = handler_base.lock().expect("base").clone();
        if let Some(reply) = custom(request, &base) {
            return reply;
        }
        healthy(request, &base)
    });
    *base.lock().expect("base") = server.base.clone();
    server
}

/// The healthy answer to `request` (see [`fake_runner`]).
pub(crate) fn healthy(request: &RawRequest, base: &str) -> RawReply {
    let paid = request.head.to_ascii_lowercase().contains("livepeer-payment:");
    match request.path.as_str() {
        "/sign-orchestrator-info" => json(
            200,
            r#"{"address":"0x00000000000000000000000000000000000000aa","signature":"0x01"}"#,
        ),
        "/generate-live-payment" => json(
            200,
            r#"{"payment":"cA==","segCreds":"cw==","state":{"State":"eA==","Sig":"eQ=="}}"#,
        ),
        "/apps/live-runner/session" if !paid => json(
            402,
            &format!(
                r#"{{"payment_params":"cA==","manifest_id":"abcd1234","payment_url":"{base}/apps/live-runner/session/abcd1234/payment"}}"#
            ),
        ),
        "/apps/live-runner/session" => json(
            200,
            &format!(
                r#"{{"session_id":"abcd1234","app_url":"{base}/app","control_url":"{base}/apps/live-runner/session/abcd1234"}}"#
            ),
        ),
        "/refresh-payment" => json(
            200,
            &format!(
                r#"{{"payment_params":"cQ==","manifest_id":"abcd1234","payment_url":"{base}/apps/live-runner/session/abcd1234/payment"}}"#
            ),
        ),
        _ => json(200, "{}"),
    }
}
