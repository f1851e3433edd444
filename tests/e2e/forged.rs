//! A raw libp2p attacker sends a certificate with a forged signature and a
//! vote batch signed by a key outside the validator set: the node's gossip
//! validators reject both, forward neither, and the attacker's score falls.

use std::time::Duration;

use hal9_consensus::{
    Certificate, CertifiedVote, Cid, CommitVote, Commitment, ResultHash, RevealVote, Round, Salt,
    TaskId, VoteBatch, VoteItem,
};
use hal9_node::engine::{CERTS_TOPIC, VOTES_TOPIC};
use hal9_p2p::{
    Keypair, PeerId,
    wire::{Envelope, Kind},
};

use crate::harness::{Cluster, NodeProc, bin, eventually, metric};

const CHECKED: &str = "hal9_engine_gossip_checked";

/// A commit and a reveal of `result` for `task`, as `claimed` would vote.
fn votes(task: TaskId, result: ResultHash, claimed: PeerId) -> Vec<VoteItem> {
    let salt = Salt([7; 32]);
    let cid = Cid::new(vec![1, 0x55, 0x12, 0x20, 0, 0]).unwrap();
    vec![
        VoteItem::Commit(CommitVote {
            task,
            round: Round::Primary,
            commitment: Commitment::compute(&result, &salt, &claimed),
        }),
        VoteItem::Reveal(RevealVote {
            task,
            round: Round::Primary,
            result,
            salt,
            cid,
        }),
    ]
}

/// A certificate that claims `victim` signed it, signed by `key` instead.
fn forged_certificate(key: &Keypair, victim: PeerId) -> Vec<u8> {
    let task = TaskId([0x42; 32]);
    let result = ResultHash([0x24; 32]);
    let items = votes(task, result, victim);
    let cid = match &items[1] {
        VoteItem::Reveal(r) => r.cid.clone(),
        _ => unreachable!(),
    };
    let batch = VoteBatch::sign(key, 1, items).unwrap().verify().unwrap();
    let mut commit = batch.signed_vote(0).unwrap();
    let mut reveal = batch.signed_vote(1).unwrap();
    commit.signer = victim;
    reveal.signer = victim;
    let cert = Certificate {
        task,
        round: Round::Primary,
        result,
        cid,
        votes: vec![CertifiedVote { commit, reveal }],
    };
    // It decodes (a well-formed certificate), only the signatures are wrong.
    assert!(Certificate::decode(&cert.encode()).is_ok());
    Envelope::new(Kind::Certificate, cert.encode()).encode()
}

/// A correctly signed batch from a key that is not a validator.
pub(crate) fn outsider_batch(key: &Keypair) -> Vec<u8> {
    let me = key.public().to_peer_id();
    let items = votes(TaskId([0x43; 32]), ResultHash([1; 32]), me);
    let batch = VoteBatch::sign(key, 1, items).unwrap();
    assert!(
        batch.clone().verify().is_ok(),
        "the signature itself is good"
    );
    Envelope::new(Kind::Votes, batch.encode()).encode()
}

async fn score_of(a: &NodeProc, id: &str) -> Option<f64> {
    a.client()
        .unwrap()
        .peers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.peer_id == id)
        .and_then(|p| p.score)
}

pub(crate) async fn checked(n: &NodeProc, topic: &str, outcome: &str) -> f64 {
    metric(
        n,
        CHECKED,
        &format!("topic=\"{topic}\",outcome=\"{outcome}\""),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_certificates_and_outsider_votes_are_rejected_and_penalised() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(&bin(), dir.path(), 2).await.unwrap();
    cluster
        .wait_full_mesh(Duration::from_secs(20))
        .await
        .unwrap();
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (attacker, key) =
        crate::harness::attacker(&cluster, &[CERTS_TOPIC, VOTES_TOPIC], 1 << 20).await;
    let attacker_id = attacker.local_peer_id().to_string();
    let before = score_of(a, &attacker_id).await.unwrap_or(0.0);

    // A certificate claiming node B's signatures, signed by the attacker.
    let victim: PeerId = b.peer_id().unwrap().parse().unwrap();
    attacker
        .publish(CERTS_TOPIC, forged_certificate(&key, victim))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "node A to reject the forged certificate",
        || async { (checked(a, "certificates", "rejected").await >= 1.0).then_some(()) },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the attacker's score to fall below zero",
        || {
            let id = attacker_id.clone();
            async move {
                let s = score_of(a, &id).await?;
                (s < before && s < 0.0).then_some(s)
            }
        },
    )
    .await;
    assert_eq!(checked(a, "certificates", "accepted").await, 0.0);

    // A well-signed vote batch from a key outside the validator set.
    let score_mid = score_of(a, &attacker_id).await.unwrap();
    attacker
        .publish(VOTES_TOPIC, outsider_batch(&key))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "node A to reject the outsider's vote batch",
        || async { (checked(a, "votes", "rejected").await >= 1.0).then_some(()) },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the attacker's score to fall further",
        || {
            let id = attacker_id.clone();
            async move {
                let s = score_of(a, &id).await?;
                (s < score_mid).then_some(s)
            }
        },
    )
    .await;

    // Node A forwarded neither: node B never checked a certificate or a vote batch.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for topic in ["certificates", "votes"] {
        for outcome in ["accepted", "rejected", "ignored"] {
            assert_eq!(
                checked(b, topic, outcome).await,
                0.0,
                "node B saw a {topic} message ({outcome}): node A forwarded it"
            );
        }
    }
    let _ = attacker.shutdown().await;
    cluster.stop().await.unwrap();
}
