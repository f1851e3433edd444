//! Starts a node's services in dependency order and runs them until a signal.

use std::{collections::VecDeque, sync::Arc, time::Instant};

use eyre::{Context, eyre};
use hal9_api::{ApiInfo, ReceivedNote};
use hal9_p2p::{Network, NetworkEvent, NetworkHandle};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tokio::{net::TcpListener, sync::mpsc, task::JoinSet};
use tracing::{info, warn};

use crate::{
    api::{self, ApiState},
    config::NodeConfig,
    engine::{self, Engine, Inbound},
    home::{API_FILE, Home, STORE_FILE},
    notes,
    store::Store,
};

/// How many received notes the node keeps for the API.
const NOTES_KEPT: usize = 1000;
/// How many remembered peers are dialed at start-up.
const REDIAL_PEERS: usize = 16;

pub use crate::clock::now_ms;

/// Runs a node until SIGINT/SIGTERM or until a critical service fails.
pub async fn run(home: Home, cfg: NodeConfig) -> eyre::Result<()> {
    home.ensure_initialized()?;
    cfg.validate()?;
    let key = home.load_key()?;
    let token = home.ensure_token()?;
    let store_path = home.path(STORE_FILE);
    let store = tokio::task::spawn_blocking(move || Store::open(&store_path))
        .await
        .map_err(|e| eyre!("store task: {e}"))??;
    let store = Arc::new(store);
    store.set_max_peers(cfg.store.max_peer_records);

    let validators = load_validators(&home, &cfg)?;
    let mut cfg = cfg;
    if cfg.network.content.dir.is_none() {
        // Blocks and pins persist in the home unless the config says otherwise.
        cfg.network.content.dir = Some(home.path("ipfs"));
    }
    if let Some(dir) = &cfg.network.content.dir {
        std::fs::create_dir_all(dir)
            .wrap_err_with(|| format!("cannot create the content store {}", dir.display()))?;
    }
    let mut registry = Registry::default();
    store.register_metrics(&mut registry);
    let (network, net, events) =
        Network::new(key.clone(), cfg.network.clone(), &mut registry).await?;
    info!(target: "hal9::node", peer_id = %net.local_peer_id(), "node starting");

    let api_listener = TcpListener::bind(cfg.api.listen)
        .await
        .wrap_err_with(|| format!("cannot bind the control API on {}", cfg.api.listen))?;
    let metrics_listener = TcpListener::bind(cfg.metrics.listen)
        .await
        .wrap_err_with(|| format!("cannot bind the metrics endpoint on {}", cfg.metrics.listen))?;

    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        network.run().await;
        "network"
    });

    net.subscribe(notes::TOPIC, cfg.network.max_message_size, notes::validate)
        .await?;

    // The consensus engine: plugins run what the committee draws this node for.
    let plugins = hal9_plugins::PluginEngine::with_metrics(
        hal9_plugins::EngineConfig::default(),
        hal9_plugins::Metrics::register(&mut registry),
    )?;
    let chain = if cfg.chain.enabled() {
        Some(crate::chain::ChainLink::connect(&home, &cfg.chain).await?)
    } else {
        None
    };
    let outbox = crate::chain::Outbox::new(store.clone());
    let mut consensus = cfg.consensus.clone();
    if let Some(link) = &chain {
        link.fit_consensus(&mut consensus).await?;
    }
    let (engine, engine_handle, inbound) = Engine::new(
        consensus,
        key,
        validators,
        plugins,
        Arc::new(net.content()),
        net.clone(),
        store.clone(),
        hal9_consensus::Metrics::register(&mut registry),
    )?;
    let engine = match &chain {
        Some(link) => engine.with_chain(link.clone(), outbox.clone()),
        None => engine,
    };
    let gossip = engine.gossip_validators(&inbound);
    gossip.register(&mut registry);
    engine.register_metrics(&mut registry);
    tasks.spawn(async move {
        engine.run().await;
        "consensus engine"
    });
    engine::subscribe_topics(&net, &gossip).await?;
    if let Some(link) = &chain {
        engine::subscribe_chain_topics(&net, &gossip).await?;
        let s2 = store.clone();
        let cursor = tokio::task::spawn_blocking(move || s2.get_meta("chain_cursor"))
            .await
            .map_err(|e| eyre!("store task: {e}"))??
            .and_then(|b| serde_json::from_slice::<crate::chain::watch::Cursor>(&b).ok());
        // The watcher sits below the engine: it emits chain inputs on its
        // own channel, forwarded here in order.
        let (chain_tx, mut chain_rx) = tokio::sync::mpsc::channel(256);
        let watch_metrics = crate::chain::watch::WatchMetrics::register(&mut registry);
        let l2 = link.clone();
        tasks.spawn(async move {
            crate::chain::watch::run(l2, cursor, chain_tx, watch_metrics).await;
            "chain watcher"
        });
        link.members.register(&mut registry);
        let l4 = link.clone();
        tasks.spawn(async move {
            crate::chain::members::run(l4).await;
            "registry members"
        });
        let in2 = inbound.clone();
        tasks.spawn(async move {
            while let Some(c) = chain_rx.recv().await {
                if in2.send(engine::Inbound::Chain(c)).await.is_err() {
                    break;
                }
            }
            "chain input forwarder"
        });
        let (l3, h3) = (link.clone(), engine_handle.clone());
        let metrics = crate::chain::OutboxMetrics::register(&mut registry);
        tasks.spawn(async move {
            outbox.run(l3, h3, metrics).await;
            "settlement outbox"
        });
    }
    redial_known_peers(&net, &store).await;
    {
        let (s2, scfg) = (store.clone(), cfg.store.clone());
        tasks.spawn(async move {
            crate::store::retention::run(s2, scfg).await;
            "store retention"
        });
    }

    let state = ApiState {
        net: net.clone(),
        store: store.clone(),
        notes: Arc::new(Mutex::new(VecDeque::with_capacity(NOTES_KEPT))),
        started: Instant::now(),
        token: token.into(),
        registry: Arc::new(registry),
        engine: Some(engine_handle),
        chain: chain.clone(),
    };
    let api_addr = api_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    {
        let router = api::router(state.clone());
        let mut stop = stop_tx.subscribe();
        tasks.spawn(async move {
            let _ = axum::serve(api_listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.recv().await;
                })
                .await;
            "control API"
        });
    }
    {
        let router = api::metrics_router(state.clone());
        let mut stop = stop_tx.subscribe();
        tasks.spawn(async move {
            let _ = axum::serve(metrics_listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.recv().await;
                })
                .await;
            "metrics endpoint"
        });
    }
    tasks.spawn(event_loop(events, state.clone(), inbound));

    let info = ApiInfo {
        url: format!("http://{api_addr}"),
        metrics_url: format!("http://{metrics_addr}"),
        peer_id: net.local_peer_id().to_string(),
        pid: std::process::id(),
    };
    let api_file = home.path(API_FILE);
    std::fs::write(&api_file, serde_json::to_vec_pretty(&info)?)
        .wrap_err_with(|| format!("cannot write {}", api_file.display()))?;
    info!(target: "hal9::node", api = %info.url, metrics = %info.metrics_url, "node running");

    let outcome = tokio::select! {
        sig = shutdown_signal() => { info!(target: "hal9::node", signal = sig, "shutting down"); Ok(()) }
        done = tasks.join_next() => {
            let name = match done { Some(Ok(n)) => n, Some(Err(e)) => { warn!(target: "hal9::node", error = %e, "task panicked"); "a task" } None => "all tasks" };
            Err(eyre!("critical service stopped: {name}"))
        }
    };

    let _ = std::fs::remove_file(&api_file);
    let _ = stop_tx.send(());
    let _ = net.shutdown().await;
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        warn!(target: "hal9::node", "services did not stop within 5 s");
    }
    info!(target: "hal9::node", "stopped");
    outcome
}

/// The standalone validator set from the genesis file; a node without one
/// follows and verifies tasks but is never drawn into a committee.
fn load_validators(home: &Home, cfg: &NodeConfig) -> eyre::Result<hal9_consensus::ValidatorSet> {
    let path = home.root().join(&cfg.consensus.genesis);
    let genesis = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<hal9_consensus::Genesis>(&bytes)
            .wrap_err_with(|| format!("invalid genesis file {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warn!(target: "hal9::node", path = %path.display(), "no genesis file: empty validator set, this node only observes");
            hal9_consensus::Genesis::default()
        }
        Err(e) => return Err(e).wrap_err_with(|| format!("cannot read {}", path.display())),
    };
    genesis
        .validator_set()
        .map_err(|e| eyre!("invalid genesis file {}: {e}", path.display()))
}

async fn redial_known_peers(net: &NetworkHandle, store: &Arc<Store>) {
    let store = store.clone();
    let known = tokio::task::spawn_blocking(move || store.peers())
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let mut known: Vec<_> = known
        .into_iter()
        .filter_map(|(peer, rec)| Some((rec.last_seen, peer, rec.last_addr?)))
        .collect();
    known.sort_by_key(|k| std::cmp::Reverse(k.0));
    for (_, peer, addr) in known.into_iter().take(REDIAL_PEERS) {
        let Ok(addr) = format!("{addr}/p2p/{peer}").parse() else {
            continue;
        };
        if let Err(e) = net.dial(addr).await {
            tracing::debug!(target: "hal9::node", %peer, error = %e, "redial failed");
        }
    }
}

async fn event_loop(
    mut events: mpsc::Receiver<NetworkEvent>,
    state: ApiState,
    engine: mpsc::Sender<Inbound>,
) -> &'static str {
    while let Some(ev) = events.recv().await {
        let ev = match engine::route(ev, &engine).await {
            Ok(Some(ev)) => ev,
            Ok(None) => continue,
            Err(_) => break,
        };
        match ev {
            NetworkEvent::Message {
                id,
                source,
                author,
                topic,
                data,
            } if topic == notes::TOPIC => match notes::decode(&data, notes::MAX_TEXT) {
                Ok(text) => {
                    info!(target: "hal9::node", %id, author = ?author.map(|a| a.to_string()), "note received");
                    let mut q = state.notes.lock();
                    if q.len() >= NOTES_KEPT {
                        q.pop_front();
                    }
                    q.push_back(ReceivedNote {
                        id,
                        author: author.map(|a| a.to_string()),
                        source: source.to_string(),
                        text,
                        received_at_ms: now_ms(),
                    });
                }
                Err(e) => {
                    warn!(target: "hal9::node", %id, error = %e, "undecodable note passed validation")
                }
            },
            NetworkEvent::Message { topic, .. } => {
                tracing::debug!(target: "hal9::node", %topic, "message on a topic without a consumer");
            }
            NetworkEvent::PeerIdentified { peer, listen_addrs } => {
                // Prefer a TCP address: it is what a restarted node redials first.
                let addr = listen_addrs
                    .iter()
                    .find(|a| a.to_string().contains("/tcp/"))
                    .or(listen_addrs.first())
                    .map(|a| a.to_string());
                let store = state.store.clone();
                let now = now_ms() / 1000;
                let res = tokio::task::spawn_blocking(move || {
                    store.record_peer(&peer.to_string(), addr, now)
                })
                .await;
                if let Ok(Err(e)) = res {
                    warn!(target: "hal9::node", error = %e, "cannot record peer");
                }
            }
            NetworkEvent::PeerConnected(_) => {}
            NetworkEvent::PeerDisconnected(_) | NetworkEvent::Listening(_) => {}
        }
    }
    "event loop"
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
