//! Calls made where no tokio runtime runs: typed errors, never a panic.

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use common::{
    collect_until, count, drain, fast_model, guarded, is_accepted, live_options, live_pricing, serve,
};
use livepay_core::State;
use livepay_hyper::{LiveError, LiveSession};
use livepay_mock::faults::FaultPlan;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_payments_outside_a_runtime_is_an_error() {
    let served = serve(fast_model(live_pricing()), FaultPlan::clean(), 40).await;
    let session = guarded(
        "the reservation",
        LiveSession::reserve(live_options(&served).with_start_payments(false)),
    )
    .await
    .expect("reservation");

    let result = std::thread::scope(|scope| scope.spawn(|| session.start_payments()).join());
    assert_eq!(result.expect("no panic"), Err(LiveError::NoRuntime));
    assert_eq!(session.state(), State::Reserved);
    assert_eq!(
        LiveError::NoRuntime.to_string(),
        "not called inside a tokio runtime"
    );

    // Inside the runtime the same call starts funding.
    let mut events = session.events();
    session.start_payments().expect("start");
    collect_until(&mut events, "a payment", |seen| count(seen, is_accepted) >= 1).await;

    // Dropped on a thread without a runtime: funding stops, nothing panics.
    std::thread::spawn(move || drop(session))
        .join()
        .expect("no panic");
    drain(&mut events).await;
    served.shutdown().await;
}

#[test]
fn reserve_outside_a_runtime_is_an_error() {
    let reserve = livepay_core::engine::ReserveOptions::new(
        "http://127.0.0.1:1/apps/live-runner/session",
        None,
        livepay_core::PaymentType::Live,
    );
    let mut reservation = pin!(LiveSession::reserve(livepay_hyper::LiveOptions::new(reserve)));
    let mut cx = Context::from_waker(Waker::noop());
    match reservation.as_mut().poll(&mut cx) {
        Poll::Ready(Err(error)) => assert_eq!(error, LiveError::NoRuntime),
        Poll::Ready(Ok(session)) => panic!("reserved {session:?}"),
        Poll::Pending => panic!("a reservation outside a runtime must fail at once"),
    }
}
