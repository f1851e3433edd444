//! Reveals gossiped between committee members in chain mode (protocol v1.1).
//!
//! After the commit phase closed on chain, a member gossips on
//! [`ATTEST_TOPIC`] the opening of its on-chain commitment (result, output
//! CID, salt) together with its EIP-712 `Result(taskId, resultHash,
//! outputCid)` signature by the operator key. Whoever holds a quorum of
//! matching ones relays them as the `reveals` of `submitVerdict`; the
//! others' openings mark their members as the minority. The signature
//! names the member (the gossip validator recovers it) and is what an
//! equivocation proof is made of; the salt is checked against the chain's
//! stored commitment by the relayer before it is used.
//!
//! Wire format (big-endian, no optional fields, no trailing bytes):
//! `version:u16 round:u8 task:32 result:32 salt:32 cid_len:u8 cid signature:65`.

use alloy::primitives::{Address, B256};

/// Gossip topic of attestations.
pub const ATTEST_TOPIC: &str = "hal9/attest/2";
/// Format version this node speaks.
pub const ATTEST_VERSION: u16 = 2;
/// Longest output CID accepted (the contract's `MAX_CID_LEN`).
pub const MAX_CID_BYTES: usize = 128;
/// Largest encoded attestation.
pub const MAX_ATTEST_BYTES: usize = 2 + 1 + 32 + 32 + 32 + 1 + MAX_CID_BYTES + 65;
const FIXED: usize = 2 + 1 + 32 + 32 + 32 + 1;

/// One member's signed statement of its result for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// 0 for the primary committee, 1 for the escalation committee of a challenge.
    pub round: u8,
    /// The task id on chain.
    pub task: B256,
    /// keccak256 of the output.
    pub result: B256,
    /// Salt of the member's on-chain commitment.
    pub salt: B256,
    /// Binary CID of the output.
    pub cid: Vec<u8>,
    /// 65-byte `r || s || v` EIP-712 `Result` signature of the operator key.
    pub signature: [u8; 65],
}

/// Why an attestation message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    /// Too big, too short, or trailing bytes.
    #[error("malformed attestation: {0}")]
    Malformed(String),
    /// Newer format.
    #[error("unsupported attestation version {0}")]
    Unsupported(u16),
    /// The signature does not recover.
    #[error("attestation signature does not recover: {0}")]
    Signature(String),
}

impl Attestation {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.cid.len() + 65);
        out.extend_from_slice(&ATTEST_VERSION.to_be_bytes());
        out.push(self.round);
        out.extend_from_slice(self.task.as_slice());
        out.extend_from_slice(self.result.as_slice());
        out.extend_from_slice(self.salt.as_slice());
        out.push(self.cid.len() as u8);
        out.extend_from_slice(&self.cid);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes untrusted bytes (size checked first).
    pub fn decode(data: &[u8]) -> Result<Self, AttestError> {
        if data.len() > MAX_ATTEST_BYTES {
            return Err(AttestError::Malformed(format!(
                "expected at most {MAX_ATTEST_BYTES} bytes, found {}",
                data.len()
            )));
        }
        if data.len() < 2 {
            return Err(AttestError::Malformed("missing version".into()));
        }
        let version = u16::from_be_bytes([data[0], data[1]]);
        if version != ATTEST_VERSION {
            return Err(AttestError::Unsupported(version));
        }
        let fixed = FIXED;
        if data.len() < fixed {
            return Err(AttestError::Malformed(format!(
                "expected at least {fixed} bytes, found {}",
                data.len()
            )));
        }
        let round = data[2];
        if round > 1 {
            return Err(AttestError::Malformed(format!(
                "expected round 0 or 1, found {round}"
            )));
        }
        let task = B256::from_slice(&data[3..35]);
        let result = B256::from_slice(&data[35..67]);
        let salt = B256::from_slice(&data[67..99]);
        let cid_len = data[99] as usize;
        if cid_len == 0 || cid_len > MAX_CID_BYTES {
            return Err(AttestError::Malformed(format!(
                "expected a CID of 1 to {MAX_CID_BYTES} bytes, found {cid_len}"
            )));
        }
        let want = fixed + cid_len + 65;
        if data.len() != want {
            return Err(AttestError::Malformed(format!(
                "expected {want} bytes for a {cid_len}-byte CID, found {}",
                data.len()
            )));
        }
        let cid = data[fixed..fixed + cid_len].to_vec();
        let mut signature = [0u8; 65];
        signature.copy_from_slice(&data[fixed + cid_len..]);
        Ok(Self {
            round,
            task,
            result,
            salt,
            cid,
            signature,
        })
    }

    /// The operator address that signed it, for the market at `market` on `chain_id`.
    pub fn signer(&self, chain_id: u64, market: Address) -> Result<Address, AttestError> {
        hal9_market::eip712::recover_result_signer(
            chain_id,
            market,
            self.task,
            self.result,
            &self.cid,
            &self.signature,
        )
        .map_err(|e| AttestError::Signature(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    fn signed(key: &PrivateKeySigner, market: Address) -> Attestation {
        let task = B256::repeat_byte(1);
        let result = B256::repeat_byte(2);
        let cid = vec![1, 0x55, 0x12, 0x20, 9, 9, 9];
        let sig = hal9_market::eip712::sign_result(key, 31337, market, task, result, &cid).unwrap();
        Attestation {
            round: 0,
            task,
            result,
            salt: B256::repeat_byte(3),
            cid,
            signature: sig.as_ref().try_into().unwrap(),
        }
    }

    #[test]
    fn roundtrip_and_recover() {
        let key = PrivateKeySigner::random();
        let market = Address::repeat_byte(7);
        let a = signed(&key, market);
        let back = Attestation::decode(&a.encode()).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.signer(31337, market).unwrap(), key.address());
        // Another chain or market recovers someone else.
        assert_ne!(back.signer(1, market).unwrap(), key.address());
        assert_ne!(
            back.signer(31337, Address::repeat_byte(8)).unwrap(),
            key.address()
        );
    }

    #[test]
    fn malformed_inputs_are_refused() {
        let key = PrivateKeySigner::random();
        let a = signed(&key, Address::ZERO).encode();
        for cut in [0, 1, 2, 10, 67, 99, 100, a.len() - 1] {
            assert!(Attestation::decode(&a[..cut]).is_err(), "cut {cut}");
        }
        let mut long = a.clone();
        long.push(0);
        assert!(Attestation::decode(&long).is_err());
        let mut v1 = a.clone();
        v1[1] = 1;
        assert_eq!(Attestation::decode(&v1), Err(AttestError::Unsupported(1)));
        let mut round = a.clone();
        round[2] = 5;
        assert!(Attestation::decode(&round).is_err());
        assert!(Attestation::decode(&vec![0u8; MAX_ATTEST_BYTES + 1]).is_err());
    }
}
