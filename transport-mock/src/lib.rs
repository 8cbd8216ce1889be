//! `livepay-mock`: a faithful sans-IO model of a go-livepeer orchestrator and a Livepeer remote signer on
//! virtual time, for testing Livepeer live-runner payment clients deterministically.
//!
//! See [`model`] and `shared/protocol.md` §2–3, the wire contract it models.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod faults;
pub mod memory;
pub mod model;
#[cfg(feature = "http")]
pub mod serve;
pub mod sim;
