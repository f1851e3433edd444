use std::time::Duration;

use crate::harness::{Cluster, bin, eventually};

/// A node stopped with SIGTERM exits cleanly; restarted with the same home
/// it keeps its peer id, rejoins, and receives gossip again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_peer_id_and_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(&bin(), dir.path(), 3).await.unwrap();
    cluster
        .wait_full_mesh(Duration::from_secs(20))
        .await
        .unwrap();
    let before = cluster.nodes[2].client().unwrap().status().await.unwrap();

    let status = cluster.nodes[2].stop().await.unwrap();
    assert!(
        status.success(),
        "SIGTERM must give a clean exit, got {status}"
    );
    assert!(
        !cluster.nodes[2]
            .home()
            .path(hal9_node::home::API_FILE)
            .exists(),
        "api.json must be removed on shutdown"
    );

    let client = cluster.nodes[2].start().await.unwrap();
    let after = client.status().await.unwrap();
    assert_eq!(
        before.peer_id, after.peer_id,
        "peer id changed across restart"
    );
    assert!(after.known_peers >= 2, "store forgot its peers: {after:?}");
    cluster
        .wait_full_mesh(Duration::from_secs(20))
        .await
        .unwrap();

    cluster.nodes[0]
        .client()
        .unwrap()
        .publish_note("after restart")
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "note after restart", || {
        let client = client.clone();
        async move {
            let notes = client.notes().await.ok()?;
            notes
                .iter()
                .any(|n| n.text == "after restart")
                .then_some(())
        }
    })
    .await;
    cluster.stop().await.unwrap();
}
