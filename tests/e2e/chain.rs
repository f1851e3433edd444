//! Chain mode (protocol v1.1) over real processes and a real anvil:
//! committees drawn from a later block's hash, commitments stored on chain
//! before any result is shared, verdicts relayed as reveals of those
//! commitments, finalization with the fee rule, slashing, a challenge that
//! reverses a colluding majority, RPC outages and crashes that settle each
//! verdict exactly once, and a DAO change of the fee rate.
//!
//! The dev chain's commit phase is 30 s and its challenge window 10 min;
//! the tests move the chain's clock past them (`DevChain::end_commit_phase`,
//! `DevChain::advance`) once the nodes have done their part.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use hal9_api::{ApiClient, SubmitTask, TaskRecord, TaskStatus};
use hal9_market::{
    bindings::ComputationMarket,
    economics::{FeeRates, fee_split},
    governance::Support,
};
use hal9_node::dev::devchain::{DevChain, tokens};
use tokio::{net::TcpListener, task::JoinSet};

use crate::harness::{Cluster, bin};

/// Each node's stake: against the standby neurons' 1 HAL9 they are drawn
/// into almost every seat (see `hal9_node::dev::devchain::STANDBY`).
const STAKE: u128 = 1_000_000;
const FEE: u128 = 10;

struct Net {
    chain: DevChain,
    cluster: Cluster,
    _dir: tempfile::TempDir,
    _slots: tokio::sync::SemaphorePermit<'static>,
}

/// Node slots shared by the chain tests of this binary: a test holds one
/// slot per node for its whole run, so the 10-node challenge test and the
/// gossip flood never share two cores with other chain networks.
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_SLOTS as usize);
const MAX_SLOTS: u32 = 10;

async fn slots(n: u32) -> tokio::sync::SemaphorePermit<'static> {
    SLOTS
        .acquire_many(n.min(MAX_SLOTS))
        .await
        .expect("slots are never closed")
}

/// `n` nodes in chain mode (node i = operator i), every node started with
/// `env` (KEY=VALUE pairs), talking to `rpc` (anvil, or a proxy to it).
async fn start(
    n: usize,
    env: &[(&str, String)],
    rpc: Option<&str>,
    chain: Option<DevChain>,
) -> Net {
    let slots = slots(n as u32).await;
    let chain = match chain {
        Some(c) => c,
        None => DevChain::start(n).await.expect("dev chain"),
    };
    let dir = tempfile::Builder::new()
        .prefix("hal9-e2e-chain-")
        .tempdir()
        .unwrap();
    if std::env::var_os("HAL9_E2E_KEEP").is_some() {
        eprintln!("keeping node homes under {}", dir.path().display());
        std::mem::forget(tempfile::Builder::new().tempdir().unwrap());
    }
    let env: Vec<String> = env.iter().map(|(k, v)| format!("env:{k}={v}")).collect();
    let mut nodes = Cluster::init(&bin(), dir.path(), n, |_| {
        let mut a = env.clone();
        a.extend(["--commit-timeout-ms".into(), "20000".into()]);
        a
    })
    .await
    .unwrap();
    let url = rpc.map(str::to_string).unwrap_or_else(|| chain.url.clone());
    for (i, node) in nodes.iter_mut().enumerate() {
        chain
            .prepare_node(node, i, &url, tokens(STAKE), 30)
            .await
            .unwrap();
    }
    // Registrations in a draw phase only queue the tree writes: apply them
    // now, so every node can be drawn from the first task on.
    let ops: Vec<Address> = (0..n).map(|i| chain.operator(i).address()).collect();
    chain.apply_queued(&ops).await.unwrap();
    let cluster = Cluster::launch(nodes).await.unwrap();
    cluster
        .wait_full_mesh(Duration::from_secs(60))
        .await
        .unwrap();
    let dir = if std::env::var_os("HAL9_E2E_KEEP").is_some() {
        let path = dir.keep();
        tempfile::Builder::new().tempdir_in(path).unwrap()
    } else {
        dir
    };
    Net {
        chain,
        cluster,
        _dir: dir,
        _slots: slots,
    }
}

impl Net {
    fn client(&self, i: usize) -> ApiClient {
        self.cluster.nodes[i].client().unwrap()
    }

    async fn program(&self) -> String {
        let wasm = std::fs::read(hal9_plugins::builder::example_wasm("sha256").unwrap()).unwrap();
        self.client(0).publish_program(wasm).await.unwrap().cid
    }

    /// Posts a task through node 0, then drives it to its reveal phase:
    /// waits for the committee and its commitments, and ends the commit
    /// phase. Returns the task id and the committee (operator addresses).
    async fn submit(&self, program: &str, input: &[u8]) -> (String, Vec<String>) {
        let id = self.submit_raw(program, input).await;
        let committee = self.drive(&id).await;
        (id, committee)
    }

    /// Waits until node 0 saw the committee of `id` drawn and (for at most
    /// 150 s) every member's commitment, then ends the commit phase on chain.
    async fn drive(&self, id: &str) -> Vec<String> {
        let committee = self.drawn(id).await;
        self.end_commits(id, committee.len()).await;
        committee
    }

    /// Waits until node 0 saw the committee of `id` drawn; returns it
    /// (operator addresses, in draw order).
    async fn drawn(&self, id: &str) -> Vec<String> {
        self.chain_status_in(0, id, &["drawn", "verdict"], Duration::from_secs(120))
            .await
            .chain
            .map(|c| c.committee)
            .unwrap_or_default()
    }

    /// Waits (at most 150 s) until node 0 counts `n` commitments for `id`,
    /// then moves the chain's clock past the current commit phase.
    async fn end_commits(&self, id: &str, n: usize) {
        let client = self.client(0);
        let deadline = std::time::Instant::now() + Duration::from_secs(150);
        while std::time::Instant::now() < deadline {
            let done = client
                .task(id, None)
                .await
                .ok()
                .and_then(|r| r.chain)
                .is_some_and(|c| c.committed.len() >= n);
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let task: B256 = format!("0x{id}").parse().unwrap();
        self.chain.end_commit_phase(task).await.unwrap();
    }

    /// Posts a task through node 0 and returns its id at once.
    async fn submit_raw(&self, program: &str, input: &[u8]) -> String {
        let s = self
            .client(0)
            .submit_task(&SubmitTask {
                program: program.to_string(),
                input_hex: hex::encode(input),
                replicas: 3,
                fuel: None,
                nonce: None,
                fee: Some(tokens(FEE).to_string()),
            })
            .await
            .unwrap();
        s.id
    }

    /// Waits until node `i` reports one of the chain statuses `want`.
    async fn chain_status_in(
        &self,
        i: usize,
        id: &str,
        want: &[&str],
        timeout: Duration,
    ) -> TaskRecord {
        let client = self.client(i);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(r) = client.task(id, None).await
                && r.chain
                    .as_ref()
                    .is_some_and(|c| want.contains(&c.status.as_str()))
            {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "task {id} not in {want:?} on node{i} after {timeout:?}: {:?}",
                client.task(id, None).await.ok().and_then(|r| r.chain)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Moves the chain's clock past the challenge window.
    async fn pass_challenge_window(&self) {
        self.chain
            .advance(self.chain.config.market.challengeWindow + 1)
            .await
            .unwrap();
    }

    /// Waits until node `i` reports the task's chain status `want`.
    async fn chain_status(&self, i: usize, id: &str, want: &str, timeout: Duration) -> TaskRecord {
        let client = self.client(i);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(r) = client.task(id, None).await
                && r.chain.as_ref().is_some_and(|c| c.status == want)
            {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "task {id} not {want} on node{i} after {timeout:?}: {:?}",
                client.task(id, None).await.ok().and_then(|r| r.chain)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How many times each market event was emitted for `task`.
    async fn events(&self, task: &str) -> (usize, usize, usize) {
        let c = self.chain.client(&self.chain.keys[0]).await.unwrap();
        let id: B256 = format!("0x{task}").parse().unwrap();
        let logs = c
            .market()
            .provider()
            .get_logs(
                &Filter::new()
                    .address(self.chain.deployment.market)
                    .topic1(id)
                    .from_block(0),
            )
            .await
            .unwrap();
        let count = |sig: B256| logs.iter().filter(|l| l.topic0() == Some(&sig)).count();
        (
            count(ComputationMarket::VerdictSubmitted::SIGNATURE_HASH),
            count(ComputationMarket::Finalized::SIGNATURE_HASH),
            count(ComputationMarket::Challenged::SIGNATURE_HASH),
        )
    }

    /// Waits until node 0 reports chain status `want`, restarting any node
    /// that crashed on the way (fault injection aborts before a submission).
    async fn wait_restarting(&mut self, id: &str, want: &str, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            for node in self.cluster.nodes.iter_mut() {
                if !node.is_running() {
                    node.start().await.unwrap();
                }
            }
            let done = self
                .client(0)
                .task(id, None)
                .await
                .ok()
                .and_then(|r| r.chain)
                .is_some_and(|c| c.status == want);
            if done {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "task {id} not {want} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Waits until `n` committee members are paid as the majority on chain
    /// (late agreeing members join the verdict within the challenge window).
    async fn wait_majority(&self, id: &str, n: u32) {
        let c = self.chain.client(&self.chain.keys[0]).await.unwrap();
        let task: B256 = format!("0x{id}").parse().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let t = c.task(task).await.unwrap();
            if t.majorityMask.count_ones() >= n as usize {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {} members joined the verdict",
                t.majorityMask.count_ones()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn index_of(&self, operator: &str) -> usize {
        (0..self.cluster.nodes.len())
            .find(|i| self.chain.operator(*i).address().to_checksum(None) == operator)
            .expect("committee member is one of the nodes")
    }

    async fn balances(&self) -> (Vec<U256>, U256, U256) {
        let mut v = Vec::new();
        for i in 0..self.cluster.nodes.len() {
            v.push(
                self.chain
                    .balance(self.chain.operator(i).address())
                    .await
                    .unwrap(),
            );
        }
        (
            v,
            self.chain
                .balance(self.chain.deployment.timelock)
                .await
                .unwrap(),
            self.chain.total_supply().await.unwrap(),
        )
    }

    async fn stake(&self, i: usize) -> U256 {
        let c = self.chain.client(&self.chain.keys[0]).await.unwrap();
        c.registry()
            .neuron(self.chain.operator(i).address())
            .call()
            .await
            .unwrap()
            .stake
    }
}

/// Balances after a finalized task with `majority` paid members match the fee rule.
fn check_fee_rule(
    before: &(Vec<U256>, U256, U256),
    after: &(Vec<U256>, U256, U256),
    submitter: usize,
    paid: &[usize],
    rates: FeeRates,
) {
    let fee = tokens(FEE);
    let split = fee_split(fee, paid.len() as u32, rates).unwrap();
    for i in 0..before.0.len() {
        let mut want = before.0[i];
        if i == submitter {
            want -= fee;
        }
        if paid.contains(&i) {
            want += split.per_member;
        }
        assert_eq!(after.0[i], want, "balance of operator {i}");
    }
    assert_eq!(after.1, before.1 + split.treasury, "treasury");
    assert_eq!(after.2, before.2 - split.burned, "total supply (burn)");
}

/// A TCP forwarder to anvil that can be cut and restored.
struct Proxy {
    url: String,
    up: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(tokio::sync::Notify::new());
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        if !up2.load(Ordering::SeqCst) {
                            drop(inbound);
                            continue;
                        }
                        conns.spawn(async move {
                            if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            }
                        });
                    }
                    _ = cut2.notified() => conns.abort_all(),
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Self { url, up, cut }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.cut.notify_one();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_settles_and_finalizes_by_the_fee_rule_once_through_crashes_and_rpc_outages() {
    let chain = DevChain::start(5).await.expect("dev chain");
    let proxy = Proxy::start(chain.port()).await;
    let markers = tempfile::tempdir().unwrap();
    // Every node aborts once, right before its first submitVerdict: after
    // it signed its attestation, before its transaction left.
    let mut net = start(
        5,
        &[("HAL9_CRASH_MARKER", markers.path().display().to_string())],
        Some(&proxy.url),
        Some(chain),
    )
    .await;
    let program = net.program().await;

    // 1: crashes before submission; crashed nodes are restarted with the same home.
    let before = net.balances().await;
    let (id, committee) = net.submit(&program, b"settle me once").await;
    net.wait_restarting(&id, "verdict", Duration::from_secs(120))
        .await;
    assert!(
        std::fs::read_dir(markers.path()).unwrap().count() >= 1,
        "at least one node crashed before submitting"
    );
    net.wait_majority(&id, 3).await;
    net.pass_challenge_window().await;
    let rec = net
        .chain_status(0, &id, "finalized", Duration::from_secs(60))
        .await;
    assert_eq!(
        net.events(&id).await,
        (1, 1, 0),
        "one verdict, one finalization"
    );
    let paid: Vec<usize> = committee.iter().map(|a| net.index_of(a)).collect();
    check_fee_rule(
        &before,
        &net.balances().await,
        0,
        &paid,
        FeeRates::default(),
    );
    let s = rec.chain.unwrap().settlement.unwrap();
    assert_eq!(s.slashed, "0");

    // 2: the RPC endpoint goes away while the committee works and comes back.
    for node in net.cluster.nodes.iter_mut() {
        if !node.is_running() {
            node.start().await.unwrap();
        }
    }
    let before = net.balances().await;
    let id = net
        .submit_raw(&program, b"settle me despite the outage")
        .await;
    // Every member stored its commitment; then the nodes lose the RPC
    // endpoint while the commit phase ends: they cannot see the chain's
    // clock pass it, so nobody reveals, and nothing is lost either.
    let committee = net.drawn(&id).await;
    let client0 = net.client(0);
    crate::harness::eventually(
        Duration::from_secs(60),
        "every member's commitment on chain",
        || {
            let c = client0.clone();
            let id = id.clone();
            async move {
                let r = c.task(&id, None).await.ok()?;
                (r.chain?.committed.len() >= 3).then_some(())
            }
        },
    )
    .await;
    proxy.set_up(false);
    let task: B256 = format!("0x{id}").parse().unwrap();
    net.chain.end_commit_phase(task).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        net.events(&id).await.0,
        0,
        "nothing reached the chain while it was away"
    );
    for m in &committee {
        let r = net.client(net.index_of(m)).task(&id, None).await.unwrap();
        assert!(
            r.chain.unwrap().attestations.len() <= 1,
            "no member saw another's reveal while the chain's clock was out of sight"
        );
    }
    proxy.set_up(true);
    net.wait_restarting(&id, "verdict", Duration::from_secs(120))
        .await;
    net.wait_majority(&id, 3).await;
    net.pass_challenge_window().await;
    net.chain_status(0, &id, "finalized", Duration::from_secs(60))
        .await;
    assert_eq!(
        net.events(&id).await,
        (1, 1, 0),
        "one verdict, one finalization"
    );
    let paid: Vec<usize> = committee.iter().map(|a| net.index_of(a)).collect();
    check_fee_rule(
        &before,
        &net.balances().await,
        0,
        &paid,
        FeeRates::default(),
    );
    net.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_member_is_slashed_on_chain() {
    // Whoever sits third in a committee reports a wrong result.
    let mut net = start(5, &[("HAL9_FAULT", "wrong-ranks:2".into())], None, None).await;
    let program = net.program().await;
    let before = net.balances().await;
    let (id, committee) = net.submit(&program, b"one of us is wrong").await;
    let wrong = net.index_of(&committee[2]);
    let stake_before = net.stake(wrong).await;
    net.chain_status(0, &id, "verdict", Duration::from_secs(120))
        .await;
    net.wait_majority(&id, 2).await;
    net.pass_challenge_window().await;
    let rec = net
        .chain_status(0, &id, "finalized", Duration::from_secs(60))
        .await;
    let s = rec.chain.unwrap().settlement.unwrap();
    // slashBps = 10% of the wrong member's stake.
    let slashed = stake_before / U256::from(10u64);
    assert_eq!(s.slashed, slashed.to_string());
    assert_eq!(net.stake(wrong).await, stake_before - slashed);
    let paid: Vec<usize> = committee[..2].iter().map(|a| net.index_of(a)).collect();
    let after = net.balances().await;
    // The slashed stake goes to the treasury on top of its fee share.
    let split = fee_split(tokens(FEE), 2, FeeRates::default()).unwrap();
    assert_eq!(after.1, before.1 + split.treasury + slashed, "treasury");
    let mut after_wo = after.clone();
    after_wo.1 = after.1 - slashed;
    check_fee_rule(&before, &after_wo, 0, &paid, FeeRates::default());
    net.cluster.stop().await.unwrap();
}

/// Copy-and-join (issue 11): the third member never computes; it takes the
/// first result another member reveals and commits to it. Nothing that shows
/// a result leaves a member before the commit phase ends on chain, so the
/// copy comes too late: the chain refuses the commitment, the copier is not
/// paid, and (a quorum having committed) it loses the liveness rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_copies_instead_of_computing_is_not_paid() {
    let mut net = start(4, &[("HAL9_FAULT", "copy-ranks:2".into())], None, None).await;
    let program = net.program().await;
    let before = net.balances().await;
    let id = net.submit_raw(&program, b"copy me if you can").await;
    let committee = net.drawn(&id).await;
    let copier = net.index_of(&committee[2]);
    let stake_before = net.stake(copier).await;
    // Only the two who computed commit; the copier has nothing yet.
    net.end_commits(&id, 2).await;
    net.chain_status(0, &id, "verdict", Duration::from_secs(120))
        .await;
    let log = net.cluster.nodes[copier].home().path("node.log");
    crate::harness::eventually(
        Duration::from_secs(60),
        "the copier's late commitment refused",
        || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).ok()?;
                (text.contains("copied another member's revealed result")
                    && text.contains("commit phase closed before this node's commitment landed"))
                .then_some(())
            }
        },
    )
    .await;
    let c = net.chain.client(&net.chain.keys[0]).await.unwrap();
    let task: B256 = format!("0x{id}").parse().unwrap();
    assert_eq!(
        c.committed(task, net.chain.operator(copier).address())
            .await
            .unwrap(),
        B256::ZERO,
        "the chain holds no commitment of the copier"
    );
    net.pass_challenge_window().await;
    let rec = net
        .chain_status(0, &id, "finalized", Duration::from_secs(60))
        .await;
    let s = rec.chain.unwrap().settlement.unwrap();
    let liveness = stake_before * U256::from(50u64) / U256::from(10_000u64);
    assert_eq!(s.slashed, liveness.to_string(), "liveness rate, once");
    assert_eq!(net.stake(copier).await, stake_before - liveness);
    let paid: Vec<usize> = committee[..2].iter().map(|a| net.index_of(a)).collect();
    let mut after = net.balances().await;
    after.1 -= liveness;
    check_fee_rule(&before, &after, 0, &paid, FeeRates::default());
    net.cluster.stop().await.unwrap();
}

/// Equivocation (issue 11): the third member gossips two signed results
/// for one task. Whoever holds both proves it on chain: the member loses
/// slashBps (half to the prover) and is not paid for the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_signs_two_results_is_slashed_by_whoever_sees_both() {
    let mut net = start(
        4,
        &[("HAL9_FAULT", "equivocate-ranks:2".into())],
        None,
        None,
    )
    .await;
    let program = net.program().await;
    let id = net.submit_raw(&program, b"say it twice").await;
    let committee = net.drawn(&id).await;
    let liar = net.index_of(&committee[2]);
    let stake_before = net.stake(liar).await;
    net.end_commits(&id, 3).await;
    let c = net.chain.client(&net.chain.keys[0]).await.unwrap();
    let task: B256 = format!("0x{id}").parse().unwrap();
    crate::harness::eventually(
        Duration::from_secs(120),
        "an Equivocation event for the task",
        || {
            let c = c.clone();
            let d = net.chain.deployment;
            async move {
                let logs = c
                    .market()
                    .provider()
                    .get_logs(
                        &Filter::new()
                            .address(d.market)
                            .topic1(task)
                            .event_signature(ComputationMarket::Equivocation::SIGNATURE_HASH)
                            .from_block(0),
                    )
                    .await
                    .ok()?;
                (!logs.is_empty()).then_some(())
            }
        },
    )
    .await;
    let slashed = stake_before / U256::from(10u64);
    assert_eq!(net.stake(liar).await, stake_before - slashed);
    net.chain_status(0, &id, "verdict", Duration::from_secs(120))
        .await;
    let t = c.task(task).await.unwrap();
    let bit = committee.iter().position(|m| *m == committee[2]).unwrap();
    assert!(!t.majorityMask.bit(bit), "the equivocator is not paid");
    assert!(t.equivocatedMask.bit(bit));
    net.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_gossip_never_went_out_is_decided_from_its_chain_event() {
    // The submitting node never gossips its tasks (as if every publish
    // failed after the fee was escrowed): the input, however small, is on
    // IPFS and named by CID, so members start from TaskPosted alone.
    let mut net = start(3, &[("HAL9_FAULT", "no-task-gossip".into())], None, None).await;
    let program = net.program().await;
    let (id, _) = net.submit(&program, b"tiny").await;
    net.chain_status(0, &id, "verdict", Duration::from_secs(120))
        .await;
    for i in 0..3 {
        let out = net.client(i).task_result(&id).await.unwrap();
        use sha2::Digest;
        assert_eq!(out, hex::encode(sha2::Sha256::digest(b"tiny")).into_bytes());
    }
    net.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colluding_majority_is_challenged_and_reversed() {
    // The first two members of every committee collude on one wrong
    // result and withhold it: they never send their verdict, hoping the
    // task expires unchallenged. The third, honest, holds their signed
    // attestations, relays the verdict itself and challenges it; the
    // escalation committee of 2r+1 = 7 fresh neurons needs 10 neurons.
    // Ten debug-build nodes on two cores compile the program slowly (up to
    // ~40 s): a commit phase of 150 s leaves the members time to commit.
    let chain = DevChain::start_with(10, |c| c.market.commitPeriod = 150)
        .await
        .expect("dev chain");
    let mut net = start(
        10,
        &[("HAL9_FAULT", "wrong-ranks-silent:0,1".into())],
        None,
        Some(chain),
    )
    .await;
    let program = net.program().await;
    let (id, committee) = net.submit(&program, b"two against one").await;
    let colluders: Vec<usize> = committee[..2].iter().map(|a| net.index_of(a)).collect();
    let honest = net.index_of(&committee[2]);
    let stakes: Vec<U256> = {
        let mut v = Vec::new();
        for i in &colluders {
            v.push(net.stake(*i).await);
        }
        v
    };
    let honest_balance = net
        .chain
        .balance(net.chain.operator(honest).address())
        .await
        .unwrap();
    // The escalation committee is drawn from a block after the challenge,
    // commits, and reveals once its commit phase ended.
    net.chain_status_in(honest, &id, &["escalating"], Duration::from_secs(180))
        .await;
    net.end_commits(&id, 3 + 7).await;
    crate::harness::eventually(
        Duration::from_secs(120),
        "the escalation verdict on chain",
        || async {
            let c = net.chain.client(&net.chain.keys[0]).await.ok()?;
            let t = c.task(format!("0x{id}").parse().ok()?).await.ok()?;
            (t.escalationMask != U256::ZERO).then_some(())
        },
    )
    .await;
    // Finalizable once the escalation's reveal phase is over.
    net.chain
        .advance(net.chain.config.market.revealPeriod + 1)
        .await
        .unwrap();
    let rec = net
        .chain_status(honest, &id, "finalized", Duration::from_secs(180))
        .await;
    let c = rec.chain.unwrap();
    // The colluders withheld their verdict: the honest member relayed it.
    assert!(
        c.txs.iter().any(|(a, _)| a == "submit_verdict"),
        "the honest member sent the withheld verdict: {:?}",
        c.txs
    );
    let s = c.settlement.clone().unwrap();
    assert!(s.overturned, "the escalation reversed the verdict: {c:?}");
    assert_eq!(net.events(&id).await, (1, 1, 1));
    // The colluding majority lost slashBps of its stake.
    for (k, i) in colluders.iter().enumerate() {
        assert_eq!(
            net.stake(*i).await,
            stakes[k] - stakes[k] / U256::from(10u64)
        );
    }
    // The right challenger got its bond back plus its reward.
    let after = net
        .chain
        .balance(net.chain.operator(honest).address())
        .await
        .unwrap();
    assert!(
        after > honest_balance,
        "challenger rewarded: {honest_balance} -> {after}"
    );
    // The output the network now serves is the honest one.
    let out = net.client(honest).task_result(&id).await.unwrap();
    use sha2::Digest;
    assert_eq!(
        out,
        hex::encode(sha2::Sha256::digest(b"two against one")).into_bytes()
    );
    net.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dao_vote_changes_the_fee_rate_and_settlement_follows() {
    let mut net = start(5, &[], None, None).await;
    let voters: Vec<_> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(net.chain.client(net.chain.operator(i)).await.unwrap());
        }
        v
    };
    for (i, c) in voters.iter().enumerate() {
        c.delegate(net.chain.operator(i).address()).await.unwrap();
    }
    // ERC-6372 timestamp clock: votes count from the second before.
    net.chain.advance(1).await.unwrap();
    let actions = voters[0]
        .param_change_actions(&[("burn_bps".into(), "500".into())])
        .await
        .unwrap();
    let pid = voters[0]
        .propose(&actions, "burn 5% of every fee")
        .await
        .unwrap();
    net.chain.advance(2).await.unwrap();
    for c in &voters {
        c.cast_vote(pid, Support::For, None).await.unwrap();
    }
    net.chain.advance(21).await.unwrap();
    voters[0].queue(pid).await.unwrap();
    net.chain.advance(61).await.unwrap();
    voters[0].execute(pid).await.unwrap();
    let p = voters[0].params().await.unwrap();
    assert_eq!(p.burnBps, 500);

    let program = net.program().await;
    let before = net.balances().await;
    let (id, committee) = net.submit(&program, b"after the vote").await;
    net.chain_status(0, &id, "verdict", Duration::from_secs(120))
        .await;
    net.wait_majority(&id, 3).await;
    net.pass_challenge_window().await;
    let rec = net
        .chain_status(0, &id, "finalized", Duration::from_secs(60))
        .await;
    let rates = FeeRates {
        burn_bps: 500,
        treasury_bps: 200,
    };
    let s = rec.chain.unwrap().settlement.unwrap();
    assert_eq!(
        s.burned,
        (tokens(FEE) * U256::from(500u64) / U256::from(10_000u64)).to_string()
    );
    let paid: Vec<usize> = committee.iter().map(|a| net.index_of(a)).collect();
    check_fee_rule(&before, &net.balances().await, 0, &paid, rates);
    let _ = Address::ZERO;
    net.cluster.stop().await.unwrap();
}

/// A peer gossips 10,000 well-formed tasks that are never posted on chain;
/// then real tasks are posted: every one of them is decided, and the nodes
/// hold at most `MAX_AWAITING` gossiped tasks waiting for the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unposted_gossiped_tasks_do_not_stop_real_ones() {
    use hal9_node::engine::{
        TASKS_TOPIC,
        onchain::MAX_AWAITING,
        spec::{TaskMessage, TaskSpec},
    };
    use hal9_p2p::{Network, NetworkConfig, Validation};

    const FLOOD: u64 = 10_000;
    // The flood keeps both cores busy: run it alone among the chain tests.
    let _all = slots(MAX_SLOTS - 3).await;
    let mut net = start(3, &[], None, None).await;
    let program = net.program().await;
    let program_cid: hal9_node::engine::cid::RawCid = program.parse().unwrap();

    // The attacker: a raw libp2p peer on node 0 only.
    let mut cfg = NetworkConfig::local_tcp();
    cfg.bootstrap = vec![net.cluster.bootstrap.parse().unwrap()];
    cfg.max_connections = 1;
    cfg.target_peers = 1;
    let mut registry = prometheus_client::registry::Registry::default();
    let (p2p, attacker, _events) =
        Network::new(hal9_p2p::Keypair::generate_ed25519(), cfg, &mut registry)
            .await
            .unwrap();
    tokio::spawn(p2p.run());
    attacker
        .subscribe(TASKS_TOPIC, usize::MAX, |_: &hal9_p2p::PeerId, _: &[u8]| {
            Validation::Accept
        })
        .await
        .unwrap();
    let a = net.cluster.nodes[0].client().unwrap();
    let attacker_id = attacker.local_peer_id().to_string();
    crate::harness::eventually(
        Duration::from_secs(20),
        "node 0 to see the attacker on the tasks topic",
        || {
            let (c, id) = (a.clone(), attacker_id.clone());
            async move {
                let peers = c.peers().await.ok()?;
                peers
                    .iter()
                    .any(|p| p.peer_id == id && p.topics.iter().any(|t| t == TASKS_TOPIC))
                    .then_some(())
            }
        },
    )
    .await;
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3_600;
    for i in 0..FLOOD {
        let input = i.to_be_bytes().to_vec();
        let spec = TaskSpec {
            programCid: program_cid.to_bytes().into(),
            inputHash: hal9_consensus::keccak256(&[&input]).into(),
            inputCid: Default::default(),
            replicas: 3,
            fuelLimit: 1_000_000,
            capabilities: 0,
            submitter: Address::repeat_byte(0xaa),
            nonce: U256::from(i),
            deadline,
        };
        let msg = TaskMessage::new(spec, input).unwrap();
        // A full send queue drops a few; the count below says how many arrived.
        let _ = attacker.publish(TASKS_TOPIC, msg.encode()).await;
        // Paced a little, so the flood is a flood of the engine and not only
        // of node 0's bounded inbound queue (whose overflow is ignored).
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let received = crate::harness::eventually(
        Duration::from_secs(120),
        "node 0 to accept most of the flood",
        || async {
            let node = &net.cluster.nodes[0];
            let metric = "hal9_p2p_messages_received_total";
            let accepted = crate::harness::metric(node, metric, "outcome=\"accepted\"").await;
            // Ignored: the engine's inbound queue was full (backpressure).
            let ignored = crate::harness::metric(node, metric, "outcome=\"ignored\"").await;
            (accepted + ignored >= (MAX_AWAITING as f64) * 1.5).then_some((accepted, ignored))
        },
    )
    .await;
    eprintln!(
        "node 0 accepted {} gossiped messages and ignored {} (inbound queue full)",
        received.0, received.1
    );

    // Real tasks, posted on chain with a fee: all of them are decided.
    let mut ids = Vec::new();
    for i in 0..3u8 {
        let (id, _) = net.submit(&program, &[b'r', i]).await;
        ids.push(id);
    }
    for id in &ids {
        for node in 0..3 {
            net.chain_status(node, id, "verdict", Duration::from_secs(240))
                .await;
        }
    }
    // Bounded: what waits for the chain never exceeds the cap.
    for node in 0..3 {
        let tasks = net.client(node).tasks().await.unwrap();
        let waiting = tasks
            .iter()
            .filter(|r| r.status == TaskStatus::AwaitingChain)
            .count();
        eprintln!(
            "node {node}: {} task records, {waiting} waiting for the chain",
            tasks.len()
        );
        assert!(
            waiting <= MAX_AWAITING,
            "node {node} holds {waiting} tasks waiting for the chain (cap {MAX_AWAITING})"
        );
    }
    let _ = attacker.shutdown().await;
    net.cluster.stop().await.unwrap();
}

/// A reorganisation under a posted task: the new branch does not hold the
/// task, and the nodes follow it (the task is dropped, not settled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_posted_on_an_abandoned_branch_is_dropped() {
    use alloy::providers::{ProviderBuilder, ext::AnvilApi};
    use alloy::rpc::types::anvil::ReorgOptions;

    let mut net = start(3, &[], None, None).await;
    let program = net.program().await;
    let p = ProviderBuilder::new().connect_http(net.chain.url.parse().unwrap());
    let before = p.get_block_number().await.unwrap();
    let id = net
        .submit_raw(&program, b"on a branch that goes away")
        .await;
    // Every node has read the event before the branch goes away (a node
    // that had not would just hold the gossip until it expires).
    for node in 0..3 {
        net.chain_status_in(node, &id, &["requested", "drawn"], Duration::from_secs(60))
            .await;
    }
    let head = p.get_block_number().await.unwrap();
    let task: B256 = format!("0x{id}").parse().unwrap();
    // Replace every block since the submission with empty ones (and one more).
    p.anvil_reorg(ReorgOptions {
        depth: head - before + 1,
        tx_block_pairs: vec![],
    })
    .await
    .unwrap();
    p.anvil_mine(Some(2), None).await.unwrap();
    let c = net.chain.client(&net.chain.keys[0]).await.unwrap();
    assert!(
        c.task(task).await.map(|t| t.fee.is_zero()).unwrap_or(true),
        "the new branch must not hold the task"
    );
    for node in 0..3 {
        let rec = net
            .chain_status(node, &id, "dropped", Duration::from_secs(60))
            .await;
        assert_eq!(rec.status, TaskStatus::Rejected, "node {node}: {rec:?}");
    }
    // The nodes keep following the new chain: a task posted on it settles.
    let (id2, _) = net.submit(&program, b"on the new branch").await;
    net.chain_status(0, &id2, "verdict", Duration::from_secs(120))
        .await;
    net.cluster.stop().await.unwrap();
}

/// A task record corrupted on disk while the node is stopped: the node
/// starts, says which record it quarantined, and settles the other task.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_is_quarantined_and_the_rest_settles() {
    let mut net = start(3, &[], None, None).await;
    let program = net.program().await;
    let (bad, _) = net.submit(&program, b"this record gets corrupted").await;
    let (good, _) = net.submit(&program, b"this one settles").await;
    for id in [&bad, &good] {
        net.chain_status(0, id, "verdict", Duration::from_secs(120))
            .await;
    }
    net.cluster.nodes[0].stop().await.unwrap();
    {
        let path = net.cluster.nodes[0]
            .home()
            .path(hal9_node::home::STORE_FILE);
        let store = hal9_node::store::Store::open(&path).unwrap();
        store
            .put_raw("tasks", &bad, b"\x00\xffgarbage, not a task record")
            .unwrap();
    }
    net.cluster.nodes[0].start().await.unwrap();
    let log = net.cluster.nodes[0].home().path("node.log");
    crate::harness::eventually(
        Duration::from_secs(20),
        "the quarantine log line naming the record",
        || {
            let log = log.clone();
            let bad = bad.clone();
            async move {
                let text = std::fs::read_to_string(&log).ok()?;
                text.lines()
                    .any(|l| l.contains("corrupt record quarantined") && l.contains(&bad))
                    .then_some(())
            }
        },
    )
    .await;
    assert_eq!(
        crate::harness::metric(&net.cluster.nodes[0], "hal9_store_quarantined_total", "").await,
        1.0
    );
    net.cluster
        .wait_full_mesh(Duration::from_secs(60))
        .await
        .unwrap();
    // The other task still settles: past the challenge window it is finalized.
    net.pass_challenge_window().await;
    net.chain_status(0, &good, "finalized", Duration::from_secs(90))
        .await;
    net.cluster.stop().await.unwrap();
}

/// An HTTP JSON-RPC forwarder to anvil that answers 503 to every `eth_call`
/// to `target` while `failing` is set (one request per connection).
async fn failing_calls_proxy(
    anvil: String,
    target: Address,
    failing: Arc<AtomicBool>,
    failed: Arc<std::sync::atomic::AtomicU64>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let needle = format!("{target:x}").to_lowercase();
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let (anvil, needle, http) = (anvil.clone(), needle.clone(), http.clone());
            let (failing, failed) = (failing.clone(), failed.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, len) = loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + len {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..head_end + len].to_vec();
                let text = String::from_utf8_lossy(&body).to_lowercase();
                if failing.load(Ordering::SeqCst)
                    && text.contains("eth_call")
                    && text.contains(&needle)
                {
                    failed.fetch_add(1, Ordering::SeqCst);
                    let _ = s
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(resp) = http
                    .post(&anvil)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(out) = resp.bytes().await else { return };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    out.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&out).await;
            });
        }
    });
    url
}

/// A staked operator registered bytes that are not a PeerId and is drawn
/// into every committee (3 stakers, 3 replicas); the registry lookups of the
/// committee fail for the first seconds. The task is not lost: the watcher
/// retries, the garbage member is absent, the two others decide it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_peer_id_and_failing_lookups_lose_no_task() {
    // The lookups fail for about a minute: a commit phase of 5 minutes
    // outlasts the outage (one longer than the commit phase costs the
    // round, and the task is refunded at its deadline).
    let chain = DevChain::start_with(3, |c| c.market.commitPeriod = 300)
        .await
        .expect("dev chain");
    // Operator 2 runs no node and registers garbage as its PeerId.
    let rogue = chain.client(chain.operator(2)).await.unwrap();
    rogue
        .register(b"\xde\xad not a peer id", 0, tokens(STAKE), &[0u8; 64])
        .await
        .unwrap();
    rogue.lock(30 * 86_400).await.unwrap();
    chain
        .apply_queued(&[chain.operator(2).address()])
        .await
        .unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rpc = failing_calls_proxy(
        chain.url.clone(),
        chain.deployment.registry,
        failing.clone(),
        failed.clone(),
    )
    .await;
    let mut net = start(2, &[], Some(&rpc), Some(chain)).await;
    let program = net.program().await;
    failing.store(true, Ordering::SeqCst);
    let id = net.submit_raw(&program, b"decided without the rogue").await;
    let rogue_addr = net.chain.operator(2).address().to_checksum(None);
    // Every node's lookup fails for a while.
    crate::harness::eventually(
        Duration::from_secs(120),
        "failed lookups on both nodes",
        || async {
            let mut all = true;
            for n in &net.cluster.nodes {
                all &= crate::harness::metric(n, "hal9_chain_watch_lookup_retries_total", "").await
                    >= 1.0;
            }
            all.then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    failing.store(false, Ordering::SeqCst);
    eprintln!("{} registry calls failed", failed.load(Ordering::SeqCst));
    let committee = net.drawn(&id).await;
    assert!(committee.contains(&rogue_addr), "{committee:?}");
    // The two nodes commit; the rogue, absent, cannot.
    net.end_commits(&id, 2).await;
    for node in 0..2 {
        let rec = net
            .chain_status(node, &id, "verdict", Duration::from_secs(120))
            .await;
        assert_eq!(rec.status, TaskStatus::Verified, "node {node}");
        assert!(
            crate::harness::metric(
                &net.cluster.nodes[node],
                "hal9_chain_watch_absent_members_total",
                ""
            )
            .await
                >= 1.0
        );
    }
    net.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_and_attestations_signed_outside_the_registry_go_nowhere() {
    use alloy::signers::local::PrivateKeySigner;
    use hal9_node::{
        chain::{ATTEST_TOPIC, Attestation},
        engine::VOTES_TOPIC,
    };

    use crate::forged::{checked, outsider_batch};

    let mut net = start(3, &[], None, None).await;
    let a = &net.cluster.nodes[0];
    crate::harness::eventually(
        Duration::from_secs(30),
        "node 0 to read the registry's neurons",
        || async {
            (crate::harness::metric(a, "hal9_chain_registry_neurons", "").await >= 3.0)
                .then_some(())
        },
    )
    .await;
    let (attacker, key) =
        crate::harness::attacker(&net.cluster, &[VOTES_TOPIC, ATTEST_TOPIC], 1 << 20).await;

    // A well-signed vote batch from a libp2p key no neuron registered.
    attacker
        .publish(VOTES_TOPIC, outsider_batch(&key))
        .await
        .unwrap();
    // An attestation from an operator key the registry does not list, and
    // one whose signature is no signature at all.
    let d = net.chain.deployment;
    let stranger = PrivateKeySigner::random();
    let (task, result, cid) = (B256::repeat_byte(5), B256::repeat_byte(6), vec![1u8, 0x55]);
    let sig = hal9_market::eip712::sign_result(&stranger, d.chain_id, d.market, task, result, &cid)
        .unwrap();
    let mut att = Attestation {
        round: 0,
        task,
        result,
        salt: B256::repeat_byte(7),
        cid,
        signature: <[u8; 65]>::try_from(sig.as_ref()).unwrap(),
        salt_signature: hal9_node::chain::attest::sign_salt(
            &stranger,
            d.chain_id,
            d.market,
            0,
            task,
            B256::repeat_byte(7),
        )
        .unwrap(),
    };
    attacker.publish(ATTEST_TOPIC, att.encode()).await.unwrap();
    att.signature = [0u8; 65];
    attacker.publish(ATTEST_TOPIC, att.encode()).await.unwrap();

    for (topic, outcome) in [
        ("votes", "ignored"),
        ("attestations", "ignored"),
        ("attestations", "rejected"),
    ] {
        crate::harness::eventually(
            Duration::from_secs(15),
            &format!("node 0 to count a {topic} message {outcome}"),
            || async { (checked(a, topic, outcome).await >= 1.0).then_some(()) },
        )
        .await;
    }
    assert_eq!(checked(a, "votes", "accepted").await, 0.0);
    assert_eq!(checked(a, "attestations", "accepted").await, 0.0);
    // Node 0 forwarded none of them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 1..3 {
        for topic in ["votes", "attestations"] {
            for outcome in ["accepted", "rejected", "ignored"] {
                assert_eq!(
                    checked(&net.cluster.nodes[i], topic, outcome).await,
                    0.0,
                    "node {i} saw a {topic} message ({outcome}): it was forwarded"
                );
            }
        }
    }
    let _ = attacker.shutdown().await;
    net.cluster.stop().await.unwrap();
}
