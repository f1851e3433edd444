//! Protocol v1.1 commit–reveal and peer binding, byte-identical to the
//! contracts (docs/protocol-v1.1.md "Commitments and signed results" and
//! "Peer binding").
//!
//! - A committee member stores [`commitment`] on chain with `commitMany`
//!   before commitEnd and, after it, hands a [`Reveal`] (the opening) to the
//!   relayer, who submits it with the verdict.
//! - A neuron registers with an ed25519 signature by its libp2p key over
//!   [`peer_binding_message`]; nodes verify it (the chain only stores it).

use alloy::primitives::{Address, B256, U256, keccak256};

pub use crate::bindings::types::Reveal;

/// `NeuronRegistry.PEER_BINDING_TAG`: the first bytes of a binding message.
pub const PEER_BINDING_TAG: &[u8] = b"hal9-peer-binding/v1";
/// `NeuronRegistry.MAX_PEER_ID_LEN`: longest PeerId (multihash bytes) the registry takes.
pub const MAX_PEER_ID_LEN: usize = 64;
/// `NeuronRegistry.PEER_SIG_LEN`: length of the ed25519 binding signature.
pub const PEER_SIG_LEN: usize = 64;

/// The commitment a member stores for a task:
/// `keccak256(abi.encodePacked(taskId, resultHash, outputCidHash, salt, member))`
/// (32 + 32 + 32 + 32 + 20 bytes), what `ComputationMarket.commitmentOf` returns.
/// `output_cid_hash` is `keccak256(outputCid)`; `salt` is 32 random bytes the
/// member keeps secret until it reveals.
pub fn commitment(
    task: B256,
    result: B256,
    output_cid_hash: B256,
    salt: B256,
    member: Address,
) -> B256 {
    let mut buf = [0u8; 148];
    buf[..32].copy_from_slice(task.as_slice());
    buf[32..64].copy_from_slice(result.as_slice());
    buf[64..96].copy_from_slice(output_cid_hash.as_slice());
    buf[96..128].copy_from_slice(salt.as_slice());
    buf[128..].copy_from_slice(member.as_slice());
    keccak256(buf)
}

/// The bytes the libp2p key of `peer_id` signs to bind it to `operator` on
/// the registry at `registry`: `"hal9-peer-binding/v1"` ‖ chain id (32 bytes,
/// big-endian) ‖ registry (20) ‖ operator (20) ‖ peer id (multihash bytes),
/// what `NeuronRegistry.peerBindingMessage(operator, peerId)` returns.
pub fn peer_binding_message(
    chain_id: u64,
    registry: Address,
    operator: Address,
    peer_id: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(PEER_BINDING_TAG.len() + 32 + 20 + 20 + peer_id.len());
    m.extend_from_slice(PEER_BINDING_TAG);
    m.extend_from_slice(&U256::from(chain_id).to_be_bytes::<32>());
    m.extend_from_slice(registry.as_slice());
    m.extend_from_slice(operator.as_slice());
    m.extend_from_slice(peer_id);
    m
}

/// The reveal of member `index` (its position in `committeeOf` or
/// `escalationOf`) opening [`commitment`]`(task, result, keccak256(output_cid), salt, member)`.
pub fn reveal(index: u16, result: B256, output_cid: &[u8], salt: B256) -> Reveal {
    Reveal {
        index,
        resultHash: result,
        outputCidHash: keccak256(output_cid),
        salt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_binds_every_field() {
        let (t, r, c, s) = (
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
            B256::repeat_byte(4),
        );
        let m = Address::repeat_byte(5);
        let base = commitment(t, r, c, s, m);
        let x = B256::repeat_byte(9);
        for other in [
            commitment(x, r, c, s, m),
            commitment(t, x, c, s, m),
            commitment(t, r, x, s, m),
            commitment(t, r, c, x, m),
            commitment(t, r, c, s, Address::repeat_byte(6)),
            // Swapping two fields is another commitment too.
            commitment(r, t, c, s, m),
        ] {
            assert_ne!(other, base);
        }
        // The packed layout: 4 words then 20 address bytes, no padding.
        let mut packed = Vec::new();
        for w in [t, r, c, s] {
            packed.extend_from_slice(w.as_slice());
        }
        packed.extend_from_slice(m.as_slice());
        assert_eq!(packed.len(), 148);
        assert_eq!(keccak256(&packed), base);
    }

    #[test]
    fn binding_message_layout() {
        let reg = Address::repeat_byte(0xaa);
        let op = Address::repeat_byte(0xbb);
        let m = peer_binding_message(31337, reg, op, b"\x00\x24peer");
        assert_eq!(m.len(), 20 + 32 + 20 + 20 + 6);
        assert!(m.starts_with(b"hal9-peer-binding/v1"));
        assert_eq!(&m[20..50], &[0u8; 30][..]);
        assert_eq!(&m[50..52], &31337u16.to_be_bytes());
        assert_eq!(&m[52..72], reg.as_slice());
        assert_eq!(&m[72..92], op.as_slice());
        assert_eq!(&m[92..], b"\x00\x24peer");
        assert_ne!(m, peer_binding_message(1, reg, op, b"\x00\x24peer"));
        assert_ne!(m, peer_binding_message(31337, op, reg, b"\x00\x24peer"));
    }

    #[test]
    fn reveal_opens_the_commitment_of_the_same_cid() {
        let rv = reveal(2, B256::repeat_byte(7), b"cid", B256::repeat_byte(8));
        assert_eq!(rv.index, 2);
        assert_eq!(rv.outputCidHash, keccak256(b"cid"));
        let m = Address::repeat_byte(1);
        let t = B256::repeat_byte(3);
        assert_eq!(
            commitment(t, rv.resultHash, rv.outputCidHash, rv.salt, m),
            commitment(
                t,
                B256::repeat_byte(7),
                keccak256(b"cid"),
                B256::repeat_byte(8),
                m
            )
        );
    }
}
