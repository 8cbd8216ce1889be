//! Tests of the orchestrator model.

use embassy_time::{Duration, Instant};

use super::ReleaseCause;
use super::payments::NonceSet;
use crate::model::testkit::{Flow, ms, secs};
use crate::model::token::{self, b64_decode, b64_encode};
use crate::model::wire::{Challenge, DiscoveryEntry, GeneratePaymentResponse, SessionCreated};
use crate::model::{
    Host, ModelConfig, PriceKind, Pricing, Request, RunnerConfig, SignerConfig, World, headers,
};

const R: &str = "live-runner";
const E9: u128 = 1_000_000_000;

fn world() -> World {
    World::new(ModelConfig::default(), 7)
}

fn post(w: &mut World, now: Instant, path: &str) -> u16 {
    w.handle(now, Host::Orchestrator, &Request::post(path, Vec::new()))
        .status
}

/// Flip one byte inside the JSON of a sealed token and re-encode it.
fn tamper(token_text: &str) -> String {
    let mut bytes = b64_decode(token_text).unwrap_or_default();
    let i = bytes.iter().position(|&b| b == b'"').unwrap_or(0) + 1;
    bytes[i] ^= 0x01;
    b64_encode(&bytes)
}

#[test]
fn nonce_set_merges_and_detects_overlap() {
    let mut set = NonceSet::default();
    set.insert(10, 20);
    assert!(set.overlaps(15, 16));
    assert!(set.overlaps(0, 11));
    assert!(!set.overlaps(0, 10));
    assert!(!set.overlaps(20, 30));
    set.insert(30, 40);
    set.insert(20, 30);
    assert_eq!(set.ranges.len(), 1);
    assert_eq!(set.ranges.get(&10), Some(&40));
    set.insert(0, 5);
    assert!(set.overlaps(4, 5));
    assert!(!set.overlaps(5, 10));
    assert_eq!(set.ranges.len(), 2);
}

#[test]
fn discovery_lists_runners_with_price_and_capacity() {
    let mut cfg = ModelConfig::default();
    cfg.runners.push(RunnerConfig::new(
        "v2v",
        "comfy",
        Pricing::Lv2v {
            wei_per_second: 27_648_000 * 3,
        },
    ));
    cfg.runners
        .push(RunnerConfig::new("free", "echo", Pricing::Unpriced));
    let mut w = World::new(cfg, 1);
    let resp = w.handle(secs(0), Host::Orchestrator, &Request::get("/discovery?app=x"));
    assert_eq!(resp.status, 200);
    let entries: Vec<DiscoveryEntry> = resp.json_body().expect("discovery");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].address, "http://orch.invalid");
    let runners = &entries[0].runners;
    assert_eq!(runners.len(), 3);
    let live = runners.iter().find(|r| r.app == "live-app").expect("live");
    assert_eq!(live.url, "http://orch.invalid/apps/live-runner/session");
    assert_eq!(live.mode, "live");
    assert_eq!(live.price_info.price.as_u64(), Some(1_000_000_000));
    assert_eq!(live.price_info.unit, "seconds");
    assert_eq!(live.price_info.currency, "wei");
    let v2v = runners.iter().find(|r| r.app == "comfy").expect("v2v");
    assert_eq!(v2v.price_info.price.as_f64(), Some(3.0));
    assert_eq!(v2v.price_info.unit, "720p-pixel-seconds");
    let _ = Flow::reserve(&mut w, secs(1), R, PriceKind::Live);
    let resp = w.handle(secs(2), Host::Orchestrator, &Request::get("/discovery"));
    let entries: Vec<DiscoveryEntry> = resp.json_body().expect("discovery");
    let live = entries[0]
        .runners
        .iter()
        .find(|r| r.app == "live-app")
        .expect("live");
    assert_eq!(live.capacity_available, live.capacity - 1);
}

#[test]
fn reservation_challenge_and_errors() {
    let mut w = world();
    // Unknown runner.
    let req = Request::post("/apps/nope/session", "{}");
    assert_eq!(w.handle(secs(0), Host::Orchestrator, &req).status, 404);
    // Missing or malformed payer address: a JSON 402 that is not a challenge.
    for addr in [
        None,
        Some("0x123"),
        Some("5ac0ffee5ac0ffee5ac0ffee5ac0ffee5ac0ffee11"),
    ] {
        let mut req = Request::post("/apps/live-runner/session", "{}");
        if let Some(a) = addr {
            req = req.with_header(headers::PAYER_ADDRESS, a);
        }
        let resp = w.handle(secs(0), Host::Orchestrator, &req);
        assert_eq!(resp.status, 402);
        assert!(resp.json_body::<Challenge>().is_none());
        assert!(resp.text_body().contains("\"error\":{\"message\""));
    }
    // The challenge.
    let flow = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    let c = &flow.challenge;
    assert_eq!(c.manifest_id.len(), 8);
    assert!(
        c.manifest_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    );
    assert_eq!(c.orchestrator, "http://orch.invalid");
    assert_eq!(
        c.payment_url,
        format!(
            "http://orch.invalid/apps/live-runner/session/{}/payment",
            c.manifest_id
        )
    );
    assert!(!c.payment_params.is_empty());
    assert_eq!(w.orchestrator().stats().challenges, 1);
    // No session and no ticker yet.
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn unpriced_runner_answers_200_at_once() {
    let mut w = World::new(ModelConfig::single("free", Pricing::Unpriced), 3);
    let resp = w.handle(
        secs(0),
        Host::Orchestrator,
        &Request::post("/apps/free/session", "{}"),
    );
    assert_eq!(resp.status, 200);
    let created: SessionCreated = resp.json_body().expect("session");
    assert_eq!(
        created.control_url,
        format!("http://orch.invalid/apps/free/session/{}", created.session_id)
    );
    assert_eq!(w.next_deadline(), None);
    w.advance(secs(3600));
    let app = w.handle(secs(3600), Host::Orchestrator, &Request::get(created.app_url));
    assert_eq!(app.status, 200);
}

#[test]
fn paid_reservation_creates_the_session_and_prepays_10s() {
    let mut w = world();
    let flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let created = flow.session.clone().expect("session");
    assert_eq!(created.session_id, flow.challenge.manifest_id);
    assert_eq!(
        created.control_url,
        format!(
            "http://orch.invalid/apps/live-runner/session/{}",
            created.session_id
        )
    );
    assert_eq!(w.session_balance(flow.session_id()), Some(10 * E9));
    assert_eq!(w.next_deadline(), Some(secs(5)));
    let stats = w.orchestrator().stats();
    assert_eq!(stats.payments_accepted, 1);
    assert_eq!(stats.tickets_accepted, 10);
    assert_eq!(stats.total_credited, 10 * E9);
    assert_eq!(w.signer().minted_ev(flow.session_id()), 10 * E9);
    let app = w.handle(secs(1), Host::Orchestrator, &Request::get(created.app_url));
    assert_eq!(app.status, 200);
}

#[test]
fn second_paid_retry_for_the_same_manifest_is_409() {
    let mut w = world();
    let mut flow = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    let minted = flow.mint(&mut w, secs(0)).expect("mint");
    let resp = flow.post_reservation(&mut w, secs(0), &minted.payment, &minted.seg_creds);
    assert_eq!(resp.status, 200);
    let resp = flow.post_reservation(&mut w, secs(1), &minted.payment, &minted.seg_creds);
    assert_eq!(resp.status, 409);
}

#[test]
fn paid_retry_with_a_garbled_payment_header_is_402_plain_text() {
    let mut w = world();
    let mut flow = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    let minted = flow.mint(&mut w, secs(0)).expect("mint");
    let resp = flow.post_reservation(&mut w, secs(0), "not-base64!", &minted.seg_creds);
    assert_eq!(resp.status, 402);
    assert!(resp.json_body::<Challenge>().is_none());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    // The challenge is still open: the genuine payment reserves.
    let resp = flow.post_reservation(&mut w, secs(1), &minted.payment, &minted.seg_creds);
    assert_eq!(resp.status, 200);
}

#[test]
fn seg_creds_for_another_manifest_are_403() {
    let mut w = world();
    let a = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    let mut b = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    // Mint with A's params but B's manifest id: the auth token is bound to A.
    b.params = a.params.clone();
    let resp = b.reserve_paid(&mut w, secs(0));
    assert_eq!(resp.status, 403, "{}", resp.text_body());
    // A manifest id that was never challenged.
    let mut c = a.clone();
    c.challenge.manifest_id = String::from("deadbeef");
    assert_eq!(c.reserve_paid(&mut w, secs(0)).status, 403);
    // Session payments: B's seg-creds on A's payment URL.
    let mut a = a;
    assert_eq!(a.reserve_paid(&mut w, secs(0)).status, 200);
    let mut b = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let minted_b = b.mint(&mut w, secs(3)).expect("mint b");
    let minted_a = a.mint(&mut w, secs(3)).expect("mint a");
    let mixed = GeneratePaymentResponse {
        payment: minted_a.payment,
        seg_creds: minted_b.seg_creds,
        state: minted_a.state,
    };
    let resp = a.pay(&mut w, secs(3), &mixed);
    assert_eq!(resp.status, 403);
    assert_eq!(w.orchestrator().stats().payments_rejected, 3);
}

#[test]
fn never_paid_session_is_released_at_the_first_uncovered_tick() {
    let mut w = world();
    let flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    w.advance(ms(14_999));
    assert_eq!(w.session_balance(&id), Some(0));
    assert_eq!(w.released_at(&id), None);
    assert_eq!(w.next_deadline(), Some(secs(15)));
    w.advance(secs(15));
    assert_eq!(w.released_at(&id), Some(secs(15)));
    assert_eq!(w.next_deadline(), None);
    let releases = w.orchestrator().releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].session_id, id);
    assert_eq!(
        releases[0].reason,
        ReleaseCause::InsufficientBalance {
            fee: 5 * E9,
            balance: 0
        }
    );
    let session = w.orchestrator().session(&id).expect("session");
    assert_eq!(session.debited(), 10 * E9);
    assert_eq!(session.ticks(), 3);
    assert!(!session.is_active());
}

#[test]
fn after_release_payment_is_404_app_404_and_stop_204() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let minted = flow.mint(&mut w, secs(16)).expect("the signer does not know");
    assert_eq!(w.released_at(flow.session_id()), Some(secs(15)));
    assert_eq!(flow.pay(&mut w, secs(16), &minted).status, 404);
    let app_url = flow.session.clone().expect("session").app_url;
    assert_eq!(
        w.handle(secs(16), Host::Orchestrator, &Request::get(app_url))
            .status,
        404
    );
    assert_eq!(flow.stop(&mut w, secs(17)).status, 204);
    assert_eq!(flow.stop(&mut w, secs(18)).status, 204);
    assert_eq!(post(&mut w, secs(18), "/apps/nope/session/x/stop"), 404);
    assert_eq!(
        post(&mut w, secs(18), "/apps/live-runner/session/unknown1/stop"),
        204
    );
    assert_eq!(post(&mut w, secs(18), "/apps/nope/session/x/payment"), 404);
    assert_eq!(w.orchestrator().releases().len(), 1);
}

#[test]
fn stop_releases_a_live_session() {
    let mut w = world();
    let flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    assert_eq!(flow.stop(&mut w, secs(2)).status, 204);
    assert_eq!(w.released_at(flow.session_id()), Some(secs(2)));
    assert_eq!(w.orchestrator().releases()[0].reason, ReleaseCause::Stopped);
    assert_eq!(w.next_deadline(), None);
    assert_eq!(w.orchestrator().stats().released_stopped, 1);
}

#[test]
fn payments_keep_the_session_alive_and_credit_exactly_the_minted_ev() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let mut t = 0;
    for _ in 0..100 {
        t += 3_000;
        assert_eq!(flow.cycle(&mut w, ms(t)), 200);
    }
    let id = flow.session_id().to_owned();
    assert_eq!(w.released_at(&id), None);
    let session = w.orchestrator().session(&id).expect("session");
    assert_eq!(session.credited(), w.signer().minted_ev(&id));
    assert_eq!(session.payments(), 101);
    // 300 s of service billed in whole seconds by the signer: credit 10 + 300 s.
    assert_eq!(session.credited(), 310 * E9);
    // 60 ticks at 5 s.
    assert_eq!(session.debited(), 300 * E9);
    assert_eq!(w.session_balance(&id), Some(10 * E9));
}

#[test]
fn billing_carries_fractional_units_with_a_non_integer_tick() {
    let cfg = ModelConfig {
        tick: Duration::from_millis(5_500),
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    // 5.5 s: 5 whole seconds billed, 0.5 s carried.
    w.advance(ms(5_500));
    assert_eq!(w.session_balance(&id), Some(5 * E9));
    // 11 s: 5.5 + 0.5 = 6 s billed: more than the 5e9 left: released at once.
    w.advance(ms(11_000));
    assert_eq!(w.released_at(&id), Some(ms(11_000)));
    assert_eq!(
        w.orchestrator().releases()[0].reason,
        ReleaseCause::InsufficientBalance {
            fee: 6 * E9,
            balance: 5 * E9
        }
    );
}

fn jitter_300ms(_tick: u64, _random: u64) -> Duration {
    Duration::from_millis(300)
}

#[test]
fn jittered_ticks_bill_whole_seconds_with_carry() {
    let cfg = ModelConfig {
        tick_jitter: Some(jitter_300ms),
        signer: SignerConfig {
            prepay_live: Duration::from_secs(60),
            ..SignerConfig::default()
        },
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    let mut expected_ticks = Vec::new();
    let mut t = 0;
    for _ in 0..8 {
        t += 5_300;
        expected_ticks.push(t);
    }
    for &tick in &expected_ticks {
        assert_eq!(w.next_deadline(), Some(ms(tick)));
        w.advance(ms(tick));
        let debited = w.orchestrator().session(&id).expect("session").debited();
        // Whole seconds elapsed since the reservation, fractions carried.
        assert_eq!(debited, u128::from(tick / 1_000) * E9, "at {tick} ms");
    }
    assert_eq!(w.session_balance(&id), Some((60 - 42) * E9));
}

#[test]
fn lv2v_bills_pixels_at_the_per_second_price() {
    let cfg = ModelConfig {
        tick: Duration::from_millis(5_500),
        ..ModelConfig::single("v2v", Pricing::Lv2v { wei_per_second: E9 })
    };
    let mut w = World::new(cfg, 9);
    let flow = Flow::reserve(&mut w, secs(0), "v2v", PriceKind::Lv2v);
    let id = flow.session_id().to_owned();
    assert_eq!(w.session_balance(&id), Some(60 * E9));
    w.advance(ms(5_500));
    assert_eq!(w.session_balance(&id), Some(60 * E9 - 5_500_000_000));
    w.advance(ms(11_000));
    assert_eq!(w.session_balance(&id), Some(49 * E9));
    // Released at the first tick past 60 s: 55 s leaves 5e9, 60.5 s needs 5.5e9.
    w.advance(secs(120));
    assert_eq!(w.released_at(&id), Some(ms(60_500)));
}

#[test]
fn fixed_price_session_takes_no_more_payments() {
    let mut w = World::new(ModelConfig::single("once", Pricing::Fixed { wei: 3 * E9 }), 5);
    let mut flow = Flow::reserve(&mut w, secs(0), "once", PriceKind::Fixed);
    assert_eq!(w.session_balance(flow.session_id()), Some(3 * E9));
    assert_eq!(w.next_deadline(), None);
    let minted = flow.mint(&mut w, secs(1)).expect("mint");
    assert_eq!(flow.pay(&mut w, secs(1), &minted).status, 409);
    w.advance(secs(3600));
    assert_eq!(w.released_at(flow.session_id()), None);
}

#[test]
fn forged_replayed_and_garbled_payments() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let minted = flow.mint(&mut w, secs(3)).expect("mint");
    let balance = w.session_balance(flow.session_id());
    // Forged: a byte of the ticket batch changed.
    let forged = GeneratePaymentResponse {
        payment: tamper(&minted.payment),
        ..minted.clone()
    };
    let resp = flow.pay(&mut w, secs(3), &forged);
    assert_eq!(resp.status, 400, "{}", resp.text_body());
    // Not base64 at all: 402 plain text.
    let garbled = GeneratePaymentResponse {
        payment: String::from("%%%"),
        ..minted.clone()
    };
    let resp = flow.pay(&mut w, secs(3), &garbled);
    assert_eq!(resp.status, 402);
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    // Missing seg-creds: 403 (checked before the payment header).
    let req =
        Request::post(flow.challenge.payment_url.clone(), Vec::new()).with_header(headers::PAYMENT, "%%%");
    assert_eq!(w.handle(secs(3), Host::Orchestrator, &req).status, 403);
    assert_eq!(w.session_balance(flow.session_id()), balance);
    // Genuine, then replayed: go-livepeer answers a replay 400 with the duplicate-nonce error as
    // plain text (`pm/recipient.go` L378, `server/ai_http.go` L577-580) and credits nothing.
    assert_eq!(flow.pay(&mut w, secs(3), &minted).status, 200);
    assert_eq!(w.session_balance(flow.session_id()), balance.map(|b| b + 3 * E9));
    let resp = flow.pay(&mut w, secs(4), &minted);
    assert_eq!(resp.status, 400);
    assert!(
        resp.text_body()
            .starts_with("invalid ticket senderNonce: already seen sender=0x"),
        "{}",
        resp.text_body()
    );
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    assert_eq!(w.session_balance(flow.session_id()), balance.map(|b| b + 3 * E9));
    let stats = w.orchestrator().stats();
    assert_eq!((stats.payments_already_seen, stats.tickets_already_seen), (1, 3));
}

/// go-livepeer's `ProcessPayment` (`core/orchestrator.go` L175-233) processes tickets in order:
/// those before the first already-seen nonce are credited; the duplicate and every later ticket
/// are not, but every fresh nonce among them is recorded as seen (`pm/recipient.go` L369-398);
/// the POST answers 400 with the last error.
#[test]
fn tickets_before_the_first_seen_nonce_are_credited_and_none_after() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    let reservation_state = flow.state.clone();
    // Nonces 11-13, never delivered; then 14-16, delivered.
    let lost = flow.mint(&mut w, secs(3)).expect("mint");
    let delivered = flow.mint(&mut w, secs(6)).expect("mint");
    assert_eq!(flow.pay(&mut w, secs(6), &delivered).status, 200);
    let credited = w.orchestrator().session(&id).expect("session").credited();
    // The reservation's state again at 9 s: 9 tickets, nonces 11-19.
    flow.state = reservation_state;
    let forked = flow.mint(&mut w, secs(9)).expect("mint");
    let resp = flow.pay(&mut w, secs(9), &forked);
    assert_eq!(resp.status, 400);
    assert!(resp.text_body().ends_with("nonce=16"), "{}", resp.text_body());
    // 11-13 credited; 14-16 seen; 17-19 recorded but not credited.
    let session = w.orchestrator().session(&id).expect("session");
    assert_eq!(session.credited(), credited + 3 * E9);
    assert_eq!(session.payments(), 2, "a refused POST is not a payment");
    let stats = w.orchestrator().stats();
    assert_eq!((stats.tickets_already_seen, stats.payments_rejected), (3, 1));
    // Now every nonce of the lost payment has been seen: nothing of it is credited.
    let resp = flow.pay(&mut w, secs(9), &lost);
    assert_eq!(resp.status, 400);
    assert!(resp.text_body().ends_with("nonce=13"), "{}", resp.text_body());
    assert_eq!(
        w.orchestrator().session(&id).expect("session").credited(),
        credited + 3 * E9
    );
}

/// A ticket whose params expired is refused with "TicketParams expired" after its nonce is recorded
/// (`pm/recipient.go` `ReceiveTicket`, L18), one L1 block after the signer stopped minting under
/// them; the sender nonces are kept per params identity, so fresh params start a new nonce space.
#[test]
fn tickets_whose_params_expired_are_400_without_credit() {
    let cfg = ModelConfig {
        ticket_ev_wei: 10 * E9,
        signer: SignerConfig {
            prepay_live: Duration::from_secs(600),
            ..SignerConfig::default()
        },
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    let early = flow.mint(&mut w, secs(479)).expect("before the signer's 480");
    let late = flow.mint(&mut w, ms(479_500)).expect("before the signer's 480");
    assert_eq!(flow.mint(&mut w, secs(480)).expect_err("480").status, 480);
    // 480 s + 12 s of grace: still accepted just before, refused from then on.
    assert_eq!(flow.pay(&mut w, ms(491_999), &early).status, 200);
    let credited = w.orchestrator().session(&id).expect("session").credited();
    let resp = flow.pay(&mut w, secs(492), &late);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.text_body(), "TicketParams expired");
    assert_eq!(
        w.orchestrator().session(&id).expect("session").credited(),
        credited
    );
    assert_eq!(w.orchestrator().stats().payments_expired, 1);
    // Recorded: a second POST is a duplicate now.
    let resp = flow.pay(&mut w, secs(493), &late);
    assert!(resp.text_body().contains("already seen"), "{}", resp.text_body());
    // Fresh params: nonces from 1 again, under a new identity, credited.
    assert_eq!(flow.refresh(&mut w, secs(493)).status, 200);
    let fresh = flow.mint(&mut w, secs(494)).expect("mint");
    let record: token::PaymentRecord = token::peek(&fresh.payment).expect("payment");
    assert_eq!(record.first_nonce, 1);
    assert_eq!(flow.pay(&mut w, secs(494), &fresh).status, 200);
}

#[test]
fn tickets_minted_against_forged_params_are_400() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    // The client lowers the price in the params; the signer cannot tell and mints.
    let mut params: token::ParamsRecord = token::peek(&flow.params).expect("peek");
    params.price_wei /= 2;
    flow.params = token::seal(token::Key::new(1, 2), token::domain::PARAMS, &params);
    let minted = flow.mint(&mut w, secs(3)).expect("mint");
    let resp = flow.pay(&mut w, secs(3), &minted);
    assert_eq!(resp.status, 400);
    assert!(resp.text_body().contains("ticket params"));
}

#[test]
fn expired_auth_token_is_403() {
    let cfg = ModelConfig {
        auth_token_lifetime: Duration::from_secs(20),
        signer: SignerConfig {
            prepay_live: Duration::from_secs(60),
            ..SignerConfig::default()
        },
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let minted = flow
        .mint(&mut w, secs(10))
        .expect("mint before the refresh window");
    let resp = flow.pay(&mut w, secs(21), &minted);
    assert_eq!(resp.status, 403);
    assert!(resp.text_body().contains("expired"));
}

#[test]
fn refresh_payment_flow() {
    let mut w = world();
    // 409 for an unknown record; 400 for a bad body.
    let body = serde_json::json!({"sender": "0x5ac0ffee5ac0ffee5ac0ffee5ac0ffee5ac0ffee", "manifest_id": "01234567"});
    let resp = w.handle(
        secs(0),
        Host::Orchestrator,
        &Request::post_json("/refresh-payment", &body),
    );
    assert_eq!(resp.status, 409);
    let resp = w.handle(
        secs(0),
        Host::Orchestrator,
        &Request::post("/refresh-payment", "nope"),
    );
    assert_eq!(resp.status, 400);
    // A pending challenge has no pinned price yet.
    let mut flow = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    assert_eq!(flow.refresh(&mut w, secs(0)).status, 409);
    assert_eq!(flow.reserve_paid(&mut w, secs(0)).status, 200);
    let old = flow.params.clone();
    let resp = flow.refresh(&mut w, secs(1));
    assert_eq!(resp.status, 200);
    let fresh: Challenge = resp.json_body().expect("challenge shape");
    assert_eq!(fresh.payment_url, "http://orch.invalid/payment");
    assert_eq!(fresh.manifest_id, flow.session_id());
    assert_eq!(fresh.orchestrator, "http://orch.invalid");
    assert_ne!(flow.params, old);
    // The refreshed params pay the session through the session-scoped URL.
    assert_eq!(flow.cycle(&mut w, secs(3)), 200);
}

#[test]
fn refresh_is_409_once_the_record_expired() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    // Released at 15 s (last access of the record), expires 10 min later.
    w.advance(secs(20));
    let mut twin = World::new(ModelConfig::default(), 7);
    let mut twin_flow = Flow::reserve(&mut twin, secs(0), R, PriceKind::Live);
    assert_eq!(twin_flow.refresh(&mut twin, ms(614_999)).status, 200);
    assert_eq!(flow.refresh(&mut w, ms(615_000)).status, 409);
}

#[test]
fn generic_payment_endpoint_credits_without_session_feedback() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let minted = flow.mint(&mut w, secs(3)).expect("mint");
    let req = Request::post("/payment", Vec::new())
        .with_header(headers::PAYMENT, minted.payment.clone())
        .with_header(headers::SEGMENT, minted.seg_creds);
    assert_eq!(w.handle(secs(3), Host::Orchestrator, &req).status, 200);
    assert_eq!(w.session_balance(flow.session_id()), Some(13 * E9));
    // After release the generic endpoint still answers 200.
    let minted = flow.mint(&mut w, secs(40)).expect("mint");
    assert!(w.released_at(flow.session_id()).is_some());
    let req = Request::post("/payment", Vec::new())
        .with_header(headers::PAYMENT, minted.payment.clone())
        .with_header(headers::SEGMENT, minted.seg_creds.clone());
    assert_eq!(w.handle(secs(40), Host::Orchestrator, &req).status, 200);
    assert_eq!(flow.pay(&mut w, secs(40), &minted).status, 404);
}

#[test]
fn capacity_is_enforced_and_freed_on_release() {
    let mut cfg = ModelConfig::default();
    cfg.runners[0].capacity = 1;
    let mut w = World::new(cfg, 7);
    let flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let req = Request::post("/apps/live-runner/session", "{}")
        .with_header(headers::PAYER_ADDRESS, flow.payer.clone());
    assert_eq!(w.handle(secs(1), Host::Orchestrator, &req).status, 503);
    assert_eq!(flow.stop(&mut w, secs(2)).status, 204);
    assert_eq!(w.handle(secs(3), Host::Orchestrator, &req).status, 402);
}

#[test]
fn unknown_routes_and_methods() {
    let mut w = world();
    assert_eq!(
        w.handle(secs(0), Host::Orchestrator, &Request::get("/nope"))
            .status,
        404
    );
    assert_eq!(
        w.handle(
            secs(0),
            Host::Orchestrator,
            &Request::get("/apps/live-runner/session")
        )
        .status,
        405
    );
    assert_eq!(
        w.handle(secs(0), Host::Orchestrator, &Request::post("/discovery", ""))
            .status,
        405
    );
}

/// Sessions funded like the upstream SDK: a mint every 3.007 s is billed 4 s.
fn sdk_balances_after_ticks(ticket_ev: u128) -> (Vec<u128>, u64) {
    let cfg = ModelConfig {
        ticket_ev_wei: ticket_ev,
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 11);
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    let mut balances = Vec::new();
    let mut next_pay = 3_007;
    let mut skipped = 0;
    for tick in 1..=8u64 {
        while next_pay < tick * 5_000 {
            match flow.cycle(&mut w, ms(next_pay)) {
                200 => {}
                482 => skipped += 1,
                other => panic!("cycle at {next_pay} ms: {other}"),
            }
            next_pay += 3_007;
        }
        w.advance(secs(tick * 5));
        balances.push(w.session_balance(&id).expect("live"));
    }
    assert_eq!(w.released_at(&id), None);
    (balances, skipped)
}

#[test]
fn whole_second_rounding_grows_the_balance_default_ev() {
    let (balances, skipped) = sdk_balances_after_ticks(E9);
    let expected: Vec<u128> = [9, 12, 11, 14, 17, 16, 19, 22].iter().map(|b| b * E9).collect();
    assert_eq!(balances, expected);
    assert_eq!(skipped, 0);
}

#[test]
fn whole_second_rounding_reproduces_the_measured_growth_with_ev_2_5e9() {
    // `docs/protocol.md` §2.2: "10e9 → 12.5e9 → 15e9 wei over successive 5 s debits at 1e9 wei/s".
    let (balances, skipped) = sdk_balances_after_ticks(2_500_000_000);
    let expected: Vec<u128> = [100, 125, 125, 150, 175, 175, 200, 225]
        .iter()
        .map(|b| b * E9 / 10)
        .collect();
    assert_eq!(balances, expected);
    assert_eq!(skipped, 0);
}

#[test]
fn same_seed_same_outputs() {
    fn script(seed: u64) -> Vec<(u16, Vec<u8>)> {
        let mut w = World::new(ModelConfig::default(), seed);
        let mut out = Vec::new();
        let mut flow = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
        out.push((402, flow.challenge.manifest_id.clone().into_bytes()));
        let resp = flow.reserve_paid(&mut w, secs(0));
        out.push((resp.status, resp.body));
        for i in 1..20 {
            let minted = flow.mint(&mut w, ms(i * 3_500));
            match minted {
                Ok(m) => {
                    let resp = flow.pay(&mut w, ms(i * 3_500), &m);
                    out.push((resp.status, m.payment.into_bytes()));
                }
                Err(resp) => out.push((resp.status, resp.body)),
            }
        }
        out
    }
    assert_eq!(script(42), script(42));
    assert_ne!(script(42)[0], script(43)[0]);
}
