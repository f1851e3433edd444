//! From a node home and its `[chain]` settings to a connected
//! [`MarketClient`]: the deployment file, the operator key (passphrase from
//! the environment variable the config names) and an HTTP provider that
//! retries transient RPC failures.

use std::path::PathBuf;

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::ClientBuilder;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::layers::RetryBackoffLayer;
use eyre::{Context, bail, eyre};
use hal9_market::keys::{self, KeyFormat};
use hal9_market::{Deployment, MarketClient};

use super::ChainConfig;
use crate::home::Home;

/// Retries of a rate-limited or transiently failing RPC request.
const RPC_RETRIES: u32 = 8;
/// First backoff between retries, ms.
const RPC_BACKOFF_MS: u64 = 250;
/// Compute units per second the retry layer budgets for (the default of public endpoints).
const RPC_CUPS: u64 = 330;

/// The provider type every chain command uses.
pub type ChainProvider = DynProvider;

/// A client bound to the deployment, signing with the operator key.
#[derive(Debug, Clone)]
pub struct OperatorClient {
    /// Typed access to the contracts; transactions are signed by `signer`.
    pub market: MarketClient<ChainProvider>,
    /// The operator key.
    pub signer: PrivateKeySigner,
}

impl OperatorClient {
    /// The operator address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }
}

/// Path of the operator key file named by `cfg` (relative to the home unless absolute).
pub fn operator_key_path(home: &Home, cfg: &ChainConfig) -> PathBuf {
    home.root().join(&cfg.operator_key)
}

/// Path of the deployment file named by `cfg` (relative to the home unless absolute).
pub fn deployment_path(home: &Home, cfg: &ChainConfig) -> PathBuf {
    home.root().join(&cfg.deployment)
}

/// The passphrase from the environment variable `cfg.passphrase_env`, if set and not empty.
pub fn passphrase(cfg: &ChainConfig) -> Option<String> {
    std::env::var(&cfg.passphrase_env)
        .ok()
        .filter(|s| !s.is_empty())
}

/// Loads the operator key; an encrypted keystore takes its passphrase from
/// the environment variable the config names.
pub fn load_operator(home: &Home, cfg: &ChainConfig) -> eyre::Result<PrivateKeySigner> {
    let path = operator_key_path(home, cfg);
    if !path.exists() {
        bail!(
            "no operator key at {}: create one with `hal9 key new` or `hal9 key import`",
            path.display()
        );
    }
    let pass = passphrase(cfg);
    keys::load_operator_key(&path, pass.as_deref()).map_err(|e| match e {
        hal9_market::MarketError::Passphrase { .. } if pass.is_none() => eyre!(
            "{e}; set the environment variable {} to its passphrase",
            cfg.passphrase_env
        ),
        other => eyre!(other),
    })
}

/// The operator address without decrypting the key when the file declares it.
pub fn operator_address(home: &Home, cfg: &ChainConfig) -> eyre::Result<Address> {
    let path = operator_key_path(home, cfg);
    if path.exists()
        && let Ok((_, Some(a))) = keys::inspect(&path)
    {
        return Ok(a);
    }
    Ok(load_operator(home, cfg)?.address())
}

/// Whether the operator key file is an encrypted keystore.
pub fn operator_key_format(home: &Home, cfg: &ChainConfig) -> eyre::Result<KeyFormat> {
    Ok(keys::inspect(&operator_key_path(home, cfg))?.0)
}

fn rpc_url(cfg: &ChainConfig) -> eyre::Result<alloy::transports::http::reqwest::Url> {
    if !cfg.enabled() {
        bail!(
            "no chain configured: set chain.rpc_url in config.toml, pass --rpc-url or set HAL9_RPC_URL"
        );
    }
    cfg.rpc_url
        .parse()
        .wrap_err_with(|| format!("invalid chain RPC URL {:?}", cfg.rpc_url))
}

fn load_deployment(home: &Home, cfg: &ChainConfig) -> eyre::Result<Deployment> {
    let path = deployment_path(home, cfg);
    Deployment::load(&path).wrap_err(
        "cannot load the contract addresses (chain.deployment); a devnet writes this file at deployment",
    )
}

fn retrying_client(cfg: &ChainConfig) -> eyre::Result<alloy::rpc::client::RpcClient> {
    Ok(ClientBuilder::default()
        .layer(RetryBackoffLayer::new(
            RPC_RETRIES,
            RPC_BACKOFF_MS,
            RPC_CUPS,
        ))
        .http(rpc_url(cfg)?))
}

/// Connects to the chain with the operator wallet: the provider fills
/// nonces (simple nonce management: asks the node each time), gas and chain
/// id, and retries transient failures. Fails with a clear message when the
/// chain is not configured, the deployment file or key is missing, or the
/// endpoint is on another chain than the deployment.
pub async fn connect(home: &Home, cfg: &ChainConfig) -> eyre::Result<OperatorClient> {
    let signer = load_operator(home, cfg)?;
    let deployment = load_deployment(home, cfg)?;
    let provider = ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(EthereumWallet::from(signer.clone()))
        .connect_client(retrying_client(cfg)?)
        .erased();
    let market = MarketClient::connect(provider, deployment)
        .await
        .wrap_err_with(|| format!("cannot reach the chain at {}", cfg.rpc_url))?;
    tracing::debug!(target: "hal9::chain", operator = %signer.address(), rpc = %cfg.rpc_url, "connected");
    Ok(OperatorClient { market, signer })
}

/// Connects without a wallet, for reading only (no key or passphrase needed).
pub async fn connect_read_only(
    home: &Home,
    cfg: &ChainConfig,
) -> eyre::Result<MarketClient<ChainProvider>> {
    let deployment = load_deployment(home, cfg)?;
    let provider = ProviderBuilder::new()
        .connect_client(retrying_client(cfg)?)
        .erased();
    MarketClient::connect(provider, deployment)
        .await
        .wrap_err_with(|| format!("cannot reach the chain at {}", cfg.rpc_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(env: &str) -> ChainConfig {
        ChainConfig {
            passphrase_env: env.into(),
            ..ChainConfig::default()
        }
    }

    #[test]
    fn key_errors_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        // An env var no test sets.
        let c = cfg("HAL9_TEST_UNSET_PASSPHRASE_3F9A");
        let e = load_operator(&home, &c).unwrap_err().to_string();
        assert!(e.contains("hal9 key new"), "{e}");
        let s = PrivateKeySigner::random();
        keys::write_encrypted(&operator_key_path(&home, &c), &s, "pw").unwrap();
        let e = load_operator(&home, &c).unwrap_err().to_string();
        assert!(e.contains("HAL9_TEST_UNSET_PASSPHRASE_3F9A"), "{e}");
        assert_eq!(
            operator_address(&home, &c).unwrap(),
            s.address(),
            "no passphrase needed"
        );
        assert_eq!(operator_key_format(&home, &c).unwrap(), KeyFormat::Keystore);
    }

    #[tokio::test]
    async fn no_rpc_url_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let c = cfg("HAL9_TEST_UNSET_PASSPHRASE_3F9A");
        keys::write_plaintext_devnet(&operator_key_path(&home, &c), &PrivateKeySigner::random())
            .unwrap();
        hal9_market::Deployment {
            chain_id: 31337,
            deploy_block: 0,
            token: Address::ZERO,
            registry: Address::ZERO,
            rewards: Address::ZERO,
            market: Address::ZERO,
            governor: Address::ZERO,
            timelock: Address::ZERO,
        }
        .save(&deployment_path(&home, &c))
        .unwrap();
        let e = connect(&home, &c).await.unwrap_err().to_string();
        assert!(e.contains("no chain configured"), "{e}");
        let e = connect_read_only(&home, &c).await.unwrap_err().to_string();
        assert!(e.contains("HAL9_RPC_URL"), "{e}");
    }
}
