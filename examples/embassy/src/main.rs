//! livepay on embassy: the embassy executor (std arch) runs `livepay_core::run` over the
//! in-memory model, with an `embassy_time` clock. On a microcontroller, swap the executor's arch
//! feature, the time driver and `MemoryTransport` for a real HTTP transport; the rest is the same.
//!
//! The model is time-scaled (500 ms server tick, 1 s prepay) so that a few seconds show many
//! cycles; the world follows embassy's clock (see `RealTime`).
//!
//! `cargo run --manifest-path examples/embassy/Cargo.toml`

use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use livepay_core::{
    Backoff, Clock, Command, Config, Event, Exit, PaymentType, Reply, Session, StatusTable, Transport, run,
};
use livepay_mock::memory::{MemoryNet, MemoryTransport, reserve};
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

/// The in-memory transport, with the modelled world moved to embassy's time before each request,
/// so that the orchestrator's ticks happen in real time.
struct RealTime(MemoryTransport);

impl RealTime {
    fn sync(&self) {
        self.0.net().clock().advance_to(EmbassyClock.now());
    }
}

impl Transport for RealTime {
    async fn request_payment(&self, cycle: u32) -> Reply {
        self.sync();
        self.0.request_payment(cycle).await
    }
    async fn send_payment(&self) -> Reply {
        self.sync();
        self.0.send_payment().await
    }
    async fn refresh(&self) -> Reply {
        self.sync();
        self.0.refresh().await
    }
    async fn stop(&self) -> Reply {
        self.sync();
        self.0.stop().await
    }
}

#[embassy_executor::task]
async fn fund() {
    let mut world_config = model::Config {
        tick: Duration::from_millis(500),
        ..model::Config::default()
    };
    world_config.signer.prepay_live = Duration::from_secs(1);
    let net = MemoryNet::new(World::new(world_config, 7)).with_latency(Duration::from_millis(1));
    net.clock().advance_to(EmbassyClock.now());
    let reserved = reserve(&net, net.reserve_options("live-runner", PaymentType::Live)).expect("reserved");
    println!("reserved {}", reserved.session_id);
    let transport = RealTime(MemoryTransport::new(
        net.clone(),
        reserved.payment.expect("priced"),
    ));

    let mut config = Config::new(PaymentType::Live);
    config.interval = Duration::from_millis(300);
    config.server_tick = Duration::from_millis(500);
    config.prepay = Duration::from_secs(1);
    config.safety_margin = Duration::from_millis(100);
    config.backoff = Backoff {
        initial: Duration::from_millis(25),
        max: Duration::from_millis(200),
        jitter_percent: 20,
    };
    config.target_runway = Duration::from_secs(3);
    config.min_demand_spacing = Duration::from_millis(50);
    let start = EmbassyClock.now();
    let mut session = Session::new(&config, start).expect("valid config");
    session.start(start);

    // Close after three seconds of real time.
    let close = futures::stream::once(async {
        Timer::after(Duration::from_secs(3)).await;
        Command::Close
    });
    futures::pin_mut!(close);
    let exit = run(
        &mut session,
        &transport,
        &EmbassyClock,
        &StatusTable::new(),
        close,
        |event: Event| {
            let ms = (EmbassyClock.now() - start).as_millis();
            println!("{:>2}.{:03}s  {event}", ms / 1000, ms % 1000);
        },
    )
    .await;
    println!("exit: {exit:?}");
    println!("stats: {:?}", session.stats());
    let releases = net.world().orchestrator().releases().to_vec();
    println!("model releases: {releases:?}");
    let ok = matches!(exit, Exit::Released(livepay_core::ReleaseReason::ClosedByClient))
        && session.stats().lapses == 0;
    std::process::exit(if ok { 0 } else { 1 });
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    spawner.spawn(fund().expect("task spawned once"));
}
