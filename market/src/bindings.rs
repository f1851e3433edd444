//! alloy `sol!` bindings over the committed contract artifacts
//! (`market/abi/*.json`: ABI and creation bytecode, produced by
//! `market/abi/update.sh` from the forge build) and over the shared wire
//! types in `contracts/src/Hal9Types.sol`.

#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

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
    "abi/ComputationMarket.json"
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

    /// The committed ABIs must equal the current forge build when one exists
    /// (after a contract change: `forge build` then `market/abi/update.sh`).
    #[test]
    fn committed_abi_matches_forge_build() {
        // Runtime first: a test binary reused from a shared target directory
        // may have been compiled in another checkout.
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        // The node is pinned to the protocol v1.0 artifacts while contracts/src
        // holds v1.1 (docs/protocol-v1.1.md): until the node follows v1.1, the
        // pin is checked instead of the match.
        let pinned = std::fs::read_to_string(root.join("abi/PROTOCOL")).unwrap();
        if pinned.trim() == "1.0" {
            let market = root.join("../contracts/out/ComputationMarket.sol/ComputationMarket.json");
            if let Ok(built) = std::fs::read_to_string(market) {
                assert!(
                    built.contains("\"commitMany\""),
                    "abi/PROTOCOL pins v1.0 but the contracts are not v1.1: run market/abi/update.sh"
                );
            }
            let committed =
                std::fs::read_to_string(root.join("abi/ComputationMarket.json")).unwrap();
            assert!(
                !committed.contains("\"commitMany\""),
                "abi/PROTOCOL says 1.0 but the committed market ABI is v1.1: update abi/PROTOCOL"
            );
            eprintln!("committed ABIs pinned to protocol v1.0 (the node does not follow v1.1 yet)");
            return;
        }
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
        if checked == 0 {
            eprintln!("no forge build in contracts/out: committed ABIs not cross-checked");
        }
    }
}
