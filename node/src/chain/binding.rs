//! PeerId bindings (protocol v1.1): the libp2p key of a neuron signs
//! `"hal9-peer-binding/v1" ‖ chainid ‖ registry ‖ operator ‖ peerId`
//! (`NeuronRegistry.peerBindingMessage`), and the registry stores that
//! signature with the registration. The chain cannot afford to check
//! ed25519, so every node does: a neuron whose binding does not verify is
//! never dialled, never a committee peer, and no gossip is accepted as its.

use alloy::primitives::Address;
use hal9_p2p::{Keypair, PeerId};
use libp2p::identity::PublicKey;

/// Length of an ed25519 signature.
pub const PEER_SIG_LEN: usize = 64;

/// Why a registered PeerId is not accepted for its operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The registered bytes are no PeerId.
    #[error("registered peer id ({0} bytes) does not parse")]
    PeerId(usize),
    /// The PeerId does not embed its public key (not an ed25519 identity multihash).
    #[error("peer id {0} does not carry its public key")]
    NoKey(PeerId),
    /// Wrong signature length.
    #[error("expected a {PEER_SIG_LEN}-byte peer signature, found {0} bytes")]
    SigLen(usize),
    /// The signature is not by the PeerId's key over this operator's binding.
    #[error("peer signature of {0} does not verify for this operator")]
    Invalid(PeerId),
}

/// The bytes a neuron's libp2p key signs (`peerBindingMessage`).
pub fn message(chain_id: u64, registry: Address, operator: Address, peer_id: &[u8]) -> Vec<u8> {
    hal9_market::peer_binding_message(chain_id, registry, operator, peer_id)
}

/// Signs the binding of `key`'s PeerId to `operator`.
pub fn sign(
    key: &Keypair,
    chain_id: u64,
    registry: Address,
    operator: Address,
) -> Result<Vec<u8>, String> {
    let peer = key.public().to_peer_id().to_bytes();
    key.sign(&message(chain_id, registry, operator, &peer))
        .map_err(|e| format!("cannot sign the peer binding: {e}"))
}

/// The PeerId `operator` registered, if `sig` proves its key bound it.
pub fn verify(
    chain_id: u64,
    registry: Address,
    operator: Address,
    peer_id: &[u8],
    sig: &[u8],
) -> Result<PeerId, BindingError> {
    let peer = PeerId::from_bytes(peer_id).map_err(|_| BindingError::PeerId(peer_id.len()))?;
    if sig.len() != PEER_SIG_LEN {
        return Err(BindingError::SigLen(sig.len()));
    }
    let mh: &libp2p::multihash::Multihash<64> = peer.as_ref();
    // Ed25519 PeerIds are identity multihashes of the protobuf public key.
    if mh.code() != 0 {
        return Err(BindingError::NoKey(peer));
    }
    let key = PublicKey::try_decode_protobuf(mh.digest()).map_err(|_| BindingError::NoKey(peer))?;
    if key.to_peer_id() != peer {
        return Err(BindingError::NoKey(peer));
    }
    if key.verify(&message(chain_id, registry, operator, peer_id), sig) {
        Ok(peer)
    } else {
        Err(BindingError::Invalid(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: u64 = 31337;

    #[test]
    fn the_key_owner_binds_and_nobody_else_can() {
        let key = Keypair::generate_ed25519();
        let reg = Address::repeat_byte(1);
        let op = Address::repeat_byte(2);
        let peer = key.public().to_peer_id();
        let sig = sign(&key, CHAIN, reg, op).unwrap();
        assert_eq!(verify(CHAIN, reg, op, &peer.to_bytes(), &sig), Ok(peer));
        // A squatter copies the victim's PeerId and signature to its own
        // operator address: the signature names the victim's operator.
        let squatter = Address::repeat_byte(3);
        assert_eq!(
            verify(CHAIN, reg, squatter, &peer.to_bytes(), &sig),
            Err(BindingError::Invalid(peer))
        );
        // ... or signs with its own key: not the PeerId's key.
        let own = sign(&Keypair::generate_ed25519(), CHAIN, reg, squatter).unwrap();
        assert_eq!(
            verify(CHAIN, reg, squatter, &peer.to_bytes(), &own),
            Err(BindingError::Invalid(peer))
        );
        // Another chain or registry.
        assert!(verify(CHAIN + 1, reg, op, &peer.to_bytes(), &sig).is_err());
        assert!(verify(CHAIN, op, op, &peer.to_bytes(), &sig).is_err());
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let key = Keypair::generate_ed25519();
        let (reg, op) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let peer = key.public().to_peer_id();
        let sig = sign(&key, CHAIN, reg, op).unwrap();
        assert_eq!(
            verify(CHAIN, reg, op, &[1, 2, 3], &sig),
            Err(BindingError::PeerId(3))
        );
        assert_eq!(
            verify(CHAIN, reg, op, &peer.to_bytes(), &sig[..63]),
            Err(BindingError::SigLen(63))
        );
        // A sha256 PeerId (no embedded key) cannot be bound.
        let hashed = PeerId::random();
        assert_eq!(
            verify(CHAIN, reg, op, &hashed.to_bytes(), &sig),
            Err(BindingError::NoKey(hashed))
        );
    }
}
