//! The servers livepay meets, as transforms around the faithful model (which speaks go-livepeer
//! `master`): what each one changes on the wire, and nothing else. Each difference is read from
//! upstream source (`docs/protocol.md`, "Dialects"):
//!
//! - [`Dialect::GoLivepeerNext`]: go-livepeer with #4029 (a payment 200 carries a fresh JSON
//!   challenge instead of a protobuf `PaymentResult`) and #4028 (the signer answers 480 once the
//!   sender nonce reaches 500, [`Dialect::model_config`]);
//! - [`Dialect::LivepeerNode`]: the standalone livepeer/node: signer state keys `state`/`sig`,
//!   `{"error":"…"}` bodies, `session_` manifest ids, a JSON challenge in payment 200s, 480 at
//!   nonce 500, a refresh that fails with 404 where go-livepeer says 409, and 409 "runner price
//!   changed" to a session's payments once its runner's price changed;
//! - [`SignerAuth`]: a signer behind short-lived bearer tokens (pymthouse: 300 s JWTs, 401 once
//!   expired) and a credit limit (483 once exhausted), with any dialect.

use std::collections::BTreeMap;
use std::string::ToString;

use embassy_time::{Duration, Instant};
use serde_json::Value;

use super::{Host, ManifestIds, Method, ModelConfig, Request, Response, World, headers};
use crate::sim::FastConfig;

/// Which server the model plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// go-livepeer `master`: the model as it is.
    #[default]
    GoLivepeer,
    /// go-livepeer with #4029: a payment 200 answers a fresh JSON challenge.
    GoLivepeerNext,
    /// livepeer/node.
    LivepeerNode,
}

impl Dialect {
    /// Every dialect, for matrices.
    pub const ALL: [Self; 3] = [Self::GoLivepeer, Self::GoLivepeerNext, Self::LivepeerNode];

    /// The name `serve-sim --dialect` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Self::GoLivepeer => "go-livepeer",
            Self::GoLivepeerNext => "go-livepeer-next",
            Self::LivepeerNode => "livepeer-node",
        }
    }

    /// The dialect called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The sender nonce from which #4028 and livepeer/node's signer answer 480.
    pub const REFRESH_AT_NONCE: u64 = 500;

    /// `base` with what this server does differently in its configuration: livepeer/node's
    /// `session_` manifest ids, and the nonce limit of #4028 and livepeer/node (unless `base`
    /// sets one).
    #[must_use]
    pub fn model_config(self, base: ModelConfig) -> ModelConfig {
        let mut model = base;
        if self != Self::GoLivepeer {
            model
                .signer
                .refresh_at_nonce
                .get_or_insert(Self::REFRESH_AT_NONCE);
        }
        if self == Self::LivepeerNode {
            model.manifest_ids = ManifestIds::Session10;
        }
        model
    }

    /// `base` with what this server answers differently, in the simulation's fast model: a fresh
    /// challenge in payment answers, the nonce limit, and livepeer/node's refresh 404.
    #[must_use]
    pub fn fast_config(self, base: FastConfig) -> FastConfig {
        let mut fast = base;
        fast.challenge_in_payment = self.challenge_in_payment_answer();
        if self != Self::GoLivepeer {
            fast.refresh_at_nonce = u32::try_from(Self::REFRESH_AT_NONCE).ok();
        }
        if self == Self::LivepeerNode {
            fast.refresh_refused_status = 404;
        }
        fast
    }

    /// Whether a payment 200 carries a fresh JSON challenge.
    const fn challenge_in_payment_answer(self) -> bool {
        matches!(self, Self::GoLivepeerNext | Self::LivepeerNode)
    }
}

/// A signer behind expiring bearer tokens, with an optional credit limit. Tokens are issued by
/// `POST {signer}/token` (answer: `{"token": …, "expires_in": seconds}`) and sent as
/// `Authorization: Bearer <token>`; a missing, unknown or expired token is a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerAuth {
    /// How long a token lives.
    pub token_ttl: Duration,
    /// How many payments the account may mint before the signer answers 483; `None`: unlimited.
    pub credit_mints: Option<u64>,
    issued: BTreeMap<String, Instant>,
    next_token: u64,
    minted: u64,
}

impl SignerAuth {
    /// Tokens living `token_ttl`, and `credit_mints` mints of credit (`None`: unlimited).
    pub fn new(token_ttl: Duration, credit_mints: Option<u64>) -> Self {
        Self {
            token_ttl,
            credit_mints,
            issued: BTreeMap::new(),
            next_token: 1,
            minted: 0,
        }
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.next_token - 1
    }

    /// Issues a token at `now`: the token and its life.
    pub fn issue_token(&mut self, now: Instant) -> (String, Duration) {
        let token = format!("lp-sim-{:06}", self.next_token);
        self.next_token += 1;
        self.issued.insert(token.clone(), now);
        (token, self.token_ttl)
    }

    fn issue(&mut self, now: Instant) -> Response {
        let (token, life) = self.issue_token(now);
        Response::json(
            200,
            &serde_json::json!({ "token": token, "expires_in": life.as_millis() as f64 / 1000.0 }),
        )
    }

    /// The 401 or 483 answer `req` gets, if it is refused.
    fn refuse(&self, now: Instant, req: &Request) -> Option<Response> {
        let token = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let valid = token
            .and_then(|t| self.issued.get(t))
            .is_some_and(|issued| now.saturating_duration_since(*issued) < self.token_ttl);
        if !valid {
            return Some(Response::json(
                401,
                &serde_json::json!({ "error": "token expired or invalid" }),
            ));
        }
        let exhausted = self.credit_mints.is_some_and(|limit| self.minted >= limit)
            && req.path().ends_with("/generate-live-payment");
        exhausted.then(|| Response::json(483, &serde_json::json!({ "error": "account credit exhausted" })))
    }
}

/// The model behind a dialect (and an optional signer auth): [`World::handle`] with the wire
/// differences applied both ways.
pub fn handle(
    world: &mut World,
    dialect: Dialect,
    auth: Option<&mut SignerAuth>,
    now: Instant,
    host: Host,
    req: &Request,
) -> Response {
    if let Some(auth) = auth
        && host == Host::Signer
    {
        if req.method == Method::Post && req.path() == "/token" {
            return auth.issue(now);
        }
        if let Some(refused) = auth.refuse(now, req) {
            world.advance(now);
            return refused;
        }
        let answer = handle_dialect(world, dialect, now, host, req);
        if answer.status == 200 && req.path().ends_with("/generate-live-payment") {
            auth.minted += 1;
        }
        return answer;
    }
    handle_dialect(world, dialect, now, host, req)
}

fn handle_dialect(world: &mut World, dialect: Dialect, now: Instant, host: Host, req: &Request) -> Response {
    if dialect == Dialect::GoLivepeer {
        return world.handle(now, host, req);
    }
    let node = dialect == Dialect::LivepeerNode;
    let translated;
    let req = if node && host == Host::Signer && req.path().ends_with("/generate-live-payment") {
        // livepay sends the state back as it got it: lowercase; the model reads go-livepeer's.
        translated = Request {
            body: rename_state_keys(&req.body, [("state", "State"), ("sig", "Sig")]),
            ..req.clone()
        };
        &translated
    } else {
        req
    };
    if node
        && host == Host::Orchestrator
        && let Some(refused) = price_changed(world, now, req)
    {
        return refused;
    }
    let mut answer = world.handle(now, host, req);
    let path = req.path();
    if host == Host::Orchestrator
        && answer.status == 200
        && path.ends_with("/payment")
        && dialect.challenge_in_payment_answer()
        && let Some(fresh) = fresh_challenge(world, now, path)
    {
        answer = fresh;
    }
    if node {
        if host == Host::Signer && answer.status == 200 && path.ends_with("/generate-live-payment") {
            answer.body = rename_state_keys(&answer.body, [("State", "state"), ("Sig", "sig")]);
        }
        if host == Host::Orchestrator && path == "/refresh-payment" && answer.status == 409 {
            answer.status = 404;
        }
        if answer.status >= 400 {
            flatten_error(&mut answer);
        }
    }
    answer
}

/// livepeer/node's 409 to a session payment once the runner's price is no longer the one the
/// session was reserved at: the payment credits nothing, and the session goes on being debited at
/// its own price until its balance runs out.
fn price_changed(world: &mut World, now: Instant, req: &Request) -> Option<Response> {
    let path = req.path();
    if req.method != Method::Post || !path.ends_with("/payment") {
        return None;
    }
    let session_id = path.strip_suffix("/payment")?.rsplit('/').next()?;
    let session = world.orchestrator().session(session_id)?;
    let current = world.orchestrator().runner_pricing(session.runner_id())?;
    if !session.is_active() || current == session.pricing() {
        return None;
    }
    world.advance(now);
    Some(Response::json(
        409,
        &serde_json::json!({ "error": "runner price changed; request a new payment challenge" }),
    ))
}

/// The session's refresh answer (fresh params), as a payment 200 of #4029 / livepeer/node carries
/// it; `None` when the session or the payer is unknown.
fn fresh_challenge(world: &mut World, now: Instant, payment_path: &str) -> Option<Response> {
    let manifest = payment_path
        .strip_suffix("/payment")?
        .rsplit('/')
        .next()?
        .to_string();
    let sender = world.signer().address().to_string();
    let refresh = Request {
        method: Method::Post,
        path_and_query: "/refresh-payment".to_string(),
        headers: Vec::new(),
        body: serde_json::to_vec(&serde_json::json!({ "sender": sender, "manifest_id": manifest })).ok()?,
    };
    let mut answer = world.handle(now, Host::Orchestrator, &refresh);
    if answer.status != 200 {
        return None;
    }
    // livepeer/node's challenge keeps the session-scoped payment URL.
    if let Ok(mut challenge) = serde_json::from_slice::<Value>(&answer.body) {
        let url = format!("{}{payment_path}", world.orchestrator().service_url());
        challenge["payment_url"] = Value::String(url);
        answer.body = serde_json::to_vec(&challenge).unwrap_or(answer.body);
    }
    Some(answer)
}

/// `body` with the keys of its `state` object renamed (`from` → `to`); unchanged when it is
/// not such a JSON object.
fn rename_state_keys(body: &[u8], renames: [(&str, &str); 2]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    if let Some(Value::Object(state)) = value.get_mut("state") {
        for (from, to) in renames {
            if let Some(v) = state.remove(from) {
                state.insert(to.to_string(), v);
            }
        }
    }
    serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec())
}

/// `{"error":{"message":M}}` → `{"error":M}` (livepeer/node's shape).
fn flatten_error(answer: &mut Response) {
    let Ok(value) = serde_json::from_slice::<Value>(&answer.body) else {
        return;
    };
    if let Some(message) = value.pointer("/error/message").and_then(Value::as_str) {
        answer.body = serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default();
        answer
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(headers::CONTENT_TYPE));
        answer
            .headers
            .push((headers::CONTENT_TYPE.to_string(), "application/json".to_string()));
    }
}
