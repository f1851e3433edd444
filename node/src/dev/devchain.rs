//! A local settlement chain for the devnet and the end-to-end tests: anvil
//! on 127.0.0.1 (random port), the contracts deployed from the committed
//! bytecode, and node operators funded, registered and staked.

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

/// A running dev chain with the hal9 contracts.
pub struct DevChain {
    anvil: AnvilInstance,
    /// JSON-RPC URL.
    pub url: String,
    /// Contract addresses.
    pub deployment: Deployment,
    /// Key 0 deploys; key i+1 is operator i.
    pub keys: Vec<PrivateKeySigner>,
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

/// Settings of a dev deployment: short windows so a demo or a test can
/// walk through challenge, unbonding and governance in seconds of real
/// time (the chain's clock is moved forward with [`DevChain::advance`]).
pub fn dev_config(operators: &[Address]) -> DeployConfig {
    let mut c = DeployConfig::devnet(operators);
    c.market.challengeWindow = 60;
    c.market.escalationPeriod = 600;
    c.unbonding_delay = 120;
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
            .args(["--accounts", &(operators + 1).to_string()])
            .try_spawn()
            .wrap_err("cannot start anvil")?;
        let keys: Vec<PrivateKeySigner> = anvil
            .keys()
            .iter()
            .cloned()
            .map(PrivateKeySigner::from)
            .collect();
        let url = anvil.endpoint();
        let ops: Vec<Address> = keys[1..].iter().map(|k| k.address()).collect();
        let mut config = dev_config(&ops);
        tweak(&mut config);
        let deployer = provider(&url, &keys[0])?;
        let deployment = deploy_all(&deployer, keys[0].address(), &config)
            .await
            .map_err(|e| eyre!("deploy: {e}"))?;
        Ok(Self {
            anvil,
            url,
            deployment,
            keys,
            config,
        })
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
        let peer = node.home().load_key()?.public().to_peer_id();
        let c = self.client(self.operator(i)).await?;
        c.register(&peer.to_bytes(), 0)
            .await
            .map_err(|e| eyre!("register: {e}"))?;
        if stake > U256::ZERO {
            c.stake(stake).await.map_err(|e| eyre!("stake: {e}"))?;
        }
        if lock_days > 0 {
            c.lock(lock_days * 86_400)
                .await
                .map_err(|e| eyre!("lock: {e}"))?;
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
