//! Shared helpers for the process tests.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::Output,
    time::{Duration, Instant},
};

pub(crate) use hal9_node::dev::devnet::{Cluster, NodeProc};

/// The `hal9` binary built for this test run.
pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hal9"))
}

/// Runs `hal9 args...` to completion.
pub(crate) fn hal9(args: &[&str], home: &Path) -> Output {
    std::process::Command::new(bin())
        .args(args)
        .arg("--home")
        .arg(home)
        .env_remove("HAL9_HOME")
        .output()
        .expect("run hal9")
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub(crate) async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads one counter/gauge sample from a node's `/metrics`.
pub(crate) async fn metric(node: &NodeProc, name: &str, labels: &str) -> f64 {
    let info: hal9_api::ApiInfo = serde_json::from_slice(
        &std::fs::read(node.home().path(hal9_node::home::API_FILE)).expect("api.json"),
    )
    .expect("api.json parses");
    let text = reqwest::get(format!("{}/metrics", info.metrics_url))
        .await
        .expect("metrics reachable")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A raw libp2p peer with no validation of its own, subscribed to `topics`,
/// allowed a single connection (to the cluster's bootstrap node, node 0).
/// Returns its handle and key once node 0 sees it on every topic.
pub(crate) async fn attacker(
    cluster: &Cluster,
    topics: &[&str],
    max_message_size: usize,
) -> (hal9_p2p::NetworkHandle, hal9_p2p::Keypair) {
    let mut cfg = hal9_p2p::NetworkConfig::local_tcp();
    cfg.bootstrap = vec![cluster.bootstrap.parse().expect("bootstrap address")];
    cfg.max_message_size = max_message_size;
    cfg.max_connections = 1;
    cfg.target_peers = 1;
    let key = hal9_p2p::Keypair::generate_ed25519();
    let mut registry = prometheus_client::registry::Registry::default();
    let (net, handle, _events) = hal9_p2p::Network::new(key.clone(), cfg, &mut registry)
        .await
        .expect("attacker network");
    tokio::spawn(net.run());
    for topic in topics {
        handle
            .subscribe(*topic, usize::MAX, |_: &hal9_p2p::PeerId, _: &[u8]| {
                hal9_p2p::Validation::Accept
            })
            .await
            .expect("attacker subscribes");
    }
    let id = handle.local_peer_id().to_string();
    let c = cluster.nodes[0].client().expect("node 0 client");
    eventually(
        Duration::from_secs(15),
        "node 0 to see the attacker subscribed",
        || {
            let (c, id) = (c.clone(), id.clone());
            async move {
                let peers = c.peers().await.ok()?;
                peers
                    .iter()
                    .any(|p| {
                        p.peer_id == id && topics.iter().all(|t| p.topics.iter().any(|x| x == t))
                    })
                    .then_some(())
            }
        },
    )
    .await;
    (handle, key)
}

/// Starts `n` nodes with per-node `args` and waits for the full mesh.
pub(crate) async fn meshed(dir: &Path, n: usize, args: fn(usize) -> Vec<String>) -> Cluster {
    let cluster = Cluster::start_with(&bin(), dir, n, args)
        .await
        .expect("cluster starts");
    cluster
        .wait_full_mesh(Duration::from_secs(30))
        .await
        .expect("full mesh");
    cluster
}
