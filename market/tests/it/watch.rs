//! The event watcher on a real anvil: order and fields, confirmations,
//! reorgs, and an endpoint that goes away.

use std::net::SocketAddr;

use alloy::primitives::{B256, Bytes, U256, keccak256};
use alloy::providers::{Provider, ProviderBuilder, ext::AnvilApi};
use alloy::rpc::types::anvil::ReorgOptions;
use hal9_market::{Batch, ChainEvent, Cursor, Dissent, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::chain::{
    NEURONS, Net, RELAYER, SUBMITTER, commit_members, mine_and_draw, neurons, now, spec, start,
    time_past, tokens,
};

/// Polls until the watcher has caught up; returns every event and the last batch.
async fn drain<P: Provider>(w: &mut Watcher<P>) -> (Vec<hal9_market::Located<ChainEvent>>, Batch) {
    let mut all = Vec::new();
    loop {
        let b = w.poll().await.expect("poll");
        all.extend(b.events.iter().cloned());
        if b.caught_up {
            return (all, b);
        }
    }
}

fn watcher(
    net: &Net,
    cursor: Option<Cursor>,
    confirmations: u64,
    max_range: u64,
) -> Watcher<impl Provider + use<>> {
    let p = ProviderBuilder::new().connect_http(net.url.clone());
    Watcher::new(
        p,
        &net.d,
        cursor,
        net.d.deploy_block,
        confirmations,
        max_range,
    )
    .expect("watcher")
}

fn posted(events: &[hal9_market::Located<ChainEvent>]) -> Vec<B256> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            ChainEvent::TaskPosted(p) => Some(p.task_id),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn events_arrive_in_order_with_their_fields() {
    let Some(net) = start().await else { return };
    let who = neurons(&net, NEURONS).await;
    let client = net.client(SUBMITTER).await;
    let relayer = net.client(RELAYER).await;
    let p = net.provider(0);
    // Small ranges, so the deployment's blocks take several eth_getLogs.
    let mut w = watcher(&net, None, 0, 3);
    // What the deployment and the registrations emitted.
    let (pre, _) = drain(&mut w).await;
    let params = client.params().await.unwrap();
    assert_eq!(pre.len(), 1, "the market's first event is its parameters");
    assert_eq!(pre[0].event, ChainEvent::ParamsUpdated(params.clone()));

    let deadline = now(&p).await + 3_600;
    let t1 = client
        .post_task(
            &spec(net.keys[SUBMITTER].address(), 1, deadline),
            tokens(10),
        )
        .await
        .unwrap();
    let t2 = client
        .post_task(
            &spec(net.keys[SUBMITTER].address(), 2, deadline),
            tokens(20),
        )
        .await
        .unwrap();
    let d1 = mine_and_draw(&relayer, &p, t1.task_id, t1.draw_block, false).await;
    let result = keccak256(b"out");
    let cid = b"\x01\x55cid".to_vec();
    let other = keccak256(b"other");
    let c = d1.members.clone();
    let reveals = commit_members(&net, &who, t1.task_id, &c, &[result, result, other], &cid).await;
    time_past(&p, d1.commit_end).await;
    let rc = relayer
        .submit_verdict(t1.task_id, result, &cid, reveals[..2].to_vec())
        .await
        .unwrap();
    let added = relayer
        .add_reveals(t1.task_id, vec![reveals[2].clone()])
        .await
        .unwrap();
    // An equivocation on the second task, once drawn.
    let d2 = mine_and_draw(&relayer, &p, t2.task_id, t2.draw_block, false).await;
    let m = d2.members[0];
    let signed = |r: B256| Dissent {
        resultHash: r,
        outputCid: Bytes::from(cid.clone()),
        signature: relayer
            .sign_result(&who[&m].key, t2.task_id, r, &cid)
            .unwrap(),
    };
    relayer
        .prove_equivocation(t2.task_id, signed(result), signed(other))
        .await
        .unwrap();
    p.anvil_increase_time(params.challengeWindow + 1)
        .await
        .unwrap();
    p.anvil_mine(Some(1), None).await.unwrap();
    let fin = relayer.finalize(t1.task_id).await.unwrap();

    let (events, last) = drain(&mut w).await;
    let head = p.get_block_number().await.unwrap();
    assert_eq!(last.cursor.block, head, "no confirmations: up to the head");
    assert_eq!(
        Some(last.cursor.hash),
        p.get_block_by_number(head.into())
            .await
            .unwrap()
            .map(|b| b.header.hash)
    );
    assert!(!last.reorged);
    for pair in events.windows(2) {
        assert!(
            (pair[0].block, pair[0].log_index) < (pair[1].block, pair[1].log_index),
            "chain order"
        );
    }
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| !matches!(e.event, ChainEvent::DrawRetargeted { .. }))
        .map(|e| match &e.event {
            ChainEvent::TaskPosted(_) => "posted",
            ChainEvent::CommitteeDrawn { .. } => "drawn",
            ChainEvent::Committed { .. } => "committed",
            ChainEvent::VerdictSubmitted { .. } => "verdict",
            ChainEvent::RevealsAdded { .. } => "reveals",
            ChainEvent::Equivocation { .. } => "equivocation",
            ChainEvent::Finalized { .. } => "finalized",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "posted",
            "posted",
            "drawn",
            "committed",
            "committed",
            "committed",
            "verdict",
            "reveals",
            "drawn",
            "equivocation",
            "finalized"
        ]
    );
    let find = |f: &dyn Fn(&ChainEvent) -> bool| {
        events.iter().find(|e| f(&e.event)).cloned().expect("event")
    };
    let e1 = find(&|e| matches!(e, ChainEvent::TaskPosted(p) if p.task_id == t1.task_id));
    assert_eq!(e1.event, ChainEvent::TaskPosted(t1.clone()));
    assert_eq!(Some(e1.block), t1.block);
    assert_eq!(posted(&events), [t1.task_id, t2.task_id]);
    let drawn =
        find(&|e| matches!(e, ChainEvent::CommitteeDrawn { task, .. } if *task == t1.task_id));
    assert_eq!(
        drawn.event,
        ChainEvent::CommitteeDrawn {
            task: t1.task_id,
            committee: c.clone(),
            commit_end: d1.commit_end,
            reveal_end: d1.reveal_end,
        }
    );
    let committed: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            ChainEvent::Committed { task, member } if *task == t1.task_id => Some(*member),
            _ => None,
        })
        .collect();
    assert_eq!(committed, c);
    let v = find(&|e| matches!(e, ChainEvent::VerdictSubmitted { .. }));
    assert_eq!(
        v.event,
        ChainEvent::VerdictSubmitted {
            task: t1.task_id,
            result,
            output_cid: Bytes::from(cid.clone()),
            majority_mask: U256::from(3),
            minority_mask: U256::ZERO,
        }
    );
    assert_eq!(v.tx, rc.transaction_hash);
    assert_eq!(Some(v.block), rc.block_number);
    let r = find(&|e| matches!(e, ChainEvent::RevealsAdded { .. }));
    assert_eq!(
        r.event,
        ChainEvent::RevealsAdded {
            task: t1.task_id,
            majority_mask: U256::from(3),
            minority_mask: U256::from(4),
        }
    );
    assert_eq!(r.tx, added.transaction_hash);
    let q = find(&|e| matches!(e, ChainEvent::Equivocation { .. }));
    let ChainEvent::Equivocation {
        task,
        member,
        prover,
        slashed,
    } = q.event
    else {
        unreachable!()
    };
    assert_eq!(
        (task, member, prover),
        (t2.task_id, m, net.keys[RELAYER].address())
    );
    assert!(slashed > U256::ZERO);
    let f = find(&|e| matches!(e, ChainEvent::Finalized { .. }));
    let ChainEvent::Finalized {
        task,
        result: r,
        per_member,
        slashed,
        ..
    } = &f.event
    else {
        unreachable!()
    };
    assert_eq!((*task, *r), (t1.task_id, result));
    assert!(*per_member > U256::ZERO && *slashed > U256::ZERO);
    assert_eq!(f.tx, fin.transaction_hash);

    // Nothing new: an empty batch at the same cursor.
    let again = w.poll().await.unwrap();
    assert!(again.events.is_empty() && again.caught_up);
    assert_eq!(again.cursor, last.cursor);

    // A watcher resumed from the persisted cursor sees only what follows.
    let json = serde_json::to_string(&last.cursor).unwrap();
    let mut resumed = watcher(&net, Some(serde_json::from_str(&json).unwrap()), 0, 1_000);
    let t3 = client
        .post_task(
            &spec(net.keys[SUBMITTER].address(), 3, deadline),
            tokens(10),
        )
        .await
        .unwrap();
    let (events, _) = drain(&mut resumed).await;
    assert_eq!(posted(&events), [t3.task_id]);
}

#[tokio::test]
async fn confirmations_hold_back_the_newest_blocks() {
    let Some(net) = start().await else { return };
    neurons(&net, NEURONS).await;
    let client = net.client(SUBMITTER).await;
    let p = net.provider(0);
    let mut w = watcher(&net, None, 3, 1_000);
    let t = client
        .post_task(
            &spec(net.keys[SUBMITTER].address(), 1, now(&p).await + 3_600),
            tokens(10),
        )
        .await
        .unwrap();
    let posted_in = t.block.unwrap();

    let (events, b) = drain(&mut w).await;
    assert_eq!(b.cursor.block, p.get_block_number().await.unwrap() - 3);
    assert!(b.cursor.block < posted_in);
    assert!(
        posted(&events).is_empty(),
        "the task's block is not confirmed yet"
    );

    p.anvil_mine(Some(2), None).await.unwrap();
    let (events, b) = drain(&mut w).await;
    assert!(posted(&events).is_empty(), "two confirmations of three");
    assert_eq!(b.cursor.block, posted_in - 1);

    p.anvil_mine(Some(1), None).await.unwrap();
    let (events, b) = drain(&mut w).await;
    assert_eq!(posted(&events), [t.task_id]);
    assert_eq!(b.cursor.block, posted_in);
}

#[tokio::test]
async fn a_reorg_is_detected_and_events_are_re_emitted() {
    let Some(net) = start().await else { return };
    neurons(&net, NEURONS).await;
    let p = net.provider(0);
    let mut w = watcher(&net, None, 0, 1_000);
    let deadline = now(&p).await + 3_600;
    let (_, base) = drain(&mut w).await;

    // anvil_reorg: the last two blocks (approve + postTask) are replaced by
    // empty ones, so the task vanishes.
    let client = net.client(SUBMITTER).await;
    let a = client
        .post_task(
            &spec(net.keys[SUBMITTER].address(), 1, deadline),
            tokens(10),
        )
        .await
        .unwrap();
    let (events, b) = drain(&mut w).await;
    assert_eq!(posted(&events), [a.task_id]);
    assert!(!b.reorged);
    p.anvil_reorg(ReorgOptions {
        depth: 2,
        tx_block_pairs: vec![],
    })
    .await
    .unwrap();
    assert_eq!(
        p.get_block_number().await.unwrap(),
        b.cursor.block,
        "same height, other blocks"
    );
    let b = w.poll().await.unwrap();
    assert!(b.reorged, "hash at the cursor changed");
    assert_eq!(
        b.fork_block,
        Some(base.cursor.block),
        "fork point from the ring"
    );
    assert!(
        posted(&b.events).is_empty(),
        "the task is gone from the chain"
    );
    assert_eq!(b.cursor.block, p.get_block_number().await.unwrap());

    // evm_snapshot / evm_revert: another branch with another task, longer
    // than the first.
    let snap = p.anvil_snapshot().await.unwrap();
    let fork_at = p.get_block_number().await.unwrap();
    let client = net.client(SUBMITTER).await;
    let x = client
        .post_task(
            &spec(net.keys[SUBMITTER].address(), 2, deadline),
            tokens(10),
        )
        .await
        .unwrap();
    let (events, _) = drain(&mut w).await;
    assert_eq!(posted(&events), [x.task_id]);
    assert!(p.anvil_revert(snap).await.unwrap());
    // Fresh providers: the old ones cache nonces of the abandoned branch.
    let client = net.client(SUBMITTER).await;
    let y = client
        .post_task(
            &spec(net.keys[SUBMITTER].address(), 3, deadline),
            tokens(10),
        )
        .await
        .unwrap();
    p.anvil_mine(Some(2), None).await.unwrap();
    let (events, b) = drain(&mut w).await;
    assert!(b.reorged);
    assert_eq!(b.fork_block, Some(fork_at));
    assert_eq!(posted(&events), [y.task_id], "only the new branch's task");
    assert!(events.iter().all(|e| e.block > fork_at));
    assert_eq!(b.cursor.block, p.get_block_number().await.unwrap());

    // A watcher restored from a cursor that is no longer on the chain (and
    // that has no ring yet) rescans from the start block.
    let gone = Cursor {
        block: b.cursor.block,
        hash: B256::repeat_byte(0xee),
    };
    let mut w2 = watcher(&net, Some(gone), 0, 1_000);
    let first = w2.poll().await.unwrap();
    assert!(first.reorged);
    assert_eq!(first.fork_block, Some(net.d.deploy_block.saturating_sub(1)));
    let mut events = first.events.clone();
    if !first.caught_up {
        events.extend(drain(&mut w2).await.0);
    }
    assert_eq!(posted(&events), [y.task_id]);
}

/// A TCP forwarder the test can stop and restart on the same port, to make
/// the RPC endpoint go away and come back while anvil keeps its chain.
struct Proxy {
    port: u16,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(port: u16, target: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) ends every connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                conns.spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Self {
            port,
            target,
            task: Some(task),
        }
    }

    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        *self = Self::start(self.port, self.target).await;
    }
}

#[tokio::test]
async fn an_endpoint_that_goes_away_is_an_error_and_polling_resumes() {
    let Some(net) = start().await else { return };
    neurons(&net, NEURONS).await;
    let target: SocketAddr = ([127, 0, 0, 1], net.anvil.port()).into();
    let mut proxy = Proxy::start(0, target).await;
    let url: alloy::transports::http::reqwest::Url =
        format!("http://127.0.0.1:{}", proxy.port).parse().unwrap();
    let p = ProviderBuilder::new().connect_http(url);
    let mut w = Watcher::new(p, &net.d, None, net.d.deploy_block, 0, 1_000).unwrap();
    let (_, before) = drain(&mut w).await;

    proxy.stop().await;
    let client = net.client(SUBMITTER).await;
    let t = client
        .post_task(
            &spec(
                net.keys[SUBMITTER].address(),
                1,
                now(&net.provider(0)).await + 3_600,
            ),
            tokens(10),
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let e = w.poll().await.expect_err("endpoint is down");
        assert!(e.to_string().contains("failed"), "{e}");
        assert_eq!(
            w.cursor(),
            Some(before.cursor),
            "an error leaves the cursor"
        );
    }

    proxy.restart().await;
    let (events, after) = drain(&mut w).await;
    assert!(!after.reorged);
    assert_eq!(posted(&events), [t.task_id], "resumed where it stopped");

    // A port nothing listens on: an error too.
    proxy.stop().await;
    let dead = ProviderBuilder::new()
        .connect_http(format!("http://127.0.0.1:{}", proxy.port).parse().unwrap());
    let mut w = Watcher::new(dead, &net.d, None, 0, 0, 10).unwrap();
    assert!(w.poll().await.is_err());
}
