//! Task ids and EIP-712 signed results, byte-identical to `ComputationMarket`:
//! domain (name "hal9", version "1", chain id, market address) and
//! `Result(bytes32 taskId,bytes32 resultHash,bytes outputCid)`
//! (`RESULT_TYPEHASH`) with the output CID in binary form. A member signs a
//! `Result` when it shares its result off chain (never before commitEnd);
//! two of them by one member over different (result, CID) are an
//! equivocation proof (`ComputationMarket.proveEquivocation`).

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::{Signature, SignerSync, local::PrivateKeySigner};
use alloy::sol_types::{Eip712Domain, SolStruct, SolValue, eip712_domain};

use crate::bindings::types::TaskSpec;
use crate::error::{MarketError, Result};

/// The EIP-712 struct, in its own module: its Solidity name `Result` is
/// part of the type hash and would shadow `std::result::Result` here.
mod typed {
    alloy::sol! {
        /// What a committee member signs for a task (protocol v1.1).
        #[derive(Debug, PartialEq, Eq)]
        struct Result {
            bytes32 taskId;
            bytes32 resultHash;
            bytes outputCid;
        }
    }
}

/// The signed `Result(bytes32 taskId,bytes32 resultHash,bytes outputCid)`.
pub use typed::Result as SignedResult;

/// EIP-712 domain name.
pub const DOMAIN_NAME: &str = "hal9";
/// EIP-712 domain version.
pub const DOMAIN_VERSION: &str = "1";

/// Task id: keccak256(abi.encode(spec)).
pub fn task_id(spec: &TaskSpec) -> B256 {
    keccak256(spec.abi_encode())
}

/// The EIP-712 domain of the market at `market` on `chain_id`.
pub fn domain(chain_id: u64, market: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: market,
    }
}

/// The digest a member signs (what `ComputationMarket.resultDigest` returns).
pub fn result_digest(
    chain_id: u64,
    market: Address,
    task: B256,
    result: B256,
    output_cid: &[u8],
) -> B256 {
    let a = SignedResult {
        taskId: task,
        resultHash: result,
        outputCid: Bytes::copy_from_slice(output_cid),
    };
    a.eip712_signing_hash(&domain(chain_id, market))
}

/// Signs a `Result`; returns the 65-byte `r || s || v` (v = 27/28) the contract takes.
pub fn sign_result(
    signer: &PrivateKeySigner,
    chain_id: u64,
    market: Address,
    task: B256,
    result: B256,
    output_cid: &[u8],
) -> Result<Bytes> {
    let digest = result_digest(chain_id, market, task, result, output_cid);
    let sig = signer
        .sign_hash_sync(&digest)
        .map_err(|e| MarketError::Signature(e.to_string()))?;
    Ok(Bytes::copy_from_slice(&sig.as_bytes()))
}

/// Recovers the signer of a 65-byte signed `Result`.
pub fn recover_result_signer(
    chain_id: u64,
    market: Address,
    task: B256,
    result: B256,
    output_cid: &[u8],
    signature: &[u8],
) -> Result<Address> {
    let sig = Signature::try_from(signature).map_err(|e| {
        MarketError::Signature(format!(
            "expected a 65-byte r||s||v signature, found {} bytes: {e}",
            signature.len()
        ))
    })?;
    let digest = result_digest(chain_id, market, task, result, output_cid);
    sig.recover_address_from_prehash(&digest)
        .map_err(|e| MarketError::Signature(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{U256, address, b256};

    #[test]
    fn typehash_matches_contract_string() {
        assert_eq!(
            SignedResult::eip712_encode_type(),
            "Result(bytes32 taskId,bytes32 resultHash,bytes outputCid)"
        );
    }

    #[test]
    fn sign_and_recover_round_trip_and_bind_every_field() {
        let signer = PrivateKeySigner::random();
        let market = address!("0x00000000000000000000000000000000000000aa");
        let task = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");
        let res = b256!("0x2222222222222222222222222222222222222222222222222222222222222222");
        let sig = sign_result(&signer, 31337, market, task, res, b"cid").unwrap();
        assert_eq!(sig.len(), 65);
        assert_eq!(
            recover_result_signer(31337, market, task, res, b"cid", &sig).unwrap(),
            signer.address()
        );
        // Another chain, contract, task, result or CID recovers someone else.
        let other = Address::with_last_byte(1);
        for got in [
            recover_result_signer(1, market, task, res, b"cid", &sig),
            recover_result_signer(31337, other, task, res, b"cid", &sig),
            recover_result_signer(31337, market, res, res, b"cid", &sig),
            recover_result_signer(31337, market, task, task, b"cid", &sig),
            recover_result_signer(31337, market, task, res, b"cie", &sig),
        ] {
            assert_ne!(got.unwrap(), signer.address());
        }
        assert!(recover_result_signer(31337, market, task, res, b"cid", &sig[..64]).is_err());
    }

    #[test]
    fn task_id_changes_with_every_field() {
        let base = TaskSpec {
            programCid: Bytes::from_static(b"prog"),
            inputHash: B256::ZERO,
            inputCid: Bytes::new(),
            replicas: 3,
            fuelLimit: 1,
            capabilities: 0,
            submitter: Address::ZERO,
            nonce: U256::ZERO,
            deadline: 1,
        };
        let id = task_id(&base);
        let mut s = base.clone();
        s.nonce = U256::from(1u64);
        assert_ne!(task_id(&s), id);
        let mut s = base.clone();
        s.replicas = 4;
        assert_ne!(task_id(&s), id);
        assert_eq!(task_id(&base.clone()), id);
    }
}
