//! One node, assembled: [`NodeBuilder`] starts a node's services in
//! dependency order (network, content, plugins, the consensus engine, in
//! chain mode the watcher, registry and settlement outbox, retention, and
//! optionally the control API and metrics endpoint) and returns a
//! [`NodeHandle`] that owns them.
//!
//! The binary ([`crate::runtime::run`]), the in-process test network
//! ([`crate::dev::testnet`]) and the benches all start nodes through it, so
//! a test node runs exactly the wiring a production node runs.

pub mod events;
pub mod retention;

use std::{collections::VecDeque, net::SocketAddr, sync::Arc, time::Instant};

use eyre::{Context, eyre};
use hal9_consensus::ValidatorSet;
use hal9_p2p::{Keypair, Network, NetworkConfig, NetworkHandle, PeerId};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tokio::{net::TcpListener, sync::broadcast, task::JoinSet};
use tracing::{info, warn};

use crate::{
    api::{self, ApiState},
    chain::{ChainLink, Outbox},
    clock::Clock,
    config::StoreConfig,
    engine::{self, Engine, EngineConfig, EngineHandle},
    notes,
    store::Store,
};

/// How many received notes the node keeps for the API.
pub const NOTES_KEPT: usize = 1000;

/// Where the control API and the metrics endpoint listen.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Control API address.
    pub listen: SocketAddr,
    /// Prometheus metrics address.
    pub metrics_listen: SocketAddr,
    /// The bearer token of the control API.
    pub token: String,
}

/// Assembles one node. Everything but the key and the store has a default.
pub struct NodeBuilder {
    key: Keypair,
    store: Arc<Store>,
    network: NetworkConfig,
    consensus: EngineConfig,
    store_cfg: StoreConfig,
    validators: ValidatorSet,
    chain: Option<Arc<ChainLink>>,
    api: Option<ApiSettings>,
    clock: Arc<dyn Clock>,
    plugins: hal9_plugins::EngineConfig,
    wrong_results: bool,
}

impl NodeBuilder {
    /// A node with identity `key` over `store`: standalone, an empty
    /// validator set, default settings, the system clock, no control API.
    pub fn new(key: Keypair, store: Arc<Store>) -> Self {
        Self {
            key,
            store,
            network: NetworkConfig::default(),
            consensus: EngineConfig::default(),
            store_cfg: StoreConfig::default(),
            validators: ValidatorSet::default(),
            chain: None,
            api: None,
            clock: crate::clock::system(),
            plugins: hal9_plugins::EngineConfig::default(),
            wrong_results: false,
        }
    }

    /// The p2p and content settings.
    pub fn network(mut self, cfg: NetworkConfig) -> Self {
        self.network = cfg;
        self
    }

    /// The consensus engine's settings.
    pub fn consensus(mut self, cfg: EngineConfig) -> Self {
        self.consensus = cfg;
        self
    }

    /// Store retention and caps.
    pub fn store_config(mut self, cfg: StoreConfig) -> Self {
        self.store_cfg = cfg;
        self
    }

    /// The standalone validator set (from the genesis file).
    pub fn validators(mut self, set: ValidatorSet) -> Self {
        self.validators = set;
        self
    }

    /// Chain mode: committees and settlement on the chain behind `link`.
    pub fn chain(mut self, link: Arc<ChainLink>) -> Self {
        self.chain = Some(link);
        self
    }

    /// Serves the control API and the metrics endpoint.
    pub fn api(mut self, api: ApiSettings) -> Self {
        self.api = Some(api);
        self
    }

    /// Runs the node's time-keeping services (engine, outbox, retention) on
    /// `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The WASM plugin engine's settings.
    pub fn plugins(mut self, cfg: hal9_plugins::EngineConfig) -> Self {
        self.plugins = cfg;
        self
    }

    /// Makes this node report wrong results (byzantine tests; needs the
    /// `fault-injection` feature, else [`NodeBuilder::start`] refuses).
    pub fn wrong_results(mut self, wrong: bool) -> Self {
        self.wrong_results = wrong;
        self
    }

    /// Starts every service; returns once the node is subscribed to its
    /// topics and (with an API) listening.
    pub async fn start(self) -> eyre::Result<NodeHandle> {
        #[cfg(not(feature = "fault-injection"))]
        if self.wrong_results {
            eyre::bail!("wrong-result nodes need the fault-injection feature");
        }
        let store = self.store;
        let mut registry = Registry::default();
        store.set_max_peers(self.store_cfg.max_peer_records);
        store.register_metrics(&mut registry);
        let (network, net, events) =
            Network::new(self.key.clone(), self.network.clone(), &mut registry).await?;
        info!(target: "hal9::node", peer_id = %net.local_peer_id(), "node starting");
        // Bind before anything runs, so a taken port fails the start cleanly.
        let listeners = match &self.api {
            Some(a) => Some((
                TcpListener::bind(a.listen)
                    .await
                    .wrap_err_with(|| format!("cannot bind the control API on {}", a.listen))?,
                TcpListener::bind(a.metrics_listen)
                    .await
                    .wrap_err_with(|| {
                        format!("cannot bind the metrics endpoint on {}", a.metrics_listen)
                    })?,
            )),
            None => None,
        };

        let mut services = JoinSet::new();
        services.spawn(async move {
            network.run().await;
            "network"
        });
        net.subscribe(notes::TOPIC, self.network.max_message_size, notes::validate)
            .await?;

        let plugins = hal9_plugins::PluginEngine::with_metrics(
            self.plugins.clone(),
            hal9_plugins::Metrics::register(&mut registry),
        )?;
        let outbox = Outbox::new(store.clone(), self.clock.clone());
        let mut consensus = self.consensus.clone();
        if let Some(link) = &self.chain {
            let (commit_ms, reveal_ms) = link.phase_timeouts_ms().await?;
            consensus.fit_chain_phases(commit_ms, reveal_ms);
        }
        let (engine, engine_handle, inbound) = Engine::new(
            consensus,
            self.key.clone(),
            self.validators.clone(),
            plugins,
            Arc::new(net.content()),
            net.clone(),
            store.clone(),
            hal9_consensus::Metrics::register(&mut registry),
        )?;
        let engine = engine.with_clock(self.clock.clone());
        #[cfg(feature = "fault-injection")]
        let engine = if self.wrong_results {
            engine.with_wrong_results()
        } else {
            engine
        };
        let engine = match &self.chain {
            Some(link) => engine.with_chain(link.clone(), outbox.clone()),
            None => engine,
        };
        let gossip = engine.gossip_validators(&inbound);
        gossip.register(&mut registry);
        engine.register_metrics(&mut registry);
        services.spawn(async move {
            engine.run().await;
            "consensus engine"
        });
        engine::subscribe_topics(&net, &gossip).await?;
        if let Some(link) = &self.chain {
            engine::subscribe_chain_topics(&net, &gossip).await?;
            start_chain_services(
                &mut services,
                &mut registry,
                link,
                &store,
                outbox,
                &engine_handle,
                &inbound,
            )
            .await?;
        }
        events::redial_known_peers(&net, &store).await;
        {
            let (s2, scfg, clock) = (store.clone(), self.store_cfg.clone(), self.clock.clone());
            services.spawn(async move {
                retention::run(s2, scfg, clock).await;
                "store retention"
            });
        }

        let notes = Arc::new(Mutex::new(VecDeque::with_capacity(NOTES_KEPT)));
        services.spawn(events::run(
            events,
            store.clone(),
            notes.clone(),
            self.clock.clone(),
        ));
        let (stop, _) = broadcast::channel::<()>(1);
        let mut api_addr = None;
        let mut metrics_addr = None;
        let registry = Arc::new(registry);
        if let (Some(settings), Some((api_listener, metrics_listener))) = (&self.api, listeners) {
            let state = ApiState {
                net: net.clone(),
                store: store.clone(),
                notes: notes.clone(),
                started: Instant::now(),
                token: settings.token.clone().into(),
                registry: registry.clone(),
                engine: Some(engine_handle.clone()),
                chain: self.chain.clone(),
            };
            api_addr = Some(api_listener.local_addr()?);
            metrics_addr = Some(metrics_listener.local_addr()?);
            for (listener, router, name) in [
                (api_listener, api::router(state.clone()), "control API"),
                (
                    metrics_listener,
                    api::metrics_router(state),
                    "metrics endpoint",
                ),
            ] {
                let mut stop = stop.subscribe();
                services.spawn(async move {
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = stop.recv().await;
                        })
                        .await;
                    name
                });
            }
        }
        Ok(NodeHandle {
            peer_id: net.local_peer_id(),
            net,
            engine: engine_handle,
            store,
            chain: self.chain,
            notes,
            registry,
            api_addr,
            metrics_addr,
            services,
            stop,
        })
    }
}

/// Chain mode's services below the engine: the watcher (its inputs reach
/// the engine on their own channel, in order), the registry members, and
/// the settlement outbox (reading the engine through
/// [`crate::chain::SettlementSource`]).
async fn start_chain_services(
    services: &mut JoinSet<&'static str>,
    registry: &mut Registry,
    link: &Arc<ChainLink>,
    store: &Arc<Store>,
    outbox: Outbox,
    engine: &EngineHandle,
    inbound: &tokio::sync::mpsc::Sender<engine::Inbound>,
) -> eyre::Result<()> {
    let s2 = store.clone();
    let cursor = tokio::task::spawn_blocking(move || s2.get_meta("chain_cursor"))
        .await
        .map_err(|e| eyre!("store task: {e}"))??
        .and_then(|b| serde_json::from_slice::<crate::chain::watch::Cursor>(&b).ok());
    let (chain_tx, mut chain_rx) = tokio::sync::mpsc::channel(256);
    let watch_metrics = crate::chain::watch::WatchMetrics::register(registry);
    let l2 = link.clone();
    services.spawn(async move {
        crate::chain::watch::run(l2, cursor, chain_tx, watch_metrics).await;
        "chain watcher"
    });
    link.members.register(registry);
    let l4 = link.clone();
    services.spawn(async move {
        crate::chain::members::run(l4).await;
        "registry members"
    });
    let in2 = inbound.clone();
    services.spawn(async move {
        while let Some(c) = chain_rx.recv().await {
            if in2.send(engine::Inbound::Chain(c)).await.is_err() {
                break;
            }
        }
        "chain input forwarder"
    });
    let (l3, h3) = (link.clone(), engine.clone());
    let metrics = crate::chain::OutboxMetrics::register(registry);
    services.spawn(async move {
        outbox.run(l3, h3, metrics).await;
        "settlement outbox"
    });
    Ok(())
}

/// A running node: its handles, and the services it owns. Dropping it
/// aborts every service; [`NodeHandle::shutdown`] stops them gracefully.
pub struct NodeHandle {
    /// The node's PeerId.
    pub peer_id: PeerId,
    /// The p2p network.
    pub net: NetworkHandle,
    /// The consensus engine.
    pub engine: EngineHandle,
    /// The store.
    pub store: Arc<Store>,
    /// The settlement chain, in chain mode.
    pub chain: Option<Arc<ChainLink>>,
    /// Recently received notes, newest last.
    pub notes: Arc<Mutex<VecDeque<hal9_api::ReceivedNote>>>,
    /// The node's metrics.
    pub registry: Arc<Registry>,
    /// Where the control API listens, when it runs.
    pub api_addr: Option<SocketAddr>,
    /// Where the metrics endpoint listens, when it runs.
    pub metrics_addr: Option<SocketAddr>,
    services: JoinSet<&'static str>,
    stop: broadcast::Sender<()>,
}

impl NodeHandle {
    /// Waits until a service stops (none should while the node runs) and
    /// names it.
    pub async fn failed(&mut self) -> &'static str {
        match self.services.join_next().await {
            Some(Ok(name)) => name,
            Some(Err(e)) => {
                warn!(target: "hal9::node", error = %e, "a service panicked");
                "a service (panicked)"
            }
            None => std::future::pending().await,
        }
    }

    /// Stops the node: the API stops taking requests, the network shuts
    /// down, and the remaining services get 5 s to end before they are
    /// aborted.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(());
        let _ = self.net.shutdown().await;
        let drain = async { while self.services.join_next().await.is_some() {} };
        if tokio::time::timeout(std::time::Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            warn!(target: "hal9::node", "services did not stop within 5 s");
            self.services.abort_all();
        }
        info!(target: "hal9::node", "stopped");
    }
}
