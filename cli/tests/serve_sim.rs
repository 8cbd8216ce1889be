//! `livepay serve-sim`: prints its URLs, serves discovery, stops cleanly on SIGTERM; a port in use
//! is a one-line error with exit 2.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use common::{livepay, run, stderr_one_line};

#[test]
fn serves_until_sigterm() {
    let mut child = livepay(&[
        "serve-sim",
        "--addr",
        "127.0.0.1:0",
        "--signer-addr",
        "127.0.0.1:0",
    ])
    .stdout(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let orch = first
        .strip_prefix("orchestrator ")
        .expect("orchestrator URL")
        .trim()
        .to_owned();
    let addr = orch.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET /discovery HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("live-runner"), "{answer}");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let exit = child.wait().expect("wait");
    assert_eq!(exit.code(), Some(0));
    assert!(lines.map_while(Result::ok).any(|l| l == "stopped"));
}

#[test]
fn a_ticket_ev_in_seconds_of_price_is_served_and_printed() {
    let mut child = livepay(&[
        "serve-sim",
        "--addr",
        "127.0.0.1:0",
        "--signer-addr",
        "127.0.0.1:0",
        "--ticket-ev",
        "2.5s",
        "--profile",
        "payment-503-mid",
        "--run-duration",
        "2m",
    ])
    .stdout(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    let lines: Vec<String> = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .take(4)
        .map_while(Result::ok)
        .collect();
    // (A clean stop on SIGTERM is `serves_until_sigterm`'s business.)
    child.kill().expect("kill");
    let _ = child.wait();
    let banner = lines.last().cloned().unwrap_or_default();
    assert!(
        banner.contains("ticket EV 2500000000 wei (2.5 s of price)"),
        "{lines:?}"
    );
    assert!(banner.contains("profile payment-503-mid"), "{lines:?}");
}

#[test]
fn a_bad_ticket_ev_is_exit_2() {
    for bad in ["0", "2.5", "-1s", "lots"] {
        let flag = format!("--ticket-ev={bad}");
        let out = run(&["serve-sim", &flag]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(stderr_one_line(&out).contains("--ticket-ev"), "{bad}");
    }
}

#[test]
fn a_port_in_use_is_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["serve-sim", "--addr", &addr, "--signer-addr", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_one_line(&out).contains("in use"));
}
