//! `livepay serve-sim --header-timeout --body-timeout --max-connections`: the flags reach the server
//! (half-sent requests are closed, a well-behaved client is served past the cap once they are) and
//! bad values are exit 2.
//!
//! No sleeps synchronise this test: it waits on what the server does (an answer, an EOF); read
//! timeouts of [`GUARD`] only turn a hang into a failure.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{livepay, run, stderr_one_line};

/// The upper bound on any wait: a failure guard, never a synchronisation.
const GUARD: Duration = Duration::from_secs(10);

/// `serve-sim` on free ports with `flags`; its orchestrator's `host:port` and its banner lines.
fn serve_sim(flags: &[&str]) -> (Child, String, Vec<String>) {
    let mut args = vec![
        "serve-sim",
        "--addr",
        "127.0.0.1:0",
        "--signer-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(flags);
    let mut child = livepay(&args).stdout(Stdio::piped()).spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let lines: Vec<String> = stdout.by_ref().take(5).map_while(Result::ok).collect();
    // Keep reading: the banner goes on (the dialect line), and a closed pipe would make the
    // server stop (`standard output was closed`) under whichever request races it.
    std::thread::spawn(move || for _ in stdout {});
    let addr = lines
        .first()
        .and_then(|l| l.strip_prefix("orchestrator "))
        .map(|url| url.trim().trim_start_matches("http://").to_owned())
        .unwrap_or_else(|| panic!("no orchestrator URL in {lines:?}"));
    (child, addr, lines)
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(GUARD)).expect("read timeout");
    stream
}

/// Reads `stream` until the server closes it (EOF or reset); fails after [`GUARD`] without progress.
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection within {GUARD:?}: {e}"),
    }
    out
}

fn discovery(addr: &str) -> String {
    let mut stream = connect(addr);
    write!(
        stream,
        "GET /discovery HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let answer = String::from_utf8_lossy(&read_to_close(&mut stream)).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn half_sent_requests_are_closed_and_a_client_past_the_cap_is_served() {
    let (mut child, addr, banner) = serve_sim(&[
        "--header-timeout",
        "300ms",
        "--body-timeout",
        "300ms",
        "--max-connections",
        "4",
    ]);
    assert!(
        banner.iter().any(|l| l.contains("header timeout 300ms")
            && l.contains("body timeout 300ms")
            && l.contains("4 connections per listener")),
        "{banner:?}"
    );
    let mut slow: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut stream = connect(&addr);
            stream
                .write_all(b"GET /discovery HTTP/1.1\r\nHost: x\r\n")
                .expect("partial request");
            stream
        })
        .collect();
    // Queued behind the ten, four at a time: answered once the header timeout frees slots.
    let good = std::thread::spawn({
        let addr = addr.clone();
        move || discovery(&addr)
    });
    for stream in &mut slow {
        let written = read_to_close(stream);
        assert!(!String::from_utf8_lossy(&written).contains("200 OK"));
    }
    assert_eq!(good.join().expect("the good client"), "HTTP/1.1 200 OK");
    assert_eq!(discovery(&addr), "HTTP/1.1 200 OK");
    child.kill().expect("kill");
    let _ = child.wait();
}

#[test]
fn bad_limits_are_exit_2() {
    for (flag, value) in [
        ("--header-timeout", "0s"),
        ("--header-timeout", "soon"),
        ("--body-timeout", "0ms"),
        ("--max-connections", "0"),
        ("--max-connections", "-1"),
    ] {
        let out = run(&["serve-sim", &format!("{flag}={value}")]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(stderr_one_line(&out).contains(flag), "{flag} {value}");
    }
}
