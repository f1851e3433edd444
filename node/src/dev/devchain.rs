//! A local settlement chain for the devnet and the end-to-end tests: anvil
//! on 127.0.0.1 (random port), the contracts deployed from the committed
//! bytecode, and node operators funded, registered (PeerId binding signed
//! by the node key) and staked.
//!
//! anvil mines a block for every transaction at once (automine) and, so
//! that draw blocks pass and tree epochs turn with nobody sending, a
//! background task mines one more block every second.

use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    signers::local::PrivateKeySigner,
};
use eyre::{Context, bail, eyre};
use hal9_market::{DeployConfig, Deployment, MarketClient, deploy_all};

use crate::{config::NodeConfig, dev::devnet::NodeProc, home::CONFIG_FILE};

/// One token (18 decimals).
pub const TOKEN: u128 = 1_000_000_000_000_000_000;

/// `n` whole tokens in base units.
pub fn tokens(n: u128) -> U256 {
    U256::from(n) * U256::from(TOKEN)
}

pub use hal9_market::deploy::find_anvil;

/// Standby neurons every dev chain registers besides the nodes' operators:
/// protocol v1.1 posts a task only when its tree holds 3r + 2 neurons
/// (committee, escalation, challenger), 11 for r = 3. They stake the
/// minimum (1 HAL9 on a dev chain) from keys no node holds, so against the
/// nodes' stakes they are almost never drawn; when one is, it is an offline
/// member, which the protocol must survive anyway.
pub const STANDBY: usize = 11;

/// A running dev chain with the hal9 contracts.
pub struct DevChain {
    anvil: AnvilInstance,
    miner: tokio::task::JoinHandle<()>,
    /// JSON-RPC URL.
    pub url: String,
    /// Contract addresses.
    pub deployment: Deployment,
    /// Key 0 deploys; key i+1 is operator i; the last [`STANDBY`] are the
    /// standby neurons.
    pub keys: Vec<PrivateKeySigner>,
    /// How many node operators.
    pub operators: usize,
    /// What was deployed.
    pub config: DeployConfig,
}

impl std::fmt::Debug for DevChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevChain")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for DevChain {
    fn drop(&mut self) {
        self.miner.abort();
    }
}

/// Settings of a dev deployment: the shortest windows the contracts'
/// bounds allow (commit and reveal 30 s, challenge window and escalation
/// 10 min), so a demo or a test walks through them in seconds of real time
/// by moving the chain's clock ([`DevChain::advance`],
/// [`DevChain::end_commit_phase`]).
pub fn dev_config(operators: &[Address]) -> DeployConfig {
    let mut c = DeployConfig::devnet(operators);
    c.min_stake = tokens(1);
    c.unbonding_delay = 600;
    c.timelock_delay = 60;
    c.voting_delay = 1;
    c.voting_period = 20;
    c.proposal_threshold = tokens(1_000);
    c
}

impl DevChain {
    /// Starts anvil with `operators + 1` funded accounts and deploys.
    pub async fn start(operators: usize) -> eyre::Result<Self> {
        Self::start_with(operators, |_| {}).await
    }

    /// Like [`DevChain::start`], with a hook to adjust the deployment.
    pub async fn start_with(
        operators: usize,
        tweak: impl FnOnce(&mut DeployConfig),
    ) -> eyre::Result<Self> {
        let path = find_anvil().ok_or_else(|| {
            eyre!("anvil not found: set HAL9_ANVIL, put it on PATH, or run devnet/setup.d/30-foundry.sh")
        })?;
        let anvil = Anvil::at(path)
            .args(["--accounts", &(operators + 1 + STANDBY).to_string()])
            .try_spawn()
            .wrap_err("cannot start anvil")?;
        let keys: Vec<PrivateKeySigner> = anvil
            .keys()
            .iter()
            .cloned()
            .map(PrivateKeySigner::from)
            .collect();
        let url = anvil.endpoint();
        // Genesis funds the operators and the standby neurons.
        let ops: Vec<Address> = keys[1..].iter().map(|k| k.address()).collect();
        let mut config = dev_config(&ops);
        tweak(&mut config);
        let deployer = provider(&url, &keys[0])?;
        let deployment = deploy_all(&deployer, keys[0].address(), &config)
            .await
            .map_err(|e| eyre!("deploy: {e}"))?;
        let chain_id = deployment.chain_id;
        let min_stake = config.min_stake;
        for key in &keys[operators + 1..] {
            let c = MarketClient::connect(provider(&url, key)?, deployment)
                .await
                .map_err(|e| eyre!("{e}"))?;
            let node_key = hal9_p2p::Keypair::generate_ed25519();
            let peer = node_key.public().to_peer_id();
            let sig = crate::chain::binding::sign(
                &node_key,
                chain_id,
                deployment.registry,
                key.address(),
            )
            .map_err(|e| eyre!(e))?;
            c.register(&peer.to_bytes(), 0, min_stake, &sig)
                .await
                .map_err(|e| eyre!("register a standby neuron: {e}"))?;
        }
        let miner = {
            let p = deployer.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if p.anvil_mine(Some(1), None).await.is_err() {
                        // anvil is gone (the chain was dropped or killed).
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            })
        };
        let chain = Self {
            anvil,
            miner,
            operators,
            url,
            deployment,
            keys,
            config,
        };
        let standby: Vec<Address> = chain.keys[operators + 1..]
            .iter()
            .map(|k| k.address())
            .collect();
        chain.apply_queued(&standby).await?;
        Ok(chain)
    }

    /// anvil's port.
    pub fn port(&self) -> u16 {
        self.anvil.port()
    }

    /// The operator key of node `i`.
    pub fn operator(&self, i: usize) -> &PrivateKeySigner {
        &self.keys[i + 1]
    }

    /// A market client signing with `key`.
    pub async fn client(&self, key: &PrivateKeySigner) -> eyre::Result<MarketClient<DynProvider>> {
        MarketClient::connect(provider(&self.url, key)?, self.deployment)
            .await
            .map_err(|e| eyre!("{e}"))
    }

    /// Writes node `i`'s chain settings (deployment, plaintext devnet
    /// operator key, `[chain]` pointing at `rpc_url`), then registers its
    /// PeerId on chain, stakes `stake` and locks it for `lock_days`.
    pub async fn prepare_node(
        &self,
        node: &NodeProc,
        i: usize,
        rpc_url: &str,
        stake: U256,
        lock_days: u64,
    ) -> eyre::Result<()> {
        let home = node.home();
        self.deployment
            .save(&home.path("deployment.json"))
            .map_err(|e| eyre!("{e}"))?;
        let key_path = home.path("operator.json");
        if !key_path.exists() {
            hal9_market::keys::write_plaintext_devnet(&key_path, self.operator(i))
                .map_err(|e| eyre!("{e}"))?;
        }
        let mut cfg = node.config()?;
        cfg.chain.rpc_url = rpc_url.to_string();
        cfg.chain.confirmations = 0;
        cfg.chain.poll_interval_ms = 200;
        cfg.chain.takeover_delay_ms = 3_000;
        write_config(&home.path(CONFIG_FILE), &cfg)?;
        let key = node.home().load_key()?;
        let peer = key.public().to_peer_id();
        let c = self.client(self.operator(i)).await?;
        let sig = crate::chain::binding::sign(
            &key,
            self.deployment.chain_id,
            self.deployment.registry,
            self.operator(i).address(),
        )
        .map_err(|e| eyre!(e))?;
        c.register(&peer.to_bytes(), 0, stake, &sig)
            .await
            .map_err(|e| eyre!("register: {e}"))?;
        if lock_days > 0 {
            c.lock(lock_days * 86_400)
                .await
                .map_err(|e| eyre!("lock: {e}"))?;
        }
        Ok(())
    }

    /// Mines into the next apply phase and writes every queued sortition
    /// tree update of `operators` (registrations made in a draw phase are
    /// only queued; until applied those neurons are never drawn).
    pub async fn apply_queued(&self, operators: &[Address]) -> eyre::Result<()> {
        let c = self.client(&self.keys[0]).await?;
        for _ in 0..self.config.tree_epoch_blocks + 1 {
            if c.in_apply_phase().await.map_err(|e| eyre!("{e}"))? {
                break;
            }
            self.mine(1).await?;
        }
        c.apply_queued(operators)
            .await
            .map_err(|e| eyre!("applyQueued: {e}"))?;
        Ok(())
    }

    /// Ends the current commit phase of `task` (a committee's or an
    /// escalation's): moves the chain's clock past its `commitEnd`.
    pub async fn end_commit_phase(&self, task: alloy::primitives::B256) -> eyre::Result<()> {
        let t = self
            .client(&self.keys[0])
            .await?
            .task(task)
            .await
            .map_err(|e| eyre!("{e}"))?;
        let now = self
            .client(&self.keys[0])
            .await?
            .chain_time()
            .await
            .map_err(|e| eyre!("{e}"))?;
        if t.commitEnd >= now {
            self.advance(t.commitEnd - now + 1).await?;
        }
        Ok(())
    }

    /// Moves the chain's clock forward by `secs` and mines a block.
    pub async fn advance(&self, secs: u64) -> eyre::Result<()> {
        let p = provider(&self.url, &self.keys[0])?;
        p.anvil_increase_time(secs).await?;
        p.anvil_mine(Some(1), None).await?;
        Ok(())
    }

    /// Mines `n` blocks.
    pub async fn mine(&self, n: u64) -> eyre::Result<()> {
        provider(&self.url, &self.keys[0])?
            .anvil_mine(Some(n), None)
            .await?;
        Ok(())
    }

    /// Token balance of `who`.
    pub async fn balance(&self, who: Address) -> eyre::Result<U256> {
        self.client(&self.keys[0])
            .await?
            .balance(who)
            .await
            .map_err(|e| eyre!("{e}"))
    }

    /// Total token supply.
    pub async fn total_supply(&self) -> eyre::Result<U256> {
        self.client(&self.keys[0])
            .await?
            .total_supply()
            .await
            .map_err(|e| eyre!("{e}"))
    }

    /// Waits until `f` holds, polling.
    pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F) -> eyre::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = eyre::Result<bool>>,
    {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if f().await? {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn provider(url: &str, key: &PrivateKeySigner) -> eyre::Result<DynProvider> {
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url.parse().wrap_err("rpc url")?)
        .erased())
}

/// Writes `cfg` as the documented config file.
pub fn write_config(path: &std::path::Path, cfg: &NodeConfig) -> eyre::Result<()> {
    std::fs::write(path, cfg.template())
        .wrap_err_with(|| format!("cannot write {}", path.display()))
}
