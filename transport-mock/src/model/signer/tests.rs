//! Tests of the signer model.

use embassy_time::Duration;

use crate::model::testkit::{Flow, ms, secs};
use crate::model::token::{self, Key, ParamsRecord, PaymentRecord, StateRecord, b64_decode, b64_encode};
use crate::model::wire::{
    GeneratePaymentRequest, GeneratePaymentResponse, MaxPrice, OrchestratorInfoSignature, PriceValue,
    SignerState,
};
use crate::model::{Host, ModelConfig, PriceKind, Pricing, Request, SignerConfig, World, headers};

const R: &str = "live-runner";
const E9: u128 = 1_000_000_000;

fn world() -> World {
    World::new(ModelConfig::default(), 7)
}

fn tickets(payment: &str) -> u32 {
    payment_record(payment).count
}

fn payment_record(payment: &str) -> PaymentRecord {
    token::peek::<PaymentRecord>(payment).expect("payment")
}

fn state_record(state: &SignerState) -> StateRecord {
    serde_json::from_slice(&b64_decode(&state.state).expect("b64")).expect("state json")
}

#[test]
fn sign_orchestrator_info_and_auth() {
    let mut w = world();
    let resp = w.handle(
        secs(0),
        Host::Signer,
        &Request::post("/sign-orchestrator-info", "{}"),
    );
    assert_eq!(resp.status, 200);
    let info: OrchestratorInfoSignature = resp.json_body().expect("info");
    assert_eq!(info.address.len(), 42);
    assert!(info.address.starts_with("0x"));
    assert_eq!(info.signature.len(), 2 + 130);
    let cfg = ModelConfig {
        signer: SignerConfig {
            required_auth: Some((String::from("Authorization"), String::from("Bearer s3cret"))),
            ..SignerConfig::default()
        },
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let req = Request::post("/sign-orchestrator-info", "{}");
    assert_eq!(w.handle(secs(0), Host::Signer, &req).status, 401);
    let req = req.with_header("authorization", "Bearer s3cret");
    assert_eq!(w.handle(secs(0), Host::Signer, &req).status, 200);
    let gen_req = Request::post("/generate-live-payment", "{}");
    assert_eq!(w.handle(secs(0), Host::Signer, &gen_req).status, 401);
    assert_eq!(w.signer().stats().unauthorized_401, 2);
}

#[test]
fn first_call_prepays_10s_live_60s_lv2v_one_unit_fixed() {
    let mut w = world();
    let mut flow = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    let minted = flow.mint(&mut w, secs(0)).expect("mint");
    assert_eq!(tickets(&minted.payment), 10);
    let state = state_record(&minted.state);
    assert_eq!(state.balance, 0);
    assert_eq!(state.initial_price_wei, E9);
    assert_eq!(w.signer().minted_ev(&flow.challenge.manifest_id), 10 * E9);

    let mut w = World::new(ModelConfig::single("v", Pricing::Lv2v { wei_per_second: E9 }), 7);
    let mut flow = Flow::challenge(&mut w, secs(0), "v", PriceKind::Lv2v);
    let minted = flow.mint(&mut w, secs(0)).expect("mint");
    assert_eq!(tickets(&minted.payment), 60);

    let mut w = World::new(ModelConfig::single("f", Pricing::Fixed { wei: 5 * E9 / 2 }), 7);
    let mut flow = Flow::challenge(&mut w, secs(0), "f", PriceKind::Fixed);
    let minted = flow.mint(&mut w, secs(0)).expect("mint");
    assert_eq!(tickets(&minted.payment), 3);
    assert_eq!(state_record(&minted.state).balance, E9 / 2);
}

#[test]
fn a_mint_every_3_007_s_is_billed_4_s() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let mut t = 0;
    for _ in 0..10 {
        t += 3_007;
        let minted = flow.mint(&mut w, ms(t)).expect("mint");
        assert_eq!(tickets(&minted.payment), 4);
    }
    assert_eq!(w.signer().stats().billed, (10 + 40) * E9);
    // Landing just under a whole second bills close to the price.
    let mut t2 = t;
    for _ in 0..10 {
        t2 += 2_990;
        let minted = flow.mint(&mut w, ms(t2)).expect("mint");
        assert_eq!(tickets(&minted.payment), 3);
    }
}

#[test]
fn no_tickets_482_threshold_and_last_update_not_advanced() {
    // EV 4e9: the prepay of 10e9 needs 3 tickets and leaves a modelled balance of 2e9.
    let cfg = ModelConfig {
        ticket_ev_wei: 4 * E9,
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    assert_eq!(w.signer().modelled_balance(&id), Some(2 * E9));
    // 1 s later: fee 1e9 but one ticket's EV (4e9) is not covered: 1 ticket, balance 5e9.
    let minted = flow.mint(&mut w, secs(1)).expect("mint");
    assert_eq!(tickets(&minted.payment), 1);
    assert_eq!(w.signer().modelled_balance(&id), Some(5 * E9));
    // Covered: 482, and LastUpdate stays at 1 s, so the billed gap keeps growing.
    for t in [2_000, 3_000, 3_500, 5_000, 5_500] {
        let resp = flow.mint(&mut w, ms(t)).expect_err("482");
        assert_eq!(resp.status, 482, "at {t} ms");
        assert!(
            resp.json_body::<serde_json::Value>()
                .is_some_and(|v| v.get("state").is_none())
        );
    }
    assert_eq!(w.signer().last_update(&id), Some(secs(1)));
    // At 5.5 s the fee was ceil(4.5) = 5e9 = the balance: still covered (boundary). At 6.5 s: 6e9.
    let minted = flow.mint(&mut w, ms(6_500)).expect("mint");
    assert_eq!(tickets(&minted.payment), 1);
    assert_eq!(w.signer().modelled_balance(&id), Some(3 * E9));
    assert_eq!(w.signer().last_update(&id), Some(ms(6_500)));
    assert_eq!(w.signer().stats().no_tickets_482, 5);
}

/// go-livepeer's signer is stateless and checks only a state's signature, orchestrator, app and
/// type (`server/remote_signer.go` L410-449): an older state is accepted. Its nonces restart from
/// that state's `SenderNonce` (`pm/sender.go` L84-93, `StartSessionWithNonce`), so it re-issues
/// nonces the orchestrator has seen, which it refuses (`core/orchestrator.go` L175-233).
#[test]
fn an_older_state_is_accepted_and_reissues_nonces_already_used() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let first = flow.state.clone();
    assert_eq!(state_record(first.as_ref().expect("state")).nonce, 10);
    let newer = flow.mint(&mut w, secs(3)).expect("mint");
    assert_eq!(payment_record(&newer.payment).first_nonce, 11);
    assert_eq!(flow.pay(&mut w, secs(3), &newer).status, 200);
    // The older state again: 200, nonces from 11 again, and its own stale balance and LastUpdate
    // (billed 4 s since the reservation, not 1 s since the last mint).
    let mut req = flow.request();
    req.state.clone_from(&first);
    let resp = Flow::generate_with(&mut w, secs(4), &req);
    assert_eq!(resp.status, 200, "{}", resp.text_body());
    let forked: GeneratePaymentResponse = resp.json_body().expect("minted");
    let record = payment_record(&forked.payment);
    assert_eq!((record.first_nonce, record.count), (11, 4));
    assert_eq!(
        state_record(&forked.state).seq,
        1,
        "SequenceNumber counts, never compared"
    );
    // The orchestrator has seen nonces 11-13: nothing of it is credited.
    let balance = w.session_balance(flow.session_id());
    let resp = flow.pay(&mut w, secs(4), &forked);
    assert_eq!(resp.status, 400);
    assert!(
        resp.text_body()
            .contains("invalid ticket senderNonce: already seen")
    );
    assert_eq!(w.session_balance(flow.session_id()), balance);
    assert_eq!(w.signer().stats().rejected_400, 0);
}

#[test]
fn tampered_and_foreign_states_are_400() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let _ = flow.mint(&mut w, secs(3)).expect("mint");
    // Tampered: a richer balance with the old signature.
    let current = flow.state.clone().expect("state");
    let mut record = state_record(&current);
    record.balance += 100 * E9;
    let forged = SignerState {
        state: b64_encode(&serde_json::to_vec(&record).expect("json")),
        sig: current.sig.clone(),
    };
    let mut req = flow.request();
    req.state = Some(forged);
    assert_eq!(Flow::generate_with(&mut w, secs(4), &req).status, 400);
    // Garbage signature.
    let mut req = flow.request();
    req.state = Some(SignerState {
        state: current.state,
        sig: String::from("!!"),
    });
    assert_eq!(Flow::generate_with(&mut w, secs(4), &req).status, 400);
    // State of another manifest.
    let other = Flow::reserve(&mut w, secs(4), R, PriceKind::Live);
    let mut req = flow.request();
    req.state.clone_from(&other.state);
    assert_eq!(Flow::generate_with(&mut w, secs(4), &req).status, 400);
    // The latest state still works.
    assert_eq!(flow.cycle(&mut w, secs(5)), 200);
    assert_eq!(w.signer().stats().rejected_400, 3);
}

/// A `LastUpdate` that is not in the past gives `billableSecs <= 0`, billed like a first call: the
/// 10 s prepay (`server/remote_signer.go` L536-569), with the state's balance and nonces kept.
#[test]
fn a_last_update_in_the_future_or_now_is_billed_the_prepay() {
    let cfg = ModelConfig {
        ticket_ev_wei: 4 * E9,
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    // 3 tickets for the 10 s prepay: 2e9 left on the signer's books.
    assert_eq!(w.signer().modelled_balance(&id), Some(2 * E9));
    assert_eq!(w.signer().stats().first_calls, 1);
    // The same instant as the reservation's mint: 10 s again, 2 tickets, 0 left.
    let again = flow.mint(&mut w, secs(0)).expect("mint");
    assert_eq!(tickets(&again.payment), 2);
    assert_eq!(payment_record(&again.payment).first_nonce, 4);
    assert_eq!(w.signer().modelled_balance(&id), Some(0));
    // A state stamped 30 s ahead of the signer's clock (skew), sent at 5 s: 10 s, not 25 s or 0.
    let mut record = state_record(flow.state.as_ref().expect("state"));
    record.last_update_us = secs(35).as_micros();
    let key = w.signer().key();
    let mut req = flow.request();
    req.state = Some(token::encode_state(key, &record));
    let resp = Flow::generate_with(&mut w, secs(5), &req);
    assert_eq!(resp.status, 200);
    let minted: GeneratePaymentResponse = resp.json_body().expect("minted");
    assert_eq!(tickets(&minted.payment), 3);
    assert_eq!(payment_record(&minted.payment).first_nonce, 6);
    assert_eq!(state_record(&minted.state).last_update_us, secs(5).as_micros());
    assert_eq!(w.signer().stats().first_calls, 3);
}

/// Fresh params (a refresh) have a new identity: the state's nonce restarts at 0 under them
/// (`server/remote_signer.go` L499-504); a call without a state starts a fresh ledger.
#[test]
fn nonces_restart_under_new_params_and_without_a_state() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let m = flow.mint(&mut w, secs(3)).expect("mint");
    assert_eq!(payment_record(&m.payment).first_nonce, 11);
    assert_eq!(flow.refresh(&mut w, secs(4)).status, 200);
    let m = flow.mint(&mut w, secs(6)).expect("mint");
    assert_eq!(payment_record(&m.payment).first_nonce, 1);
    assert_eq!(flow.pay(&mut w, secs(6), &m).status, 200, "a new nonce space");
    // No state: the prepay, from a zero balance, nonces from 1 under the same params again.
    let mut req = flow.request();
    req.state = None;
    let resp = Flow::generate_with(&mut w, secs(7), &req);
    let fresh: GeneratePaymentResponse = resp.json_body().expect("minted");
    let record = payment_record(&fresh.payment);
    assert_eq!((record.first_nonce, record.count), (1, 10));
    assert_eq!(state_record(&fresh.state).balance, 0);
    // Under params already used, those nonces were seen.
    assert_eq!(flow.pay(&mut w, secs(7), &fresh).status, 400);
}

#[test]
fn validation_400s() {
    let mut w = world();
    let flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let cases: Vec<GeneratePaymentRequest> = vec![
        GeneratePaymentRequest {
            manifest_id: String::new(),
            ..flow.request()
        },
        GeneratePaymentRequest {
            kind: String::from("hourly"),
            ..flow.request()
        },
        GeneratePaymentRequest {
            kind: String::from("lv2v"),
            ..flow.request()
        },
        GeneratePaymentRequest {
            orchestrator: String::from("bm90IHBhcmFtcw=="),
            ..flow.request()
        },
        GeneratePaymentRequest {
            app: Some(String::from("other")),
            state: Some(SignerState {
                state: b64_encode(b"{}"),
                sig: b64_encode(b"x"),
            }),
            ..flow.request()
        },
    ];
    for (i, req) in cases.iter().enumerate() {
        assert_eq!(Flow::generate_with(&mut w, secs(1), req).status, 400, "case {i}");
    }
    let resp = w.handle(
        secs(1),
        Host::Signer,
        &Request::post("/generate-live-payment", "[1]"),
    );
    assert_eq!(resp.status, 400);
}

#[test]
fn more_than_100_tickets_is_400() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let resp = flow.mint(&mut w, ms(100_500)).expect_err("101 tickets");
    assert_eq!(resp.status, 400);
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let minted = flow.mint(&mut w, secs(100)).expect("100 tickets");
    assert_eq!(tickets(&minted.payment), 100);
}

#[test]
fn refresh_required_480_after_the_param_lifetime_and_refresh_restores_200() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let id = flow.session_id().to_owned();
    let mut t = 0;
    while t + 3_000 < 480_000 {
        t += 3_000;
        assert_eq!(flow.cycle(&mut w, ms(t)), 200, "at {t} ms");
    }
    let resp = flow.mint(&mut w, secs(480)).expect_err("480");
    assert_eq!(resp.status, 480);
    assert_eq!(
        resp.header(headers::ORCHESTRATOR_URL),
        Some("http://orch.invalid")
    );
    assert!(flow.refresh(&mut w, secs(480)).status == 200);
    assert_eq!(flow.cycle(&mut w, secs(480)), 200);
    assert_eq!(w.released_at(&id), None);
    assert_eq!(w.signer().stats().refresh_480, 1);
    // The next expiry is 8 min after the refresh.
    let mut t = 480_000;
    while t + 3_000 < 960_000 {
        t += 3_000;
        assert_eq!(flow.cycle(&mut w, ms(t)), 200, "at {t} ms");
    }
    assert_eq!(flow.cycle(&mut w, secs(960)), 480);
    assert_eq!(w.released_at(&id), None);
}

#[test]
fn refresh_required_480_in_the_last_10_percent_of_the_auth_token() {
    let cfg = ModelConfig {
        param_lifetime: Duration::from_secs(3600),
        signer: SignerConfig {
            max_tickets: 10_000,
            ..SignerConfig::default()
        },
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let mut first = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    // Just before 27 min (the last 10 % of 30 min) the token is still good.
    assert!(flow.mint(&mut w, ms(27 * 60_000 - 1)).is_ok());
    let resp = flow.mint(&mut w, secs(27 * 60)).expect_err("480");
    assert_eq!(resp.status, 480);
    assert_eq!(
        resp.header(headers::ORCHESTRATOR_URL),
        Some("http://orch.invalid")
    );
    // A first call (no state) with params 27 min old: 480 too (the client asks for a new 402).
    assert_eq!(first.mint(&mut w, secs(27 * 60)).expect_err("480").status, 480);
    assert_eq!(w.signer().stats().refresh_480, 2);
}

#[test]
fn price_above_a_ceiling_is_481() {
    // Signer maximum.
    let cfg = ModelConfig {
        signer: SignerConfig {
            max_price_wei: Some(E9 - 1),
            ..SignerConfig::default()
        },
        ..ModelConfig::default()
    };
    let mut w = World::new(cfg, 7);
    let mut flow = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    assert_eq!(flow.mint(&mut w, secs(0)).expect_err("481").status, 481);
    // maxPrice from the client: below, equal (number and string), per hour.
    let mut w = world();
    let flow = Flow::challenge(&mut w, secs(0), R, PriceKind::Live);
    let with_max = |price: PriceValue, unit: &str| GeneratePaymentRequest {
        max_price: Some(MaxPrice {
            price,
            currency: Some(String::from("wei")),
            unit: Some(unit.to_owned()),
        }),
        ..flow.request()
    };
    let below = with_max(PriceValue::Number(999_999_999.0), "seconds");
    assert_eq!(Flow::generate_with(&mut w, secs(0), &below).status, 481);
    let equal = with_max(PriceValue::Text(String::from("1000000000")), "seconds");
    assert_eq!(Flow::generate_with(&mut w, secs(0), &equal).status, 200);
    let hourly = with_max(PriceValue::Number(3_600.0 * 1.012e9), "hour");
    assert_eq!(Flow::generate_with(&mut w, secs(0), &hourly).status, 200);
    let wrong_unit = with_max(PriceValue::Number(1e9), "fixed");
    assert_eq!(Flow::generate_with(&mut w, secs(0), &wrong_unit).status, 400);
    assert_eq!(w.signer().stats().price_481, 1);
}

#[test]
fn lv2v_max_price_from_discovery_is_accepted() {
    let mut w = World::new(ModelConfig::single("v", Pricing::Lv2v { wei_per_second: E9 }), 7);
    let resp = w.handle(secs(0), Host::Orchestrator, &Request::get("/discovery"));
    let entries: serde_json::Value = resp.json_body().expect("json");
    let per_pixel = entries[0]["runners"][0]["price_info"]["price"]
        .as_f64()
        .expect("price");
    let flow = Flow::challenge(&mut w, secs(0), "v", PriceKind::Lv2v);
    let req = GeneratePaymentRequest {
        max_price: Some(MaxPrice {
            price: PriceValue::Number(per_pixel),
            currency: Some(String::from("wei")),
            unit: Some(String::from("720p-pixel-seconds")),
        }),
        ..flow.request()
    };
    assert_eq!(Flow::generate_with(&mut w, secs(0), &req).status, 200);
    let req = GeneratePaymentRequest {
        max_price: Some(MaxPrice {
            price: PriceValue::Number(per_pixel * 0.99),
            currency: None,
            unit: None,
        }),
        ..flow.request()
    };
    assert_eq!(Flow::generate_with(&mut w, secs(0), &req).status, 481);
}

#[test]
fn price_above_the_initial_price_is_481() {
    let mut w = world();
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    let mut params: ParamsRecord = token::peek(&flow.params).expect("params");
    params.price_wei = 2 * E9;
    flow.params = token::seal(Key::new(3, 4), token::domain::PARAMS, &params);
    assert_eq!(flow.mint(&mut w, secs(3)).expect_err("481").status, 481);
}

#[test]
fn lv2v_later_calls_bill_pixels_of_elapsed_time() {
    let mut w = World::new(ModelConfig::single("v", Pricing::Lv2v { wei_per_second: E9 }), 7);
    let mut flow = Flow::reserve(&mut w, secs(0), "v", PriceKind::Lv2v);
    // 3.007 s of pixels at 1e9 wei per 27,648,000 pixels: 3.007e9 wei, 4 tickets (no rounding up
    // to whole seconds), leaving 0.993e9 of modelled credit.
    let minted = flow.mint(&mut w, ms(3_007)).expect("mint");
    assert_eq!(tickets(&minted.payment), 4);
    assert_eq!(w.signer().modelled_balance(flow.session_id()), Some(993_000_000));
}

#[test]
fn the_nonce_limit_answers_480_and_fresh_params_restart_the_nonces() {
    let mut config = ModelConfig::default();
    config.signer.refresh_at_nonce = Some(15);
    let mut w = World::new(config, 7);
    let mut flow = Flow::reserve(&mut w, secs(0), R, PriceKind::Live);
    // The prepay took the nonces to 10; a 3 s mint to 13, then 16.
    let m = flow.mint(&mut w, secs(3)).expect("mint");
    assert_eq!(flow.pay(&mut w, secs(3), &m).status, 200);
    let m = flow.mint(&mut w, secs(6)).expect("mint");
    assert_eq!(flow.pay(&mut w, secs(6), &m).status, 200);
    let refused = flow.mint(&mut w, secs(9)).expect_err("the limit");
    assert_eq!(refused.status, 480);
    assert_eq!(w.signer().stats().refresh_480, 1);
    assert_eq!(flow.refresh(&mut w, secs(9)).status, 200);
    let m = flow.mint(&mut w, secs(9)).expect("mint");
    assert_eq!(payment_record(&m.payment).first_nonce, 1);
    assert_eq!(flow.pay(&mut w, secs(9), &m).status, 200);
}
