//! Opaque, verifiable tokens: ticket params, auth tokens, seg-creds, payments and signer state.
//!
//! Everything the model hands to a client is opaque base64 to the client but verifiable by the model: a
//! record is serialized as JSON, followed by a 16-byte keyed MAC (two SipHash-2-4 passes under a secret
//! key drawn from the world seed), and the whole is base64-encoded. The MAC stands in for the Ethereum
//! signatures of go-livepeer: forging or editing a token without the key is detected, and that is all
//! the model needs. No cryptographic strength is claimed.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::config::PriceKind;
use super::wire::SignerState;

/// A 128-bit secret key for the keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    k0: u64,
    k1: u64,
}

impl Key {
    /// A key from two 64-bit halves.
    pub(crate) const fn new(k0: u64, k1: u64) -> Self {
        Self { k0, k1 }
    }

    /// The keyed 128-bit MAC of `data` in the separation domain `domain`.
    pub(crate) fn mac(self, domain: &str, data: &[u8]) -> [u8; 16] {
        let mut input = Vec::with_capacity(domain.len() + 1 + data.len());
        input.extend_from_slice(domain.as_bytes());
        input.push(0);
        input.extend_from_slice(data);
        let a = siphash24(self.k0, self.k1, &input);
        let b = siphash24(
            self.k0 ^ 0x9e37_79b9_7f4a_7c15,
            self.k1.rotate_left(17) ^ 0xbf58_476d_1ce4_e5b9,
            &input,
        );
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a.to_le_bytes());
        out[8..].copy_from_slice(&b.to_le_bytes());
        out
    }
}

#[inline]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 of `data` under the key `(k0, k1)`.
pub(crate) fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        sipround(&mut v);
        sipround(&mut v);
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    // The length byte wraps modulo 256 by definition of SipHash.
    last[7] = data.len().to_le_bytes()[0];
    let b = u64::from_le_bytes(last);
    v[3] ^= b;
    sipround(&mut v);
    sipround(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for _ in 0..4 {
        sipround(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Strict standard base64 with padding; `None` on any malformed input.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (q, quad) in bytes.chunks_exact(4).enumerate() {
        let last = q + 1 == quads;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | b64_value(c)?;
        }
        n <<= 6 * pad;
        let [_, b0, b1, b2] = n.to_be_bytes();
        out.push(b0);
        if pad < 2 {
            out.push(b1);
        }
        if pad < 1 {
            out.push(b2);
        }
    }
    Some(out)
}

/// Lowercase hex of `data`.
pub(crate) fn hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why a token did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not base64, too short, or not the expected record.
    Encoding,
    /// Well-formed, but the MAC does not match: forged or edited.
    Forged,
}

const MAC_LEN: usize = 16;

/// Seal a record: `base64(json || mac(key, domain, json))`.
pub(crate) fn seal<T: Serialize>(key: Key, domain: &str, record: &T) -> String {
    let mut bytes = serde_json::to_vec(record).unwrap_or_default();
    let mac = key.mac(domain, &bytes);
    bytes.extend_from_slice(&mac);
    b64_encode(&bytes)
}

fn split(token: &str) -> Result<(Vec<u8>, [u8; MAC_LEN]), OpenError> {
    let mut bytes = b64_decode(token.trim()).ok_or(OpenError::Encoding)?;
    if bytes.len() <= MAC_LEN {
        return Err(OpenError::Encoding);
    }
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&bytes[bytes.len() - MAC_LEN..]);
    bytes.truncate(bytes.len() - MAC_LEN);
    Ok((bytes, mac))
}

/// Open a sealed record, verifying its MAC first.
pub(crate) fn open<T: DeserializeOwned>(key: Key, domain: &str, token: &str) -> Result<T, OpenError> {
    let (bytes, mac) = split(token)?;
    if key.mac(domain, &bytes) != mac {
        return Err(OpenError::Forged);
    }
    serde_json::from_slice(&bytes).map_err(|_| OpenError::Encoding)
}

/// Read a sealed record without verifying it (what a party without the key can do).
pub(crate) fn peek<T: DeserializeOwned>(token: &str) -> Result<T, OpenError> {
    let (bytes, _) = split(token)?;
    serde_json::from_slice(&bytes).map_err(|_| OpenError::Encoding)
}

/// MAC domains.
pub(crate) mod domain {
    pub(crate) const PARAMS: &str = "livepay-mock/params";
    pub(crate) const AUTH: &str = "livepay-mock/auth-token";
    pub(crate) const SEG_CREDS: &str = "livepay-mock/seg-creds";
    pub(crate) const PAYMENT: &str = "livepay-mock/payment";
    pub(crate) const STATE: &str = "livepay-mock/signer-state";
    pub(crate) const ORCH_INFO: &str = "livepay-mock/orchestrator-info";
}

/// The orchestrator's auth token (sealed by the orchestrator; go-livepeer `AuthToken`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuthToken {
    /// Unique token id.
    pub(crate) id: u64,
    /// The session (manifest id) the token is bound to.
    pub(crate) session_id: String,
    /// Issue time, µs of virtual time.
    pub(crate) issued_at_us: u64,
    /// Expiry, µs of virtual time.
    pub(crate) expires_at_us: u64,
}

/// The ticket params record behind `payment_params` (sealed by the orchestrator; go-livepeer
/// `OrchestratorInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ParamsRecord {
    /// Unique params id: the params' identity, playing go-livepeer's recipient rand hash (derived
    /// from the seed, sender, face value, win probability and expiry of one set of ticket params,
    /// `pm/recipient.go`). Sender nonces are unique per identity, and the orchestrator remembers
    /// the nonces it saw per (sender, identity).
    pub(crate) id: u64,
    /// The orchestrator's service URL.
    pub(crate) orchestrator: String,
    /// The runner the params were issued for.
    pub(crate) runner_id: String,
    /// The manifest (session) id the params were issued for.
    pub(crate) manifest_id: String,
    /// How the runner prices.
    pub(crate) kind: PriceKind,
    /// Price in wei per natural unit (second, second of 720p video, request).
    pub(crate) price_wei: u128,
    /// Expected value of one ticket, wei.
    pub(crate) ticket_ev: u128,
    /// Params issue time, µs of virtual time.
    pub(crate) issued_at_us: u64,
    /// Params expiry (the signer answers 480 from then on), µs of virtual time.
    pub(crate) expires_at_us: u64,
    /// The sealed auth token.
    pub(crate) auth_token: String,
    /// Auth token issue time, µs (a readable copy of the sealed token's field).
    pub(crate) auth_issued_at_us: u64,
    /// Auth token expiry, µs (a readable copy of the sealed token's field).
    pub(crate) auth_expires_at_us: u64,
}

/// Segment credentials (sealed by the signer): the manifest id and the orchestrator's auth token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegCredsRecord {
    /// The manifest id the signer was asked to pay for.
    pub(crate) manifest_id: String,
    /// The orchestrator's sealed auth token, copied from the params.
    pub(crate) auth_token: String,
}

/// A batch of tickets (sealed by the signer): nonces `first_nonce .. first_nonce + count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PaymentRecord {
    /// The payer address.
    pub(crate) sender: String,
    /// The manifest id the tickets pay for.
    pub(crate) manifest_id: String,
    /// The sealed params the tickets were minted against, verbatim.
    pub(crate) params: String,
    /// First sender nonce of the batch.
    pub(crate) first_nonce: u64,
    /// Number of tickets.
    pub(crate) count: u32,
    /// Expected value of each ticket, wei.
    pub(crate) ev: u128,
}

/// The signer's state record, round-tripped by the client as `{"State", "Sig"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateRecord {
    /// Payer address.
    pub(crate) sender: String,
    /// Manifest id.
    pub(crate) manifest_id: String,
    /// Pricing type of the session.
    pub(crate) kind: PriceKind,
    /// App name given on the first call, if any.
    pub(crate) app: Option<String>,
    /// go-livepeer's `SequenceNumber`: 0 on a first call, incremented on every call with a state.
    /// Never compared: the upstream signer does not detect an older state
    /// (`server/remote_signer.go` L439).
    pub(crate) seq: u64,
    /// `LastUpdate`, µs of virtual time.
    pub(crate) last_update_us: u64,
    /// Modelled credit the orchestrator holds, wei.
    pub(crate) balance: u128,
    /// The session's initial price, wei per natural unit.
    pub(crate) initial_price_wei: u128,
    /// go-livepeer's `SenderNonce`: the last ticket nonce used under the params `pm_session`.
    pub(crate) nonce: u64,
    /// go-livepeer's `PMSessionID`: the identity ([`ParamsRecord::id`]) of the ticket params the
    /// nonce counts under. Params with another identity restart the nonce at 0
    /// (`server/remote_signer.go` L499-504).
    pub(crate) pm_session: u64,
}

/// Encode a state record as the wire `{"State": b64(json), "Sig": b64(mac)}`.
pub(crate) fn encode_state(key: Key, record: &StateRecord) -> SignerState {
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    let mac = key.mac(domain::STATE, &bytes);
    SignerState {
        state: b64_encode(&bytes),
        sig: b64_encode(&mac),
    }
}

/// Decode and verify a wire state.
pub(crate) fn decode_state(key: Key, state: &SignerState) -> Result<StateRecord, OpenError> {
    let bytes = b64_decode(state.state.trim()).ok_or(OpenError::Encoding)?;
    let sig = b64_decode(state.sig.trim()).ok_or(OpenError::Encoding)?;
    if key.mac(domain::STATE, &bytes)[..] != sig[..] {
        return Err(OpenError::Forged);
    }
    serde_json::from_slice(&bytes).map_err(|_| OpenError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_key() -> (u64, u64) {
        let bytes: Vec<u8> = (0u8..16).collect();
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&bytes[..8]);
        b.copy_from_slice(&bytes[8..]);
        (u64::from_le_bytes(a), u64::from_le_bytes(b))
    }

    #[test]
    fn siphash_matches_reference_vectors() {
        let (k0, k1) = reference_key();
        assert_eq!(siphash24(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(k0, k1, &msg), 0xa129_ca61_49be_45e5);
        let msg: Vec<u8> = (0u8..8).collect();
        assert_eq!(siphash24(k0, k1, &msg), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn base64_round_trips_and_matches_rfc4648() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64_encode(plain.as_bytes()), enc);
            assert_eq!(b64_decode(enc).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(b64_decode(&b64_encode(&all)), Some(all));
        for bad in ["Zg=", "Z===", "Zg==Zm9v", "Zm9*", "Zm9v\n"] {
            assert_eq!(b64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sealed_records_open_only_with_the_key_and_domain() {
        let key = Key::new(1, 2);
        let rec = SegCredsRecord {
            manifest_id: "0badc0de".into(),
            auth_token: "t".into(),
        };
        let token = seal(key, domain::SEG_CREDS, &rec);
        assert_eq!(
            open::<SegCredsRecord>(key, domain::SEG_CREDS, &token),
            Ok(rec.clone())
        );
        assert_eq!(peek::<SegCredsRecord>(&token), Ok(rec));
        assert_eq!(
            open::<SegCredsRecord>(Key::new(1, 3), domain::SEG_CREDS, &token),
            Err(OpenError::Forged)
        );
        assert_eq!(
            open::<SegCredsRecord>(key, domain::PAYMENT, &token),
            Err(OpenError::Forged)
        );
        assert_eq!(
            open::<SegCredsRecord>(key, domain::SEG_CREDS, "not base64!"),
            Err(OpenError::Encoding)
        );
        // Flip one byte of the JSON: detected as forged.
        let mut bytes = b64_decode(&token).unwrap_or_default();
        bytes[2] ^= 1;
        assert_eq!(
            open::<SegCredsRecord>(key, domain::SEG_CREDS, &b64_encode(&bytes)),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn u128_amounts_round_trip_through_json() {
        let rec = StateRecord {
            sender: "0x".into(),
            manifest_id: "m".into(),
            kind: PriceKind::Live,
            app: None,
            seq: 1,
            last_update_us: 2,
            balance: u128::MAX,
            initial_price_wei: 1_000_000_000,
            nonce: 3,
            pm_session: 4,
        };
        let key = Key::new(7, 8);
        let wire = encode_state(key, &rec);
        assert_eq!(decode_state(key, &wire), Ok(rec));
        let tampered = SignerState {
            state: wire.state,
            sig: b64_encode(&[0u8; 16]),
        };
        assert_eq!(decode_state(key, &tampered), Err(OpenError::Forged));
    }
}
