//! Batched settlement through the client: submit_verdicts and finalize_many.

use alloy::primitives::{B256, Bytes, keccak256};
use alloy::providers::ext::AnvilApi;
use hal9_market::client::MAX_BATCH;
use hal9_market::{MarketError, VerdictEntry};

use crate::chain::{now, spec, start, three_neurons, tokens};

#[tokio::test]
async fn batches_apply_good_entries_and_report_skipped_ones() {
    let Some(net) = start().await else { return };
    let signers = three_neurons(&net).await;
    let client = net.client(4).await;
    let relayer = net.client(1).await;
    let p = net.provider(0);
    let deadline = now(&p).await + 3_600;
    let mut tasks = Vec::new();
    for nonce in 1..=3 {
        tasks.push(
            client
                .post_task(&spec(net.keys[4].address(), nonce, deadline), tokens(10))
                .await
                .unwrap(),
        );
    }
    let result = keccak256(b"out");
    let cid = Bytes::from_static(b"\x01\x55cid");
    let entry = |i: usize, n: usize| {
        let t = &tasks[i];
        VerdictEntry {
            task: t.task_id,
            result,
            output_cid: cid.clone(),
            signatures: t.committee[..n]
                .iter()
                .map(|m| {
                    client
                        .sign_attestation(&signers[m], t.task_id, result, &cid)
                        .unwrap()
                })
                .collect(),
            dissents: vec![],
        }
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
        4,
        "Finalized"
    );

    // Too long a batch is refused before anything is sent.
    let e = relayer
        .finalize_many(&vec![B256::ZERO; MAX_BATCH + 1])
        .await
        .unwrap_err();
    assert!(matches!(e, MarketError::InvalidParam { .. }), "{e}");
}
