//! alloy `sol!` bindings over the committed contract artifacts
//! (`market/abi/*.json`: ABI and creation bytecode, produced by
//! `market/abi/update.sh` from the forge build) and over the shared wire
//! types in `contracts/src/Hal9Types.sol`.

#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    HAL9Token,
    "abi/HAL9Token.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    NeuronRegistry,
    "abi/NeuronRegistry.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    RewardsDistributor,
    "abi/RewardsDistributor.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    ComputationMarket,
    "abi/ComputationMarket.bind.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    HAL9Governor,
    "abi/HAL9Governor.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    TimelockController,
    "abi/TimelockController.json"
);

/// `ComputationMarket.Rates`: the rates fixed for a task at `postTask`.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rates {
    pub burnBps: u16,
    pub treasuryBps: u16,
    pub slashBps: u16,
    pub livenessSlashBps: u16,
    pub challengerRewardBps: u16,
    pub abandonBps: u16,
    pub servedBps: u16,
    pub drawDelay: u16,
    pub commitPeriod: u64,
    pub revealPeriod: u64,
}

/// `ComputationMarket.Task`, the record `getTask` returns, decoded by
/// hand: alloy's `sol!` cannot bind a struct of 28 fields (its tuples stop
/// at 24), so the generated market binding leaves `getTask` out
/// (`abi/ComputationMarket.bind.json`). Field names are the Solidity ones.
/// `status` is `ComputationMarket.Status`: 0 None, 1 Requested, 2 Drawn,
/// 3 Verdict, 4 Challenged, 5 Escalating, 6 Finalized, 7 Refunded.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Task {
    pub submitter: Address,
    pub status: u8,
    pub replicas: u16,
    pub capabilities: u64,
    pub deadline: u64,
    pub drawBlock: u64,
    pub commitEnd: u64,
    pub revealEnd: u64,
    pub challengeEnd: u64,
    pub escalationEnd: u64,
    pub rates: Rates,
    pub fee: U256,
    pub reserve: U256,
    pub resultHash: B256,
    pub outputCidHash: B256,
    pub committedMask: U256,
    pub majorityMask: U256,
    pub minorityMask: U256,
    pub equivocatedMask: U256,
    pub challenger: Address,
    pub bond: U256,
    pub escalationResult: B256,
    pub escCommittedMask: U256,
    pub escalationMask: U256,
    pub escMinorityMask: U256,
    pub escEquivocatedMask: U256,
    pub committee: Vec<Address>,
    pub escalation: Vec<Address>,
}

/// The ABI type of `getTask`'s return value.
const TASK_TYPE: &str = "(address,uint8,uint16,uint64,uint64,uint64,uint64,uint64,uint64,uint64,\
(uint16,uint16,uint16,uint16,uint16,uint16,uint16,uint16,uint64,uint64),\
uint256,uint256,bytes32,bytes32,uint256,uint256,uint256,uint256,address,uint256,bytes32,\
uint256,uint256,uint256,uint256,address[],address[])";

/// Calldata of `getTask(id)`.
pub fn get_task_calldata(id: B256) -> Bytes {
    let mut c = keccak256("getTask(bytes32)")[..4].to_vec();
    c.extend_from_slice(id.as_slice());
    c.into()
}

/// Decodes what `getTask` returned; an error names the field that did not fit.
pub fn decode_task(data: &[u8]) -> Result<Task, String> {
    use alloy::dyn_abi::{DynSolType, DynSolValue};
    let ty: DynSolType = TASK_TYPE.parse().map_err(|e| format!("task type: {e}"))?;
    let v = ty.abi_decode(data).map_err(|e| {
        format!(
            "expected an ABI-encoded Task, found {} bytes: {e}",
            data.len()
        )
    })?;
    let DynSolValue::Tuple(f) = v else {
        return Err("expected a tuple".into());
    };
    let mut it = f.into_iter();
    let mut next = |name: &str| it.next().ok_or_else(|| format!("missing field {name}"));
    fn addr(v: DynSolValue, name: &str) -> Result<Address, String> {
        v.as_address()
            .ok_or_else(|| format!("{name}: expected an address"))
    }
    fn uint<T: TryFrom<U256>>(v: DynSolValue, name: &str) -> Result<T, String> {
        let (u, _) = v
            .as_uint()
            .ok_or_else(|| format!("{name}: expected a uint"))?;
        T::try_from(u).map_err(|_| format!("{name}: {u} out of range"))
    }
    fn word(v: DynSolValue, name: &str) -> Result<B256, String> {
        match v.as_fixed_bytes() {
            Some((b, 32)) => Ok(B256::from_slice(b)),
            _ => Err(format!("{name}: expected bytes32")),
        }
    }
    fn addrs(v: DynSolValue, name: &str) -> Result<Vec<Address>, String> {
        v.as_array()
            .ok_or_else(|| format!("{name}: expected an address[]"))?
            .iter()
            .map(|a| {
                a.as_address()
                    .ok_or_else(|| format!("{name}: expected addresses"))
            })
            .collect()
    }
    let submitter = addr(next("submitter")?, "submitter")?;
    let status = uint(next("status")?, "status")?;
    let replicas = uint(next("replicas")?, "replicas")?;
    let capabilities = uint(next("capabilities")?, "capabilities")?;
    let deadline = uint(next("deadline")?, "deadline")?;
    let draw_block = uint(next("drawBlock")?, "drawBlock")?;
    let commit_end = uint(next("commitEnd")?, "commitEnd")?;
    let reveal_end = uint(next("revealEnd")?, "revealEnd")?;
    let challenge_end = uint(next("challengeEnd")?, "challengeEnd")?;
    let escalation_end = uint(next("escalationEnd")?, "escalationEnd")?;
    let DynSolValue::Tuple(r) = next("rates")? else {
        return Err("rates: expected a tuple".into());
    };
    let mut r = r.into_iter();
    let mut rn = |name: &str| r.next().ok_or_else(|| format!("missing rate {name}"));
    let rates = Rates {
        burnBps: uint(rn("burnBps")?, "burnBps")?,
        treasuryBps: uint(rn("treasuryBps")?, "treasuryBps")?,
        slashBps: uint(rn("slashBps")?, "slashBps")?,
        livenessSlashBps: uint(rn("livenessSlashBps")?, "livenessSlashBps")?,
        challengerRewardBps: uint(rn("challengerRewardBps")?, "challengerRewardBps")?,
        abandonBps: uint(rn("abandonBps")?, "abandonBps")?,
        servedBps: uint(rn("servedBps")?, "servedBps")?,
        drawDelay: uint(rn("drawDelay")?, "drawDelay")?,
        commitPeriod: uint(rn("commitPeriod")?, "commitPeriod")?,
        revealPeriod: uint(rn("revealPeriod")?, "revealPeriod")?,
    };
    Ok(Task {
        submitter,
        status,
        replicas,
        capabilities,
        deadline,
        drawBlock: draw_block,
        commitEnd: commit_end,
        revealEnd: reveal_end,
        challengeEnd: challenge_end,
        escalationEnd: escalation_end,
        rates,
        fee: uint(next("fee")?, "fee")?,
        reserve: uint(next("reserve")?, "reserve")?,
        resultHash: word(next("resultHash")?, "resultHash")?,
        outputCidHash: word(next("outputCidHash")?, "outputCidHash")?,
        committedMask: uint(next("committedMask")?, "committedMask")?,
        majorityMask: uint(next("majorityMask")?, "majorityMask")?,
        minorityMask: uint(next("minorityMask")?, "minorityMask")?,
        equivocatedMask: uint(next("equivocatedMask")?, "equivocatedMask")?,
        challenger: addr(next("challenger")?, "challenger")?,
        bond: uint(next("bond")?, "bond")?,
        escalationResult: word(next("escalationResult")?, "escalationResult")?,
        escCommittedMask: uint(next("escCommittedMask")?, "escCommittedMask")?,
        escalationMask: uint(next("escalationMask")?, "escalationMask")?,
        escMinorityMask: uint(next("escMinorityMask")?, "escMinorityMask")?,
        escEquivocatedMask: uint(next("escEquivocatedMask")?, "escEquivocatedMask")?,
        committee: addrs(next("committee")?, "committee")?,
        escalation: addrs(next("escalation")?, "escalation")?,
    })
}

/// The wire types shared with the contracts, from the one Solidity file that
/// defines them.
pub mod types {
    alloy::sol!(
        #[sol(all_derives)]
        "../contracts/src/Hal9Types.sol"
    );
}

impl From<types::TaskSpec> for ComputationMarket::TaskSpec {
    fn from(s: types::TaskSpec) -> Self {
        Self {
            programCid: s.programCid,
            inputHash: s.inputHash,
            inputCid: s.inputCid,
            replicas: s.replicas,
            fuelLimit: s.fuelLimit,
            capabilities: s.capabilities,
            submitter: s.submitter,
            nonce: s.nonce,
            deadline: s.deadline,
        }
    }
}

impl From<types::Reveal> for ComputationMarket::Reveal {
    fn from(r: types::Reveal) -> Self {
        Self {
            index: r.index,
            resultHash: r.resultHash,
            outputCidHash: r.outputCidHash,
            salt: r.salt,
        }
    }
}

impl From<ComputationMarket::Reveal> for types::Reveal {
    fn from(r: ComputationMarket::Reveal) -> Self {
        Self {
            index: r.index,
            resultHash: r.resultHash,
            outputCidHash: r.outputCidHash,
            salt: r.salt,
        }
    }
}

impl From<types::Dissent> for ComputationMarket::Dissent {
    fn from(d: types::Dissent) -> Self {
        Self {
            resultHash: d.resultHash,
            outputCid: d.outputCid,
            signature: d.signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn decode_task_refuses_garbage_without_panicking() {
        use super::decode_task;
        assert!(decode_task(&[]).is_err());
        assert!(decode_task(&[0u8; 31]).is_err());
        // An offset pointing far outside the data.
        let mut bad = vec![0u8; 64];
        bad[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(decode_task(&bad).is_err());
        // Pseudo-random bytes of many lengths.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in [32usize, 100, 1_000, 1_184, 2_048] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode_task(&data);
        }
    }

    #[test]
    fn get_task_calldata_is_selector_and_id() {
        let id = alloy::primitives::B256::repeat_byte(7);
        let c = super::get_task_calldata(id);
        assert_eq!(
            &c[..4],
            &alloy::primitives::keccak256("getTask(bytes32)")[..4]
        );
        assert_eq!(&c[4..], id.as_slice());
    }

    /// The committed ABIs must equal the current forge build when one exists
    /// (after a contract change: `forge build` then `market/abi/update.sh`).
    #[test]
    fn committed_abi_matches_forge_build() {
        // Runtime first: a test binary reused from a shared target directory
        // may have been compiled in another checkout.
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let pinned = std::fs::read_to_string(root.join("abi/PROTOCOL")).unwrap();
        assert_eq!(
            pinned.trim(),
            "1.1",
            "abi/PROTOCOL names the protocol the ABIs are"
        );
        let committed = std::fs::read_to_string(root.join("abi/ComputationMarket.json")).unwrap();
        assert!(
            committed.contains("\"commitMany\""),
            "abi/PROTOCOL says 1.1 but the committed market ABI is not v1.1: run market/abi/update.sh"
        );
        let pairs = [
            ("HAL9Token", "HAL9Token.sol"),
            ("NeuronRegistry", "NeuronRegistry.sol"),
            ("RewardsDistributor", "RewardsDistributor.sol"),
            ("ComputationMarket", "ComputationMarket.sol"),
            ("HAL9Governor", "HAL9Governor.sol"),
            ("TimelockController", "TimelockController.sol"),
        ];
        let mut checked = 0;
        for (name, file) in pairs {
            let built = root
                .join("../contracts/out")
                .join(file)
                .join(format!("{name}.json"));
            let Ok(built) = std::fs::read_to_string(&built) else {
                continue;
            };
            let committed =
                std::fs::read_to_string(root.join("abi").join(format!("{name}.json"))).unwrap();
            let built: serde_json::Value = serde_json::from_str(&built).unwrap();
            let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
            assert_eq!(
                built["abi"], committed["abi"],
                "{name}: committed ABI is stale; run market/abi/update.sh"
            );
            checked += 1;
        }
        let full: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("abi/ComputationMarket.json")).unwrap(),
        )
        .unwrap();
        let bind: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("abi/ComputationMarket.bind.json")).unwrap(),
        )
        .unwrap();
        let without: Vec<&serde_json::Value> = full["abi"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] != "getTask")
            .collect();
        assert_eq!(
            bind["abi"].as_array().unwrap().iter().collect::<Vec<_>>(),
            without,
            "abi/ComputationMarket.bind.json is stale; run market/abi/update.sh"
        );
        if checked == 0 {
            eprintln!("no forge build in contracts/out: committed ABIs not cross-checked");
        }
    }
}
