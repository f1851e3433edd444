//! The composed libp2p behaviour of a hal9 node.

use std::time::Duration;

use libp2p::{
    StreamProtocol, connection_limits, gossipsub, identify,
    identity::Keypair,
    kad, mdns, ping,
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
};
use rust_ipfs::{p2p::bitswap, repo::DefaultStorage};
use sha2::{Digest, Sha256};

use crate::{Error, NetworkConfig};

/// Kademlia protocol of the hal9 DHT.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/hal9/kad/1.0.0");
/// Identify protocol version string.
pub(crate) const IDENTIFY_PROTOCOL: &str = "/hal9/id/1.0.0";

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    /// IPFS block exchange (rust-ipfs's bitswap 1.2, serving from our repo).
    pub(crate) bitswap: bitswap::Behaviour,
}

/// The content store type shared by bitswap and the content handle.
pub(crate) type Repo = rust_ipfs::repo::Repo<DefaultStorage>;

/// Message ids are the SHA-256 of topic and payload: the same bytes on the
/// same topic are one message however many peers forward them.
fn message_id(msg: &gossipsub::Message) -> gossipsub::MessageId {
    let mut h = Sha256::new();
    h.update(msg.topic.as_str().as_bytes());
    h.update([0u8]);
    h.update(&msg.data);
    gossipsub::MessageId::from(h.finalize().to_vec())
}

/// Score parameters for every hal9 topic: invalid messages cost a lot, while
/// the delivery-rate penalties (P3/P3b), which punish honest peers on quiet
/// topics, are off.
pub(crate) fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.1,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 100.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.99,
        ..Default::default()
    }
}

impl Behaviour {
    pub(crate) fn new(key: &Keypair, cfg: &NetworkConfig, repo: &Repo) -> Result<Self, Error> {
        let peer_id = key.public().to_peer_id();

        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(cfg.max_connections))
                .with_max_established_per_peer(Some(cfg.max_connections_per_peer))
                .with_max_pending_incoming(Some(cfg.max_connections))
                .with_max_pending_outgoing(Some(cfg.max_connections)),
        );

        let gs_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(message_id)
            .max_transmit_size(cfg.frame_limit())
            .heartbeat_interval(Duration::from_millis(cfg.heartbeat_ms.max(50)))
            .build()
            .map_err(|e| Error::Build(format!("gossipsub config: {e}")))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gs_config,
        )
        .map_err(|e| Error::Build(format!("gossipsub: {e}")))?;
        gossipsub
            .with_peer_score(
                gossipsub::PeerScoreParams::default(),
                gossipsub::PeerScoreThresholds::default(),
            )
            .map_err(|e| Error::Build(format!("gossipsub peer score: {e}")))?;

        let mut kad_cfg = kad::Config::new(KAD_PROTOCOL);
        kad_cfg.set_query_timeout(Duration::from_secs(30));
        kad_cfg.set_periodic_bootstrap_interval(Some(Duration::from_secs(60)));
        // Provider records for every object this node or its neighbours hold.
        let store = kad::store::MemoryStore::with_config(
            peer_id,
            kad::store::MemoryStoreConfig {
                max_provided_keys: 100_000,
                max_providers_per_key: 64,
                ..Default::default()
            },
        );
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_cfg);
        // Nodes answer DHT queries from the start; on loopback and LANs no
        // external address is ever confirmed, which would leave them clients.
        kad.set_mode(Some(kad::Mode::Server));

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                .with_agent_version(format!("hal9/{}", env!("CARGO_PKG_VERSION")))
                .with_push_listen_addr_updates(true),
        );

        let mdns = if cfg.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| Error::Build(format!("mdns: {e}")))?,
            )
        } else {
            None
        };

        Ok(Self {
            limits,
            gossipsub,
            kad,
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            mdns: mdns.into(),
            bitswap: bitswap::Behaviour::new(repo, bitswap::Config::default()),
        })
    }
}
