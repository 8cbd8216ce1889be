//! The protocol engine over the served model's raw HTTP/1.1 bytes: an adapter only moves bytes.
//!
//! A blocking loop on a `std::net::TcpStream` writes each `Request` the core's `ReserveFlow` and
//! `Engine` hand out as HTTP/1.1 text, reads the answer's status line, headers and
//! `Content-Length` body by hand, and gives them back as a `Response`. Nothing here knows an
//! endpoint, a request sequence or what a status means. The model runs on a 10× faster clock
//! (500 ms billing ticks, a 1 s prepay) with a matching client configuration, so a few seconds of
//! real time cover many payment cycles; the engine's timers are slept for real, each under one
//! 300 ms interval.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration as StdDuration;

use livepay_core::engine::{Engine, Output, Request, ReserveFlow, ReserveOptions, Reserved, Response};
use livepay_core::{
    Config, Duration, Event, Failure, Instant, PaymentType, ReleaseReason, State, StatusTable,
};
use livepay_mock::model::{self, ReleaseCause};
use livepay_mock::serve::{ServeConfig, ServedModel};

/// How long one socket read or write may take before the request counts as timed out (a guard:
/// the loopback model answers in microseconds).
const IO_GUARD: StdDuration = StdDuration::from_secs(5);

/// Real time since the test began, as the core's `Instant`: the clock the reservation and the
/// funding share.
#[derive(Debug, Clone, Copy)]
struct WallClock(std::time::Instant);

impl WallClock {
    #[allow(clippy::disallowed_methods)] // a real-time adapter reads the real clock
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    fn now(self) -> Instant {
        Instant::from_micros(u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Sleeps until `at` (a short real sleep: the engine's next timer).
    fn sleep_until(self, at: Instant) {
        let now = self.now();
        if at > now {
            std::thread::sleep(StdDuration::from_micros((at - now).as_micros()));
        }
    }
}

/// An HTTP answer as read off the socket.
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// `http://host:port/path?query` as `(host:port, /path?query)`.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    Some(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// The request as HTTP/1.1 bytes, one request per connection.
fn encode(request: &Request, authority: &str, path: &str) -> Vec<u8> {
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        request.method.as_str(),
        request.body.len()
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&request.body);
    bytes
}

fn io_failure(error: &std::io::Error) -> Failure {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Failure::Timeout,
        _ => Failure::Network,
    }
}

/// Reads one HTTP/1.1 answer: the status line, the headers, then `Content-Length` bytes of body
/// (or everything up to the close without one). Anything that is not HTTP is a network failure.
fn read_answer(stream: &TcpStream) -> Result<RawAnswer, Failure> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| io_failure(&e))?;
    // "HTTP/1.1 200 OK"
    let mut parts = line.trim_end().splitn(3, ' ');
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => {
            code.parse::<u16>().map_err(|_| Failure::Network)?
        }
        _ => return Err(Failure::Network),
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| io_failure(&e))? == 0 {
            return Err(Failure::Network);
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').ok_or(Failure::Network)?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().map_err(|_| Failure::Network))
        .transpose()?;
    let mut body = Vec::new();
    match length {
        Some(length) => {
            body.resize(length, 0);
            reader.read_exact(&mut body).map_err(|e| io_failure(&e))?;
        }
        None => {
            reader.read_to_end(&mut body).map_err(|e| io_failure(&e))?;
        }
    }
    Ok(RawAnswer {
        status,
        headers,
        body,
    })
}

/// Moves `request`'s bytes to its server and the answer's bytes back.
fn exchange(request: &Request) -> Result<RawAnswer, Failure> {
    let (authority, path) = split_url(&request.url).ok_or(Failure::BadUrl)?;
    let mut stream = TcpStream::connect(authority).map_err(|_| Failure::Refused)?;
    stream
        .set_read_timeout(Some(IO_GUARD))
        .and_then(|()| stream.set_write_timeout(Some(IO_GUARD)))
        .map_err(|e| io_failure(&e))?;
    stream
        .write_all(&encode(request, authority, path))
        .map_err(|e| io_failure(&e))?;
    read_answer(&stream)
}

/// Hands `answer` to `deliver` as a `Response`.
fn as_response<R>(answer: &RawAnswer, deliver: impl FnOnce(&Response<'_>) -> R) -> R {
    let headers: Vec<(&str, &str)> = answer
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    deliver(&Response::new(answer.status, &answer.body).with_headers(&headers))
}

/// The reservation, through the core's flow: a pump over its outputs.
fn reserve(clock: WallClock, options: ReserveOptions) -> Reserved {
    let mut flow = ReserveFlow::new(options).expect("valid options");
    loop {
        match flow.poll_output(clock.now()) {
            Some(Output::Transmit(request)) => {
                flow.handle_sent(clock.now(), request.id);
                match exchange(&request) {
                    Ok(answer) => as_response(&answer, |r| flow.handle_response(clock.now(), request.id, r)),
                    Err(failure) => flow.handle_failure(clock.now(), request.id, failure),
                }
            }
            Some(Output::Timeout(at)) => clock.sleep_until(at),
            Some(Output::Done(result)) => return result.expect("reserved"),
            Some(_) => {}
            None => panic!("a reservation ends with its result"),
        }
    }
}

/// Pumps `engine` on real time until its run ends or `until` (if any) passes: sends every
/// request it asks for, sleeps to its next timer. Returns the events seen.
fn drive(engine: &mut Engine, clock: WallClock, until: Option<Instant>) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        match engine.poll_output(clock.now()) {
            Some(Output::Transmit(request)) => {
                engine.handle_sent(clock.now(), request.id);
                let answered = match exchange(&request) {
                    Ok(answer) => {
                        as_response(&answer, |r| engine.handle_response(clock.now(), request.id, r))
                    }
                    Err(failure) => engine.handle_failure(clock.now(), request.id, failure),
                };
                answered.expect("the answer names the request in flight");
            }
            Some(Output::Event(event)) => events.push(event),
            Some(Output::NeedCredential) => engine.handle_credential(clock.now(), None),
            Some(Output::Timeout(next)) => {
                if until.is_some_and(|end| next >= end) {
                    return events;
                }
                clock.sleep_until(next);
                engine.handle_timeout(clock.now());
            }
            Some(Output::Done(_)) | None => return events,
            Some(_) => {}
        }
    }
}

/// The client configuration matching the 10× faster model.
fn scaled_config() -> Config {
    let mut config = Config::new(PaymentType::Live).time_scaled(10);
    config.seed = 7;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_reserves_funds_and_closes_over_raw_http_bytes() {
    let mut model = model::ModelConfig {
        tick: Duration::from_millis(500),
        ..model::ModelConfig::default()
    };
    model.signer.prepay_live = Duration::from_secs(1);
    let served = ServedModel::start(ServeConfig {
        model,
        ..ServeConfig::default()
    })
    .await
    .expect("served");
    let clock = WallClock::start();
    let options = ReserveOptions::new(
        served.runner_url("live-runner"),
        Some(served.signer_url()),
        PaymentType::Live,
    );

    // Reserve, then fund for 3 s (ten 300 ms cycles, six 500 ms billing ticks), on a blocking
    // thread: the served model keeps running on the runtime's workers.
    let (mut engine, funding) = tokio::task::spawn_blocking(move || {
        let reserved = reserve(clock, options);
        let mut engine = Engine::new(&scaled_config(), reserved, StatusTable::new()).expect("valid config");
        engine.start(clock.now());
        let until = clock.now() + Duration::from_secs(3);
        let events = drive(&mut engine, clock, Some(until));
        (engine, events)
    })
    .await
    .expect("the client thread");

    let id = engine.session_id().to_owned();
    let stats = engine.stats();
    // The runway is built one mint per whole second (the unscaled billing unit) for 3 s.
    assert!(stats.payments_accepted >= 3, "{stats:?}: {funding:?}");
    assert_eq!(stats.failures + stats.lost_mints, 0, "{stats:?}");
    assert_eq!(engine.last_problem(), None);
    let (accepted, released) =
        served.with_world(|w| (w.orchestrator().stats().payments_accepted, w.released_at(&id)));
    assert_eq!(
        accepted,
        u64::from(stats.payments_accepted) + 1,
        "the reservation's payment, then every one the engine counted"
    );
    assert_eq!(released, None, "the model never released the funded session");

    // Close through the engine: it sends the stop, and the model releases the session by it.
    let (engine, closing) = tokio::task::spawn_blocking(move || {
        engine.close(clock.now());
        let events = drive(&mut engine, clock, None);
        (engine, events)
    })
    .await
    .expect("the client thread");
    assert_eq!(
        engine.state(),
        State::Released {
            reason: ReleaseReason::ClosedByClient
        },
        "{closing:?}"
    );
    assert!(
        !closing.iter().any(|e| matches!(e, Event::StopFailed { .. })),
        "{closing:?}"
    );
    let release = served.with_world(|w| w.orchestrator().session(&id).and_then(|s| s.released()));
    assert!(matches!(release, Some((_, ReleaseCause::Stopped))), "{release:?}");
    served.shutdown().await;
}
