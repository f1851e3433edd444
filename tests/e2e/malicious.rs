use std::time::Duration;

use crate::harness::{Cluster, bin, eventually, metric};

const NOTES: &str = hal9_node::notes::TOPIC;

/// A peer that sends an oversized note and a malformed one: the node rejects
/// both, does not forward them, lowers the peer's score and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_messages_are_rejected_and_penalised() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(&bin(), dir.path(), 2).await.unwrap();
    cluster
        .wait_full_mesh(Duration::from_secs(20))
        .await
        .unwrap();
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);

    // The attacker: a libp2p peer with a larger size limit and no validation,
    // allowed a single connection so it can only reach node A.
    let (attacker, _) = crate::harness::attacker(&cluster, &[NOTES], 4 << 20).await;
    let attacker_id = attacker.local_peer_id().to_string();
    let a_client = a.client().unwrap();
    let score_before = a_client
        .peers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.peer_id == attacker_id)
        .and_then(|p| p.score)
        .unwrap_or(0.0);

    // 1 MiB + 4 KiB: fits a gossipsub frame, exceeds the 1 MiB topic limit.
    let oversized = hal9_node::notes::encode(&"x".repeat((1 << 20) + 4096));
    attacker.publish(NOTES, oversized).await.unwrap();
    // Not an envelope at all.
    attacker
        .publish(NOTES, b"\xde\xad\xbe\xef not a hal9 envelope".to_vec())
        .await
        .unwrap();

    eventually(
        Duration::from_secs(10),
        "both rejections at node A",
        || async {
            let too_large = metric(
                a,
                "hal9_p2p_messages_received_total",
                "outcome=\"too_large\"",
            )
            .await;
            let rejected = metric(
                a,
                "hal9_p2p_messages_received_total",
                "outcome=\"rejected\"",
            )
            .await;
            (too_large >= 1.0 && rejected >= 1.0).then_some(())
        },
    )
    .await;

    let score_after = a_client
        .peers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.peer_id == attacker_id)
        .and_then(|p| p.score);
    let score_after = score_after.expect("node A still scores the attacker");
    assert!(
        score_after < score_before && score_after < 0.0,
        "attacker score should drop below zero: before {score_before}, after {score_after}"
    );

    // Node A keeps running and still relays honest traffic; B never saw the bad messages.
    let b_client = b.client().unwrap();
    a_client.publish_note("still alive").await.unwrap();
    eventually(Duration::from_secs(10), "honest note at B", || {
        let c = b_client.clone();
        async move {
            let notes = c.notes().await.ok()?;
            notes.iter().any(|n| n.text == "still alive").then_some(())
        }
    })
    .await;
    let b_notes = b_client.notes().await.unwrap();
    assert!(
        b_notes.iter().all(|n| n.text == "still alive"),
        "B got {b_notes:?}"
    );
    let b_bad = metric(
        b,
        "hal9_p2p_messages_received_total",
        "outcome=\"rejected\"",
    )
    .await
        + metric(
            b,
            "hal9_p2p_messages_received_total",
            "outcome=\"too_large\"",
        )
        .await;
    assert_eq!(b_bad, 0.0, "node A forwarded a bad message to B");
    assert!(
        b_client
            .peers()
            .await
            .unwrap()
            .iter()
            .all(|p| p.peer_id != attacker_id),
        "the attacker must only have reached node A"
    );
    let _ = attacker.shutdown().await;
    cluster.stop().await.unwrap();
}
