//! The node's connection to the settlement chain: the market client with the
//! operator wallet, and the operator address <-> PeerId map from the registry.

use std::{collections::HashMap, sync::Arc};

use alloy::{
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use eyre::{Context, eyre};

use hal9_market::{Deployment, MarketClient};
use hal9_p2p::PeerId;
use parking_lot::Mutex;

use super::ChainConfig;
use crate::home::Home;

/// The market client type the node uses.
pub type Client = MarketClient<DynProvider>;

/// A connected chain client with the operator key.
pub struct ChainLink {
    /// Typed contract access, signing with the operator key.
    pub client: Client,
    /// The operator key (attestations are signed with it).
    pub operator: PrivateKeySigner,
    /// Contract addresses and chain id.
    pub deployment: Deployment,
    /// Settings.
    pub cfg: ChainConfig,
    /// Held while sending a transaction, so the node's own transactions
    /// never race for a nonce.
    pub send_lock: tokio::sync::Mutex<()>,
    /// The registry's neurons, for the gossip validators.
    pub members: Arc<super::members::RegistrySet>,
    provider: DynProvider,
    peers: Mutex<HashMap<Address, Option<PeerId>>>,
}

/// Most operator -> PeerId entries cached (the cache is cleared when full).
const MAX_CACHED_PEERS: usize = 4096;

/// The registry could not be read for an operator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read neuron {operator} from the registry: {reason}")]
pub struct LookupError {
    /// The operator looked up.
    pub operator: Address,
    /// What the endpoint said.
    pub reason: String,
}

impl std::fmt::Debug for ChainLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainLink")
            .field("operator", &self.operator.address())
            .field("market", &self.deployment.market)
            .finish_non_exhaustive()
    }
}

impl ChainLink {
    /// Connects to `cfg.rpc_url` with the deployment and operator key found in `home`.
    pub async fn connect(home: &Home, cfg: &ChainConfig) -> eyre::Result<Arc<Self>> {
        let oc = crate::chain::client::connect(home, cfg).await?;
        let deployment = *oc.market.deployment();
        let provider = oc.market.market().provider().clone();
        tracing::info!(target: "hal9::chain", operator = %oc.signer.address(), market = %deployment.market, chain_id = deployment.chain_id, "chain mode");
        Ok(Arc::new(Self {
            client: oc.market,
            operator: oc.signer,
            deployment,
            cfg: cfg.clone(),
            send_lock: tokio::sync::Mutex::new(()),
            members: Arc::new(super::members::RegistrySet::new()),
            provider,
            peers: Mutex::new(HashMap::new()),
        }))
    }

    /// The operator address.
    pub fn address(&self) -> Address {
        self.operator.address()
    }

    /// The raw provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Signs the EIP-712 `Result(task, result, cid)` with the operator key.
    pub fn sign(&self, task: B256, result: B256, cid: &[u8]) -> eyre::Result<[u8; 65]> {
        let sig = hal9_market::eip712::sign_result(
            &self.operator,
            self.deployment.chain_id,
            self.deployment.market,
            task,
            result,
            cid,
        )
        .map_err(|e| eyre!("{e}"))?;
        <[u8; 65]>::try_from(sig.as_ref()).map_err(|_| eyre!("signature is not 65 bytes"))
    }

    /// Signs the salt of this operator's reveal of `task` in `round`
    /// (see [`super::attest::salt_digest`]).
    pub fn sign_salt(&self, round: u8, task: B256, salt: B256) -> eyre::Result<[u8; 65]> {
        super::attest::sign_salt(
            &self.operator,
            self.deployment.chain_id,
            self.deployment.market,
            round,
            task,
            salt,
        )
        .map_err(|e| eyre!("{e}"))
    }

    /// The PeerId an operator registered, from the registry (cached).
    ///
    /// `Ok(None)`: the operator is not registered, or registered a PeerId
    /// whose key did not sign the binding (the registry accepts any 1-64
    /// bytes and any 64-byte signature); it is absent from committees.
    /// `Err`: the registry could not be read (retry later).
    pub async fn peer_of(&self, operator: Address) -> Result<Option<PeerId>, LookupError> {
        if let Some(p) = self.peers.lock().get(&operator) {
            return Ok(*p);
        }
        let n = self
            .client
            .registry()
            .neuron(operator)
            .call()
            .await
            .map_err(|e| LookupError {
                operator,
                reason: hal9_market::client::describe_error(&e),
            })?;
        let peer = if n.registered {
            self.bound_peer(operator, &n.peerId, &n.peerSig)
        } else {
            None
        };
        // A PeerId the registry set holds for an earlier registration is
        // not this operator's (its key owner signed twice).
        let peer = peer.filter(|p| match self.members.holder(p) {
            Some(h) if h != operator => {
                tracing::warn!(target: "hal9::chain", %operator, holder = %h, peer = %p, "PeerId bound by an earlier registration; this member is absent");
                false
            }
            _ => true,
        });
        let mut cache = self.peers.lock();
        if cache.len() >= MAX_CACHED_PEERS {
            cache.clear();
        }
        cache.insert(operator, peer);
        Ok(peer)
    }

    /// The PeerId `operator` registered if its libp2p key signed the
    /// binding (see [`super::binding`]); else `None` (logged).
    pub fn bound_peer(&self, operator: Address, peer_id: &[u8], sig: &[u8]) -> Option<PeerId> {
        match super::binding::verify(
            self.deployment.chain_id,
            self.deployment.registry,
            operator,
            peer_id,
            sig,
        ) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(target: "hal9::chain", %operator, error = %e, "neuron's peer binding does not verify; it is ignored (absent from its committees)");
                None
            }
        }
    }

    /// PeerIds of a committee, in order (`None` for a member whose
    /// registered PeerId does not parse).
    pub async fn peers_of(
        &self,
        operators: &[Address],
    ) -> Result<Vec<Option<PeerId>>, LookupError> {
        let mut out = Vec::with_capacity(operators.len());
        for a in operators {
            out.push(self.peer_of(*a).await?);
        }
        Ok(out)
    }

    /// Drops the cached PeerId of `operator` (it re-registered, left, or
    /// its stake changed); the next lookup reads the registry.
    pub fn forget_peer(&self, operator: &Address) {
        self.peers.lock().remove(operator);
    }

    /// Drops every cached PeerId (after a reorganisation).
    pub fn forget_peers(&self) {
        self.peers.lock().clear();
    }

    /// How many PeerIds are cached.
    pub fn cached_peers(&self) -> usize {
        self.peers.lock().len()
    }

    /// The least off-chain consensus timeouts (commit, reveal) in ms that fit
    /// the chain's phases: members hold their reveals until the commit phase
    /// closed on chain, so the local round must not time out before then
    /// (protocol v1.1). The node applies them to its engine settings.
    pub async fn phase_timeouts_ms(&self) -> eyre::Result<(u64, u64)> {
        let p = self
            .client
            .params()
            .await
            .map_err(|e| eyre!("cannot read the market parameters: {e}"))?;
        let commit_ms = p.commitPeriod.saturating_add(5).saturating_mul(1000);
        let reveal_ms = p.revealPeriod.saturating_mul(1000);
        tracing::info!(target: "hal9::chain", commit_period = p.commitPeriod, reveal_period = p.revealPeriod, "read the chain's commit and reveal phases");
        Ok((commit_ms, reveal_ms))
    }

    /// Timestamp of the latest block (the contract's `block.timestamp` clock).
    pub async fn chain_time(&self) -> eyre::Result<u64> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .wrap_err("cannot read the latest block")?
            .ok_or_else(|| eyre!("the chain has no latest block"))?;
        Ok(block.header.timestamp)
    }
}
