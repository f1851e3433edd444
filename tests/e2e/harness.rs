//! Shared helpers for the process tests.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::Output,
    time::{Duration, Instant},
};

pub(crate) use hal9_node::devnet::{Cluster, NodeProc};

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
    let info: hal9_node::runtime::ApiInfo = serde_json::from_slice(
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
