use futures_free::{now_or_never, soon};

use super::*;
use crate::model::{Config, ReleaseCause, SignerConfig};

/// A minimal executor for futures that never wait for anything but this module's clock.
mod futures_free {
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};

    /// Polls `f` until it completes, at most 16 times.
    pub(super) fn soon<F: Future>(f: F) -> Option<F::Output> {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        (0..16).find_map(|_| match f.as_mut().poll(&mut cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        })
    }

    /// Polls `f` once.
    pub(super) fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        }
    }
}

fn net() -> MemoryNet {
    MemoryNet::new(World::new(Config::default(), 11))
}

#[test]
fn requests_are_routed_by_origin_and_take_the_latency() {
    let net = net().with_latency(Duration::from_millis(40));
    let t0 = net.now();
    let info = HttpRequest::post("http://SIGNER.invalid:80/sign-orchestrator-info").with_json(b"{}".to_vec());
    let (status, body) = net.execute(&info).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(net.now(), t0 + Duration::from_millis(40));
    let discovery = HttpRequest {
        method: Method::Get,
        ..HttpRequest::post("http://orch.invalid/discovery")
    };
    assert_eq!(net.execute(&discovery).unwrap().0, 200);
    let elsewhere = HttpRequest::post("http://elsewhere.invalid/discovery");
    assert_eq!(net.execute(&elsewhere), Err(Reply::Network));
    assert_eq!(net.now(), t0 + Duration::from_millis(120));
    assert_eq!(net.requests(), 3);
}

#[test]
fn reserve_over_the_model_then_every_transport_call() {
    let net = net();
    let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).unwrap();
    assert_eq!(
        net.requests(),
        4,
        "orchestrator info, 402, first mint, paid retry"
    );
    assert_eq!(net.now(), Instant::from_millis(40));
    let session = reserved.payment.clone().unwrap();
    assert_eq!(session.manifest_id(), reserved.session_id);
    assert!(session.has_state());
    let payment_url = session.payment_url().to_owned();
    let t = MemoryTransport::new(net.clone(), session);

    // Nothing minted yet: a payment POST cannot be made.
    assert_eq!(t.call(Endpoint::Payment), Reply::Network);
    assert_eq!(t.last_error(), Some(ProtocolError::NothingMinted));
    net.clock().advance(Duration::from_secs(3));
    assert_eq!(soon(t.request_payment(1)), Some(Reply::Status(200)));
    assert_eq!(soon(t.send_payment()), Some(Reply::Status(200)));
    // A mint 20 ms later is billed a whole second (one ticket at the default EV); a signer error
    // keeps its reason for logs.
    assert_eq!(t.call(Endpoint::Signer), Reply::Status(200));
    assert_eq!(t.call(Endpoint::Payment), Reply::Status(200));
    // 10 s prepaid, then 3.02 s billed as 4 s, then 20 ms as 1 s.
    assert_eq!(net.world().signer().stats().tickets, 10 + 4 + 1);
    assert_eq!(t.call(Endpoint::Payment), Reply::Network, "sent once");
    net.world_mut().advance(net.now());
    assert_eq!(soon(t.refresh()), Some(Reply::Status(200)));
    assert_eq!(t.session().payment_url(), payment_url);
    assert_eq!(soon(t.stop()), Some(Reply::Status(204)));
    let world = net.world();
    let released = world
        .orchestrator()
        .session(&reserved.session_id)
        .unwrap()
        .released();
    assert!(matches!(released, Some((_, ReleaseCause::Stopped))));
    assert_eq!(world.orchestrator().stats().payments_accepted, 3);
}

#[test]
fn signer_headers_reach_the_signer() {
    let config = Config {
        signer: SignerConfig {
            required_auth: Some(("Authorization".into(), "Bearer t0k3n".into())),
            ..SignerConfig::default()
        },
        ..Config::default()
    };
    let net = MemoryNet::new(World::new(config, 3));
    let err = reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).unwrap_err();
    assert!(matches!(err, ReserveError::Signer { status: 401, .. }), "{err}");
    let options = net
        .reserve_options("live-runner", PaymentType::Live)
        .with_signer_header("Authorization", "Bearer t0k3n");
    let reserved = reserve(&net, options).unwrap();
    let t = MemoryTransport::new(net.clone(), reserved.payment.unwrap());
    net.clock().advance(Duration::from_secs(9));
    assert_eq!(t.call(Endpoint::Signer), Reply::Status(200));
    assert!(!format!("{t:?}").contains("t0k3n"));
}

#[test]
fn moving_the_clock_runs_ticks_and_releases_at_the_modelled_instant() {
    let net = net();
    let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).unwrap();
    let paid_at = net.now() - Duration::from_millis(5);
    // 10 s prepaid, 5 s ticks from the paid retry: the tick at +15 s cannot be covered.
    net.clock().advance(Duration::from_secs(60));
    let released = net.world().released_at(&reserved.session_id);
    assert_eq!(released, Some(paid_at + Duration::from_secs(15)));
}

#[test]
fn sleeps_jump_but_stop_at_a_registered_wake() {
    let clock = VirtualClock::new(Instant::from_secs(1));
    assert_eq!(now_or_never(clock.sleep_until(Instant::from_secs(5))), Some(()));
    assert_eq!(clock.now(), Instant::from_secs(5));
    assert_eq!(now_or_never(clock.sleep_until(Instant::from_secs(2))), Some(()));
    assert_eq!(clock.now(), Instant::from_secs(5), "never backwards");

    assert_eq!(now_or_never(clock.reached(Instant::from_secs(7))), None);
    assert_eq!(clock.next_wake(), Some(Instant::from_secs(7)));
    assert_eq!(now_or_never(clock.sleep_until(Instant::from_secs(10))), None);
    assert_eq!(clock.now(), Instant::from_secs(7));
    assert_eq!(now_or_never(clock.reached(Instant::from_secs(7))), Some(()));
    assert_eq!(now_or_never(clock.sleep_until(Instant::from_secs(10))), Some(()));
    assert_eq!(clock.now(), Instant::from_secs(10));
}

#[test]
#[should_panic(expected = "virtual time is stuck")]
fn waiting_without_anything_moving_time_panics() {
    let clock = VirtualClock::new(Instant::from_secs(1));
    let mut wait = core::pin::pin!(clock.reached(Instant::from_secs(2)));
    loop {
        let _ = now_or_never(wait.as_mut());
    }
}

#[test]
fn a_yield_holds_time_still_until_it_completes_or_is_dropped() {
    let clock = VirtualClock::new(Instant::from_secs(1));
    let mut first = core::pin::pin!(clock.yield_now());
    assert_eq!(now_or_never(first.as_mut()), None);
    assert_eq!(now_or_never(clock.sleep_until(Instant::from_secs(5))), None);
    assert_eq!(clock.now(), Instant::from_secs(1), "held");
    assert_eq!(now_or_never(first.as_mut()), Some(()));
    assert_eq!(now_or_never(clock.sleep_until(Instant::from_secs(5))), Some(()));
    assert_eq!(clock.now(), Instant::from_secs(5));
    {
        let mut dropped = core::pin::pin!(clock.yield_now());
        assert_eq!(now_or_never(dropped.as_mut()), None);
    }
    assert_eq!(now_or_never(clock.sleep_until(Instant::from_secs(6))), Some(()));
    assert_eq!(clock.now(), Instant::from_secs(6));
}
