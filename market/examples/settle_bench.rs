//! Settlement throughput and gas: one verdict (and one finalize) per
//! transaction against `submitVerdicts`/`finalizeMany` batches.
//!
//! ```text
//! cargo run --release -p hal9-market --example settle_bench -- --tasks 128 --batch 16
//! ```
//!
//! Starts a fresh anvil (automine: every transaction is mined at once),
//! deploys, registers 11 neurons (the 3r + 2 a task of r = 3 needs) and
//! applies their tree writes, posts 2 x N tasks with r = 3 and draws each
//! committee (protocol v1.1), has every member commit to its tasks with
//! `commitMany` (up to 64 tasks per transaction), passes the commit phase,
//! then settles the first N with one `submitVerdict` (carrying the reveals)
//! per transaction and the other N in batches of B, advances time past the
//! challenge window and finalizes them the same two ways. The commit and
//! reveal phases are 10 minutes here (the devnet's 30 s would not hold a
//! large N). One relayer
//! sends sequentially and waits for each receipt, as the node's settlement
//! outbox does. Prints settled tasks per minute and gas per settled task.
//! Receipts are polled every `--poll-ms` (10) ms instead of alloy's 250 ms
//! loopback default, which would otherwise dominate every transaction.
//!
//! anvil is found in `$HAL9_ANVIL`, `PATH` or `contracts/node_modules/.bin`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::node_bindings::Anvil;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{Provider, ProviderBuilder, ext::AnvilApi};
use alloy::signers::local::PrivateKeySigner;
use hal9_market::client::MAX_BATCH;
use hal9_market::{
    DeployConfig, DrawOutcome, MarketClient, PostedTask, TaskSpec, VerdictEntry, commit, deploy_all,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ETHER: u128 = 1_000_000_000_000_000_000;
const NEURONS: usize = 11;
/// Accounts: 0 deploys, 1..=11 neurons, 12 submits, 13 relays.
const SUBMITTER: usize = NEURONS + 1;
const RELAYER: usize = NEURONS + 2;

struct Args {
    tasks: usize,
    batch: usize,
    poll: Duration,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        tasks: 64,
        batch: 16,
        poll: Duration::from_millis(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--tasks" => args.tasks = value()?.parse()?,
            "--batch" => args.batch = value()?.parse()?,
            "--poll-ms" => args.poll = Duration::from_millis(value()?.parse()?),
            "-h" | "--help" => {
                println!(
                    "settle_bench [--tasks N (64)] [--batch B (16, at most {MAX_BATCH})] [--poll-ms MS (10)]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.tasks == 0 || args.batch == 0 || args.batch > MAX_BATCH {
        return Err(format!("need --tasks >= 1 and 1 <= --batch <= {MAX_BATCH}").into());
    }
    Ok(args)
}

fn anvil_path() -> Option<PathBuf> {
    hal9_market::deploy::find_anvil()
}

/// Wall time and gas of one phase.
#[derive(Default, Clone, Copy)]
struct Phase {
    txs: u64,
    gas: u64,
    time: Duration,
}

impl Phase {
    fn add(&mut self, gas: u64) {
        self.txs += 1;
        self.gas += gas;
    }
}

fn per_minute(n: usize, t: Duration) -> f64 {
    n as f64 * 60.0 / t.as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let anvil_bin = anvil_path().ok_or("anvil not found (set HAL9_ANVIL or put it on PATH)")?;
    let anvil = Anvil::at(anvil_bin)
        .args(["--accounts", "14", "--gas-limit", "30000000"])
        .try_spawn()?;
    let keys: Vec<PrivateKeySigner> = anvil
        .keys()
        .iter()
        .cloned()
        .map(PrivateKeySigner::from)
        .collect();
    let url = anvil.endpoint_url();
    // alloy polls for receipts every 250 ms on a loopback endpoint; anvil
    // automines within a few ms, so that interval, not the chain, would set
    // the pace of a sequential relayer. Poll faster (and say so).
    let connect = |i: usize| {
        let p = ProviderBuilder::new()
            .wallet(EthereumWallet::from(keys[i].clone()))
            .connect_http(url.clone());
        p.client().set_poll_interval(args.poll);
        p
    };
    let genesis: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let mut cfg = DeployConfig::devnet(&genesis);
    cfg.market.commitPeriod = 600;
    cfg.market.revealPeriod = 600;
    let d = deploy_all(&connect(0), keys[0].address(), &cfg).await?;

    let mut signers = HashMap::new();
    for (i, key) in keys.iter().enumerate().skip(1).take(NEURONS) {
        let c = MarketClient::connect(connect(i), d).await?;
        // The chain stores the peer binding without checking it; the bench
        // needs no libp2p key.
        let peer = [&[0x00u8, 0x24][..], keccak256([i as u8]).as_slice()].concat();
        c.register(&peer, 1, U256::from(1_000u64) * U256::from(ETHER), &[1; 64])
            .await?;
        signers.insert(key.address(), i);
    }
    let submitter = MarketClient::connect(connect(SUBMITTER), d).await?;
    let relayer = MarketClient::connect(connect(RELAYER), d).await?;
    let p = connect(0);
    // Tree writes queued in draw phases are applied in the next apply phase.
    let epoch = relayer.registry().epochBlocks().call().await?;
    let next = p.get_block_number().await? + 1;
    if next % epoch >= 2 {
        p.anvil_mine(Some(epoch - next % epoch), None).await?;
    }
    relayer
        .apply_queued(&signers.keys().copied().collect::<Vec<_>>())
        .await?;

    let n = args.tasks;
    println!(
        "settle_bench: {n} tasks per mode, batch {}, r = 3, {NEURONS} neurons, anvil automine, receipt poll {} ms",
        args.batch,
        args.poll.as_millis()
    );
    let now = relayer.chain_time().await?;
    let t0 = Instant::now();
    let mut tasks: Vec<PostedTask> = Vec::with_capacity(2 * n);
    let mut committees: Vec<Vec<Address>> = Vec::with_capacity(2 * n);
    for nonce in 0..2 * n {
        let spec = TaskSpec {
            programCid: Bytes::from_static(&[0x01, 0x55, 0x12, 0x20, 0xaa, 0xbb]),
            inputHash: keccak256(nonce.to_be_bytes()),
            inputCid: Bytes::new(),
            replicas: 3,
            fuelLimit: 1_000_000,
            capabilities: 1,
            submitter: keys[SUBMITTER].address(),
            nonce: U256::from(nonce),
            deadline: now + 20 * 3_600,
        };
        let t = submitter
            .post_task(&spec, U256::from(10u64) * U256::from(ETHER))
            .await?;
        // Draw at once: a draw must happen in the tree epoch of its block.
        let mut target = t.draw_block;
        let members = loop {
            let head = p.get_block_number().await?;
            // The gas estimate runs on the head: it must be past the draw block.
            if head <= target {
                p.anvil_mine(Some(target + 1 - head), None).await?;
            }
            match relayer.draw(t.task_id).await? {
                DrawOutcome::Drawn { members, .. } => break members,
                DrawOutcome::Retargeted { draw_block } => target = draw_block,
                DrawOutcome::Empty => return Err("nothing drawn".into()),
            }
        };
        committees.push(members);
        tasks.push(t);
    }
    println!(
        "  posted and drew {} tasks in {:.1} s",
        tasks.len(),
        t0.elapsed().as_secs_f64()
    );

    // Every member commits (the all-honest case: nobody is slashed at
    // finalize), all its tasks in commitMany batches of up to MAX_BATCH.
    let cid = Bytes::from_static(b"\x01\x55\x12\x20output-cid-of-the-bench");
    let salt = |t: B256, m: Address| keccak256([t.as_slice(), m.as_slice()].concat());
    let mut per_member: HashMap<Address, Vec<(B256, B256)>> = HashMap::new();
    let mut entries = Vec::with_capacity(tasks.len());
    for (t, members) in tasks.iter().zip(&committees) {
        let result = keccak256(t.task_id);
        let mut reveals = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            if !signers.contains_key(m) {
                return Err("committee member is not a bench neuron".into());
            }
            let s = salt(t.task_id, *m);
            per_member.entry(*m).or_default().push((
                t.task_id,
                commit::commitment(t.task_id, result, keccak256(&cid), s, *m),
            ));
            reveals.push(commit::reveal(i as u16, result, &cid, s));
        }
        entries.push(VerdictEntry {
            task: t.task_id,
            result,
            output_cid: cid.clone(),
            reveals,
        });
    }
    let mut commits = Phase::default();
    let start = Instant::now();
    for (m, list) in &per_member {
        let c = MarketClient::connect(connect(signers[m]), d).await?;
        for chunk in list.chunks(MAX_BATCH) {
            let rc = c.commit_many(chunk).await?;
            commits.add(rc.gas_used);
        }
    }
    commits.time = start.elapsed();
    let last_commit_end = {
        let mut e = 0;
        for t in &tasks {
            e = e.max(relayer.task(t.task_id).await?.commitEnd);
        }
        e
    };
    let now = relayer.chain_time().await?;
    if now <= last_commit_end {
        p.anvil_increase_time(last_commit_end - now + 1).await?;
    }
    p.anvil_mine(Some(1), None).await?;
    println!(
        "  {} commitMany txs, {:.2} s, {} commit gas per task",
        commits.txs,
        commits.time.as_secs_f64(),
        commits.gas / tasks.len() as u64
    );
    let (single_entries, batch_entries) = entries.split_at(n);

    // Submit: one per transaction, then batched.
    let mut single_submit = Phase::default();
    let start = Instant::now();
    for e in single_entries {
        let rc = relayer
            .submit_verdict(e.task, e.result, &e.output_cid, e.reveals.clone())
            .await?;
        single_submit.add(rc.gas_used);
    }
    single_submit.time = start.elapsed();

    let mut batch_submit = Phase::default();
    let start = Instant::now();
    for chunk in batch_entries.chunks(args.batch) {
        let out = relayer.submit_verdicts(chunk.to_vec()).await?;
        if !out.skipped.is_empty() {
            return Err(format!("verdicts skipped: {:?}", out.skipped).into());
        }
        batch_submit.add(out.receipt.gas_used);
    }
    batch_submit.time = start.elapsed();

    let params = relayer.params().await?;
    p.anvil_increase_time(params.challengeWindow + 1).await?;
    p.anvil_mine(Some(1), None).await?;

    // Finalize: one per transaction, then batched.
    let ids: Vec<B256> = tasks.iter().map(|t| t.task_id).collect();
    let (single_ids, batch_ids) = ids.split_at(n);
    let mut single_fin = Phase::default();
    let start = Instant::now();
    for id in single_ids {
        let rc = relayer.finalize(*id).await?;
        single_fin.add(rc.gas_used);
    }
    single_fin.time = start.elapsed();

    let mut batch_fin = Phase::default();
    let start = Instant::now();
    for chunk in batch_ids.chunks(args.batch) {
        let out = relayer.finalize_many(chunk).await?;
        if out.applied.len() != chunk.len() {
            return Err(format!("finalize skipped: {:?}", out.skipped).into());
        }
        batch_fin.add(out.receipt.gas_used);
    }
    batch_fin.time = start.elapsed();

    if relayer.balance(d.market).await? != U256::ZERO {
        return Err("escrow not empty after finalizing every task".into());
    }

    println!(
        "  {:<22} {:>6} {:>10} {:>14} {:>14} {:>14} {:>12}",
        "mode", "txs", "wall s", "settled/min", "submit gas/t", "final gas/t", "gas/task"
    );
    for (name, s, f) in [
        ("one per tx", single_submit, single_fin),
        (
            &*format!("batched ({} per tx)", args.batch),
            batch_submit,
            batch_fin,
        ),
    ] {
        let wall = s.time + f.time;
        println!(
            "  {:<22} {:>6} {:>10.2} {:>14.0} {:>14} {:>14} {:>12}",
            name,
            s.txs + f.txs,
            wall.as_secs_f64(),
            per_minute(n, wall),
            s.gas / n as u64,
            f.gas / n as u64,
            (s.gas + f.gas) / n as u64,
        );
        println!(
            "  {:<22} submit {:.0} tasks/min, finalize {:.0} tasks/min",
            "",
            per_minute(n, s.time),
            per_minute(n, f.time)
        );
    }
    Ok(())
}
