//! [`PayerCache`]: the payer address of each signer, asked for once per process.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};

/// Payer addresses by signer URL (`docs/protocol.md` §2.1: ask each signer once): data the
/// caller keeps (one per process, say) and hands to [`ReserveFlow::with_cache`](super::ReserveFlow::with_cache) and
/// [`ReserveFlow::update_cache`](super::ReserveFlow::update_cache).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayerCache {
    by_signer: BTreeMap<String, String>,
}

impl PayerCache {
    /// An empty cache.
    pub const fn new() -> Self {
        Self {
            by_signer: BTreeMap::new(),
        }
    }

    /// The payer address known for the signer at `signer_url` (its exact
    /// [`ReserveOptions::signer_url`](super::ReserveOptions::signer_url)).
    pub fn get(&self, signer_url: &str) -> Option<&str> {
        self.by_signer.get(signer_url).map(String::as_str)
    }

    /// Records `address` as the payer of the signer at `signer_url`.
    pub fn insert(&mut self, signer_url: &str, address: &str) {
        self.by_signer.insert(signer_url.to_string(), address.to_string());
    }

    /// Drops the payer of `signer_url` if it is still `address`.
    pub fn forget(&mut self, signer_url: &str, address: &str) {
        if self.get(signer_url) == Some(address) {
            self.by_signer.remove(signer_url);
        }
    }

    /// How many signers are known.
    pub fn len(&self) -> usize {
        self.by_signer.len()
    }

    /// Whether no signer is known.
    pub fn is_empty(&self) -> bool {
        self.by_signer.is_empty()
    }
}
