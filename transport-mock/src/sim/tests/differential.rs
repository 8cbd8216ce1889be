//! The fast model against the faithful model: identical schedules, identical answers.

use embassy_time::{Duration, Instant};
use livepay_core::rng::SplitMix64;

use crate::model::testkit::Flow;
use crate::model::wire::GeneratePaymentResponse;
use crate::model::{ModelConfig, PriceKind, World as Faithful};
use crate::sim::fast::{FastConfig, FastLedger, Mint, SignerAnswer};

fn us(at: Instant) -> u64 {
    at.as_micros()
}

/// The EVs the schedules use, seconds of price: one second, the 2.5 s, awkward ratios,
/// and tickets worth minutes.
const EVS: [f64; 6] = [1.0, 2.5, 4.0, 10.0, 60.0, 180.0];

/// One schedule's two worlds.
struct Twins {
    seed: u64,
    faithful: Faithful,
    flow: Flow,
    fast: FastLedger,
    config: FastConfig,
    /// The last few mints, as each world holds them, and whether they were posted: a client may
    /// post any of them again.
    held: Vec<(GeneratePaymentResponse, Mint, bool)>,
    /// Whether the params are fresh (refreshed, nothing minted under them yet): the only time
    /// a client starts a fresh ledger.
    fresh_params: bool,
    log: Vec<String>,
}

impl Twins {
    fn new(seed: u64, rng: &mut SplitMix64) -> Self {
        let ev_s = EVS[usize::try_from(rng.next_u64() % EVS.len() as u64).unwrap_or(0)];
        // The default 8 min of params, or short-lived ones, so 480s and expiries come often.
        let lifetime = Duration::from_secs([480, 60, 30][usize::try_from(rng.next_u64() % 3).unwrap_or(0)]);
        let config = FastConfig {
            param_lifetime: lifetime,
            ..FastConfig::default().with_ev_seconds(ev_s)
        };
        let model = ModelConfig {
            ticket_ev_wei: u128::from(config.ticket_ev_wei),
            param_lifetime: lifetime,
            ..ModelConfig::default()
        };
        let mut faithful = Faithful::new(model, seed);
        let t0 = Instant::from_millis(1_000 + rng.next_u64() % 3_000);
        let flow = Flow::reserve(&mut faithful, t0, "live-runner", PriceKind::Live);
        let fast = FastLedger::reserve(&config, us(t0), 0);
        Self {
            seed,
            faithful,
            flow,
            fast,
            config,
            held: Vec::new(),
            fresh_params: false,
            log: vec![format!("EV {ev_s} s, params for {lifetime:?}, reserved at {t0}")],
        }
    }

    #[track_caller]
    fn agree(&self, what: &str, faithful: u16, fast: u16) {
        assert_eq!(
            faithful,
            fast,
            "seed {}: {what}: faithful {faithful}, fast {fast}\n{}",
            self.seed,
            self.log.join("\n")
        );
    }

    /// A signer call at `now` (`fresh`: without a state). Returns its status.
    fn mint(&mut self, now: Instant, fresh: bool) -> u16 {
        if fresh {
            self.flow.state = None;
        }
        let faithful = self.flow.mint(&mut self.faithful, now);
        let fast = self.fast.generate(&self.config, us(now), fresh);
        let status = faithful.as_ref().map_or_else(|r| r.status, |_| 200);
        self.log.push(format!(
            "{now}: mint{} {status}",
            if fresh { " (fresh)" } else { "" }
        ));
        self.agree("signer", status, fast.status());
        if let (Ok(minted), SignerAnswer::Minted(mint)) = (faithful, fast) {
            self.held.push((minted, mint, false));
            if self.held.len() > 5 {
                self.held.remove(0);
            }
            self.fresh_params = false;
        }
        status
    }

    /// POSTs the held mint `back` places from the newest at `now` (a first POST or a replay).
    fn post(&mut self, now: Instant, back: usize) -> u16 {
        let Some(index) = self.held.len().checked_sub(1 + back) else {
            return 0;
        };
        let (minted, mint, _) = self.held[index].clone();
        self.held[index].2 = true;
        let faithful = self.flow.pay(&mut self.faithful, now, &minted).status;
        let fast = self.fast.pay(&self.config, us(now), &mint, || 0).status();
        self.log
            .push(format!("{now}: post mint {} → {faithful}", mint.id));
        self.agree("payment", faithful, fast);
        faithful
    }

    /// How far back the newest mint never posted is, if any.
    fn unposted(&self) -> Option<usize> {
        self.held.iter().rev().position(|(_, _, posted)| !posted)
    }

    fn refresh(&mut self, now: Instant) {
        let faithful = self.flow.refresh(&mut self.faithful, now).status;
        let fast = self.fast.refresh(&self.config, us(now), || 0);
        self.log.push(format!("{now}: refresh {faithful}"));
        self.agree("refresh", faithful, fast);
        self.fresh_params = faithful == 200;
    }

    /// The totals agree: debits, credits, mints and the release instant.
    fn finish(mut self, now: Instant) {
        self.faithful.advance(now);
        self.fast.catch_up(&self.config, us(now), || 0);
        let session = self
            .faithful
            .orchestrator()
            .session(self.flow.session_id())
            .expect("session");
        let seed = self.seed;
        assert_eq!(
            session.debited(),
            u128::from(self.fast.debited),
            "seed {seed} debited"
        );
        assert_eq!(
            session.credited(),
            u128::from(self.fast.credited),
            "seed {seed} credited"
        );
        assert_eq!(
            session.released().map(|(at, _)| us(at)),
            self.fast.released_at(),
            "seed {seed} release instant"
        );
        assert_eq!(
            self.faithful.signer().minted_ev(&self.flow.challenge.manifest_id),
            u128::from(self.fast.minted),
            "seed {seed} minted"
        );
        assert_eq!(
            self.fast.reissued_nonces, 0,
            "seed {seed}: the schedule keeps the contract"
        );
    }
}

/// Tallies of what the schedules exercised, so the test proves its own coverage.
#[derive(Debug, Default)]
struct Coverage {
    replays_of_credited: u32,
    replays_first_arrival: u32,
    lost_answers: u32,
    fresh_mints: u32,
    expired: u32,
    refresh_480: u32,
    skipped: u32,
    releases: u32,
}

/// The fast model applies the faithful model's arithmetic and rules: identical schedules (mints at
/// random spacings; POSTs lost before the server or whose answer is lost; replays of credited and
/// of never-delivered payments, at once or later; refreshes on 480 and fresh ledgers after them;
/// long gaps that release; tickets worth 1 s to 3 min) give identical statuses, debits, credits,
/// mints and release instants.
#[test]
fn fast_model_matches_the_faithful_model() {
    let mut coverage = Coverage::default();
    for seed in 0..60u64 {
        let mut rng = SplitMix64::new(seed);
        let mut twins = Twins::new(seed, &mut rng);
        let mut now = Instant::from_millis(4_000);
        for _ in 0..400 {
            // Mostly 1–4 s apart, sometimes a long gap that may let the session lapse.
            let gap_ms = if rng.next_u64().is_multiple_of(50) {
                8_000 + rng.next_u64() % 10_000
            } else {
                900 + rng.next_u64() % 3_200
            };
            now += Duration::from_millis(gap_ms);
            let roll = rng.next_u64() % 100;
            let status = if roll < 10 && !twins.held.is_empty() {
                // A replay of one of the last mints, whatever became of it.
                let back = usize::try_from(rng.next_u64() % 3).unwrap_or(0);
                let status = twins.post(now, back);
                match status {
                    200 => coverage.replays_first_arrival += 1,
                    400 => coverage.replays_of_credited += 1,
                    _ => {}
                }
                status
            } else if roll < 11 {
                // Refresh, then a fresh ledger on the fresh params.
                twins.refresh(now);
                if twins.fresh_params {
                    coverage.fresh_mints += 1;
                    twins.mint(now, true);
                    twins.post(now, 0)
                } else {
                    409
                }
            } else {
                match twins.mint(now, false) {
                    200 => match rng.next_u64() % 10 {
                        // Lost before the server: no POST (a later replay may deliver it).
                        0 => 200,
                        // The answer is lost: the server processed it; the client replays it.
                        1 => {
                            coverage.lost_answers += 1;
                            let first = twins.post(now, 0);
                            let later = now + Duration::from_millis(5_000 + rng.next_u64() % 20_000);
                            if first == 200 && twins.post(later, 0) == 400 {
                                coverage.replays_of_credited += 1;
                            }
                            now = later;
                            first
                        }
                        _ => twins.post(now, 0),
                    },
                    480 => {
                        // A mint never posted, replayed once its params expired for the
                        // orchestrator too (one block later).
                        coverage.refresh_480 += 1;
                        if let Some(back) = twins.unposted() {
                            now += Duration::from_millis(12_000 + rng.next_u64() % 5_000);
                            twins.post(now, back);
                        }
                        twins.refresh(now);
                        if twins.fresh_params && rng.next_u64().is_multiple_of(2) {
                            coverage.fresh_mints += 1;
                            twins.mint(now, true);
                        } else {
                            twins.mint(now, false);
                        }
                        twins.post(now, 0)
                    }
                    482 => {
                        coverage.skipped += 1;
                        482
                    }
                    other => other,
                }
            };
            if status == 404 {
                coverage.releases += 1;
                break;
            }
        }
        coverage.expired += twins.fast.expired;
        twins.finish(now);
    }
    // The schedules exercised what they claim to.
    assert!(coverage.replays_of_credited > 50, "{coverage:?}");
    assert!(coverage.replays_first_arrival > 20, "{coverage:?}");
    assert!(coverage.lost_answers > 50, "{coverage:?}");
    assert!(coverage.fresh_mints > 20, "{coverage:?}");
    assert!(coverage.skipped > 50, "{coverage:?}");
    assert!(coverage.releases > 5, "{coverage:?}");
    assert!(coverage.expired > 5, "{coverage:?}");
}
