//! Reveals gossiped between committee members in chain mode (protocol v1.1).
//!
//! After the commit phase closed on chain, a member gossips on
//! [`ATTEST_TOPIC`] the opening of its on-chain commitment (result, output
//! CID, salt) together with its EIP-712 `Result(taskId, resultHash,
//! outputCid)` signature by the operator key. Whoever holds a quorum of
//! matching ones relays them as the `reveals` of `submitVerdict`; the
//! others' openings mark their members as the minority. The signature
//! names the member (the gossip validator recovers it) and is what an
//! equivocation proof is made of. The contract fixes that type, so the
//! salt is signed apart by the same key ([`salt_digest`]): a copy whose
//! salt was altered in transit no longer verifies and is rejected at the
//! gossip validator, so it can neither take the place of the real opening
//! nor fill a relayer's slots for it. The relayer still checks the salt
//! against the chain's stored commitment before it uses it.
//!
//! Wire format (big-endian, no optional fields, no trailing bytes):
//! `version:u16 round:u8 task:32 result:32 salt:32 cid_len:u8 cid
//! signature:65 salt_signature:65`.

use alloy::primitives::{Address, B256, Signature, keccak256};

/// Gossip topic of attestations.
pub const ATTEST_TOPIC: &str = "hal9/attest/3";
/// Format version this node speaks.
pub const ATTEST_VERSION: u16 = 3;
/// Longest output CID accepted (the contract's `MAX_CID_LEN`).
pub const MAX_CID_BYTES: usize = 128;
/// Largest encoded attestation.
pub const MAX_ATTEST_BYTES: usize = 2 + 1 + 32 + 32 + 32 + 1 + MAX_CID_BYTES + 65 + 65;
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
    /// 65-byte signature of [`salt_digest`] by the same key.
    pub salt_signature: [u8; 65],
}

/// What the operator key signs to vouch for the salt of its reveal:
/// `keccak256("hal9/reveal-salt/1" || chain_id:u64 BE || market || round
/// || task || salt)`, signed as a plain 32-byte hash (never a transaction,
/// never an EIP-712 message of the contracts).
pub fn salt_digest(chain_id: u64, market: Address, round: u8, task: B256, salt: B256) -> B256 {
    keccak256(
        [
            b"hal9/reveal-salt/1".as_slice(),
            &chain_id.to_be_bytes(),
            market.as_slice(),
            &[round],
            task.as_slice(),
            salt.as_slice(),
        ]
        .concat(),
    )
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
    /// The salt is not signed by the key that signed the result.
    #[error(
        "the salt is signed by {salt_signer}, the result by {result_signer}: the salt was altered"
    )]
    Salt {
        /// Who signed the result.
        result_signer: Address,
        /// Whom the salt signature recovers to.
        salt_signer: Address,
    },
}

impl Attestation {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.cid.len() + 130);
        out.extend_from_slice(&ATTEST_VERSION.to_be_bytes());
        out.push(self.round);
        out.extend_from_slice(self.task.as_slice());
        out.extend_from_slice(self.result.as_slice());
        out.extend_from_slice(self.salt.as_slice());
        out.push(self.cid.len() as u8);
        out.extend_from_slice(&self.cid);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.salt_signature);
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
        let want = fixed + cid_len + 130;
        if data.len() != want {
            return Err(AttestError::Malformed(format!(
                "expected {want} bytes for a {cid_len}-byte CID, found {}",
                data.len()
            )));
        }
        let cid = data[fixed..fixed + cid_len].to_vec();
        let mut signature = [0u8; 65];
        signature.copy_from_slice(&data[fixed + cid_len..fixed + cid_len + 65]);
        let mut salt_signature = [0u8; 65];
        salt_signature.copy_from_slice(&data[fixed + cid_len + 65..]);
        Ok(Self {
            round,
            task,
            result,
            salt,
            cid,
            signature,
            salt_signature,
        })
    }

    /// The operator address that signed it, for the market at `market` on
    /// `chain_id`: the `Result` signature names it, and the salt signature
    /// must recover to the same address (else the salt was altered).
    pub fn signer(&self, chain_id: u64, market: Address) -> Result<Address, AttestError> {
        let signer = hal9_market::eip712::recover_result_signer(
            chain_id,
            market,
            self.task,
            self.result,
            &self.cid,
            &self.signature,
        )
        .map_err(|e| AttestError::Signature(e.to_string()))?;
        let digest = salt_digest(chain_id, market, self.round, self.task, self.salt);
        let salt_signer = Signature::try_from(&self.salt_signature[..])
            .and_then(|s| s.recover_address_from_prehash(&digest))
            .map_err(|e| AttestError::Signature(format!("salt signature: {e}")))?;
        if salt_signer != signer {
            return Err(AttestError::Salt {
                result_signer: signer,
                salt_signer,
            });
        }
        Ok(signer)
    }
}

impl Attestation {
    /// A round-0 reveal of task `0x01…` with salt `0x03…`, both signatures
    /// made by `key` (tests of this module and of the gossip validators).
    #[cfg(test)]
    pub(crate) fn signed_for_tests(
        key: &alloy::signers::local::PrivateKeySigner,
        chain_id: u64,
        market: Address,
        result: B256,
        cid: Vec<u8>,
    ) -> Self {
        let (task, salt) = (B256::repeat_byte(1), B256::repeat_byte(3));
        let sig =
            hal9_market::eip712::sign_result(key, chain_id, market, task, result, &cid).unwrap();
        Self {
            round: 0,
            task,
            result,
            salt,
            cid,
            signature: sig.as_ref().try_into().unwrap(),
            salt_signature: sign_salt(key, chain_id, market, 0, task, salt).unwrap(),
        }
    }
}

/// Signs the salt of a reveal with the operator key (see [`salt_digest`]).
pub fn sign_salt(
    key: &alloy::signers::local::PrivateKeySigner,
    chain_id: u64,
    market: Address,
    round: u8,
    task: B256,
    salt: B256,
) -> Result<[u8; 65], AttestError> {
    use alloy::signers::SignerSync;
    let sig = key
        .sign_hash_sync(&salt_digest(chain_id, market, round, task, salt))
        .map_err(|e| AttestError::Signature(e.to_string()))?;
    Ok(sig.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    fn signed(key: &PrivateKeySigner, market: Address) -> Attestation {
        let cid = vec![1, 0x55, 0x12, 0x20, 9, 9, 9];
        Attestation::signed_for_tests(key, 31337, market, B256::repeat_byte(2), cid)
    }

    #[test]
    fn an_altered_salt_no_longer_verifies() {
        let (key, market) = (PrivateKeySigner::random(), Address::repeat_byte(7));
        let real = signed(&key, market);
        // A relay swaps the salt (the Result signature alone would still
        // name the member) to fill the relayer's slots with openings that
        // do not open the commitment.
        let mut altered = real.clone();
        altered.salt = B256::repeat_byte(0xee);
        let altered = Attestation::decode(&altered.encode()).unwrap();
        assert!(
            matches!(altered.signer(31337, market), Err(AttestError::Salt { result_signer, .. }) if result_signer == key.address()),
            "{:?}",
            altered.signer(31337, market)
        );
        // ... or re-signs the salt with its own key.
        let mut resigned = real.clone();
        resigned.salt = B256::repeat_byte(0xee);
        resigned.salt_signature = sign_salt(
            &PrivateKeySigner::random(),
            31337,
            market,
            0,
            real.task,
            resigned.salt,
        )
        .unwrap();
        assert!(matches!(
            resigned.signer(31337, market),
            Err(AttestError::Salt { .. })
        ));
        // A salt signature for another round, task or market does not carry over.
        let mut other_round = real.clone();
        other_round.round = 1;
        assert!(other_round.signer(31337, market).is_err());
        // Garbage is an error, never a panic.
        let mut garbage = real.clone();
        garbage.salt_signature = [0xff; 65];
        assert!(garbage.signer(31337, market).is_err());
        assert_eq!(real.signer(31337, market).unwrap(), key.address());
    }

    #[test]
    fn roundtrip_and_recover() {
        let key = PrivateKeySigner::random();
        let market = Address::repeat_byte(7);
        let a = signed(&key, market);
        let back = Attestation::decode(&a.encode()).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.signer(31337, market).unwrap(), key.address());
        // On another chain or market it names nobody (the two signatures
        // recover to two different addresses), never this key.
        assert!(back.signer(1, market).is_err());
        assert!(back.signer(31337, Address::repeat_byte(8)).is_err());
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
        let mut v2 = a.clone();
        v2[1] = 2;
        assert_eq!(Attestation::decode(&v2), Err(AttestError::Unsupported(2)));
        let mut round = a.clone();
        round[2] = 5;
        assert!(Attestation::decode(&round).is_err());
        assert!(Attestation::decode(&vec![0u8; MAX_ATTEST_BYTES + 1]).is_err());
    }
}
