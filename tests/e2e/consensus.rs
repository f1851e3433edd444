//! Proof-of-Computation over real processes: 5 nodes, r = 3.

use std::time::Duration;

use hal9_api::{ApiClient, SubmitTask, TaskStatus};

#[cfg(feature = "fault-injection")]
use crate::harness::{Cluster, bin};

async fn publish_sha256(client: &ApiClient) -> String {
    let wasm = std::fs::read(hal9_plugins::builder::example_wasm("sha256").unwrap()).unwrap();
    client.publish_program(wasm).await.unwrap().cid
}

async fn submit(client: &ApiClient, program: &str, input: &[u8]) -> String {
    client
        .submit_task(&SubmitTask {
            program: program.to_string(),
            input_hex: hex::encode(input),
            replicas: 3,
            fuel: None,
            nonce: None,
            fee: None,
        })
        .await
        .unwrap()
        .id
}

/// Generous rounds: members on a loaded 2-core machine may need seconds to
/// fetch and compile the program before they can commit.
pub(crate) fn patient(i: usize) -> Vec<String> {
    let _ = i;
    vec![
        "--commit-timeout-ms".into(),
        "30000".into(),
        "--reveal-timeout-ms".into(),
        "10000".into(),
    ]
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_survive_a_killed_member_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = crate::harness::meshed(dir.path(), 5, patient).await;
    let c0 = cluster.nodes[0].client().unwrap();
    let program = publish_sha256(&c0).await;

    // A plain task: every node ends with the same verified verdict.
    let id = submit(&c0, &program, b"first").await;
    let rec = c0.task(&id, Some(90_000)).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Verified, "{rec:?}");
    assert_eq!(
        c0.task_result(&id).await.unwrap(),
        sha256_hex(b"first").as_bytes()
    );
    let report = cluster.nodes[4]
        .client()
        .unwrap()
        .verify_task(&id)
        .await
        .unwrap();
    assert_eq!(report.result, rec.verdict.as_ref().unwrap().result);

    // Kill one member of the next task's committee with SIGKILL right after submission.
    let id2 = submit(&c0, &program, b"second").await;
    let rec2 = c0.task(&id2, None).await.unwrap();
    let victim = (1..5)
        .find(|&i| {
            rec2.committee
                .contains(&cluster.nodes[i].peer_id().unwrap())
        })
        .expect("a member other than node0");
    cluster.nodes[victim].kill().await.unwrap();
    let rec2 = c0.task(&id2, Some(90_000)).await.unwrap();
    assert!(
        rec2.is_final(),
        "the task must end without the killed member: {rec2:?}"
    );
    assert_eq!(
        rec2.status,
        TaskStatus::Verified,
        "2 of 3 is a quorum: {rec2:?}"
    );

    // The killed node comes back with its tasks, votes and verdicts intact.
    let back = cluster.nodes[victim].start().await.unwrap();
    let after = back.task(&id, None).await.unwrap();
    assert_eq!(
        after.status,
        TaskStatus::Verified,
        "lost across restart: {after:?}"
    );
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_member_that_comes_back_lets_pending_tasks_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = crate::harness::meshed(dir.path(), 5, patient).await;
    let c0 = cluster.nodes[0].client().unwrap();
    let program = publish_sha256(&c0).await;
    // Cut two nodes off (SIGSTOP: no traffic in or out), submit, then heal.
    let frozen: Vec<u32> = [3, 4]
        .iter()
        .map(|&i| cluster.nodes[i].pid().unwrap())
        .collect();
    for pid in &frozen {
        std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap();
    }
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for k in 0..3u8 {
            v.push(submit(&c0, &program, &[k; 8]).await);
        }
        v
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    for pid in &frozen {
        std::process::Command::new("kill")
            .args(["-CONT", &pid.to_string()])
            .status()
            .unwrap();
    }
    for id in &ids {
        let rec = c0.task(id, Some(120_000)).await.unwrap();
        assert!(
            rec.is_final(),
            "pending task did not end after the partition healed: {rec:?}"
        );
    }
    cluster.stop().await.unwrap();
}

#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliberately_wrong_member_is_outvoted_and_loses_reputation() {
    let dir = tempfile::tempdir().unwrap();
    // Node 2 reports wrong results (compiled in only with `fault-injection`).
    let mut cluster = Cluster::start_with(&bin(), dir.path(), 5, |i| {
        let mut args = patient(i);
        if i == 2 {
            args.push("env:HAL9_FAULT=wrong-result".to_string());
        }
        args
    })
    .await
    .unwrap();
    cluster
        .wait_full_mesh(Duration::from_secs(30))
        .await
        .unwrap();
    let c0 = cluster.nodes[0].client().unwrap();
    let program = publish_sha256(&c0).await;
    let bad = cluster.nodes[2].peer_id().unwrap();
    let mut seen = false;
    for k in 0..12u8 {
        let input = [k; 16];
        let id = submit(&c0, &program, &input).await;
        let rec = c0.task(&id, Some(90_000)).await.unwrap();
        assert!(rec.is_final(), "{rec:?}");
        // Safety, whatever the committee: a verdict is always the honest result.
        if rec.status == TaskStatus::Verified {
            assert_eq!(
                c0.task_result(&id).await.unwrap(),
                sha256_hex(&input).as_bytes()
            );
        }
        if !rec.committee.contains(&bad) {
            continue;
        }
        if rec.status != TaskStatus::Verified {
            // One wrong member plus one honest member too slow to fetch on
            // this loaded machine leaves no quorum: the task fails, refunded.
            eprintln!(
                "task {k}: no quorum with the faulty member drawn: {:?}",
                rec.outcomes
            );
            continue;
        }
        assert!(!rec.verdict.as_ref().unwrap().attesters.contains(&bad));
        seen = true;
        break;
    }
    assert!(
        seen,
        "no verified task had the faulty node in its committee"
    );
    // Outcomes settle when the reveal window closes.
    let rep = crate::harness::eventually(Duration::from_secs(60), "reputation drop", || {
        let (c0, bad) = (c0.clone(), bad.clone());
        async move {
            let rep = c0.reputation().await.ok()?;
            let b = rep.iter().find(|(p, _)| *p == bad).map(|(_, b)| *b)?;
            (b < 10_000).then_some(rep)
        }
    })
    .await;
    let bad_rep = rep
        .iter()
        .find(|(p, _)| *p == bad)
        .map(|(_, b)| *b)
        .unwrap_or(10_000);
    let honest_best = rep
        .iter()
        .filter(|(p, _)| *p != bad)
        .map(|(_, b)| *b)
        .max()
        .unwrap_or(10_000);
    assert!(
        bad_rep < honest_best,
        "wrong member {bad_rep} vs best honest {honest_best}: {rep:?}"
    );
    cluster.stop().await.unwrap();
}
