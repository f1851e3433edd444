//! The neurons the registry lists, as the gossip validators see them in
//! chain mode: who may sign vote batches, certificates (by PeerId) and
//! attestations (by operator address).
//!
//! Standalone nodes check signers against the genesis validator set; in
//! chain mode anyone who stakes joins, so the set is the registry's: loaded
//! at start (and again every [`RELOAD_EVERY`]), and refreshed per operator
//! when the watcher reads a registry event about it. Until the first load
//! has succeeded the set answers "unknown" and the validators let messages
//! through as before, so an RPC outage at start never cuts a node off.

use std::{collections::HashMap, sync::Arc, time::Duration};

use alloy::primitives::Address;
use hal9_p2p::PeerId;
use parking_lot::RwLock;
use tracing::{debug, info, warn};

use super::link::ChainLink;

/// Most neurons held (a registry larger than this is truncated, logged).
pub const MAX_NEURONS: usize = 65_536;
/// How often the whole set is read again, to catch a registry event the
/// per-operator refresh missed (a full read scans the registry's logs).
pub const RELOAD_EVERY: Duration = Duration::from_secs(1800);
const TARGET: &str = "hal9::chain";

/// Whether a signer is a registered neuron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Listed by the registry.
    Registered,
    /// Not listed.
    Unknown,
    /// The registry has not been read yet.
    NotLoaded,
}

#[derive(Debug, Default)]
struct Inner {
    loaded: bool,
    /// Operator -> its parsed PeerId (`None`: it registered bytes that are not one).
    by_operator: HashMap<Address, Option<PeerId>>,
    /// PeerId -> the operator it is bound to (the earliest registration).
    peers: HashMap<PeerId, Address>,
}

/// The registry's neurons (bounded by [`MAX_NEURONS`]).
#[derive(Debug, Default)]
pub struct RegistrySet {
    inner: RwLock<Inner>,
    neurons: prometheus_client::metrics::gauge::Gauge,
}

impl RegistrySet {
    /// An empty, not yet loaded set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the `hal9_chain_registry_neurons` gauge.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "hal9_chain_registry_neurons",
            "Neurons the registry lists, as the gossip validators check signers against them",
            self.neurons.clone(),
        );
    }

    /// Whether `peer` is the PeerId of a registered neuron.
    pub fn peer(&self, peer: &PeerId) -> Standing {
        let g = self.inner.read();
        match (g.loaded, g.peers.contains_key(peer)) {
            (false, _) => Standing::NotLoaded,
            (true, true) => Standing::Registered,
            (true, false) => Standing::Unknown,
        }
    }

    /// Whether `operator` is a registered neuron's operator.
    pub fn operator(&self, operator: &Address) -> Standing {
        let g = self.inner.read();
        match (g.loaded, g.by_operator.contains_key(operator)) {
            (false, _) => Standing::NotLoaded,
            (true, true) => Standing::Registered,
            (true, false) => Standing::Unknown,
        }
    }

    /// The operator `peer` is bound to, once loaded: a second operator
    /// with a valid binding for the same PeerId (only possible if its key
    /// owner signed twice) does not get it (protocol v1.1: the earliest
    /// registration holds it).
    pub fn holder(&self, peer: &PeerId) -> Option<Address> {
        self.inner.read().peers.get(peer).copied()
    }

    /// How many neurons are held.
    pub fn len(&self) -> usize {
        self.inner.read().by_operator.len()
    }

    /// Whether no neuron is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the whole set (a full read of the registry).
    pub fn replace(&self, neurons: impl IntoIterator<Item = (Address, Option<PeerId>)>) {
        let mut by_operator = HashMap::new();
        let mut peers: HashMap<PeerId, Address> = HashMap::new();
        for (op, peer) in neurons {
            if by_operator.len() >= MAX_NEURONS {
                warn!(target: TARGET, max = MAX_NEURONS, "the registry lists more neurons than the node holds; the rest are treated as unknown");
                break;
            }
            let peer = peer.filter(|p| match peers.get(p) {
                Some(first) if *first != op => {
                    warn!(target: TARGET, operator = %op, holder = %first, peer = %p, "PeerId already bound by an earlier registration; this one is ignored");
                    false
                }
                _ => true,
            });
            if let Some(p) = peer {
                peers.insert(p, op);
            }
            by_operator.insert(op, peer);
        }
        self.neurons.set(by_operator.len() as i64);
        *self.inner.write() = Inner {
            loaded: true,
            by_operator,
            peers,
        };
    }

    /// Records what the registry now says about one operator: listed with
    /// `Some(peer)` (or an unparsable PeerId), or gone (`listed == false`).
    pub fn update(&self, operator: Address, listed: bool, peer: Option<PeerId>) {
        let mut g = self.inner.write();
        if let Some(Some(old)) = g.by_operator.remove(&operator)
            && g.peers.get(&old) == Some(&operator)
        {
            g.peers.remove(&old);
        }
        if listed && g.by_operator.len() < MAX_NEURONS {
            let peer = peer.filter(|p| g.peers.get(p).is_none_or(|h| *h == operator));
            g.by_operator.insert(operator, peer);
            if let Some(p) = peer {
                g.peers.insert(p, operator);
            }
        }
        self.neurons.set(g.by_operator.len() as i64);
    }
}

/// Reads every registered neuron with its bound PeerId, from the registry's
/// `Registered` and `Deregistered` logs since the deployment (the v1.1
/// registry keeps no enumerable list): O(log ranges) calls, not O(neurons).
/// A neuron whose peer binding does not verify is listed without a PeerId.
pub async fn read_all(link: &ChainLink) -> Result<Vec<(Address, Option<PeerId>)>, String> {
    use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
    use hal9_market::bindings::NeuronRegistry;
    let head = link
        .provider()
        .get_block_number()
        .await
        .map_err(|e| format!("eth_blockNumber: {e}"))?;
    // Operator -> (registration order, bound PeerId): handed on in
    // registration order, so the earliest binding of a PeerId holds it.
    let mut listed: HashMap<Address, (u64, Option<PeerId>)> = HashMap::new();
    let mut seq = 0u64;
    let mut from = link.deployment.deploy_block;
    while from <= head {
        let to = head.min(from.saturating_add(super::watch::MAX_RANGE - 1));
        let filter = Filter::new()
            .address(link.deployment.registry)
            .event_signature(vec![
                NeuronRegistry::Registered::SIGNATURE_HASH,
                NeuronRegistry::Deregistered::SIGNATURE_HASH,
            ])
            .from_block(from)
            .to_block(to);
        let logs = link
            .provider()
            .get_logs(&filter)
            .await
            .map_err(|e| format!("eth_getLogs {from}..{to}: {e}"))?;
        for log in logs {
            if let Ok(ev) = log.log_decode::<NeuronRegistry::Registered>() {
                let d = ev.inner.data;
                if listed.len() < MAX_NEURONS || listed.contains_key(&d.operator) {
                    let peer = link.bound_peer(d.operator, &d.peerId, &d.peerSig);
                    seq += 1;
                    listed.insert(d.operator, (seq, peer));
                }
            } else if let Ok(ev) = log.log_decode::<NeuronRegistry::Deregistered>() {
                listed.remove(&ev.inner.data.operator);
            }
        }
        from = to + 1;
    }
    let mut all: Vec<(u64, Address, Option<PeerId>)> =
        listed.into_iter().map(|(op, (n, p))| (n, op, p)).collect();
    all.sort_unstable_by_key(|(n, ..)| *n);
    Ok(all.into_iter().map(|(_, op, p)| (op, p)).collect())
}

/// Reads one operator again after a registry event about it (registered
/// means the registry holds a binding for it, valid or not).
pub async fn refresh(link: &ChainLink, operator: Address) -> Result<(), String> {
    let n = link
        .client
        .neuron(operator)
        .await
        .map_err(|e| e.to_string())?;
    let listed = n.registered;
    let peer = if listed {
        link.bound_peer(operator, &n.peerId, &n.peerSig)
    } else {
        None
    };
    debug!(target: TARGET, %operator, listed, "registry member refreshed");
    link.members.update(operator, listed, peer);
    Ok(())
}

/// Loads the set, retrying until it succeeds, then reloads it every
/// [`RELOAD_EVERY`]. Runs until the task is dropped.
pub async fn run(link: Arc<ChainLink>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match read_all(&link).await {
            Ok(all) => {
                let n = all.len();
                link.members.replace(all);
                info!(target: TARGET, neurons = n, "registry neurons loaded for gossip checks");
                backoff = Duration::from_millis(500);
                tokio::time::sleep(RELOAD_EVERY).await;
            }
            Err(e) => {
                warn!(target: TARGET, error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot read the registry's neurons; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        hal9_p2p::Keypair::generate_ed25519().public().to_peer_id()
    }

    #[test]
    fn unknown_until_loaded_then_exactly_the_listed() {
        let s = RegistrySet::new();
        let (a, pa) = (Address::repeat_byte(1), peer());
        assert_eq!(s.peer(&pa), Standing::NotLoaded);
        assert_eq!(s.operator(&a), Standing::NotLoaded);
        s.replace([(a, Some(pa))]);
        assert_eq!(s.peer(&pa), Standing::Registered);
        assert_eq!(s.operator(&a), Standing::Registered);
        assert_eq!(s.peer(&peer()), Standing::Unknown);
        assert_eq!(s.operator(&Address::repeat_byte(2)), Standing::Unknown);
    }

    #[test]
    fn an_update_moves_or_drops_the_peer_id() {
        let s = RegistrySet::new();
        let (a, p1, p2) = (Address::repeat_byte(1), peer(), peer());
        s.replace([(a, Some(p1))]);
        // Re-registered under a new PeerId: the old one is no longer a member.
        s.update(a, true, Some(p2));
        assert_eq!(s.peer(&p1), Standing::Unknown);
        assert_eq!(s.peer(&p2), Standing::Registered);
        // Unstaked: gone.
        s.update(a, false, None);
        assert_eq!(s.peer(&p2), Standing::Unknown);
        assert_eq!(s.operator(&a), Standing::Unknown);
        // An unparsable PeerId: the operator signs attestations, no PeerId is listed.
        s.update(a, true, None);
        assert_eq!(s.operator(&a), Standing::Registered);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_earliest_registration_holds_a_peer_id_bound_twice() {
        let s = RegistrySet::new();
        let (first, second, p) = (Address::repeat_byte(1), Address::repeat_byte(2), peer());
        // Both bindings verify (the key owner signed for both operators);
        // the full read lists them in registration order.
        s.replace([(first, Some(p)), (second, Some(p))]);
        assert_eq!(s.holder(&p), Some(first));
        assert_eq!(s.operator(&second), Standing::Registered);
        // A refresh of the second does not take the PeerId over either.
        s.update(second, true, Some(p));
        assert_eq!(s.holder(&p), Some(first));
        // Once the first leaves, the PeerId is free; the first refresh of a
        // holder after that gets it.
        s.update(first, false, None);
        assert_eq!(s.holder(&p), None);
        s.update(second, true, Some(p));
        assert_eq!(s.holder(&p), Some(second));
    }

    #[test]
    fn the_set_is_bounded() {
        let s = RegistrySet::new();
        s.replace((0..MAX_NEURONS as u64 + 10).map(|i| {
            let mut b = [0u8; 20];
            b[..8].copy_from_slice(&i.to_be_bytes());
            (Address::from(b), None)
        }));
        assert_eq!(s.len(), MAX_NEURONS);
        s.update(Address::repeat_byte(0xff), true, Some(peer()));
        assert_eq!(s.len(), MAX_NEURONS, "a full set takes no more");
    }
}
