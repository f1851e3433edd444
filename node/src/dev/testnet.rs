//! In-process networks of full hal9 nodes (swarm, content layer, engine,
//! plugins, store) on loopback, for multi-node tests and `hal9 bench tasks`.

use std::{sync::Arc, time::Duration};

use eyre::{Context, eyre};
use hal9_consensus::{Genesis, GenesisValidator, TaskId};
use hal9_p2p::{Keypair, Network, NetworkConfig, NetworkHandle, Retention};
use prometheus_client::registry::Registry;

use hal9_api::SubmitTask;

use crate::{
    api::tasks::build_task,
    engine::{self, EngineConfig, EngineHandle},
    node::{NodeBuilder, NodeHandle},
    store::Store,
};

/// A running in-process node, started through [`NodeBuilder`] like the
/// binary's.
pub struct TestNode {
    /// Network handle.
    pub net: NetworkHandle,
    /// Engine handle.
    pub engine: EngineHandle,
    /// Peer id.
    pub peer: String,
    /// The node itself (its store, notes, metrics and services).
    pub node: NodeHandle,
}

/// Options of a [`TestNet`].
#[derive(Debug, Clone, Default)]
pub struct TestNetOptions {
    /// Engine settings of every node.
    pub engine: EngineConfig,
    /// Indices of nodes that report wrong results (needs `fault-injection`).
    pub wrong: Vec<usize>,
    /// A clock every node runs on instead of the system clock.
    pub clock: Option<Arc<crate::clock::ManualClock>>,
    /// Store retention and caps of every node.
    pub store: crate::config::StoreConfig,
    /// Most connections each node accepts (the p2p default when `None`).
    pub max_connections: Option<u32>,
}

/// A network of in-process nodes sharing one genesis.
pub struct TestNet {
    /// The nodes; node 0 is the bootstrap node.
    pub nodes: Vec<TestNode>,
    _dir: tempfile::TempDir,
}

impl TestNet {
    /// Starts `n` nodes and waits until each sees the others on the votes topic.
    pub async fn new(n: usize, opts: TestNetOptions) -> eyre::Result<Self> {
        let dir = tempfile::tempdir()?;
        let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate_ed25519()).collect();
        let genesis = Genesis {
            validators: keys
                .iter()
                .map(|k| GenesisValidator {
                    peer_id: k.public().to_peer_id().to_string(),
                    weight: "1".into(),
                    capabilities: vec![],
                })
                .collect(),
        };
        let validators = genesis.validator_set().map_err(|e| eyre!("{e}"))?;
        let mut nodes = Vec::new();
        let mut bootstrap = None;
        for (i, key) in keys.into_iter().enumerate() {
            let mut cfg = NetworkConfig::local_tcp();
            cfg.heartbeat_ms = 200;
            cfg.bootstrap = bootstrap.iter().cloned().collect();
            if let Some(max) = opts.max_connections {
                cfg.max_connections = max;
            }
            let store = Arc::new(Store::open(&dir.path().join(format!("s{i}.redb")))?);
            let mut builder = NodeBuilder::new(key, store)
                .network(cfg)
                .consensus(opts.engine.clone())
                .validators(validators.clone())
                .store_config(opts.store.clone())
                .wrong_results(opts.wrong.contains(&i));
            if let Some(c) = &opts.clock {
                builder = builder.clock(c.clone());
            }
            let node = builder.start().await?;
            if bootstrap.is_none() {
                let mut addr = None;
                for _ in 0..500 {
                    if let Some(a) = node.net.listen_addrs().await?.into_iter().next() {
                        addr = Some(a);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let addr = addr.ok_or_else(|| eyre!("node 0 did not start listening"))?;
                bootstrap = Some(addr.with(hal9_p2p::multiaddr_p2p(node.peer_id)));
            }
            nodes.push(TestNode {
                peer: node.peer_id.to_string(),
                net: node.net.clone(),
                engine: node.engine.clone(),
                node,
            });
        }
        for node in &nodes {
            for _ in 0..600 {
                if node.net.topic_peers(engine::VOTES_TOPIC).await?.len() >= n - 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(Self { nodes, _dir: dir })
    }

    /// A bare libp2p peer (no validation of its own) connected to node 0
    /// and in node 0's mesh of `topic`: a flooding attacker.
    pub async fn raw_peer(&self, topic: &str) -> eyre::Result<NetworkHandle> {
        let net = self.raw_peers(1, topic).await?.remove(0);
        for _ in 0..400 {
            if !net.topic_peers(topic).await?.is_empty() {
                return Ok(net);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(eyre!("the raw peer never joined the mesh of {topic}"))
    }

    /// `n` bare libp2p peers, each with its own fresh identity, dialing
    /// node 0 and subscribed to `topic` (a flood of distinct peers). They
    /// are not waited for: node 0 may refuse some of them.
    pub async fn raw_peers(&self, n: usize, topic: &str) -> eyre::Result<Vec<NetworkHandle>> {
        let node0 = &self.nodes[0].net;
        let addr = node0
            .listen_addrs()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| eyre!("node 0 does not listen"))?
            .with(hal9_p2p::multiaddr_p2p(node0.local_peer_id()));
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            let mut cfg = NetworkConfig::local_tcp();
            cfg.bootstrap = vec![addr.clone()];
            cfg.target_peers = 1;
            cfg.publish_queue = 1 << 16;
            let mut registry = Registry::default();
            let (network, net, _events) =
                Network::new(Keypair::generate_ed25519(), cfg, &mut registry).await?;
            tokio::spawn(network.run());
            net.subscribe(topic, usize::MAX, |_: &hal9_p2p::PeerId, _: &[u8]| {
                hal9_p2p::Validation::Accept
            })
            .await?;
            peers.push(net);
        }
        Ok(peers)
    }

    /// Adds `wasm` to node `i`'s content store (pinned) and returns its CID.
    pub async fn publish(&self, i: usize, wasm: &[u8]) -> eyre::Result<String> {
        let cid = self.nodes[i]
            .net
            .content()
            .add(wasm.to_vec(), Retention::Pinned)
            .await
            .wrap_err("adding the program")?;
        Ok(cid.to_string())
    }

    /// Submits a task through node `i`; returns its id.
    pub async fn submit(
        &self,
        i: usize,
        program: &str,
        input: &[u8],
        replicas: u16,
        nonce: u64,
    ) -> eyre::Result<TaskId> {
        let msg = build_task(&SubmitTask {
            program: program.to_string(),
            input_hex: hex::encode(input),
            replicas,
            fuel: None,
            nonce: Some(nonce),
            fee: None,
        })
        .map_err(|e| eyre!("{e:?}"))?;
        Ok(self.nodes[i].engine.submit(msg).await?)
    }
}
