use std::time::Duration;

use crate::harness::{Cluster, bin, eventually};

/// Five processes given one bootstrap address find each other through the
/// DHT, and a note published on one arrives at every other exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_discover_each_other_and_gossip_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(&bin(), dir.path(), 5).await.unwrap();
    // Only node 0's address was given to the others: the rest is Kademlia.
    let took = cluster
        .wait_full_mesh(Duration::from_secs(20))
        .await
        .unwrap();
    eprintln!("full mesh after {took:?}");

    let text = "exactly-once probe";
    cluster.nodes[3]
        .client()
        .unwrap()
        .publish_note(text)
        .await
        .unwrap();
    for (i, node) in cluster.nodes.iter().enumerate() {
        if i == 3 {
            continue;
        }
        let client = node.client().unwrap();
        eventually(Duration::from_secs(10), "note delivery", || {
            let client = client.clone();
            async move {
                let notes = client.notes().await.ok()?;
                notes.iter().any(|n| n.text == text).then_some(())
            }
        })
        .await;
    }
    // Give duplicates every chance to show up, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let author = cluster.nodes[3]
        .client()
        .unwrap()
        .status()
        .await
        .unwrap()
        .peer_id;
    for (i, node) in cluster.nodes.iter().enumerate() {
        let notes = node.client().unwrap().notes().await.unwrap();
        let n = notes.iter().filter(|n| n.text == text).count();
        let expected = usize::from(i != 3);
        assert_eq!(n, expected, "node{i} received the note {n} times");
        for note in notes.iter().filter(|n| n.text == text) {
            assert_eq!(note.author.as_deref(), Some(author.as_str()));
        }
    }
    cluster.stop().await.unwrap();
}
