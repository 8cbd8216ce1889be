use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use livepay_core::engine::{DiscoveryQuery, Engine, Response};
use livepay_core::{Clock as _, Config, Event, FirstPayment, Peer, ReleaseReason, State, StatusTable};

use super::*;
use crate::model::{ModelConfig, ReleaseCause, SignerConfig};

/// Polls `f` once.
fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

fn net() -> MemoryNet {
    MemoryNet::new(World::new(ModelConfig::default(), 11))
}

/// Sends every request `engine` has now over `net`, answering each at once, until the engine
/// waits for a timer (or for nothing).
fn exchange(net: &MemoryNet, engine: &mut Engine) -> Vec<&'static str> {
    let mut sent = Vec::new();
    loop {
        match engine.poll_output(net.now()) {
            Some(Output::Transmit(request)) => {
                sent.push(request.endpoint.as_str());
                match net.execute(&request) {
                    Ok(answer) => engine
                        .handle_response(net.now(), request.id, &Response::new(answer.status, &answer.body))
                        .unwrap(),
                    Err(failure) => engine.handle_failure(net.now(), request.id, failure).unwrap(),
                }
            }
            Some(Output::Timeout(_)) | None => return sent,
            Some(_) => {}
        }
    }
}

#[test]
fn requests_are_routed_by_origin_and_take_the_latency() {
    let net = net().with_latency(Duration::from_millis(40));
    let t0 = net.now();
    // A reservation's first request goes to the signer (an upper-case host is the same origin).
    let options = ReserveOptions::new(
        net.runner_url("live-runner"),
        Some("http://SIGNER.invalid:80".into()),
        PaymentType::Live,
    );
    let mut flow = ReserveFlow::new(options).unwrap();
    let Some(Output::Transmit(info)) = flow.poll_output(t0) else {
        panic!("the payer address is asked for first")
    };
    assert_eq!(info.peer(), Peer::Signer);
    let answer = net.execute(&info).unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(net.now(), t0 + Duration::from_millis(40));
    let discovery = DiscoveryQuery::new(net.orchestrator_url(), None).request();
    let answer = net.execute(&discovery).unwrap();
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v == "application/json"),
        "the model's headers come back: {:?}",
        answer.headers
    );
    let elsewhere = DiscoveryQuery::new("http://elsewhere.invalid", None).request();
    assert_eq!(net.execute(&elsewhere), Err(Failure::Refused));
    assert_eq!(net.now(), t0 + Duration::from_millis(120));
    assert_eq!(net.requests(), 3);
}

#[test]
fn reserve_over_the_model_then_fund_and_close_through_the_engine() {
    let net = net();
    let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).unwrap();
    assert_eq!(
        net.requests(),
        4,
        "orchestrator info, 402, first mint, paid retry"
    );
    assert_eq!(net.now(), Instant::from_millis(40));
    // The prepay runs from the instant the first mint left: after the orchestrator info and the
    // 402, each 10 ms.
    assert_eq!(reserved.minted_at, Instant::from_millis(20));
    let payment = reserved.payment.clone().unwrap();
    assert_eq!(payment.manifest_id(), reserved.session_id);
    assert!(payment.has_state());
    let id = reserved.session_id.clone();
    let config = Config {
        first_payment: FirstPayment::Immediately,
        ..Config::new(PaymentType::Live)
    };
    let mut engine = Engine::new(&config, reserved, StatusTable::new()).unwrap();

    net.clock().advance(Duration::from_secs(3));
    engine.start(net.now());
    assert_eq!(exchange(&net, &mut engine), ["signer", "payment"]);
    assert_eq!(engine.stats().payments_accepted, 1);
    // 10 s prepaid, then the mint sent at 3.04 s, 3.02 s after the first, billed as 4 s.
    assert_eq!(net.world().signer().stats().tickets, 10 + 4);
    assert_eq!(net.world().orchestrator().stats().payments_accepted, 2);

    engine.close(net.now());
    let stop = exchange(&net, &mut engine);
    assert_eq!(stop.len(), 1, "only the stop: {stop:?}");
    assert_eq!(
        engine.state(),
        State::Released {
            reason: ReleaseReason::ClosedByClient
        }
    );
    let world = net.world();
    let released = world.orchestrator().session(&id).unwrap().released();
    assert!(matches!(released, Some((_, ReleaseCause::Stopped))));
}

#[test]
fn signer_headers_reach_the_signer_and_stay_secret() {
    let config = ModelConfig {
        signer: SignerConfig {
            required_auth: Some(("Authorization".into(), "Bearer t0k3n".into())),
            ..SignerConfig::default()
        },
        ..ModelConfig::default()
    };
    let net = MemoryNet::new(World::new(config, 3));
    let err = reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).unwrap_err();
    assert!(matches!(err, ReserveError::Signer { status: 401, .. }), "{err}");
    let options = net
        .reserve_options("live-runner", PaymentType::Live)
        .with_signer_header("Authorization", "Bearer t0k3n");
    let reserved = reserve(&net, options).unwrap();
    let mut engine = Engine::new(&Config::new(PaymentType::Live), reserved, StatusTable::new()).unwrap();
    net.clock().advance(Duration::from_secs(5));
    engine.start(net.now());
    exchange(&net, &mut engine);
    assert_eq!(engine.stats().payments_accepted, 1, "{:?}", engine.last_problem());
    assert!(!format!("{engine:?}").contains("t0k3n"));
    assert!(!format!("{net:?}").contains("t0k3n"));
}

#[test]
fn the_payer_cache_skips_the_orchestrator_info() {
    let net = net();
    let mut cache = PayerCache::new();
    let options = net.reserve_options("live-runner", PaymentType::Live);
    reserve_with_cache(&net, options.clone(), &mut cache).unwrap();
    assert_eq!(net.requests(), 4);
    assert_eq!(cache.len(), 1);
    reserve_with_cache(&net, options, &mut cache).unwrap();
    assert_eq!(net.requests(), 4 + 3, "402, first mint, paid retry");
}

#[test]
fn the_world_follows_the_clock_lazily_and_releases_at_the_modelled_instant() {
    let net = net();
    let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).unwrap();
    let paid_at = net.now() - Duration::from_millis(5);
    // 10 s prepaid, 5 s ticks from the paid retry: the tick at +15 s cannot be covered. Moving
    // the clock alone runs no tick; looking at the world runs them all.
    net.clock().advance(Duration::from_secs(60));
    assert!(net.world.borrow().now() < net.now(), "not advanced yet");
    let released = net.world().released_at(&reserved.session_id);
    assert_eq!(released, Some(paid_at + Duration::from_secs(15)));
    // Looking twice at one instant is fine.
    let (a, b) = (net.world(), net.world());
    assert_eq!(a.now(), b.now());
}

#[test]
fn memory_http_answers_at_once_then_yields_with_time_held() {
    let net = net();
    let http = MemoryHttp::new(net.clone());
    let t0 = net.now();
    let request = DiscoveryQuery::new(net.orchestrator_url(), None).request();
    let clock = net.clock();
    let mut send = pin!(http.send(request));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(send.as_mut().poll(&mut cx).is_pending(), "yields once");
    assert_eq!(net.now(), t0 + DEFAULT_LATENCY, "executed at once");
    assert_eq!(now_or_never(clock.sleep_until(t0 + Duration::from_secs(5))), None);
    assert_eq!(
        net.now(),
        t0 + DEFAULT_LATENCY,
        "time held while the answer lands"
    );
    let Poll::Ready(delivery) = send.as_mut().poll(&mut cx) else {
        panic!("the answer lands on the second poll");
    };
    assert_eq!(delivery.sent_at, Some(t0));
    assert_eq!(delivery.result.map(|a| a.status), Ok(200));
    assert_eq!(clock.steps(), 2, "the request and the sleep");
}

#[test]
fn engine_run_over_memory_http_funds_until_closed() {
    use futures::StreamExt as _;
    let net = net();
    let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).unwrap();
    let mut engine = Engine::new(&Config::new(PaymentType::Live), reserved, StatusTable::new()).unwrap();
    let http = MemoryHttp::new(net.clone());
    let clock = net.clock();
    let close_at = net.now() + Duration::from_secs(30);
    let commands = Box::pin(
        futures::stream::once(async move {
            clock.reached(close_at).await;
            livepay_core::Command::Close
        })
        .chain(futures::stream::pending()),
    );
    engine.start(net.now());
    let mut paid = 0;
    let exit = futures::executor::block_on(engine.run(&http, clock, commands, |_, output| {
        if matches!(output, Output::Event(Event::PaymentAccepted { .. })) {
            paid += 1;
        }
    }));
    assert_eq!(exit.reason(), Some(ReleaseReason::ClosedByClient));
    assert_eq!(paid, engine.stats().payments_accepted);
    // How often it pays is the policy's business; that it paid and was never released unpaid is
    // the byte mover's.
    assert!(paid >= 2, "{:?}", engine.stats());
    assert!(
        net.world()
            .orchestrator()
            .releases()
            .iter()
            .all(|r| r.reason == crate::model::ReleaseCause::Stopped),
        "released unpaid"
    );
    assert!(net.now() >= close_at && net.now() - close_at <= Duration::from_millis(50));
}
