//! Settlement chain settings (the `[chain]` section of the node config).

use serde::{Deserialize, Serialize};

/// Settlement chain settings (chain mode).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint (http). Empty: standalone mode, committees from
    /// the genesis file and nothing settled.
    pub rpc_url: String,
    /// Contract addresses (JSON written by deployment), relative to the home.
    pub deployment: String,
    /// Operator secp256k1 key: an encrypted keystore, or a plaintext
    /// devnet key file; relative to the home.
    pub operator_key: String,
    /// Environment variable holding the keystore passphrase.
    pub passphrase_env: String,
    /// Blocks an event must be buried under before the node acts on it.
    pub confirmations: u64,
    /// How often the chain is polled for new blocks, in ms.
    pub poll_interval_ms: u64,
    /// A majority member of rank k submits the verdict after k times this
    /// delay unless it has landed (rank 0 at once), in ms.
    pub takeover_delay_ms: u64,
    /// Challenge settled verdicts that this node's own execution contradicts.
    pub challenge: bool,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            rpc_url: String::new(),
            deployment: "deployment.json".into(),
            operator_key: "operator.json".into(),
            passphrase_env: "HAL9_OPERATOR_PASSPHRASE".into(),
            confirmations: 1,
            poll_interval_ms: 1000,
            takeover_delay_ms: 4000,
            challenge: true,
        }
    }
}

impl ChainConfig {
    /// Whether chain mode is on.
    pub fn enabled(&self) -> bool {
        !self.rpc_url.is_empty()
    }
}
