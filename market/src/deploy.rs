//! Deploys and wires the hal9 contracts from the committed bytecode, in the
//! same order and with the same defaults as `contracts/script/DeployBase.sol`,
//! and reads/writes the deployment JSON the node loads (the same file the
//! forge script `contracts/script/Deploy.s.sol` writes).

use std::path::Path;

use alloy::primitives::{Address, U256, aliases::U48};
use alloy::providers::Provider;
use serde::{Deserialize, Serialize};

use crate::bindings::{
    ComputationMarket, HAL9Governor, HAL9Token, NeuronRegistry, RewardsDistributor,
    TimelockController,
};
use crate::client::{Margin, send};
use crate::error::{MarketError, Result};

/// EIP-170 limit on a contract's runtime code, in bytes (0x6000). Every
/// contract of the set fits it, so a stock chain takes the deployment:
/// `ComputationMarket` (22,439 bytes) runs its finalize, challenge and
/// equivocation paths in the `MarketSettlement` it creates in its
/// constructor (9,680 bytes), which adds no deployment transaction.
pub const EIP170_CODE_SIZE_LIMIT: usize = 0x6000;

const ETHER: u128 = 1_000_000_000_000_000_000;

fn tokens(n: u128) -> U256 {
    U256::from(n) * U256::from(ETHER)
}

/// Addresses of a deployment, as JSON: `{"chainId", "deployBlock", "token",
/// "registry", "rewards", "market", "governor", "timelock"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain id deployed on.
    pub chain_id: u64,
    /// A block at or before the first deployment transaction (scan events from here).
    pub deploy_block: u64,
    /// HAL9Token.
    pub token: Address,
    /// NeuronRegistry.
    pub registry: Address,
    /// RewardsDistributor.
    pub rewards: Address,
    /// ComputationMarket.
    pub market: Address,
    /// HAL9Governor.
    pub governor: Address,
    /// TimelockController (owner of the parameters, holder of the treasury).
    pub timelock: Address,
}

impl Deployment {
    /// Reads a deployment JSON file.
    pub fn load(path: &Path) -> Result<Self> {
        let err = |reason: String| MarketError::DeploymentFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        if text.len() > 64 * 1024 {
            return Err(err(format!(
                "expected at most 65536 bytes, found {}",
                text.len()
            )));
        }
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }

    /// Writes the deployment JSON file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let err = |reason: String| MarketError::DeploymentFile {
            path: path.display().to_string(),
            reason,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| err(e.to_string()))
    }
}

/// Everything the deployment is parameterised by (defaults = the devnet's).
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Reward pool bucket, minted into the RewardsDistributor.
    pub reward_pool: U256,
    /// Treasury bucket, minted into the timelock.
    pub treasury_bucket: U256,
    /// Genesis allocations.
    pub genesis: Vec<(Address, U256)>,
    /// Longest lock (3x multiplier), seconds.
    pub max_lock: u64,
    /// Unbonding delay, seconds (>= challenge window).
    pub unbonding_delay: u64,
    /// Smallest stake eligible for committees.
    pub min_stake: U256,
    /// Blocks per sortition-tree epoch (`NeuronRegistry` constructor, 16..=7200).
    pub tree_epoch_blocks: u64,
    /// Apply-phase blocks at the start of every tree epoch, in which tree
    /// writes happen (1..=tree_epoch_blocks/2).
    pub tree_apply_blocks: u64,
    /// Reward epoch length, seconds.
    pub epoch_length: u64,
    /// Epochs between halvings.
    pub halving_epochs: u64,
    /// Timelock delay, seconds.
    pub timelock_delay: u64,
    /// Governor voting delay, seconds (the governor runs on the token's
    /// ERC-6372 timestamp clock).
    pub voting_delay: u64,
    /// Governor voting period, seconds.
    pub voting_period: u32,
    /// Votes needed to propose.
    pub proposal_threshold: U256,
    /// Market parameters.
    pub market: ComputationMarket::Params,
}

impl DeployConfig {
    /// A fast local chain with 1 s blocks: 400M reward pool, 300M treasury,
    /// 300M split equally over `genesis` (remainder to the treasury), as
    /// `DeployBase.defaultConfig`. It differs from `defaultConfig` so that a
    /// task settles in minutes of chain time, at the contracts' bounds:
    ///
    /// - tree epochs of 16 blocks with 8 apply blocks (default 64 / 8): with
    ///   1 s blocks a queued stake change is applied and a draw target reached
    ///   within seconds (16 is the registry's minimum epoch);
    /// - drawDelay 2 blocks (default 4, minimum `MIN_DRAW_DELAY`);
    /// - commitPeriod and revealPeriod 30 s (default 2 min; `MIN_PHASE`);
    /// - challengeWindow 600 s (default 10 min, the same: `MIN_CHALLENGE_WINDOW`)
    ///   and escalationPeriod 600 s (default 30 min; `MIN_ESCALATION_PERIOD`);
    /// - minFee 0.1 HAL9 (default 1; `MIN_MIN_FEE`) and minChallengeBond
    ///   1 HAL9 (default 10; `MIN_MIN_BOND`), so small test fees are accepted.
    ///
    /// Everything else (stake bounds, rates, abandonBps 500, servedBps 2000,
    /// maxLivenessPerDay 10, maxTaskDuration 1 day, the governor's 1 day
    /// voting delay and 7 day voting period in seconds, the 2 day timelock)
    /// is `defaultConfig`.
    pub fn devnet(genesis: &[Address]) -> Self {
        let genesis_total = tokens(300_000_000);
        let each = if genesis.is_empty() {
            U256::ZERO
        } else {
            genesis_total / U256::from(genesis.len())
        };
        let treasury_bucket =
            tokens(300_000_000) + genesis_total - each * U256::from(genesis.len());
        Self {
            reward_pool: tokens(400_000_000),
            treasury_bucket,
            genesis: genesis.iter().map(|a| (*a, each)).collect(),
            max_lock: 365 * 86_400,
            unbonding_delay: 86_400,
            min_stake: tokens(100),
            tree_epoch_blocks: 16,
            tree_apply_blocks: 8,
            epoch_length: 86_400,
            halving_epochs: 365,
            timelock_delay: 2 * 86_400,
            voting_delay: 86_400,
            voting_period: 7 * 86_400,
            proposal_threshold: tokens(100_000),
            market: ComputationMarket::Params {
                minReplicas: 3,
                maxReplicas: 15,
                burnBps: 100,
                treasuryBps: 200,
                slashBps: 1_000,
                livenessSlashBps: 50,
                challengerRewardBps: 5_000,
                challengeBondBps: 10_000,
                abandonBps: 500,
                servedBps: 2_000,
                maxLivenessPerDay: 10,
                drawDelay: 2,
                commitPeriod: 30,
                revealPeriod: 30,
                challengeWindow: 600,
                escalationPeriod: 600,
                maxTaskDuration: 86_400,
                minFee: U256::from(ETHER / 10),
                minChallengeBond: tokens(1),
            },
        }
    }
}

/// Deploys and wires the contracts from `deployer` (the provider's default
/// signer), the same way the forge script does, and returns their addresses.
pub async fn deploy_all<P: Provider + Clone>(
    provider: &P,
    deployer: Address,
    cfg: &DeployConfig,
) -> Result<Deployment> {
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| MarketError::chain("eth_chainId", e))?;
    let deploy_block = provider
        .get_block_number()
        .await
        .map_err(|e| MarketError::chain("eth_blockNumber", e))?;

    let timelock = TimelockController::deploy(
        provider.clone(),
        U256::from(cfg.timelock_delay),
        vec![],
        vec![Address::ZERO],
        deployer,
    )
    .await
    .map_err(|e| MarketError::chain("deploy TimelockController", e))?;

    // The reward pool is minted into the distributor, created three
    // transactions after the token.
    let nonce = provider
        .get_transaction_count(deployer)
        .await
        .map_err(|e| MarketError::chain("eth_getTransactionCount", e))?;
    let predicted_rewards = deployer.create(nonce + 2);
    let (genesis, amounts): (Vec<Address>, Vec<U256>) = cfg.genesis.iter().copied().unzip();
    let token = HAL9Token::deploy(
        provider.clone(),
        predicted_rewards,
        cfg.reward_pool,
        *timelock.address(),
        cfg.treasury_bucket,
        genesis,
        amounts,
    )
    .await
    .map_err(|e| MarketError::chain("deploy HAL9Token", e))?;
    let registry = NeuronRegistry::deploy(
        provider.clone(),
        *token.address(),
        *timelock.address(),
        cfg.max_lock,
        cfg.unbonding_delay,
        cfg.min_stake,
        cfg.tree_epoch_blocks,
        cfg.tree_apply_blocks,
    )
    .await
    .map_err(|e| MarketError::chain("deploy NeuronRegistry", e))?;
    let rewards = RewardsDistributor::deploy(
        provider.clone(),
        *token.address(),
        *registry.address(),
        cfg.epoch_length,
        cfg.halving_epochs,
    )
    .await
    .map_err(|e| MarketError::chain("deploy RewardsDistributor", e))?;
    if *rewards.address() != predicted_rewards {
        return Err(MarketError::Deployment {
            what: "RewardsDistributor",
            expected: predicted_rewards,
            found: *rewards.address(),
        });
    }
    let market = ComputationMarket::deploy(
        provider.clone(),
        *token.address(),
        *registry.address(),
        *timelock.address(),
        *timelock.address(),
        cfg.market.clone(),
    )
    .await
    .map_err(|e| MarketError::chain("deploy ComputationMarket", e))?;
    let voting_delay = U48::try_from(cfg.voting_delay).map_err(|_| MarketError::InvalidParam {
        name: "voting_delay",
        expected: "< 2^48 seconds".into(),
        found: cfg.voting_delay.to_string(),
    })?;
    let governor = HAL9Governor::deploy(
        provider.clone(),
        *token.address(),
        *timelock.address(),
        voting_delay,
        cfg.voting_period,
        cfg.proposal_threshold,
    )
    .await
    .map_err(|e| MarketError::chain("deploy HAL9Governor", e))?;

    send(
        registry.wire(*market.address(), *rewards.address()),
        "NeuronRegistry.wire",
        Margin::Normal,
    )
    .await?;
    let role =
        |r: Result<_, alloy::contract::Error>, what| r.map_err(|e| MarketError::chain(what, e));
    let proposer = role(timelock.PROPOSER_ROLE().call().await, "PROPOSER_ROLE")?;
    let canceller = role(timelock.CANCELLER_ROLE().call().await, "CANCELLER_ROLE")?;
    let admin = role(
        timelock.DEFAULT_ADMIN_ROLE().call().await,
        "DEFAULT_ADMIN_ROLE",
    )?;
    send(
        timelock.grantRole(proposer, *governor.address()),
        "TimelockController.grantRole",
        Margin::Normal,
    )
    .await?;
    send(
        timelock.grantRole(canceller, *governor.address()),
        "TimelockController.grantRole",
        Margin::Normal,
    )
    .await?;
    send(
        timelock.renounceRole(admin, deployer),
        "TimelockController.renounceRole",
        Margin::Normal,
    )
    .await?;

    let d = Deployment {
        chain_id,
        deploy_block,
        token: *token.address(),
        registry: *registry.address(),
        rewards: *rewards.address(),
        market: *market.address(),
        governor: *governor.address(),
        timelock: *timelock.address(),
    };
    tracing::info!(target: "hal9::market", chain_id, market = %d.market, registry = %d.registry, token = %d.token, "contracts deployed");
    Ok(d)
}

/// Where anvil is: `$HAL9_ANVIL`, then `PATH`, then the repository's
/// `contracts/node_modules/.bin/anvil` (installed by `devnet/setup.d/30-foundry.sh`).
pub fn find_anvil() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(p) = std::env::var_os("HAL9_ANVIL") {
        return Some(PathBuf::from(p));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let c = dir.join("anvil");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let local =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts/node_modules/.bin/anvil");
    local.is_file().then_some(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_buckets_add_up_to_supply() {
        let g: Vec<Address> = (1..=7u8).map(Address::with_last_byte).collect();
        let c = DeployConfig::devnet(&g);
        let sum = c.reward_pool
            + c.treasury_bucket
            + c.genesis
                .iter()
                .map(|(_, a)| *a)
                .fold(U256::ZERO, |x, y| x + y);
        assert_eq!(sum, tokens(1_000_000_000));
    }

    #[test]
    fn deployment_json_round_trip_and_forge_format() {
        let forge = r#"{"chainId":31337,"deployBlock":0,
            "governor":"0x5FC8d32690cc91D4c39d9d3abcBD16989F875707",
            "market":"0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
            "registry":"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
            "rewards":"0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
            "timelock":"0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "token":"0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"}"#;
        let d: Deployment = serde_json::from_str(forge).unwrap();
        assert_eq!(d.chain_id, 31337);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.json");
        d.save(&p).unwrap();
        assert_eq!(Deployment::load(&p).unwrap(), d);
        std::fs::write(&p, "{").unwrap();
        assert!(matches!(
            Deployment::load(&p),
            Err(MarketError::DeploymentFile { .. })
        ));
        assert!(Deployment::load(&dir.path().join("missing.json")).is_err());
    }
}
