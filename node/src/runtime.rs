//! The node process: reads the home (key, token, store, genesis, chain
//! link), starts the node through [`NodeBuilder`], and runs it until a signal.

use std::sync::Arc;

use eyre::{Context, eyre};
use hal9_api::ApiInfo;
use tracing::{info, warn};

use crate::{
    config::NodeConfig,
    home::{API_FILE, Home, STORE_FILE},
    node::{ApiSettings, NodeBuilder},
    store::Store,
};

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
    let mut builder = NodeBuilder::new(key, Arc::new(store))
        .network(cfg.network.clone())
        .consensus(cfg.consensus.clone())
        .store_config(cfg.store.clone())
        .validators(validators)
        .api(ApiSettings {
            listen: cfg.api.listen,
            metrics_listen: cfg.metrics.listen,
            token,
        });
    if cfg.chain.enabled() {
        builder = builder.chain(crate::chain::ChainLink::connect(&home, &cfg.chain).await?);
    }
    let mut node = builder.start().await?;
    let (Some(api_addr), Some(metrics_addr)) = (node.api_addr, node.metrics_addr) else {
        return Err(eyre!("the control API did not start"));
    };
    let info = ApiInfo {
        url: format!("http://{api_addr}"),
        metrics_url: format!("http://{metrics_addr}"),
        peer_id: node.peer_id.to_string(),
        pid: std::process::id(),
    };
    let api_file = home.path(API_FILE);
    std::fs::write(&api_file, serde_json::to_vec_pretty(&info)?)
        .wrap_err_with(|| format!("cannot write {}", api_file.display()))?;
    info!(target: "hal9::node", api = %info.url, metrics = %info.metrics_url, "node running");

    let outcome = tokio::select! {
        sig = shutdown_signal() => { info!(target: "hal9::node", signal = sig, "shutting down"); Ok(()) }
        name = node.failed() => Err(eyre!("critical service stopped: {name}")),
    };
    let _ = std::fs::remove_file(&api_file);
    node.shutdown().await;
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
