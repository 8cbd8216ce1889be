//! Test helpers: a minimal protocol client driving a [`World`] on virtual time.

use embassy_time::Instant;

use super::wire::{
    Challenge, GeneratePaymentRequest, GeneratePaymentResponse, OrchestratorInfoSignature, RefreshRequest,
    SessionCreated, SignerState,
};
use super::{Host, PriceKind, Request, Response, World, headers};

/// `ms` milliseconds of virtual time.
pub(crate) fn ms(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// `s` seconds of virtual time.
pub(crate) fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// One client session: challenge, signer state, reservation.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub(crate) runner: String,
    pub(crate) kind: PriceKind,
    pub(crate) payer: String,
    pub(crate) challenge: Challenge,
    pub(crate) params: String,
    pub(crate) state: Option<SignerState>,
    pub(crate) session: Option<SessionCreated>,
}

#[track_caller]
pub(crate) fn payer(w: &mut World, now: Instant) -> String {
    let resp = w.handle(now, Host::Signer, &Request::post("/sign-orchestrator-info", "{}"));
    assert_eq!(resp.status, 200, "{}", resp.text_body());
    let info: OrchestratorInfoSignature = resp.json_body().expect("orchestrator info");
    info.address
}

fn path(url: &str) -> String {
    Request::get(url).path().to_owned()
}

impl Flow {
    /// Ask runner `runner` for a 402 challenge.
    #[track_caller]
    pub(crate) fn challenge(w: &mut World, now: Instant, runner: &str, kind: PriceKind) -> Self {
        let payer = payer(w, now);
        let req = Request::post(format!("/apps/{runner}/session"), "{}")
            .with_header(headers::PAYER_ADDRESS, payer.clone());
        let resp = w.handle(now, Host::Orchestrator, &req);
        assert_eq!(resp.status, 402, "{}", resp.text_body());
        let challenge: Challenge = resp.json_body().expect("challenge");
        Self {
            runner: runner.to_owned(),
            kind,
            payer,
            params: challenge.payment_params.clone(),
            challenge,
            state: None,
            session: None,
        }
    }

    /// A challenge answered by a paid reservation (asserts 200).
    #[track_caller]
    pub(crate) fn reserve(w: &mut World, now: Instant, runner: &str, kind: PriceKind) -> Self {
        let mut flow = Self::challenge(w, now, runner, kind);
        let resp = flow.reserve_paid(w, now);
        assert_eq!(resp.status, 200, "{}", resp.text_body());
        flow
    }

    pub(crate) fn session_id(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.session_id.as_str())
    }

    pub(crate) fn request(&self) -> GeneratePaymentRequest {
        GeneratePaymentRequest {
            orchestrator: self.params.clone(),
            kind: self.kind.as_str().to_owned(),
            manifest_id: self.challenge.manifest_id.clone(),
            app: None,
            max_price: None,
            state: self.state.clone(),
        }
    }

    /// Call generate-live-payment with `body`.
    pub(crate) fn generate_with(w: &mut World, now: Instant, body: &GeneratePaymentRequest) -> Response {
        w.handle(
            now,
            Host::Signer,
            &Request::post_json("/generate-live-payment", body),
        )
    }

    /// Mint with the current params and state; a 200 replaces the state.
    pub(crate) fn mint(&mut self, w: &mut World, now: Instant) -> Result<GeneratePaymentResponse, Response> {
        let resp = Self::generate_with(w, now, &self.request());
        if resp.status != 200 {
            return Err(resp);
        }
        let minted: GeneratePaymentResponse = resp.json_body().ok_or(resp)?;
        self.state = Some(minted.state.clone());
        Ok(minted)
    }

    /// Mint the first payment and retry the reservation with it.
    #[track_caller]
    pub(crate) fn reserve_paid(&mut self, w: &mut World, now: Instant) -> Response {
        let minted = match self.mint(w, now) {
            Ok(m) => m,
            Err(resp) => return resp,
        };
        let resp = self.post_reservation(w, now, &minted.payment, &minted.seg_creds);
        if resp.status == 200 {
            self.session = resp.json_body();
        }
        resp
    }

    pub(crate) fn post_reservation(&self, w: &mut World, now: Instant, payment: &str, seg: &str) -> Response {
        let req = Request::post(format!("/apps/{}/session", self.runner), "{}")
            .with_header(headers::PAYER_ADDRESS, self.payer.clone())
            .with_header(headers::PAYMENT, payment)
            .with_header(headers::SEGMENT, seg);
        w.handle(now, Host::Orchestrator, &req)
    }

    /// POST a minted payment to the session-scoped payment URL.
    pub(crate) fn pay(&self, w: &mut World, now: Instant, minted: &GeneratePaymentResponse) -> Response {
        let req = Request::post(path(&self.challenge.payment_url), Vec::new())
            .with_header(headers::PAYMENT, minted.payment.clone())
            .with_header(headers::SEGMENT, minted.seg_creds.clone());
        w.handle(now, Host::Orchestrator, &req)
    }

    /// One funding cycle: mint, then pay. Returns the signer status if not 200, else the payment status.
    pub(crate) fn cycle(&mut self, w: &mut World, now: Instant) -> u16 {
        match self.mint(w, now) {
            Ok(minted) => self.pay(w, now, &minted).status,
            Err(resp) => resp.status,
        }
    }

    /// Refresh the params; a 200 replaces them (the payment URL is kept).
    pub(crate) fn refresh(&mut self, w: &mut World, now: Instant) -> Response {
        let body = RefreshRequest {
            sender: self.payer.clone(),
            manifest_id: self.challenge.manifest_id.clone(),
        };
        let resp = w.handle(
            now,
            Host::Orchestrator,
            &Request::post_json("/refresh-payment", &body),
        );
        if let Some(fresh) = resp.json_body::<Challenge>().filter(|_| resp.status == 200) {
            self.params = fresh.payment_params;
        }
        resp
    }

    /// POST `{control_url}/stop`.
    pub(crate) fn stop(&self, w: &mut World, now: Instant) -> Response {
        let control = self
            .session
            .as_ref()
            .map_or(String::new(), |s| s.control_url.clone());
        w.handle(
            now,
            Host::Orchestrator,
            &Request::post(format!("{}/stop", path(&control)), Vec::new()),
        )
    }
}
