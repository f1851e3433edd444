use std::time::Duration;

use hal9_node::{
    dev::testnet::{TestNet, TestNetOptions},
    engine::{EngineConfig, records::TaskStatus},
};

fn example(name: &str) -> Vec<u8> {
    let path = hal9_plugins::builder::example_wasm(name).expect("example plugin builds");
    std::fs::read(path).expect("example readable")
}

async fn testnet(n: usize, wrong: &[usize]) -> TestNet {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let opts = TestNetOptions {
        engine: EngineConfig {
            commit_timeout_ms: 30_000,
            reveal_timeout_ms: 5_000,
            ..Default::default()
        },
        wrong: wrong.to_vec(),
        ..Default::default()
    };
    TestNet::new(n, opts).await.expect("test network starts")
}

async fn submit(net: &TestNet, wasm: &[u8], input: &[u8], nonce: u64) -> String {
    let program = net.publish(0, wasm).await.unwrap();
    hex::encode(net.submit(0, &program, input, 3, nonce).await.unwrap().0)
}

fn task_id(hex_id: &str) -> hal9_consensus::TaskId {
    hal9_consensus::TaskId(hex::decode(hex_id).unwrap().try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_reach_a_verified_verdict_on_wordcount() {
    let net = testnet(5, &[]).await;
    let wasm = example("wordcount");
    let id = submit(
        &net,
        &wasm,
        b"the quick brown fox jumps over the lazy dog the end",
        1,
    )
    .await;
    let rec = net.nodes[0]
        .engine
        .wait(task_id(&id), Duration::from_secs(60))
        .await
        .unwrap()
        .expect("task known");
    assert_eq!(rec.status, TaskStatus::Verified, "{rec:?}");
    let verdict = rec.verdict.clone().unwrap();
    assert!(verdict.attesters.len() >= 2, "{verdict:?}");
    for a in &verdict.attesters {
        assert!(
            rec.committee.contains(a),
            "attester {a} not in committee {:?}",
            rec.committee
        );
    }
    // Every node records the same verdict and can check the certificate itself.
    for node in &net.nodes {
        let r = node
            .engine
            .wait(task_id(&id), Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            r.verdict.as_ref().map(|v| &v.result),
            Some(&verdict.result),
            "{}",
            node.peer
        );
        let report = node.engine.verify(task_id(&id)).await.unwrap();
        assert_eq!(report.result, verdict.result);
    }
    // The output is fetched by CID and hashes to the verdict, on a non-member too.
    let outsider = net
        .nodes
        .iter()
        .find(|n| !rec.committee.contains(&n.peer))
        .expect("5 nodes, 3 members");
    let out = outsider.engine.output(task_id(&id)).await.unwrap();
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(text.contains("\"the\""), "unexpected output {text}");
}

#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_member_is_outvoted_and_loses_reputation() {
    // Draw until the wrong node (index 1) is on the committee.
    let net = testnet(5, &[1]).await;
    let wasm = example("sha256");
    let bad = net.nodes[1].peer.clone();
    let mut checked = false;
    for k in 0..20u8 {
        let id = submit(&net, &wasm, &[k; 32], u64::from(k)).await;
        let rec = net.nodes[0]
            .engine
            .wait(task_id(&id), Duration::from_secs(90))
            .await
            .unwrap()
            .unwrap();
        assert!(rec.is_final(), "{rec:?}");
        // Safety on every task: a verdict is always the honest result.
        if rec.status == TaskStatus::Verified {
            use sha2::Digest;
            let out = net.nodes[0].engine.output(task_id(&id)).await.unwrap();
            let expected = hex::encode(sha2::Sha256::digest([k; 32]));
            assert_eq!(
                out.as_ref(),
                expected.as_bytes(),
                "the verdict must be the honest result"
            );
        }
        // Liveness needs the two honest members; one too slow to fetch on a
        // loaded machine leaves no quorum, and the task fails (refunded).
        if !rec.committee.contains(&bad) || rec.status != TaskStatus::Verified {
            continue;
        }
        let v = rec.verdict.unwrap();
        assert!(
            !v.attesters.contains(&bad),
            "the wrong member must not be in the certificate"
        );
        checked = true;
        break;
    }
    assert!(checked, "the wrong node was never drawn in 20 tasks");
    // Reputation of the wrong member drops below the honest ones' (as seen by
    // node 0) once the reveal window of its round has closed.
    let mut rep = Vec::new();
    for _ in 0..120 {
        rep = net.nodes[0].engine.reputation().await.unwrap();
        if rep.iter().any(|(p, b)| *p == bad && *b < 10_000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let of = |p: &str| rep.iter().find(|(q, _)| q == p).map(|(_, b)| *b);
    let bad_rep = of(&bad).expect("wrong member has a reputation entry");
    let honest_max = rep
        .iter()
        .filter(|(p, _)| *p != bad)
        .map(|(_, b)| *b)
        .max()
        .unwrap();
    assert!(
        bad_rep < honest_max,
        "wrong member {bad_rep} vs honest {honest_max}: {rep:?}"
    );
}
