//! Deterministic keys and peers for tests (this crate's and other crates').

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use libp2p_identity::{Keypair, PeerId};

use crate::types::keccak256;

/// An ed25519 keypair derived from `n` (same `n`, same key, on every run).
///
/// Keys are cached for the process: deriving one is a scalar
/// multiplication, slow in unoptimised test builds.
pub fn keypair(n: u64) -> Keypair {
    static CACHE: OnceLock<Mutex<BTreeMap<u64, Keypair>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut map = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(n).or_insert_with(|| derive(n)).clone()
}

fn derive(n: u64) -> Keypair {
    let secret = keccak256(&[b"hal9/testkit/key", &n.to_be_bytes()]);
    match Keypair::ed25519_from_bytes(secret) {
        Ok(k) => k,
        // 32 arbitrary bytes are always a valid ed25519 secret key.
        Err(e) => unreachable!("ed25519 secret from 32 bytes: {e}"),
    }
}

/// The PeerId of [`keypair`]`(n)`.
pub fn peer(n: u64) -> PeerId {
    keypair(n).public().to_peer_id()
}
