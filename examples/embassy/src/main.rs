//! livepay on embassy: the embassy executor (std arch) runs the core's protocol engine
//! (`Engine::run`) over the in-memory model, with an `embassy_time` clock. On a microcontroller,
//! swap the executor's arch feature, the time driver and `MemoryHttp` for a byte mover over the
//! board's network stack; the rest is the same. (Without an allocator, `livepay_core::run` drives
//! the bare `Session` over a `Transport` instead.)
//!
//! The model is time-scaled (500 ms server tick, 1 s prepay) so that a few seconds show many
//! cycles; the world follows embassy's clock (see `RealTime`).
//!
//! `cargo run --manifest-path examples/embassy/Cargo.toml`

use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use livepay_core::engine::{Delivery, Engine, Http, Output, Request};
use livepay_core::{Clock, Command, Config, PaymentType, StatusTable};
use livepay_mock::memory::{MemoryHttp, MemoryNet, reserve};
use livepay_mock::model::{self, World};

/// embassy's monotonic clock as the core's `Clock`.
struct EmbassyClock;

impl Clock for EmbassyClock {
    #[allow(clippy::disallowed_methods)] // an adapter reads its runtime's clock
    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep_until(&self, deadline: Instant) {
        Timer::at(deadline).await;
    }
}

/// The in-memory byte mover, with the modelled world moved to embassy's time before each request,
/// so that the orchestrator's ticks happen in real time.
struct RealTime(MemoryHttp);

impl Http for RealTime {
    type Body = Vec<u8>;

    async fn send(&self, request: Request) -> Delivery<Vec<u8>> {
        let sent_at = EmbassyClock.now();
        self.0.net().clock().advance_to(sent_at);
        let mut delivery = self.0.send(request).await;
        // The engine runs on embassy's clock, not on the model's (which runs ahead by the
        // modelled latency).
        delivery.sent_at = Some(sent_at);
        delivery
    }
}

#[embassy_executor::task]
async fn fund() {
    let mut world_config = model::ModelConfig {
        tick: Duration::from_millis(500),
        ..model::ModelConfig::default()
    };
    world_config.signer.prepay_live = Duration::from_secs(1);
    let net = MemoryNet::new(World::new(world_config, 7)).with_latency(Duration::from_millis(1));
    net.clock().advance_to(EmbassyClock.now());
    let mut reserved =
        reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).expect("reserved");
    println!("reserved {}", reserved.session_id);
    let http = RealTime(MemoryHttp::new(net.clone()));

    // The client runs 10 times faster, like the model.
    let config = Config::new(PaymentType::Live).time_scaled(10);
    // The reservation was made on the model's clock, which follows embassy's: its instant is
    // embassy's too.
    let start = EmbassyClock.now();
    reserved.minted_at = reserved.minted_at.min(start);
    let mut engine = Engine::new(&config, reserved, StatusTable::new()).expect("valid config");
    engine.start(start);

    // Close after three seconds of real time.
    let close = futures::stream::once(async {
        Timer::after(Duration::from_secs(3)).await;
        Command::Close
    });
    futures::pin_mut!(close);
    let exit = engine
        .run(&http, &EmbassyClock, close, |_, output| {
            if let Output::Event(event) = output {
                let ms = (EmbassyClock.now() - start).as_millis();
                println!("{:>2}.{:03}s  {event}", ms / 1000, ms % 1000);
            }
        })
        .await;
    println!("exit: {exit:?}");
    println!("stats: {:?}", engine.stats());
    let releases = net.world().orchestrator().releases().to_vec();
    println!("model releases: {releases:?}");
    let ok = exit.reason() == Some(livepay_core::ReleaseReason::ClosedByClient) && engine.stats().lapses == 0;
    std::process::exit(if ok { 0 } else { 1 });
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    spawner.spawn(fund().expect("task spawned once"));
}
