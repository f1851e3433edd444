use std::{path::PathBuf, time::Duration};

use clap::Args;
use eyre::{Context, bail};

use alloy::primitives::{Address, U256};

use hal9_api::{SubmitTask, TaskStatus};

use crate::{
    dev::devchain::{DevChain, tokens},
    dev::devnet::Cluster,
};

/// `hal9 devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Directory for the node homes (default: a fresh temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the network running until Ctrl-C instead of stopping after the demo.
    #[arg(long)]
    keep_running: bool,
    /// Run without a settlement chain (committees from a genesis file, nothing settled).
    #[arg(long)]
    standalone: bool,
}

impl DevnetArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        if !(1..=64).contains(&self.nodes) {
            bail!("--nodes must be between 1 and 64, found {}", self.nodes);
        }
        let tmp;
        let dir = match self.dir {
            Some(d) => d,
            None => {
                tmp = tempfile::Builder::new().prefix("hal9-devnet-").tempdir()?;
                tmp.path().to_path_buf()
            }
        };
        let bin = std::env::current_exe().wrap_err("cannot locate the hal9 binary")?;
        // From here on SIGINT, SIGTERM and SIGHUP end the devnet through the
        // same shutdown as the end of the demo, so no node or anvil is left
        // behind without its parent.
        let mut signals = Signals::install()?;
        let chain = if self.standalone {
            None
        } else {
            if self.nodes < 3 {
                bail!("chain mode needs at least 3 nodes (r = 3); use --standalone for fewer");
            }
            // Dropping an unfinished start kills the anvil it spawned.
            let chain = tokio::select! {
                c = DevChain::start(self.nodes) => c?,
                sig = signals.recv() => bail!("interrupted by {sig} while starting the chain"),
            };
            println!(
                "local chain: anvil on {} (chain id {}), contracts deployed:",
                chain.url, chain.deployment.chain_id
            );
            let d = &chain.deployment;
            println!(
                "  token {}  registry {}  market {}",
                d.token, d.registry, d.market
            );
            println!(
                "  governor {}  timelock/treasury {}",
                d.governor, d.timelock
            );
            Some(chain)
        };
        println!("starting {} nodes under {}", self.nodes, dir.display());
        let setup = async {
            let nodes = Cluster::init(&bin, &dir, self.nodes, |_| Vec::new()).await?;
            if let Some(chain) = &chain {
                for (i, node) in nodes.iter().enumerate() {
                    let lock = LOCK_DAYS[i % LOCK_DAYS.len()];
                    chain
                        .prepare_node(node, i, &chain.url, tokens(STAKE), lock)
                        .await?;
                    println!(
                        "  node{i}: operator {} registered (PeerId binding signed by the node key), staked {STAKE} HAL9, locked {lock} days",
                        chain.operator(i).address()
                    );
                }
                let ops: Vec<Address> = (0..nodes.len())
                    .map(|i| chain.operator(i).address())
                    .collect();
                chain.apply_queued(&ops).await?;
                println!("  sortition trees updated in the apply phase: all neurons can be drawn");
            }
            eyre::Ok(Cluster::new(nodes))
        };
        let mut cluster = tokio::select! {
            c = setup => c?,
            sig = signals.recv() => bail!("interrupted by {sig} while preparing the nodes"),
        };
        let interrupted = {
            let work = async {
                cluster.start_nodes().await?;
                demo(&cluster, chain.is_none()).await?;
                if let Some(chain) = &chain {
                    demo_chain(&cluster, chain).await?;
                }
                eyre::Ok(())
            };
            tokio::select! {
                r = work => match r {
                    Ok(()) if self.keep_running => {
                        println!("network running; press Ctrl-C (or send SIGTERM) to stop");
                        Ok(Some(signals.recv().await))
                    }
                    Ok(()) => Ok(None),
                    Err(e) => Err(e),
                },
                sig = signals.recv() => Ok(Some(sig)),
            }
        };
        let running = cluster.running();
        println!("stopping {running} nodes");
        // A second signal during the graceful stop kills what is still running.
        let forced = {
            let stop = cluster.stop();
            tokio::pin!(stop);
            tokio::select! {
                r = &mut stop => { r?; None }
                sig = signals.recv() => Some(sig),
            }
        };
        if let Some(sig) = forced {
            println!("{sig} during shutdown: killing the remaining nodes");
            cluster.kill().await;
        }
        drop(chain);
        println!("all nodes stopped");
        match interrupted? {
            // Ending a --keep-running network is the normal way out.
            Some(_) if self.keep_running => Ok(()),
            Some(sig) => bail!("interrupted by {sig} before the demo finished"),
            None => Ok(()),
        }
    }
}

/// The termination signals the devnet handles itself.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> eyre::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            int: signal(SignalKind::interrupt()).wrap_err("cannot handle SIGINT")?,
            term: signal(SignalKind::terminate()).wrap_err("cannot handle SIGTERM")?,
            hup: signal(SignalKind::hangup()).wrap_err("cannot handle SIGHUP")?,
        })
    }

    /// Waits for the next signal and names it.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Stake of each devnet operator, whole tokens.
const STAKE: u128 = 10_000;
/// Lock periods of the devnet operators (multipliers 3x down to 1x).
const LOCK_DAYS: [u64; 5] = [365, 180, 90, 30, 0];
/// Fee of the demo task, whole tokens.
const DEMO_FEE: u128 = 10;

async fn demo(cluster: &Cluster, with_task: bool) -> eyre::Result<()> {
    println!("bootstrap node: {}", cluster.bootstrap);
    let t = cluster.wait_full_mesh(Duration::from_secs(60)).await?;
    println!(
        "every node is connected to the other {} (took {:.1} s)",
        cluster.nodes.len() - 1,
        t.as_secs_f64()
    );
    for (i, node) in cluster.nodes.iter().enumerate() {
        let s = node.client()?.status().await?;
        println!("  node{i}  {}  peers={}", s.peer_id, s.connected_peers);
    }
    let mut texts = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let text = format!("hello from node{i}");
        node.client()?.publish_note(&text).await?;
        texts.push(text);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut missing = 0;
        for (i, node) in cluster.nodes.iter().enumerate() {
            let got = node.client()?.notes().await?;
            for (j, t) in texts.iter().enumerate() {
                if i != j && !got.iter().any(|n| &n.text == t) {
                    missing += 1;
                }
            }
        }
        if missing == 0 {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("{missing} note deliveries still missing after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = cluster.nodes.len();
    println!(
        "gossip: {n} notes published, each delivered to the other {} nodes ({} deliveries)",
        n - 1,
        n * (n - 1)
    );
    if n >= 3 && with_task {
        demo_task(cluster).await?;
    }
    Ok(())
}

fn fmt_tokens(v: U256) -> String {
    hal9_market::units::format_tokens(v)
}

fn fmt_delta(before: U256, after: U256) -> String {
    if after >= before {
        format!("+{}", fmt_tokens(after - before))
    } else {
        format!("-{}", fmt_tokens(before - after))
    }
}

/// Chain mode: posts the demo task on chain, waits for the verdict, its
/// settlement and (after the challenge window) finalization, and prints
/// the fee split and every balance before and after.
async fn demo_chain(cluster: &Cluster, chain: &DevChain) -> eyre::Result<()> {
    let wasm_path = hal9_plugins::builder::example_wasm("mlp")
        .map_err(|e| eyre::eyre!("cannot build the mlp example plugin: {e}"))?;
    let wasm = std::fs::read(&wasm_path)?;
    let client = cluster.nodes[0].client()?;
    let added = client.publish_program(wasm).await?;
    println!(
        "\nprogram: mlp digit classifier, {} bytes, CID {}",
        added.bytes, added.cid
    );
    let n = cluster.nodes.len();
    let ops: Vec<Address> = (0..n).map(|i| chain.operator(i).address()).collect();
    let treasury = chain.deployment.timelock;
    let mut before = Vec::new();
    for a in &ops {
        before.push(chain.balance(*a).await?);
    }
    let treasury_before = chain.balance(treasury).await?;
    let supply_before = chain.total_supply().await?;

    let mut rng = hal9_plugins::kernels::glyphs::Rng(7);
    let digit = 7;
    let image = hal9_plugins::kernels::glyphs::render(digit, &mut rng);
    let started = std::time::Instant::now();
    let sub = client
        .submit_task(&SubmitTask {
            program: added.cid.clone(),
            input_hex: hex::encode(image),
            replicas: 3,
            fuel: None,
            nonce: None,
            fee: Some(tokens(DEMO_FEE).to_string()),
        })
        .await?;
    println!(
        "task {} posted on chain by node0 (a handwritten-style {digit}, r = 3, fee {DEMO_FEE} HAL9 escrowed)",
        sub.id
    );
    println!(
        "the committee is drawn on chain from the hash of block {} (protocol v1.1: nobody knew it when the task was posted)",
        sub.draw_block
            .map_or_else(|| "?".to_string(), |b| b.to_string())
    );
    let task_id: alloy::primitives::B256 = format!("0x{}", sub.id).parse()?;
    // A poller: whether node 0's record of the task's chain state holds `pred`.
    let chain_holds = |pred: fn(&hal9_api::ChainRecord) -> bool| {
        let client = client.clone();
        let id = sub.id.clone();
        move || {
            let client = client.clone();
            let id = id.clone();
            async move {
                let r = client.task(&id, None).await?;
                Ok(r.chain.as_ref().is_some_and(pred))
            }
        }
    };
    DevChain::wait_for(
        "the committee's commitments on chain",
        Duration::from_secs(90),
        chain_holds(|c| c.committed.len() >= 3),
    )
    .await?;
    println!(
        "committee drawn and every member's commitment stored on chain after {} ms; moving the dev chain's clock past the commit phase ({} s) so the reveals may go out",
        started.elapsed().as_millis(),
        chain.config.market.commitPeriod
    );
    chain.end_commit_phase(task_id).await?;
    let rec = client.task(&sub.id, Some(120_000)).await?;
    crate::cli::task::print_task(&rec);
    if rec.status != TaskStatus::Verified {
        bail!("the demo task ended as {:?}", rec.status);
    }
    let out = client.task_result(&sub.id).await?;
    if let Some((&predicted, _)) = out.split_first() {
        println!("output:     predicted digit {predicted}");
    }
    println!(
        "submit -> verified verdict: {} ms",
        started.elapsed().as_millis()
    );
    DevChain::wait_for(
        "the verdict on chain",
        Duration::from_secs(60),
        chain_holds(|c| c.status == "verdict"),
    )
    .await?;
    println!(
        "verdict settled on chain with the members' reveals of their commitments after {} ms; challenge window {} s",
        started.elapsed().as_millis(),
        chain.config.market.challengeWindow
    );
    // Reveals the relayer left out are added within the window.
    let reader = chain.client(&chain.keys[0]).await?;
    let _ = DevChain::wait_for(
        "every agreeing member on the verdict",
        Duration::from_secs(15),
        || {
            let reader = reader.clone();
            async move {
                let t = reader.task(task_id).await.map_err(|e| eyre::eyre!("{e}"))?;
                Ok(t.majorityMask.count_ones() >= 3)
            }
        },
    )
    .await;
    println!("moving the dev chain's clock past the challenge window");
    chain
        .advance(chain.config.market.challengeWindow + 1)
        .await?;
    DevChain::wait_for(
        "finalization",
        Duration::from_secs(60),
        chain_holds(|c| c.status == "finalized"),
    )
    .await?;
    let rec = client.task(&sub.id, None).await?;
    let c = rec.chain.clone().unwrap_or_default();
    let s = c
        .settlement
        .clone()
        .ok_or_else(|| eyre::eyre!("finalized without figures"))?;
    let parse = |v: &str| v.parse::<U256>().unwrap_or_default();
    println!("\nsettlement of {} HAL9:", DEMO_FEE);
    println!("  burned            {} HAL9", fmt_tokens(parse(&s.burned)));
    println!(
        "  to the treasury   {} HAL9",
        fmt_tokens(parse(&s.to_treasury))
    );
    println!(
        "  each majority member {} HAL9",
        fmt_tokens(parse(&s.per_member))
    );
    println!("  slashed           {} HAL9", fmt_tokens(parse(&s.slashed)));
    for (action, tx) in &c.txs {
        println!("  node0 sent {action}: {tx}");
    }
    println!("\nbalances (HAL9)        before                after                 change");
    for (i, a) in ops.iter().enumerate() {
        let after = chain.balance(*a).await?;
        let role = if c.committee.contains(&a.to_checksum(None)) {
            "member"
        } else {
            ""
        };
        let role = if i == 0 {
            format!("submitter {role}")
        } else {
            role.to_string()
        };
        println!(
            "  node{i} {:<16} {:>20}  {:>20}  {}",
            role,
            fmt_tokens(before[i]),
            fmt_tokens(after),
            fmt_delta(before[i], after)
        );
    }
    let treasury_after = chain.balance(treasury).await?;
    let supply_after = chain.total_supply().await?;
    println!(
        "  treasury               {:>20}  {:>20}  {}",
        fmt_tokens(treasury_before),
        fmt_tokens(treasury_after),
        fmt_delta(treasury_before, treasury_after)
    );
    println!(
        "  total supply           {:>20}  {:>20}  {} (burned)",
        fmt_tokens(supply_before),
        fmt_tokens(supply_after),
        fmt_delta(supply_before, supply_after)
    );
    println!(
        "submit -> finalized: {:.1} s (including the chain clock jump)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Publishes the digit-classifier plugin, submits a task with r = 3 and
/// prints the verdict.
async fn demo_task(cluster: &Cluster) -> eyre::Result<()> {
    let wasm_path = hal9_plugins::builder::example_wasm("mlp")
        .map_err(|e| eyre::eyre!("cannot build the mlp example plugin: {e}"))?;
    let wasm = std::fs::read(&wasm_path)?;
    let client = cluster.nodes[0].client()?;
    let added = client.publish_program(wasm).await?;
    println!(
        "\nprogram: mlp digit classifier, {} bytes, CID {}",
        added.bytes, added.cid
    );
    let mut rng = hal9_plugins::kernels::glyphs::Rng(7);
    let digit = 7;
    let image = hal9_plugins::kernels::glyphs::render(digit, &mut rng);
    let started = std::time::Instant::now();
    let sub = client
        .submit_task(&SubmitTask {
            program: added.cid.clone(),
            input_hex: hex::encode(image),
            replicas: 3,
            fuel: None,
            nonce: None,
            fee: None,
        })
        .await?;
    println!(
        "task {} submitted (a handwritten-style {digit}, r = 3)",
        sub.id
    );
    let rec = client.task(&sub.id, Some(120_000)).await?;
    crate::cli::task::print_task(&rec);
    if rec.status != TaskStatus::Verified {
        bail!("the demo task ended as {:?}", rec.status);
    }
    let out = client.task_result(&sub.id).await?;
    if let Some((&predicted, logits)) = out.split_first() {
        let logits: Vec<String> = logits
            .chunks_exact(4)
            .map(|c| format!("{:.2}", f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        println!(
            "output:     predicted digit {predicted}; logits [{}]",
            logits.join(", ")
        );
    }
    let report = cluster.nodes[n_last(cluster)]
        .client()?
        .verify_task(&sub.id)
        .await?;
    println!(
        "certificate checked independently by node{}: {} signers, quorum {}",
        n_last(cluster),
        report.signers.len(),
        report.quorum
    );
    println!(
        "submit -> verified verdict: {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

fn n_last(cluster: &Cluster) -> usize {
    cluster.nodes.len() - 1
}
