//! Batched commitments and settlement through the client: commit_many,
//! submit_verdicts and finalize_many.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::providers::ext::AnvilApi;
use hal9_market::client::MAX_BATCH;
use hal9_market::{MarketError, Reveal, VerdictEntry, commit};

use crate::chain::{
    NEURONS, RELAYER, SUBMITTER, mine_and_draw, neurons, now, salt, spec, start, time_past, tokens,
};

#[tokio::test]
async fn batches_apply_good_entries_and_report_skipped_ones() {
    let Some(net) = start().await else { return };
    let who = neurons(&net, NEURONS).await;
    let client = net.client(SUBMITTER).await;
    let relayer = net.client(RELAYER).await;
    let p = net.provider(0);
    let deadline = now(&p).await + 3_600;
    let mut tasks = Vec::new();
    for nonce in 1..=3 {
        tasks.push(
            client
                .post_task(
                    &spec(net.keys[SUBMITTER].address(), nonce, deadline),
                    tokens(10),
                )
                .await
                .unwrap(),
        );
    }
    let mut drawn = Vec::new();
    for t in &tasks {
        drawn.push(mine_and_draw(&relayer, &p, t.task_id, t.draw_block, false).await);
    }
    let result = keccak256(b"out");
    let cid = Bytes::from_static(b"\x01\x55cid");

    // Every member commits for all its tasks in one commit_many.
    let mut per_member: HashMap<Address, Vec<(B256, B256)>> = HashMap::new();
    let mut reveals: Vec<Vec<Reveal>> = Vec::new();
    for (t, d) in tasks.iter().zip(&drawn) {
        let mut rs = Vec::new();
        for (i, m) in d.members.iter().enumerate() {
            let s = salt(t.task_id, *m);
            per_member.entry(*m).or_default().push((
                t.task_id,
                commit::commitment(t.task_id, result, keccak256(&cid), s, *m),
            ));
            rs.push(commit::reveal(i as u16, result, &cid, s));
        }
        reveals.push(rs);
    }
    for (m, entries) in &per_member {
        let c = net.client(who[m].index).await;
        c.commit_many(entries).await.expect("commit_many");
        for (t, cm) in entries {
            assert_eq!(c.committed(*t, *m).await.unwrap(), *cm);
        }
    }
    // Nothing or too much to commit is refused before anything is sent.
    let e = relayer.commit_many(&[]).await.unwrap_err();
    assert!(matches!(e, MarketError::InvalidParam { .. }), "{e}");
    let e = relayer
        .commit_many(&vec![(B256::ZERO, B256::ZERO); MAX_BATCH + 1])
        .await
        .unwrap_err();
    assert!(matches!(e, MarketError::InvalidParam { .. }), "{e}");

    let last_commit_end = drawn.iter().map(|d| d.commit_end).max().unwrap();
    time_past(&p, last_commit_end).await;
    let entry = |i: usize, n: usize| VerdictEntry {
        task: tasks[i].task_id,
        result,
        output_cid: cid.clone(),
        reveals: reveals[i][..n].to_vec(),
    };
    let out = relayer
        .submit_verdicts(vec![entry(0, 2), entry(1, 1), entry(2, 3), entry(0, 2)])
        .await
        .expect("batch");
    assert_eq!(out.applied, [tasks[0].task_id, tasks[2].task_id]);
    assert_eq!(out.skipped.len(), 2);
    assert_eq!(out.skipped[0].task, tasks[1].task_id);
    assert!(
        out.skipped[0].reason.contains("NoQuorum"),
        "{}",
        out.skipped[0].reason
    );
    assert_eq!(out.skipped[1].task, tasks[0].task_id);
    assert!(
        out.skipped[1].reason.contains("WrongStatus"),
        "{}",
        out.skipped[1].reason
    );
    assert!(out.receipt.status());

    let params = client.params().await.unwrap();
    p.anvil_increase_time(params.challengeWindow + 1)
        .await
        .unwrap();
    p.anvil_mine(Some(1), None).await.unwrap();
    let ids: Vec<B256> = tasks.iter().map(|t| t.task_id).collect();
    let out = relayer.finalize_many(&ids).await.expect("finalize batch");
    assert_eq!(out.applied, [tasks[0].task_id, tasks[2].task_id]);
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.skipped[0].task, tasks[1].task_id);
    assert!(
        out.skipped[0].reason.contains("NotFinalizable"),
        "{}",
        out.skipped[0].reason
    );
    assert_eq!(
        client.task(tasks[0].task_id).await.unwrap().status,
        6,
        "Finalized"
    );

    // Too long a batch is refused before anything is sent.
    let e = relayer
        .finalize_many(&vec![B256::ZERO; MAX_BATCH + 1])
        .await
        .unwrap_err();
    assert!(matches!(e, MarketError::InvalidParam { .. }), "{e}");
}
